"""Experiment tracking: CSV always, W&B (online, or offline to sync later) when configured."""

import csv
import logging
import netrc
import os
from pathlib import Path

import hydra
from lightning_fabric.loggers.logger import rank_zero_experiment
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning import loggers
from pytorch_lightning.loggers import csv_logs

log = logging.getLogger(__name__)


class _AppendingWriter(csv_logs.ExperimentWriter):
    """Lightning's CSV writer, except that it continues an existing ``metrics.csv``.

    Lightning's writer deletes the file it finds at start, which would throw away the curves of
    a resumed run's finished epochs.
    """

    def _check_log_dir_exists(self) -> None:
        self.read_header()

    def read_header(self) -> None:
        """Take the columns of the file on disk, so new rows are appended under its header."""
        if not self.metrics_keys and os.path.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="") as file:
                self.metrics_keys = next(csv.reader(file), [])


class CSVLogger(loggers.CSVLogger):
    """Lightning's CSVLogger that appends to an existing ``metrics.csv``: a resumed run, or
    ``trainer.test`` after a ``ddp_spawn`` fit (whose rows the spawned process wrote)."""

    @property
    @rank_zero_experiment
    def experiment(self) -> _AppendingWriter:
        if self._experiment is None:
            os.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        self._experiment.read_header()
        return self._experiment

    def drop_rows_after(self, step: int) -> None:
        """Forget rows logged after ``step``: a run resumed from a checkpoint at ``step`` logs
        them again (the interrupted epoch), so the file keeps one row per logged value."""
        path = self.experiment.metrics_file_path
        if not os.path.isfile(path):
            return
        with open(path, newline="") as file:
            reader = csv.DictReader(file)
            fields, rows = reader.fieldnames or [], list(reader)
        kept = [row for row in rows if int(row.get("step") or -1) <= step]
        tmp = f"{path}.tmp"
        with open(tmp, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=fields)
            writer.writeheader()
            writer.writerows(kept)
        os.replace(tmp, path)


def wandb_mode() -> str:
    """``$WANDB_MODE`` if set; else ``online`` when an API key is available, else ``offline``."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    try:
        if netrc.netrc().authenticators("api.wandb.ai"):
            return "online"
    except (FileNotFoundError, netrc.NetrcParseError):
        pass
    return "offline"


def build_loggers(cfg: DictConfig, run_name: str, group: str, job_type: str, tags: list[str]):
    """Instantiate ``cfg.logger``; W&B gets mode, name, group, job type, tags and the config.

    If W&B cannot start (no network for online mode, bad key, unwritable dir) it warns once and
    falls back to offline, then to CSV only: a run's metrics are never lost to tracking.
    """
    built = []
    for key, logger_cfg in cfg.logger.items():
        if key != "wandb":
            built.append(hydra.utils.instantiate(logger_cfg))
            continue
        mode = wandb_mode()
        if mode == "disabled":
            continue
        wandb_logger, error = _start_wandb(logger_cfg, mode, run_name, group, job_type, tags)
        if wandb_logger is None and mode == "online":
            wandb_logger, offline_error = _start_wandb(
                logger_cfg, "offline", run_name, group, job_type, tags
            )
            if wandb_logger is not None:
                log.warning(
                    "W&B online failed (%s); logging offline instead: upload later with "
                    "`make sync`",
                    error,
                )
            error = f"online: {error}; offline: {offline_error}"
        if wandb_logger is None:
            log.warning("W&B could not start (%s); continuing with CSV only", error)
            continue
        if mode == "offline":
            log.info(
                "W&B is offline: the run is saved under %s/wandb; upload it later with "
                "`make sync` (after `wandb login`)",
                logger_cfg.save_dir,
            )
        built.append(wandb_logger)
    config = OmegaConf.to_container(cfg, resolve=True)
    for logger in built:
        logger.log_hyperparams(config)
    return built


def _start_wandb(logger_cfg, mode, run_name, group, job_type, tags):
    """A started ``WandbLogger`` and None, or None and why it failed (one line)."""
    try:
        Path(logger_cfg.save_dir).mkdir(parents=True, exist_ok=True)
        logger = hydra.utils.instantiate(
            logger_cfg, mode=mode, name=run_name, group=group, job_type=job_type, tags=tags
        )
        logger.experiment  # noqa: B018 - starts the W&B run now, so failures surface here
        return logger, None
    except Exception as err:  # wandb raises many types (network, auth, disk)
        finish_wandb()
        lines = str(err).splitlines()
        return None, f"{type(err).__name__}: {lines[0] if lines else ''}"


def finish_wandb() -> None:
    """End the current W&B run, if any: Hydra multirun reuses the process (one run per job)."""
    try:
        import wandb

        if wandb.run is not None:
            wandb.finish()
    except Exception as err:  # never lose a job's results to a tracking error at exit
        log.warning("wandb.finish() failed: %s", err)
