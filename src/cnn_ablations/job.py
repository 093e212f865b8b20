"""One job's record and outcome: the task wrapper around every training job.

:func:`recorded` wraps a job as lightning-hydra-template's ``task_wrapper`` does: it writes the
job's ``results.json`` (``running``, then ``ok`` | ``failed`` | ``interrupted``), finishes the W&B
run with the job's exit code (W&B marks a failed job's run failed), and maps each kind of failure
to one stderr line and an exit code (a single run), or to a recorded failure after which the
sweep goes on (a multirun). ``HYDRA_FULL_ERROR=1`` re-raises for a traceback.
"""

import logging
import os
import random
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from cnn_ablations.errors import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    ConfigError,
    JobFailed,
    disk_full,
    override_key,
)
from cnn_ablations.progress import sweep_progress
from cnn_ablations.results import read_results, write_results
from cnn_ablations.sweep import SEED, swept_overrides, task_overrides
from cnn_ablations.tracking import finish_wandb

log = logging.getLogger(__name__)
TRACEBACK_ENV = "CNN_ABLATIONS_TRACEBACK"  # set by train.main when the user set HYDRA_FULL_ERROR
LIBRARY_LOGGERS = ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning.fabric")


def job_identity(cfg: DictConfig) -> dict:
    """Who this job is: its overrides, condition, variant and the W&B labels derived from them.

    ``condition`` is the job's swept overrides without the seed (what the report compares);
    ``variant`` is the option of the ``variant`` config group, if one was chosen.
    """
    hydra_cfg = HydraConfig.get()
    overrides = task_overrides(hydra_cfg)
    swept = swept_overrides(hydra_cfg)
    condition = ",".join(o for o in swept if override_key(o) != SEED)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    # the config-group options the job composed (variant=..., model=...): a sweep over a group
    # varies these, not a value of the config, so W&B gets them to group runs by
    choices = {k: v for k, v in hydra_cfg.runtime.choices.items() if not k.startswith("hydra")}
    variant = choices.get("variant")
    job_dir = Path(hydra_cfg.runtime.output_dir).name
    return {
        "overrides": overrides,
        "condition": condition,
        "variant": variant,
        "choices": choices,
        "multirun": multirun,
        "name": ",".join(swept) or cfg.name,
        "group": f"{cfg.name}-{Path(hydra_cfg.sweep.dir).name}" if multirun else cfg.name,
        "job_type": variant or condition or "train",
        "tags": overrides,
        # how far its sweep is: "job 4/27 · variant=tanh,seed=0 · 1 failed · ETA 2m10s"
        "progress": sweep_progress(hydra_cfg, job_dir) if multirun else "",
    }


def draw_seed() -> int:
    """A fresh seed for ``seed=null``; a DDP rank > 0 takes rank 0's (Lightning passes it on)."""
    inherited = os.environ.get("PL_GLOBAL_SEED")
    if inherited and os.environ.get("LOCAL_RANK", "0") != "0":
        return int(inherited)
    return random.SystemRandom().randrange(2**31)


