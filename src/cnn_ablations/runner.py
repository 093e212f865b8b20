"""One job's run around the core: :func:`prepare` builds it with the core's ``build`` and adds
what the harness keeps (the resumed checkpoint, the W&B run, the progress label, the fit's
record callbacks); :func:`fit_and_test` runs it into the metrics results.json records."""

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import csv_logs
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from cnn_ablations import resolvers
from cnn_ablations.build import Parts, build
from cnn_ablations.errors import rejected_settings
from cnn_ablations.fit_record import harness_callbacks
from cnn_ablations.job import Identity
from cnn_ablations.progress import JobProgressBar, parallel_jobs
from cnn_ablations.record import Compute, WandbRun
from cnn_ablations.tracking import CSVLogger, attach_wandb
from cnn_ablations.validate import check_checkpoint

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """A job's core parts and what the harness added to them."""

    parts: Parts
    ckpt_path: str | None  # what fit resumes from
    wandb: WandbRun | None  # the W&B run, for results.json
    metrics_csv: str | None  # the CSV logger's file, relative to the job dir


def trainer_changes(cfg: DictConfig, identity: Identity) -> dict:
    """Trainer settings a job's place changes: in a multirun ``ddp`` becomes ``ddp_spawn``, and
    on a shared console (``Identity.shares_console``) it draws no bar or summary."""
    changes = {}
    if identity.multirun and cfg.trainer.get("strategy") == "ddp":
        # plain ddp re-runs the Hydra command per rank, which would start a second sweep
        log.warning("multirun: using strategy=ddp_spawn instead of ddp (one run per job)")
        changes["strategy"] = "ddp_spawn"
    if identity.shares_console:
        changes |= {"enable_progress_bar": False, "enable_model_summary": False}
    return changes


def prepare(cfg: DictConfig, identity: Identity, output_dir: Path) -> Prepared:
    """The core's parts of ``cfg``, their checkpoint checked (resume), the W&B run started, the
    hyperparameters logged; nothing is written before the trainer exists (Lightning may still
    refuse a setting)."""
    changes = trainer_changes(cfg, identity)
    parts = build(cfg, identity.overrides, harness_callbacks(), **changes)
    for callback in parts.trainer.callbacks:
        if isinstance(callback, JobProgressBar):
            callback.job_label = identity.progress
    ckpt_path = cfg.ckpt_path
    if cfg.resume and ckpt_path is None and cfg.train:
        ckpt_path = last_checkpoint(cfg, output_dir)
    resumed_step = check_checkpoint(ckpt_path, parts.model)
    wandb_run = attach_wandb(parts.trainer, cfg.logger.get("wandb"), identity)
    hyperparams = {
        **OmegaConf.to_container(cfg, resolve=True),
        "choices": identity.choices,
        **parts.datamodule.summary,
    }
    for logger in parts.trainer.loggers:
        if cfg.resume and isinstance(logger, CSVLogger):  # the interrupted epoch is logged again
            logger.drop_rows_after(resumed_step if resumed_step is not None else -1)
        logger.log_hyperparams(hyperparams)
    return Prepared(parts, ckpt_path, wandb_run, csv_file(parts.trainer.loggers, output_dir))


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


def fit_and_test(
    cfg: DictConfig, prepared: Prepared, overrides: list[str], verbose: bool = True
) -> dict:
    """Fit (unless ``train=false``), test the best checkpoint, and return the final metrics
    (``verbose``: Lightning prints the test metrics' table)."""
    parts = prepared.parts
    trainer, model, data = parts.trainer, parts.model, parts.datamodule
    metrics: dict = {"params": model.num_params}
    # Lightning checks some trainer settings only when fitting starts; a ValueError there is a
    # setting's fault when it names one of the trainer overrides
    with rejected_settings(
        "trainer", "Trainer", overrides, (MisconfigurationException,), explained_only=(ValueError,)
    ):
        if cfg.train:
            trainer.fit(model, datamodule=data, ckpt_path=prepared.ckpt_path)
            metrics.update(fit_facts(trainer))
        checkpoint = trainer.checkpoint_callback
        best = checkpoint.best_model_path if checkpoint else ""
        metrics["best_checkpoint"] = best or None
        if cfg.test:
            # the best checkpoint by val/acc; without one (fast_dev_run, checkpointing off) the
            # weights the fit ended with; with train=false the checkpoint given
            tested = (best or None) if cfg.train else prepared.ckpt_path
            trainer.test(model, datamodule=data, ckpt_path=tested, verbose=verbose)
            metrics.update(_scalars(trainer.callback_metrics, prefix="test/"))
            metrics["tested_checkpoint"] = tested or "final weights"
    return metrics


def _scalars(metrics: dict, prefix: str = "") -> dict:
    return {k: float(v) for k, v in metrics.items() if k.startswith(prefix) and v.numel() == 1}


def fit_facts(trainer) -> dict:
    """The fit's final metrics and its facts, as ``fit_record.FitFacts`` left them in
    ``trainer.callback_metrics`` (which, unlike the trainer's own state, returns from ddp_spawn
    workers): epochs trained, the 1-based best epoch, this fit's seconds per epoch, and what
    stopped it: ``patience`` (early stopping), ``cap`` (``trainer.max_epochs``) or ``limit``
    (``max_time``, ``max_steps``, a debug flag)."""
    scalars = _scalars(trainer.callback_metrics)
    facts = {k: v for k, v in scalars.items() if k.startswith("fit/")}
    found = {k: v for k, v in scalars.items() if k not in facts}
    epochs = int(facts.get("fit/epochs", 0))
    seconds = facts.get("fit/sec_per_epoch", math.nan)  # NaN: no epoch ran in this fit
    stopped_by = "limit"
    if facts.get("fit/early_stopped"):
        stopped_by = "patience"
    elif trainer.max_epochs is not None and epochs >= trainer.max_epochs:
        stopped_by = "cap"
    return found | {
        "epochs": epochs,
        "best_epoch": int(facts.get("fit/best_epoch", 0)),
        "sec_per_epoch": None if math.isnan(seconds) else seconds,
        "stopped_by": stopped_by,
    }


def compute_facts(cfg: DictConfig, trainer, multirun: bool) -> Compute:
    """How this job computes: precision, memory format, threads, parallel jobs, the hardware."""
    device = trainer.strategy.root_device
    return Compute(
        precision=str(trainer.precision),
        channels_last=bool(cfg.get("channels_last")),
        threads=torch.get_num_threads(),
        parallel_jobs=parallel_jobs(HydraConfig.get()) if multirun else 1,
        device=torch.cuda.get_device_name(device) if device.type == "cuda" else device.type,
        cpu=resolvers.cpu_model(),
        native_bf16=resolvers.native_bf16(),
    )
