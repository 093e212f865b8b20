"""The task wrapper around every training job: its record, its W&B run, its outcome.

:func:`task_wrapper` wraps a job as lightning-hydra-template's ``task_wrapper`` does: it keeps
the job's :class:`RunRecord` (``running``, then ``ok`` | ``failed`` | ``interrupted``) and
finishes the W&B run with the job's exit code (W&B marks a failed job's run failed). A job that
does not end ok is recorded, then: in a multirun, the sweep goes on with its next job; in a
single run (or on Ctrl-C, which stops a multirun too), it raises :class:`RunEnded` from the
error with the one line for stderr, which the console entry prints.
"""

import functools
import logging
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationKeyError

from cnn_ablations.errors import EXIT_CONFIG, ConfigError, JobFailed, disk_full, one_line
from cnn_ablations.outcome import RunEnded, describe_hydra_error, exit_code
from cnn_ablations.overrides import SEED, differing, override_key, task_overrides
from cnn_ablations.progress import duration_text, parallel_jobs, sweep_progress
from cnn_ablations.record import Metrics, RunRecord, UnreadableRecord
from cnn_ablations.signals import (
    Stopped,
    interrupt_name,
    is_interrupt,
    job_running,
    received,
    stop_on_signals,
)
from cnn_ablations.sweepdir import swept_overrides
from cnn_ablations.tracking import finish_wandb

log = logging.getLogger(__name__)
LIBRARY_LOGGERS = ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning.fabric")
CONSOLE = {"console": True}  # the ``extra`` of a log line that a sweep's console shows


class SweepConsole(logging.Filter):
    """A sweep's console shows each job's start and end lines (logged with ``extra=CONSOLE``),
    this project's warnings and anyone's errors; the job's train.log keeps every line."""

    def filter(self, record: logging.LogRecord) -> bool:
        ours = record.name.startswith("cnn_ablations") and record.levelno >= logging.WARNING
        return getattr(record, "console", False) or ours or record.levelno >= logging.ERROR


def console_handlers() -> list[logging.Handler]:
    """The root logger's handlers that write to a stream other than a file (Hydra's console)."""
    return [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
    ]


@dataclass
class Identity:
    """Who a job is: its overrides, condition, variant and the W&B labels derived from them."""

    overrides: list[str]  # its command-line overrides, less those that pick how a sweep runs
    condition: str  # its swept overrides without the seed: what the report compares
    variant: str | None  # the option of the `variant` config group, if one was chosen
    choices: dict[str, str | None]  # the config-group options it composed (data=..., model=...)
    multirun: bool
    name: str  # W&B run name
    group: str  # W&B group
    job_type: str  # W&B job type
    tags: list[str]
    progress: str  # its place in its sweep: "job 4/27 · variant=tanh,seed=0 · ETA 2m10s"
    parallel_jobs: int  # jobs its sweep runs at once (1 outside a multirun)

    @property
    def shares_console(self) -> bool:
        """Its console is a sweep's, shared with other jobs or not a terminal: it gets one line
        at the job's start and one at its end, no progress bar or model summary."""
        return self.multirun and (self.parallel_jobs > 1 or not sys.stdout.isatty())


def job_identity(cfg: DictConfig) -> Identity:
    """The running job's :class:`Identity`, from its Hydra config."""
    hydra_cfg = HydraConfig.get()
    overrides = task_overrides(hydra_cfg)
    swept = swept_overrides(hydra_cfg)
    condition = ",".join(o for o in swept if override_key(o) != SEED)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    # a sweep over a config group varies these, not a value of the config: W&B groups by them
    choices = {k: v for k, v in hydra_cfg.runtime.choices.items() if not k.startswith("hydra")}
    variant = choices.get("variant")
    job_dir = Path(hydra_cfg.runtime.output_dir).name
    return Identity(
        overrides=overrides,
        condition=condition,
        variant=variant,
        choices=choices,
        multirun=multirun,
        name=",".join(swept) or cfg.name,
        group=f"{cfg.name}-{Path(hydra_cfg.sweep.dir).name}" if multirun else cfg.name,
        job_type=variant or condition or "train",
        tags=overrides,
        progress=sweep_progress(hydra_cfg, job_dir) if multirun else "",
        parallel_jobs=parallel_jobs(hydra_cfg) if multirun else 1,
    )


