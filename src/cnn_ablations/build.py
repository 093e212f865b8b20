"""Build a job's parts from its config, one named step each: data, model, loggers, callbacks,
trainer (:func:`build`).

What a config group describes (data module, network, optimizer, scheduler, loggers, callbacks,
trainer) is made by :func:`instantiate`, where a library's rejection of a setting (a
constructor's ``ValueError``, Lightning's ``MisconfigurationException``, an unknown keyword)
becomes one ``ConfigError`` line naming the key. The ``Classifier`` wrapping the network is
made here from those parts; the W&B logger starts once the trainer exists (``tracking``).
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint, ModelSummary, ProgressBar
from pytorch_lightning.loggers import csv_logs
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from cnn_ablations.errors import ConfigError, one_line, rejected_settings
from cnn_ablations.job import Identity
from cnn_ablations.module import Classifier
from cnn_ablations.progress import JobProgressBar
from cnn_ablations.record import WandbRun
from cnn_ablations.tracking import CSVLogger, attach_wandb
from cnn_ablations.validate import check_checkpoint

log = logging.getLogger(__name__)
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
    ckpt_path: str | None  # what fit resumes from
    wandb: WandbRun | None  # the W&B run, for results.json
    metrics_csv: str | None  # the CSV logger's file, relative to the job dir


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


def build(cfg: DictConfig, identity: Identity, output_dir: Path) -> Parts:
    """Seed, then make data, model, loggers, callbacks and trainer (nothing runs yet)."""
    overrides = identity.overrides
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    if cfg.get("torch_threads"):
        torch.set_num_threads(cfg.torch_threads)
    datamodule = build_data(cfg, overrides)
    model = build_model(cfg, datamodule.num_classes, overrides)
    ckpt_path = cfg.ckpt_path
    if cfg.resume and ckpt_path is None and cfg.train:
        ckpt_path = last_checkpoint(cfg, output_dir)
    resumed_step = check_checkpoint(ckpt_path, model)
    # nothing is written before the trainer exists: Lightning may still refuse a setting
    loggers = build_loggers(cfg.logger, overrides)
    callbacks = build_callbacks(
        cfg.callbacks, cfg.trainer, overrides, identity.progress, identity.shares_console
    )
    trainer = build_trainer(cfg, identity, loggers, callbacks)
    wandb_run = attach_wandb(trainer, cfg.logger.get("wandb"), identity)
    hyperparams = {
        **OmegaConf.to_container(cfg, resolve=True),
        "choices": identity.choices,
        **datamodule.summary,
    }
    for logger in trainer.loggers:
        if cfg.resume and isinstance(logger, CSVLogger):  # the interrupted epoch is logged again
            logger.drop_rows_after(resumed_step if resumed_step is not None else -1)
        logger.log_hyperparams(hyperparams)
    metrics_csv = csv_file(loggers, output_dir)
    return Parts(datamodule, model, trainer, ckpt_path, wandb_run, metrics_csv)


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
    until the trainer logs (W&B starts with the trainer: ``tracking.attach_wandb``)."""
    return [
        instantiate(node, f"logger.{key}", overrides)
        for key, node in logger_cfg.items()
        if key != "wandb"
    ]


def build_callbacks(
    callbacks_cfg: DictConfig,
    trainer_cfg: DictConfig,
    overrides: list[str],
    progress: str = "",
    shared_console: bool = False,
) -> list[pl.Callback]:
    """The configured callbacks, less those whose feature a trainer flag turns off, and the
    progress bar and model summary on a ``shared_console`` (parallel jobs, or a sweep's log);
    a job progress bar is labelled with the job's ``progress`` in its sweep."""
    callbacks = [
        instantiate(node, f"callbacks.{k}", overrides) for k, node in callbacks_cfg.items()
    ]
    off = tuple(kind for flag, kind in SWITCHED_OFF_BY.items() if trainer_cfg.get(flag) is False)
    if shared_console:
        off += (ProgressBar, ModelSummary)
    kept = [c for c in callbacks if not isinstance(c, off)]
    for callback in kept:
        if isinstance(callback, JobProgressBar):
            callback.job_label = progress
    return kept


def build_trainer(cfg: DictConfig, identity: Identity, loggers: list, callbacks: list):
    """The ``pl.Trainer`` of ``cfg.trainer``; in a multirun, ``ddp`` becomes ``ddp_spawn``,
    and on a shared console (``Identity.shares_console``) it draws no bar or summary."""
    changed = {}
    if identity.multirun and cfg.trainer.get("strategy") == "ddp":
        # plain ddp re-runs the Hydra command per rank, which would start a second sweep
        log.warning("multirun: using strategy=ddp_spawn instead of ddp (one run per job)")
        changed["strategy"] = "ddp_spawn"
    if identity.shares_console:
        changed |= {"enable_progress_bar": False, "enable_model_summary": False}
    return instantiate(
        cfg.trainer, "trainer", identity.overrides, logger=loggers, callbacks=callbacks, **changed
    )


def csv_file(loggers: list, output_dir: Path) -> str | None:
    """The CSV logger's metrics file, relative to the job dir (None without one)."""
    csv_logger = next((lg for lg in loggers if isinstance(lg, CSVLogger)), None)
    if csv_logger is None:
        return None
    path = Path(csv_logger.log_dir) / csv_logs.ExperimentWriter.NAME_METRICS_FILE
    return str(path.relative_to(output_dir))


def last_checkpoint(cfg: DictConfig, output_dir: Path) -> str | None:
    """``checkpoints/last.ckpt`` of the run being resumed, if it has one."""
    directory = OmegaConf.select(cfg, "callbacks.model_checkpoint.dirpath")
    last = Path(directory or output_dir / "checkpoints") / "last.ckpt"
    if last.is_file():
        log.info("resume: continuing from %s", last)
        return str(last)
    log.warning("resume: no checkpoint in %s; training from the start", last.parent)
    return None
