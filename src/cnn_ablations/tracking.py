"""Experiment tracking: CSV always, W&B (online, or offline to sync later) when configured."""

import csv
import logging
import netrc
import os
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning import loggers

log = logging.getLogger(__name__)


class CSVLogger(loggers.CSVLogger):
    """Lightning's CSVLogger that appends to an existing ``metrics.csv``.

    Lightning's writer forgets the header of a file it did not write in this process (a resumed
    run, or ``trainer.test`` after a ``ddp_spawn`` fit) and then crashes rewriting it. This reads
    the header back before the first write.
    """

    @property
    def experiment(self):
        writer = super().experiment
        if not writer.metrics_keys and os.path.isfile(writer.metrics_file_path):
            with open(writer.metrics_file_path, newline="") as file:
                writer.metrics_keys = next(csv.reader(file), [])
        return writer


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
        wandb_logger = _start_wandb(logger_cfg, mode, run_name, group, job_type, tags)
        if wandb_logger is None and mode == "online":
            log.warning("W&B online failed; retrying offline (upload later with `make sync`)")
            wandb_logger = _start_wandb(logger_cfg, "offline", run_name, group, job_type, tags)
        if wandb_logger is not None:
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
    try:
        Path(logger_cfg.save_dir).mkdir(parents=True, exist_ok=True)
        logger = hydra.utils.instantiate(
            logger_cfg, mode=mode, name=run_name, group=group, job_type=job_type, tags=tags
        )
        logger.experiment  # noqa: B018 - starts the W&B run now, so failures surface here
        return logger
    except Exception as err:  # wandb raises many types (network, auth, disk)
        log.warning(
            "W&B could not start in %s mode (%s: %s); continuing with CSV only",
            mode,
            type(err).__name__,
            str(err).splitlines()[0] if str(err) else "",
        )
        finish_wandb()
        return None


def finish_wandb() -> None:
    """End the current W&B run, if any: Hydra multirun reuses the process (one run per job)."""
    try:
        import wandb

        if wandb.run is not None:
            wandb.finish()
    except Exception as err:  # never lose a job's results to a tracking error at exit
        log.warning("wandb.finish() failed: %s", err)
