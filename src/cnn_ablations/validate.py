"""Checks that run before any training: a bad setting fails in seconds with one line.

Each component validates its own arguments when it is built (models their switches, the data
module its batch sizes and augmentation); this module holds the checks that belong to no single
component: trainer and optimizer numbers, the GPU, the checkpoint to resume from, and the output
directory (a Hydra callback, because Hydra creates that directory before the job starts).
"""

import os
import sys
import zipfile
from pathlib import Path

import torch
from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from torch import nn

from cnn_ablations.errors import ConfigError, check_choice

ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "auto")


def validate_config(cfg: DictConfig) -> None:
    """Raise ``ConfigError`` for settings no component checks: epochs, learning rate, GPU."""
    _check_number("trainer.max_epochs", cfg.trainer.get("max_epochs"), integer=True)
    for key in ("lr", "momentum", "weight_decay"):
        if key in cfg.optimizer:
            _check_number(f"optimizer.{key}", cfg.optimizer[key], allow_zero=key != "lr")
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
    if ckpt_path is None or ckpt_path in ("last", "best", "hpc", "registry"):
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
    except (OSError, RuntimeError, EOFError, KeyError, TypeError, zipfile.BadZipFile) as err:
        raise ConfigError(
            f"ckpt_path={ckpt_path} is not a readable Lightning checkpoint "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'no details'}); "
            "it may be truncated: use an earlier checkpoint of the run"
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


class OutputDirCheck(Callback):
    """Hydra callback: exit with one line before Hydra tries to create an unwritable run dir."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        _check_writable(config.hydra.run.dir)

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        _check_writable(config.hydra.sweep.dir)


def _check_writable(directory: str) -> None:
    path = Path(directory).absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        reason = "is not a directory" if not existing.is_dir() else "is not writable"
        # Hydra turns exceptions raised in callbacks into warnings; exiting is what stops it
        print(
            f"error: cannot create the output dir {path}: {existing} {reason}; "
            "set paths.output_root to a writable directory",
            file=sys.stderr,
        )
        sys.exit(2)


def _check_number(key: str, value, integer: bool = False, allow_zero: bool = False) -> None:
    kind = int if integer else (int, float)
    if (
        isinstance(value, bool)
        or not isinstance(value, kind)
        or value < 0
        or (value == 0 and not allow_zero)
    ):
        wanted = "an integer" if integer else "a number"
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{key}={value!r} is not valid; it must be {wanted} {bound}")
