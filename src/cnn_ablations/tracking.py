"""Experiment tracking: CSV always, W&B (online, or offline to sync later) when configured."""

import contextlib
import csv
import logging
import netrc
import os
from pathlib import Path
from urllib.parse import urlparse

import hydra
from lightning_fabric.loggers.logger import rank_zero_experiment
from omegaconf import DictConfig
from pytorch_lightning import loggers
from pytorch_lightning.loggers import csv_logs

from cnn_ablations.errors import one_line
from cnn_ablations.record import WandbRun

log = logging.getLogger(__name__)
MAX_TAG_LENGTH = 64  # W&B's limit


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


def api_key_found() -> str | None:
    """Where a W&B API key was found (``WANDB_API_KEY`` or the netrc entry of the W&B host), or
    None. ``wandb login`` writes the netrc entry."""
    if os.environ.get("WANDB_API_KEY"):
        return "WANDB_API_KEY"
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        if netrc.netrc(path).authenticators(host):
            return str(path)
    except (OSError, netrc.NetrcParseError):
        pass
    return None


def wandb_mode(configured: str | None = None) -> str:
    """``logger.wandb.mode`` if set, else ``$WANDB_MODE``, else ``online`` when an API key is
    found and ``offline`` when not."""
    if configured:
        return configured
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    return "online" if api_key_found() else "offline"


def attach_wandb(trainer, node: DictConfig | None, identity) -> WandbRun | None:
    """Start the W&B run of ``logger.wandb`` and add it to ``trainer``'s loggers; return the
    run's identity for results.json (None without W&B).

    Name, group, job type and tags come from ``logger.wandb`` where set there, else from the
    job's ``identity`` (a ``job.Identity``). If W&B cannot start (no network for online mode,
    a bad key, an unwritable dir) it warns once and falls back to offline, then to CSV only: a
    run's metrics are never lost to tracking. Lightning's fast_dev_run logs nothing, so it gets
    no W&B run.
    """
    if node is None or trainer.fast_dev_run:
        return None
    mode = wandb_mode(node.get("mode"))
    if mode == "disabled":
        return None
    labels = {k: node.get(k) or getattr(identity, k) for k in ("name", "group", "job_type", "tags")}
    labels["tags"] = [str(tag)[:MAX_TAG_LENGTH] for tag in labels["tags"]]
    if identity.multirun:  # W&B's banner and summary per job would bury a sweep's console
        labels["settings"] = {"silent": True}
    wandb_logger, error = _start_wandb(node, mode, labels)
    if wandb_logger is None and mode == "online":
        mode = "offline"
        wandb_logger, offline_error = _start_wandb(node, mode, labels)
        if wandb_logger is not None:
            log.warning(
                "W&B online failed (%s); logging offline instead: upload later with `make sync`",
                error,
            )
        error = f"online: {error}; offline: {offline_error}"
    if wandb_logger is None:
        log.warning("W&B could not start (%s); continuing with CSV only", error)
        return None
    if mode == "offline":
        log.info(
            "W&B is offline: the run is saved under %s/wandb; upload it later with `make sync` "
            "(after `wandb login`)",
            node.save_dir,
        )
    trainer.loggers = [*trainer.loggers, wandb_logger]
    return _run_info(wandb_logger.experiment, mode, Path(node.save_dir))


def _run_info(run, mode: str, save_dir: Path) -> WandbRun:
    """What joins a job to its W&B run: mode, id, project, entity, path (online) or run dir."""
    run_dir = Path(run.dir).parent  # .../wandb/offline-run-<time>-<id> (files/ is run.dir)
    with contextlib.suppress(ValueError):
        run_dir = run_dir.relative_to(save_dir)
    return WandbRun(
        mode=mode,
        id=run.id,
        project=run.project,
        entity=run.entity or None,
        path=f"{run.entity}/{run.project}/{run.id}" if mode == "online" else None,
        run_dir=str(run_dir),
    )


def _start_wandb(node: DictConfig, mode: str, labels: dict):
    """A started ``WandbLogger`` and None, or None and why it failed (one line)."""
    try:
        Path(node.save_dir).mkdir(parents=True, exist_ok=True)
        logger = hydra.utils.instantiate(node, mode=mode, **labels)
        logger.experiment  # noqa: B018 - starts the W&B run now, so failures surface here
        return logger, None
    except Exception as err:  # wandb raises many types (network, auth, disk)
        finish_wandb()
        return None, one_line(err)


def finish_wandb(exit_code: int = 0) -> None:
    """End the current W&B run, if any: Hydra multirun reuses the process (one run per job).
    A non-zero ``exit_code`` (the job's) makes W&B mark the run failed, not finished."""
    import wandb

    try:
        if wandb.run is not None:
            wandb.finish(exit_code=exit_code)
    except Exception as err:  # never lose a job's results to a tracking error at exit
        log.warning("wandb.finish() failed: %s", err)
