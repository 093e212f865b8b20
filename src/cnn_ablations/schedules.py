"""Learning-rate schedules that torch lacks, for ``conf/scheduler/`` (``_target_``)."""

from collections.abc import Sequence

import torch


def piecewise_constant_lr(
    optimizer: torch.optim.Optimizer, milestones: Sequence[int], factors: Sequence[float]
) -> torch.optim.lr_scheduler.LambdaLR:
    """lr = base_lr * factors[k] from epoch milestones[k-1] on (factors[0] before the first).

    torch's MultiStepLR multiplies by one constant gamma; LeCun's schedule needs several.
    """
    if len(factors) != len(milestones) + 1:
        raise ValueError("piecewise_constant_lr needs one more factor than milestones")

    def factor(epoch: int) -> float:
        return factors[sum(epoch >= m for m in milestones)]

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
