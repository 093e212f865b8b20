"""A job's record, ``results.json``: :class:`RunRecord` is its schema, load and save.

Written atomically (a temp file renamed over the old one) when training starts and when the job
ends, so a crash or a full disk never leaves a half file. Sweeps, the report, the dashboard and
resume read it, by attribute. ``docs/outputs.md`` describes each field (a test checks that the
table lists exactly these). A record without ``version`` is of version 1.
"""

import json
import os
import platform
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cnn_ablations.errors import ConfigError

RESULTS_FILE = "results.json"
RECORD_VERSION = 1
PACKAGES = (
    "torch",
    "torchvision",
    "pytorch-lightning",
    "hydra-core",
    "torchmetrics",
    "wandb",
    "cnn-ablations",
)
Status = Literal["running", "ok", "failed", "interrupted"]


class UnreadableRecord(ConfigError):
    """A ``results.json`` that exists but cannot be read as a record."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)


class Metrics(_Model):
    """The job's final numbers; a logged metric is named as it was logged (``test/acc``)."""

    model_config = ConfigDict(extra="allow")  # any other scalar the module logs

    params: int | None = None
    train_loss: float | None = Field(None, alias="train/loss")
    train_acc: float | None = Field(None, alias="train/acc")
    val_loss: float | None = Field(None, alias="val/loss")
    val_acc: float | None = Field(None, alias="val/acc")
    val_acc_best: float | None = Field(None, alias="val/acc_best")
    epochs: int | None = None  # trained, in all attempts
    best_epoch: int | None = None  # 1-based epoch of the best val/acc
    sec_per_epoch: float | None = None  # of the last attempt's fit (None if it ran no epoch)
    stopped_by: Literal["patience", "cap", "limit"] | None = None
    best_checkpoint: str | None = None
    test_loss: float | None = Field(None, alias="test/loss")
    test_acc: float | None = Field(None, alias="test/acc")
    tested_checkpoint: str | None = None

    def named(self) -> dict[str, float | int | str | None]:
        """Every metric under its logged name (``test/acc``), for tables."""
        return self.model_dump(by_alias=True)


class WandbRun(_Model):
    """What joins a job to its W&B run."""

    mode: str
    id: str
    project: str | None = None
    entity: str | None = None
    path: str | None = None  # entity/project/id, online
    run_dir: str  # relative to the job dir


class LrTrial(_Model):
    lr: float
    val_acc_best: float = Field(alias="val/acc_best")


class LrSelection(_Model):
    """The condition's learning rate, chosen on the validation split, and its trials."""

    lr: float
    trials: list[LrTrial]
    seed: int
    epochs: int
    failed_factors: list[float] = Field(default_factory=list)  # the rates whose trial failed


class Compute(_Model):
    """How the job's numbers were computed, for its speed and for comparing records."""

    precision: str  # trainer.precision as Lightning ran it, e.g. "32-true", "bf16-mixed"
    channels_last: bool
    threads: int  # torch threads of this job
    parallel_jobs: int  # jobs of its sweep run at once (the launcher's n_jobs; 1 alone)
    device: str  # "cpu" or the GPU's name
    cpu: str | None  # the CPU model (/proc/cpuinfo)
    native_bf16: bool  # the CPU computes bf16 natively (AMX or AVX-512 bf16)


class GitState(_Model):
    commit: str | None
    dirty: bool | None


class RunRecord(_Model):
    """One job's ``results.json``."""

    version: int = RECORD_VERSION
    status: Status = "running"
    error: str | None = None
    # who the job is (see job.Identity)
    overrides: list[str] = []
    condition: str = ""
    variant: str | None = None
    choices: dict[str, str | None] = {}
    group: str | None = None
    seed: int | None = None
    output_dir: str | None = None
    started_at: float | None = None
    lr_selection: LrSelection | None = None
    compute: Compute | None = None
    config: dict | None = None  # the resolved config
    wandb: WandbRun | None = None
    metrics_csv: str | None = None  # relative to the job dir
    metrics: Metrics | None = None
    finished_at: float | None = None
    # provenance of the code that wrote it, set by save()
    versions: dict[str, str | None] = {}
    git: GitState | None = None

    @classmethod
    def load(cls, job_dir: str | Path) -> "RunRecord | None":
        """The job's record; None if it has none (never started). A file that is not a JSON
        record (truncated, emptied, edited) raises :class:`UnreadableRecord`."""
        path = Path(job_dir) / RESULTS_FILE
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise UnreadableRecord(f"{path} cannot be read ({err.strerror})") from None
        try:
            data = json.loads(text)
        except ValueError as err:
            raise UnreadableRecord(
                f"{path} is not readable JSON ({err}; truncated or edited?); rerun the job "
                "with resume=true to record it again"
            ) from None
        if not isinstance(data, dict):
            raise UnreadableRecord(f"{path} holds no record (a JSON {type(data).__name__})")
        version = data.get("version", 1)
        if not isinstance(version, int) or version > RECORD_VERSION:
            raise ConfigError(
                f"{path} is a record of version {version}, newer than this code's "
                f"({RECORD_VERSION}); update cnn-ablations to read it"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            problem = err.errors()[0]
            where = ".".join(str(part) for part in problem["loc"])
            raise UnreadableRecord(
                f"{path} does not fit the record schema: {where}: {problem['msg']}"
            ) from None

    def save(self, job_dir: str | Path) -> Path:
        """Write the record, with this process's provenance, to ``job_dir`` atomically."""
        self.versions, self.git = provenance()
        data = {"version": self.version, **self.model_dump(by_alias=True, exclude_unset=True)}
        path = Path(job_dir) / RESULTS_FILE
        tmp = path.with_suffix(".json.tmp")
        try:
            tmp.write_text(json.dumps(data, indent=2) + "\n")
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)  # the previous results.json stays as it was
            raise
        return path

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, once the job has ended."""
        if self.finished_at is None or self.started_at is None:
            return None
        return self.finished_at - self.started_at


@cache  # once per process: a sweep's jobs share it, and git runs once, not per write
def provenance() -> tuple[dict[str, str | None], GitState]:
    """Package versions and the git commit (with a dirty flag) of the code that runs."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions, _git_state()


def _git_state() -> GitState:
    src = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=src, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        return GitState(commit=git("rev-parse", "HEAD"), dirty=bool(git("status", "--porcelain")))
    except (OSError, subprocess.SubprocessError):
        return GitState(commit=None, dirty=None)
