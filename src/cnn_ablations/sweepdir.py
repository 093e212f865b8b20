"""A sweep on disk, read in one place: ``multirun.yaml`` and every job's record are read here.

A sweep dir holds ``multirun.yaml`` (written by Hydra before any job starts) and one subdir per
job, named after the overrides the sweep varies. :func:`load_sweep` reads it for the summary,
the progress line, the report and the dashboard: every job with its :class:`RunRecord`, and
the swept keys with their levels in the order the sweep lists them.
"""

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from cnn_ablations import CONF_DIR
from cnn_ablations.errors import ConfigError
from cnn_ablations.overrides import (
    SEED,
    factors_only,
    override_key,
    sweep_levels,
    task_overrides,
    value_of,
)
from cnn_ablations.record import RESULTS_FILE, Metrics, RunRecord, UnreadableRecord, WandbRun

MULTIRUN_FILE = "multirun.yaml"
PLAN_FILE = "seeds_plan.json"  # hydra/sweeper=adaptive_seeds's plan (cnn_ablations.report.planning)
SAVED_OVERRIDES = Path(".hydra") / "overrides.yaml"


def save_multirun(config: DictConfig, sweep_dir: Path) -> None:
    """Write the sweep's ``multirun.yaml``, as Hydra's basic sweeper does before its jobs (for a
    sweeper of this project's own)."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(config, sweep_dir / MULTIRUN_FILE)


def _unreadable(path: Path, err: Exception, written_by: str) -> ConfigError:
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return ConfigError(
        f"{path} cannot be read ({first}); it is written by {written_by}: restore it, or "
        "move it away and rerun the sweep command with resume=<sweep dir>"
    )


def _multirun_config(sweep_dir: Path) -> DictConfig | None:
    """A sweep's ``multirun.yaml`` (its config and ``hydra`` node), or None if there is none."""
    path = Path(sweep_dir) / MULTIRUN_FILE
    if not path.is_file():
        return None
    try:
        config = OmegaConf.load(path)
        if not isinstance(config, DictConfig) or "hydra" not in config:
            raise ValueError("it has no hydra node")
        return config
    except Exception as err:  # yaml's, OmegaConf's or the disk's: all mean unreadable
        raise _unreadable(path, err, "Hydra when the sweep starts") from None


def _sweep_hydra_config(sweep_dir: Path) -> DictConfig | None:
    """The ``hydra`` node of a sweep's ``multirun.yaml``, or None if there is no file."""
    config = _multirun_config(sweep_dir)
    return None if config is None else config.hydra


def _levels(hydra_cfg: DictConfig) -> dict[str, list[str]]:
    specs = [str(o) for o in hydra_cfg.overrides.task]
    specs += [f"{k}={v}" for k, v in (hydra_cfg.sweeper.get("params") or {}).items()]
    return sweep_levels(specs)


def swept_levels(sweep_dir: Path) -> dict[str, list[str]]:
    """Key -> levels of each swept key, in the order the sweep lists them.

    From ``multirun.yaml``: the command line's ``a=x,y`` sweeps, then the sweep file's
    ``hydra.sweeper.params`` (the command line wins, as in Hydra). Empty if there is no file.
    """
    hydra_cfg = _sweep_hydra_config(sweep_dir)
    return {} if hydra_cfg is None else _levels(hydra_cfg)


def swept_overrides(hydra_cfg: DictConfig) -> list[str]:
    """This job's overrides of the keys its sweep varies; outside a multirun, all its overrides.

    Read from the sweep's ``multirun.yaml``, so it works in launcher worker processes too.
    """
    task = task_overrides(hydra_cfg)
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return task
    swept = swept_levels(Path(hydra_cfg.sweep.dir))
    return [o for o in task if override_key(o) in swept] or task


def read_plan(sweep_dir: Path) -> dict | None:
    """A sweep's ``seeds_plan.json``, or None for a sweep with a fixed list of seeds."""
    path = Path(sweep_dir) / PLAN_FILE
    if not path.is_file():
        return None
    try:
        plan = json.loads(path.read_text())
        if not (isinstance(plan, dict) and {"halfwidth", "stage2_jobs"} <= plan.keys()):
            raise ValueError("not a seeds plan")
    except (OSError, ValueError) as err:
        raise _unreadable(path, err, "hydra/sweeper=adaptive_seeds after stage 1") from None
    return plan


def saved_overrides(run_dir: Path) -> list[str] | None:
    """The overrides a run dir was last run with (``.hydra/overrides.yaml``), or None."""
    path = Path(run_dir) / SAVED_OVERRIDES
    if not path.is_file():
        return None
    return [str(o) for o in yaml.safe_load(path.read_text()) or []]


