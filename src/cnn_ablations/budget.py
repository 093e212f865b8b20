"""The question a study answers: what its jobs trained for (a budget), read from a config.

``budget=converged`` (conf/budget/) trains until val/acc stops improving; ``budget=fixed`` a fixed
number of epochs, which measures learning speed. The report and a sweep's first log line name it.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

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

    @property
    def sentence(self) -> str:
        """The question the study answers, e.g. ``at convergence: early stopping on val/acc,
        patience 3, cap 30 epochs``."""
        if self.kind == CONVERGED:
            delta = f", min_delta {self.min_delta:g}" if self.min_delta else ""
            stopping = f"early stopping on {self.monitor}, patience {self.patience}{delta}"
            return f"at convergence: {stopping}, cap {self.epochs} epochs"
        return f"learning speed: fixed {self.epochs} epochs"


def unsettled(settled) -> bool:
    """An effect's budget check found it still moving (``settled`` False, not None or NaN)."""
    return not pd.isna(settled) and not settled


def budget_of(config: Mapping) -> Budget:
    """The budget a config (a job's recorded one, or a composed ``DictConfig``) trains for."""
    epochs = (config.get("trainer") or {}).get("max_epochs")
    stopping = (config.get("callbacks") or {}).get("early_stopping")
    if stopping:
        patience, min_delta = stopping.get("patience"), stopping.get("min_delta")
        return Budget(CONVERGED, epochs, patience, min_delta, stopping.get("monitor", "val/acc"))
    return Budget(SPEED, epochs)