@dataclass
class Job:
    """This job's dir, identity and the fields of its ``results.json``."""

    cfg: DictConfig
    output_dir: Path = field(init=False)
    identity: dict = field(init=False)
    record: dict = field(init=False)
    metrics: dict | None = None
    written: bool = False  # results.json exists for this attempt

    def __post_init__(self) -> None:
        self.output_dir = Path(HydraConfig.get().runtime.output_dir)
        self.identity = job_identity(self.cfg)
        fields = ("overrides", "condition", "variant", "choices", "group")
        self.record = {key: self.identity[key] for key in fields}
        self.record |= {"seed": self.cfg.seed, "output_dir": str(self.output_dir)}
        self.record["started_at"] = time.time()

    @property
    def multirun(self) -> bool:
        return self.identity["multirun"]

    def finished_before(self) -> dict | None:
        """With ``resume``: the metrics of an earlier ``ok`` attempt (skip this job), else None.
        Refuses to resume a run that was started with other overrides."""
        if not self.cfg.resume:
            return None
        previous = read_results(self.output_dir)
        if previous and previous.get("overrides") != self.identity["overrides"]:
            raise ConfigError(
                f"resume: {self.output_dir} was run with overrides {previous.get('overrides')}, "
                f"not {self.identity['overrides']}; repeat its command with resume=true, or pass "
                "resume=<dir> of the run you mean"
            )
        if previous and previous.get("status") == "ok":
            log.info("resume: %s already finished; skipping it", self.output_dir)
            return previous.get("metrics") or {}
        return None

    def settle_seed(self) -> None:
        """Draw a seed for ``seed=null`` and put it in the config, so the data order and
        everything else use it; ``results.json`` records it."""
        if self.cfg.seed is None:
            self.cfg.seed = draw_seed()
            log.info("seed=null: drew seed %d (rerun with seed=%d)", self.cfg.seed, self.cfg.seed)
        self.record["seed"] = self.cfg.seed
        self.record["config"] = OmegaConf.to_container(self.cfg, resolve=True)

    def write(self, status: str, error: str | None = None, **extra) -> None:
        ended = {} if status == "running" else {"finished_at": time.time()}
        write_results(
            self.output_dir, {**self.record, "status": status, "error": error, **extra, **ended}
        )
        self.written = True

    def fail(self, status: str, error: str, record: bool) -> None:
        """Record a failure; a full disk may refuse even that (the last record then stands)."""
        if not record:
            return
        try:
            self.write(status, error)
        except OSError as err:
            log.error("could not record the failure in results.json: %s", err)


def _one_line(err: BaseException) -> str:
    lines = [line for line in str(err).splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[-1] if lines else ''}"  # spawned ranks: the last line


def route_library_logs() -> None:
    """Send Python warnings and Lightning's log lines through Hydra's handlers (console and
    train.log). Lightning gives its logger a stderr handler of its own when imported before
    Hydra configures logging, which would keep its lines out of train.log."""
    logging.captureWarnings(True)
    for name in LIBRARY_LOGGERS:
        library_log = logging.getLogger(name)
        library_log.handlers.clear()
        library_log.propagate = True


@contextmanager
def recorded(cfg: DictConfig) -> Iterator[Job]:
    """Run the block as one job (see the module docstring); the block sets ``job.metrics``."""
    route_library_logs()
    job = Job(cfg)
    if job.identity["progress"]:
        log.info("%s", job.identity["progress"])  # in the console and train.log alike
    single = not job.multirun
    traceback = single and os.environ.get(TRACEBACK_ENV) == "1"  # a sweep goes on regardless
    exit_code = 0  # the job's, also in a multirun: W&B marks a run with a non-zero one failed
    try:
        yield job
    except ConfigError as err:
        exit_code = EXIT_CONFIG
        log.error("%s", err)
        job.fail("failed", str(err), record=job.multirun or job.written)
        if traceback:
            raise
        if single:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(EXIT_CONFIG)
    except (KeyboardInterrupt, SystemExit) as err:
        # Ctrl-C (Lightning turns it into SystemExit after a graceful shutdown): the CSV and
        # checkpoints/last.ckpt of the last finished epoch are on disk. A multirun stops too.
        exit_code = EXIT_INTERRUPTED
        job.fail("interrupted", f"interrupted ({type(err).__name__})", record=True)
        if job.multirun:
            hint = f"rerun the sweep command with resume={HydraConfig.get().sweep.dir}"
        else:
            command = " ".join(["python -m cnn_ablations.train", *job.identity["overrides"]])
            hint = f"continue with: {command} resume={job.output_dir}"
        print(f"interrupted; {hint}", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as err:
        exit_code = EXIT_FAILED
        full_disk = disk_full(err, job.output_dir)
        if isinstance(err, JobFailed):
            message, line = str(err).split(";")[0], f"job failed: {err}"
        elif full_disk:
            message = line = full_disk
        else:
            message = _one_line(err)
            line = f"job failed: {message} (traceback in {job.output_dir / 'train.log'})"
            log.exception("job failed: %s", message)
        job.fail("failed", message, record=True)
        log.error("%s", line)
        if traceback:
            raise
        if single:
            print(f"error: {line}", file=sys.stderr)
            sys.exit(EXIT_FAILED)
    else:
        if job.metrics is not None:
            job.write("ok", metrics=job.metrics)
    finally:
        finish_wandb(exit_code)