@dataclass
class Job:
    """One job dir of a sweep and its record (None if it has none)."""

    path: Path
    record: RunRecord | None
    overrides: list[str]
    unreadable: str | None = None  # why its results.json could not be read, if it could not

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def status(self) -> str:
        return self.record.status if self.record else "failed"

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def error(self) -> str | None:
        if self.unreadable:
            return self.unreadable
        if self.record is None:
            return "no results.json (the job crashed or was killed before it started)"
        if self.status == "running":
            return "did not finish (killed?); rerun the sweep command with resume=true"
        return self.record.error

    @property
    def metrics(self) -> Metrics:
        return (self.record and self.record.metrics) or Metrics()

    @property
    def wandb_run(self) -> WandbRun | None:
        """The W&B run it recorded (mode, id, project, entity, run_dir), or None."""
        return self.record.wandb if self.record else None

    @property
    def config(self) -> dict:
        """The job's resolved config (empty if it has no record)."""
        return (self.record and self.record.config) or {}

    @property
    def seed(self) -> int | None:
        seed = self.record.seed if self.record else None
        if seed is None:
            seed = self.level(SEED)
        return None if seed is None else int(seed)

    def level(self, key: str) -> str | None:
        """This job's value of the override ``key`` (None if it does not set it)."""
        return value_of(self.overrides, key)


@dataclass
class Sweep:
    """A sweep dir: its jobs (ok or not), the keys it varies and, with planned seeds
    (adaptive_seeds), how many seeds stage 1 runs per condition."""

    path: Path
    jobs: list[Job]
    swept: dict[str, list[str]] = field(default_factory=dict)
    first_seeds: int | None = None  # planned seeds (adaptive_seeds): how many in stage 1
    trials: int = 0  # learning-rate trial jobs per condition before stage 1 (lr_selection)

    @property
    def name(self) -> str:
        return self.path.parent.name

    @property
    def ok(self) -> list[Job]:
        return [job for job in self.jobs if job.ok]

    @property
    def failed(self) -> list[Job]:
        return [job for job in self.jobs if not job.ok]

    @property
    def grid_size(self) -> int:
        """How many jobs the sweep's grid holds (1 without swept keys)."""
        size = 1
        for levels in self.swept.values():
            size *= len(levels)
        return size

    @property
    def planned_size(self) -> int:
        """How many jobs the sweep runs: its grid; with planned seeds (adaptive_seeds), every
        condition's learning-rate trials and its stage-1 seeds, plus stage 2's jobs once
        planned."""
        if self.first_seeds is None:
            return self.grid_size
        conditions = self.grid_size // max(len(self.swept.get(SEED, [])), 1)
        plan = read_plan(self.path)
        stage2 = len(plan["stage2_jobs"]) if plan else 0
        return conditions * (self.trials + self.first_seeds) + stage2

    @cached_property
    def factors(self) -> list[str]:
        """Swept keys (seed excluded) with more than one level among the ok jobs."""
        keys = list(self.swept) or sorted({override_key(o) for j in self.ok for o in j.overrides})
        return [key for key in keys if key != SEED and len({job.level(key) for job in self.ok}) > 1]

    @property
    def groups(self) -> list[str]:
        """The W&B groups its jobs logged to (one, normally)."""
        return sorted({job.record.group for job in self.jobs if job.record and job.record.group})


def _job(path: Path) -> Job:
    """A job dir; a record that cannot be read makes it a failed job that says why."""
    try:
        record, unreadable = RunRecord.load(path), None
    except UnreadableRecord as err:
        record, unreadable = None, str(err)
    overrides = record.overrides if record and "overrides" in record.model_fields_set else None
    if overrides is None:
        overrides = saved_overrides(path)
    return Job(path, record, factors_only(overrides or []), unreadable)


def load_sweep(sweep_dir: Path | str, started: bool = False) -> Sweep:
    """Read a sweep dir: a job is a direct subdir holding ``.hydra/`` or ``results.json``.
    A dir without jobs is refused, unless ``started`` (a sweep whose first job runs)."""
    path = Path(sweep_dir)
    if not path.is_dir():
        raise ConfigError(f"sweep dir {path} does not exist")
    job_dirs = sorted(
        p for p in path.iterdir() if (p / ".hydra").is_dir() or (p / RESULTS_FILE).is_file()
    )
    if not job_dirs and not started:
        raise ConfigError(f"{path} holds no jobs (no subdirectory with results.json or .hydra/)")
    jobs = [_job(p) for p in job_dirs]
    config = _multirun_config(path)
    if config is None:
        return Sweep(path, jobs)
    hydra_cfg, selection = config.hydra, config.get("lr_selection")
    first = hydra_cfg.sweeper.get("first")
    trials = len(selection.factors) if selection and selection.get("enabled") else 0
    return Sweep(path, jobs, _levels(hydra_cfg), None if first is None else int(first), trials)


def default_output_root() -> Path:
    """``paths.output_root`` as ``conf/paths/default.yaml`` sets it (relative to the cwd)."""
    return Path(OmegaConf.load(CONF_DIR / "paths" / "default.yaml").output_root)


def find_sweeps(root: Path | None = None) -> list[Path]:
    """Sweep dirs (holding ``multirun.yaml``) under ``root``, oldest first by dir name."""
    root = default_output_root() if root is None else Path(root)
    dirs = [p.parent for p in root.glob(f"**/{MULTIRUN_FILE}")]
    return sorted(dirs, key=lambda p: (p.name, p.stat().st_mtime))


def latest_sweep(root: Path | None = None) -> Path:
    sweeps = find_sweeps(root)
    if not sweeps:
        where = default_output_root() if root is None else root
        raise ConfigError(f"no sweep found under {where} (run a sweep, or pass its dir)")
    return sweeps[-1]
