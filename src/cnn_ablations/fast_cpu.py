"""A CPU fit without two process-wide costs: every trainer ``build`` makes carries
:class:`FastCpuFit` (docs/performance.md)."""

import os

import pytorch_lightning as pl
import torch

NVML_CUDA_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"


class FastCpuFit(pl.Callback):
    """Two process-wide settings that cost time on every CPU step (docs/performance.md), changed
    for a fit and put back when it ends, however it ends:

    1. ``trainer.deterministic=true`` also makes torch fill every new tensor with NaN, a
       debugging aid for ops that read uninitialised memory (none here): ~3% of a LeNet-5 step.
       Same seed, same numbers still holds (tests/test_robustness.py checks it).
    2. Lightning sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` at import (so that forked workers can
       still use CUDA); then ``torch.cuda.is_available()`` asks NVML afresh on every call, and
       Adam calls it on every step: +0.7 ms per step without a usable GPU. A CPU fit forks no
       CUDA workers, so it is unset for one.
    """

    def __init__(self):
        self.saved: tuple[bool, str | None] | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        fill = torch.utils.deterministic.fill_uninitialized_memory
        self.saved = (fill, os.environ.get(NVML_CUDA_CHECK))
        torch.utils.deterministic.fill_uninitialized_memory = False
        if pl_module.device.type == "cpu":
            os.environ.pop(NVML_CUDA_CHECK, None)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.restore()

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self.restore()

    def restore(self) -> None:
        if self.saved is None:
            return
        torch.utils.deterministic.fill_uninitialized_memory, nvml = self.saved
        if nvml is not None:
            os.environ[NVML_CUDA_CHECK] = nvml
        self.saved = None