def draw_seed() -> int:
    """A fresh seed for ``seed=null``; a DDP rank > 0 takes rank 0's (Lightning passes it on)."""
    inherited = os.environ.get("PL_GLOBAL_SEED")
    if inherited and os.environ.get("LOCAL_RANK", "0") != "0":
        return int(inherited)
    return random.SystemRandom().randrange(2**31)


class Attempt:
    """One attempt at a job (a resumed job has several): its dir, identity and record."""

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg
        self.output_dir = Path(HydraConfig.get().runtime.output_dir)
        self.identity = job_identity(cfg)
        self.record = RunRecord(
            overrides=self.identity.overrides,
            condition=self.identity.condition,
            variant=self.identity.variant,
            choices=self.identity.choices,
            group=self.identity.group,
            # a seed that is no integer is validate_config's to report, not the record's
            seed=cfg.seed if type(cfg.seed) is int else None,
            output_dir=str(self.output_dir),
            started_at=time.time(),
        )
        self.written = False  # results.json exists for this attempt

    def finished_before(self) -> Metrics | None:
        """With ``resume``: the metrics of an earlier ``ok`` attempt (skip this job), else None.
        Refuses to resume a run whose overrides differ from this one's, naming them."""
        if not self.cfg.resume:
            return None
        try:
            previous = RunRecord.load(self.output_dir)
        except UnreadableRecord as err:
            log.warning("resume: %s; running the job again", err)
            return None
        if previous is None:
            return None
        changed = differing(self.identity.overrides, previous.overrides)
        if changed:
            raise ConfigError(
                f"resume: {self.output_dir} was run with overrides {previous.overrides}, "
                f"not {self.identity.overrides} ({', '.join(changed)} differ); "
                f"resume={self.output_dir} alone continues it with its own, or pass "
                "resume=<dir> of the run you mean"
            )
        if previous.status == "ok":
            log.info("resume: %s already finished; skipping it", self.output_dir)
            return previous.metrics or Metrics()
        return None

    def settle_seed(self) -> None:
        """Draw a seed for ``seed=null`` and put it in the config, so the data order and
        everything else use it; the record keeps it."""
        if self.cfg.seed is None:
            self.cfg.seed = draw_seed()
            log.info("seed=null: drew seed %d (rerun with seed=%d)", self.cfg.seed, self.cfg.seed)
        self.record.seed = self.cfg.seed
        self.record.config = OmegaConf.to_container(self.cfg, resolve=True)

    def write(self, status: str, error: str | None = None, metrics: Metrics | None = None):
        self.record.status, self.record.error = status, error
        if metrics is not None:
            self.record.metrics = metrics
        if status != "running":
            self.record.finished_at = time.time()
        self.record.save(self.output_dir)
        self.written = True

    def result_line(self) -> str:
        """``variant=tanh,seed=0: ok · test/acc 90.12% · 8 epochs · 1m15s``: a job's end."""
        metrics, name = self.record.metrics or Metrics(), self.output_dir.name
        parts = [f"{name}: ok"]
        if metrics.test_acc is not None:
            parts.append(f"test/acc {100 * metrics.test_acc:.2f}%")
        if metrics.epochs is not None:
            parts.append(f"{metrics.epochs} epochs")
        if self.record.duration is not None:
            parts.append(duration_text(self.record.duration))
        return " · ".join(parts)

    def fail(self, status: str, error: str) -> None:
        """Record a failure; a full disk may refuse even that (the last record then stands)."""
        try:
            self.write(status, error)
        except OSError as err:
            log.error("could not record the failure in results.json: %s", err)

    def ended(self, err: BaseException) -> str | None:
        """Record how ``err`` ended the job and return the line for stderr (None: re-raise
        ``err`` as it is, a ``SystemExit`` that is not Ctrl-C)."""
        if is_interrupt(err):
            # Lightning turns Ctrl-C (and SIGTERM, SIGHUP: signals.Stopped) into SystemExit
            # after a graceful shutdown: the CSV and checkpoints/last.ckpt of the last finished
            # epoch are on disk
            how = f"interrupted by {interrupt_name(err)}"
            self.fail("interrupted", how)
            if self.identity.multirun:
                sweep_dir = HydraConfig.get().sweep.dir
                return f"{how}; rerun the sweep command with resume={sweep_dir}"
            command = " ".join(["python -m cnn_ablations.train", *self.identity.overrides])
            return f"{how}; continue with: {command} resume={self.output_dir}"
        if not isinstance(err, Exception):
            self.fail("failed", one_line(err))
            return None
        if isinstance(err, ConfigError):
            log.error("%s", err)
            if self.identity.multirun or self.written:  # a single run's bad setting: no record
                self.fail("failed", str(err))
            return f"error: {err}"
        full_disk = disk_full(err, self.output_dir)
        if isinstance(err, JobFailed):
            message, line = err.what, f"job failed: {err}"
        elif full_disk:
            message = line = full_disk
        else:
            message = one_line(err)
            line = f"job failed: {message} (traceback in {self.output_dir / 'train.log'})"
            log.exception("job failed: %s", message)
        self.fail("failed", message)
        log.error("%s", line)
        return f"error: {line}"


