"""The core's one entry: a config to its data module, ``Classifier`` and trainer, one named step
each (:func:`build`); nothing runs yet.

What a config group describes (data module, network, optimizer, scheduler, loggers, callbacks,
trainer) is made by :func:`instantiate`, where a library's rejection of a setting (a
constructor's ``ValueError``, Lightning's ``MisconfigurationException``, an unknown keyword)
becomes one ``ConfigError`` line naming the key. The W&B logger is the harness's: it starts once
the trainer exists (``runner.prepare``, ``tracking``).
"""

from dataclasses import dataclass

import hydra
import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig
from pytorch_lightning.callbacks import ModelCheckpoint, ModelSummary, ProgressBar
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from cnn_ablations.errors import ConfigError, one_line, rejected_settings
from cnn_ablations.fast_cpu import FastCpuFit
from cnn_ablations.module import Classifier

# A callback of this type is left out when the trainer flag turns its feature off (Lightning
# refuses e.g. enable_progress_bar=false with a progress bar among the callbacks).
SWITCHED_OFF_BY = {
    "enable_progress_bar": ProgressBar,
    "enable_model_summary": ModelSummary,
    "enable_checkpointing": ModelCheckpoint,
}
LIBRARY_ERRORS = (ValueError, TypeError, MisconfigurationException)


@dataclass
class Parts:
    """Everything one job trains and tests with."""

    datamodule: pl.LightningDataModule
    model: Classifier
    trainer: pl.Trainer


def instantiate(node: DictConfig, group: str, overrides: list[str], **kwargs):
    """``hydra.utils.instantiate`` with a library's rejection of a setting as one line."""
    target = str(node.get("_target_", group)).split(".")[-1]
    try:
        return hydra.utils.instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__  # what the target raised; Hydra wraps it
        if cause is None or isinstance(cause, ImportError):  # a _target_ that does not exist
            raise ConfigError(f"{group}._target_: {one_line(err, typed=False)}") from None
        with rejected_settings(group, target, overrides, kinds=LIBRARY_ERRORS):
            raise cause from None


def build(
    cfg: DictConfig, overrides: list[str] = (), callbacks: list[pl.Callback] = (), **changes
) -> Parts:
    """Seed, then make data, model, loggers, callbacks and trainer (nothing runs yet).
    ``callbacks`` join the config's (and :class:`FastCpuFit`); ``changes`` override trainer
    settings (``enable_progress_bar=False``); ``overrides`` name the keys a rejection blames."""
    overrides = list(overrides)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    if cfg.get("torch_threads"):
        torch.set_num_threads(cfg.torch_threads)
    datamodule = build_data(cfg, overrides)
    model = build_model(cfg, datamodule.num_classes, overrides)
    loggers = build_loggers(cfg.logger, overrides)
    flags = {flag: changes.get(flag, cfg.trainer.get(flag)) for flag in SWITCHED_OFF_BY}
    configured = build_callbacks(cfg.callbacks, flags, overrides)
    trainer = instantiate(
        cfg.trainer,
        "trainer",
        overrides,
        logger=loggers,
        callbacks=[*configured, FastCpuFit(), *callbacks],
        **changes,
    )
    return Parts(datamodule, model, trainer)


def build_data(cfg: DictConfig, overrides: list[str]) -> pl.LightningDataModule:
    """The data module of ``cfg.data``, set up (its splits loaded)."""
    datamodule = instantiate(cfg.data, "data", overrides)
    datamodule.setup()
    return datamodule


def build_model(cfg: DictConfig, num_classes: int, overrides: list[str]) -> Classifier:
    """The ``Classifier`` of ``cfg.model``'s network, trained by ``cfg.optimizer`` (and
    ``cfg.scheduler``). torch checks lr, betas, ... only when an optimizer is made: one is made
    here on a dummy parameter, so a bad value fails now, not mid-fit."""
    net = instantiate(cfg.model, "model", overrides)
    optimizer = instantiate(cfg.optimizer, "optimizer", overrides)
    scheduler = instantiate(cfg.scheduler, "scheduler", overrides) if cfg.get("scheduler") else None
    with rejected_settings("optimizer", cfg.optimizer._target_, overrides):
        probe = optimizer(params=[torch.nn.Parameter(torch.zeros(1))])
    if scheduler is not None:
        with rejected_settings("scheduler", cfg.scheduler._target_, overrides):
            scheduler(optimizer=probe)
    return Classifier(
        net=net,
        optimizer=optimizer,
        scheduler=scheduler,
        num_classes=num_classes,
        compile_net=cfg.compile,
        channels_last=cfg.channels_last,
    )


def build_loggers(logger_cfg: DictConfig, overrides: list[str]) -> list:
    """The loggers of ``cfg.logger`` other than W&B, made but not started: nothing is written
    until the trainer logs (W&B is the harness's: ``tracking.attach_wandb``)."""
    return [
        instantiate(node, f"logger.{key}", overrides)
        for key, node in logger_cfg.items()
        if key != "wandb"
    ]


def build_callbacks(
    callbacks_cfg: DictConfig, flags: dict, overrides: list[str]
) -> list[pl.Callback]:
    """The configured callbacks, less those whose feature a trainer flag (``flags``) turns off."""
    callbacks = [
        instantiate(node, f"callbacks.{k}", overrides) for k, node in callbacks_cfg.items()
    ]
    off = tuple(kind for flag, kind in SWITCHED_OFF_BY.items() if flags.get(flag) is False)
    return [c for c in callbacks if not isinstance(c, off)]
