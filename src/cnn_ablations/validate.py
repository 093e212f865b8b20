"""Checks before any training that belong to no single component: the seed, trainer and
optimizer numbers, the GPU, and the checkpoint to resume from.

Each component checks its own arguments when it is built (models their switches, the data
module its batch sizes and augmentation), with the ``check_*`` family of ``errors``.
"""

from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import nn

from cnn_ablations.budget import MONITORS
from cnn_ablations.errors import (
    ConfigError,
    check_bool,
    check_choice,
    check_int,
    check_number,
    one_line,
)

ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "auto")
MAX_SEED = 2**32 - 1  # numpy's bound
# conf/train.yaml's config groups: each composes to a mapping (or null where allowed)
CONFIG_GROUPS = ("data", "model", "optimizer", "scheduler", "trainer", "logger", "callbacks")
LIGHTNING_CKPT_VALUES = ("last", "best", "hpc", "registry")


def check_budget(cfg: DictConfig) -> None:
    """``budget=converged``: a patience and min_delta that make sense, and a cap (the trainer's
    max_epochs) that leaves early stopping room to act."""
    stopping = (cfg.get("callbacks") or {}).get("early_stopping")
    if stopping is None:
        return
    monitor, mode = stopping.get("monitor"), stopping.get("mode")
    check_choice("callbacks.early_stopping.monitor", monitor, MONITORS)
    wanted = "min" if monitor.endswith("loss") else "max"
    if mode != wanted:
        raise ConfigError(
            f"callbacks.early_stopping.mode={mode} does not fit monitor={monitor}: it would stop "
            f"on the wrong direction; set callbacks.early_stopping.mode={wanted}"
        )
    check_int("callbacks.early_stopping.patience", stopping.get("patience"))
    check_number("callbacks.early_stopping.min_delta", stopping.get("min_delta"), minimum=0)
    cap = cfg.trainer.max_epochs
    if cap <= stopping.patience:
        raise ConfigError(
            f"trainer.max_epochs={cap} is the cap of budget=converged, but early stopping waits "
            f"{stopping.patience} epochs without improvement: it can never act; raise "
            "trainer.max_epochs (e.g. trainer.max_epochs=30)"
        )


def validate_config(cfg: DictConfig) -> None:
    """Raise ``ConfigError`` for settings no component checks: groups, seed, epochs, lr, GPU."""
    for group in CONFIG_GROUPS:
        node = cfg.get(group)
        if node is not None and not isinstance(node, DictConfig):
            # a run's saved config (--config-name config) has no groups: `logger=csv` sets a string
            raise ConfigError(
                f"{group}={node} is not a {group} config: a run's saved config (--config-path "
                f"<run>/.hydra --config-name config) has no config groups to choose from; set "
                f"its keys ({group}.<key>=...) or run from conf/ with {group}={node}"
            )
    if cfg.seed is not None:
        check_int("seed", cfg.seed, minimum=0, maximum=MAX_SEED)
    check_int("trainer.max_epochs", cfg.trainer.get("max_epochs"))
    check_budget(cfg)
    for key in ("lr", "momentum", "weight_decay"):
        if key in cfg.optimizer:
            bound = {"above": 0} if key == "lr" else {"minimum": 0}
            check_number(f"optimizer.{key}", cfg.optimizer[key], **bound)
    selection = cfg.get("lr_selection")
    if selection is not None:
        check_bool("lr_selection.enabled", selection.enabled)
        if selection.enabled:
            if not selection.factors:
                raise ConfigError(
                    f"lr_selection.factors={list(selection.factors)} is empty: list the factors "
                    "of optimizer.lr to try, e.g. lr_selection.factors=[0.3,1.0,3.0]"
                )
            for factor in selection.factors:
                check_number("lr_selection.factors", factor, above=0)
            if selection.epochs is not None:
                check_int("lr_selection.epochs", selection.epochs)
            check_int("lr_selection.seed", selection.seed, minimum=0, maximum=MAX_SEED)
    accelerator = cfg.trainer.get("accelerator", "auto")
    check_choice("trainer.accelerator", accelerator, ACCELERATORS)
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator} needs a CUDA GPU, but torch finds none on this "
            "machine; use trainer=cpu (or trainer=ddp_cpu for multi-process DDP on the CPU)"
        )
    devices = cfg.trainer.get("devices", 1)
    if accelerator in ("gpu", "cuda") and isinstance(devices, int) and devices > 0:
        available = torch.cuda.device_count()
        if devices > available:
            raise ConfigError(
                f"trainer.devices={devices} but this machine has {available} GPU(s); "
                "use trainer.devices=-1 for all of them"
            )


def check_checkpoint(ckpt_path: str | None, model: nn.Module) -> int | None:
    """Raise ``ConfigError`` unless ``ckpt_path`` is a Lightning checkpoint of ``model``.

    ``model`` is the ``LightningModule`` about to train: its parameter names and shapes must
    match the checkpoint's (a LeNet-5 checkpoint does not resume an AlexNet-lite, nor a LeNet-5
    with another head). Returns the checkpoint's global step; None when there is no path or it
    is one of Lightning's special values (``last``, ``best``), which pass through.
    """
    if ckpt_path is None or ckpt_path in LIGHTNING_CKPT_VALUES:
        return None
    path = Path(ckpt_path)
    if not path.is_file():
        raise ConfigError(
            f"ckpt_path={ckpt_path} does not exist; give the path of a .ckpt file "
            "(a run's checkpoints/last.ckpt), or use resume=true to continue the latest run"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        state = checkpoint["state_dict"]
    except Exception as err:  # torch.load raises whatever the bytes provoke: all mean unreadable
        raise ConfigError(
            f"ckpt_path={ckpt_path} is not a readable Lightning checkpoint "
            f"({one_line(err)}); it may be truncated or another kind of file: "
            "use a checkpoint a run saved (checkpoints/last.ckpt or best-*.ckpt)"
        ) from None
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items()}
    if expected != found:
        missing = sorted(set(expected) - set(found))
        unexpected = sorted(set(found) - set(expected))
        resized = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
        if missing:
            detail = f"it lacks {missing[0]}"
        elif unexpected:
            detail = f"it has {unexpected[0]}, which this model lacks"
        else:
            key = resized[0]
            detail = f"{key} is {found[key]} there, {expected[key]} here"
        raise ConfigError(
            f"ckpt_path={ckpt_path} is a checkpoint of a different model ({detail}); "
            "use the same model settings as the run that saved it"
        )
    return int(checkpoint.get("global_step", 0))