def route_library_logs() -> None:
    """Send Python warnings and Lightning's log lines through Hydra's handlers (console and
    train.log). Lightning gives its logger a stderr handler of its own when imported before
    Hydra configures logging, which would keep its lines out of train.log."""
    logging.captureWarnings(True)
    for name in LIBRARY_LOGGERS:
        library_log = logging.getLogger(name)
        library_log.handlers.clear()
        library_log.propagate = True


def task_wrapper(task: Callable[[DictConfig, Attempt], Metrics]) -> Callable:
    """Run ``task(cfg, attempt)`` as one job (see the module docstring); returns the job's test
    accuracy, what a Hydra sweeper would optimise."""

    @functools.wraps(task)
    def job(cfg: DictConfig) -> float | None:
        stop_on_signals()  # in a launcher's worker process too
        route_library_logs()
        try:
            attempt = Attempt(cfg)
        except InterpolationKeyError as err:  # ${typo} in a value: one line, before any record
            raise RunEnded(EXIT_CONFIG, f"error: {describe_hydra_error(err)}") from err
        quiet = SweepConsole() if attempt.identity.shares_console else None
        for handler in console_handlers() if quiet else []:
            handler.addFilter(quiet)
        if attempt.identity.progress:
            log.info("%s", attempt.identity.progress, extra=CONSOLE)  # and in train.log
        code = 0  # the job's, also in a multirun: W&B marks a run with a non-zero one failed
        job_running(True)
        try:
            if received() is not None:  # a worker whose sweep was stopped before this job
                raise Stopped(received())
            previous = attempt.finished_before()
            if previous is not None:
                return previous.test_acc
            metrics = task(cfg, attempt)
            attempt.write("ok", metrics=metrics)
            if attempt.identity.multirun:
                log.info("%s", attempt.result_line(), extra=CONSOLE)
            return metrics.test_acc
        except BaseException as err:
            code = exit_code(err)
            line = attempt.ended(err)
            if line is None:
                raise
            if attempt.identity.multirun and not is_interrupt(err):
                return None  # recorded; the sweep goes on
            raise RunEnded(code, line) from err
        finally:
            finish_wandb(code)
            for handler in console_handlers() if quiet else []:
                handler.removeFilter(quiet)
            job_running(False)

    return job
