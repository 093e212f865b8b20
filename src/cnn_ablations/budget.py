"""The question a study answers: what its jobs trained for (a budget), read from a config.

``budget=converged`` (conf/budget/) trains until val/acc stops improving; ``budget=annealed``
trains a fixed number of epochs while the learning rate decays to 0 along a cosine, which ends
each job converged in fewer epochs (a pilot at twice the epochs checks it: docs/sweeps.md); both
answer what a choice is worth once trained. ``budget=fixed`` trains a fixed number of epochs at
the rate the scheduler gives, which measures learning speed. The report and a sweep's first log
line name it.
"""

from collections.abc import Mapping
from dataclasses import dataclass

CONVERGED, SPEED = "converged", "speed"  # the two questions a study's budget answers
MONITORS = ("val/acc", "val/loss")  # what early stopping may watch: held-out metrics per epoch


@dataclass(frozen=True)
class Budget:
    """What a study's jobs trained for: until val/acc stopped improving (``converged``: early
    stopping with ``patience``, ``epochs`` the cap) or a fixed number of ``epochs`` (``speed``)."""

    kind: str
    epochs: int | None
    patience: int | None = None
    min_delta: float | None = None
    monitor: str = "val/acc"
    annealed: bool = False  # converged by a learning rate annealed to 0 over ``epochs``

    @property
    def sentence(self) -> str:
        """The question the study answers, e.g. ``at convergence: early stopping on val/acc,
        patience 3, cap 30 epochs``."""
        if self.annealed:
            return (
                f"at convergence: {self.epochs} epochs, the learning rate annealed to 0 along a "
                "cosine"
            )
        if self.kind == CONVERGED:
            delta = f", min_delta {self.min_delta:g}" if self.min_delta else ""
            stopping = f"early stopping on {self.monitor}, patience {self.patience}{delta}"
            return f"at convergence: {stopping}, cap {self.epochs} epochs"
        return f"learning speed: fixed {self.epochs} epochs"


def budget_of(config: Mapping, choices: Mapping | None = None) -> Budget:
    """The budget a config (a job's recorded one, or a composed ``DictConfig``) trains for;
    ``choices``: its config groups' options (``budget=annealed`` is one)."""
    epochs = (config.get("trainer") or {}).get("max_epochs")
    stopping = (config.get("callbacks") or {}).get("early_stopping")
    if stopping:
        patience, min_delta = stopping.get("patience"), stopping.get("min_delta")
        return Budget(CONVERGED, epochs, patience, min_delta, stopping.get("monitor", "val/acc"))
    chosen = (choices or {}).get("budget") == "annealed"
    if chosen and annealed_over(config.get("scheduler") or {}, epochs):
        return Budget(CONVERGED, epochs, annealed=True)
    return Budget(SPEED, epochs)


def annealed_over(scheduler: Mapping, epochs: int | None) -> bool:
    """The scheduler takes the learning rate to 0 along a cosine over exactly ``epochs``
    (``conf/scheduler/cosine.yaml`` with its default ``T_max: ${trainer.max_epochs}``)."""
    target = str(scheduler.get("_target_", ""))
    return (
        target.endswith(".CosineAnnealingLR")
        and epochs is not None
        and scheduler.get("T_max") == epochs
        and not scheduler.get("eta_min")
    )
