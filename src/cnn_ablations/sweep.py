"""A sweep on disk: the one reader of a multirun dir, and the end-of-sweep Hydra callback.

A sweep dir holds ``multirun.yaml`` (written by Hydra before any job starts) and one subdir per
job, named after the overrides the sweep varies. :func:`load_sweep` reads it once for the
summary, the report and the dashboard: every job with its status and ``results.json``, and the
swept keys with their levels in the order the sweep lists them (parsed with Hydra's own parser).
"""

import json
import logging
import os
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from cnn_ablations import CONF_DIR, CONFIG_NAME
from cnn_ablations.errors import EXIT_CONFIG, ConfigError, check_wandb_name, override_key
from cnn_ablations.results import read_results

log = logging.getLogger(__name__)
MULTIRUN_FILE = "multirun.yaml"
SUMMARY_FILE = "sweep_summary.json"
SEED = "seed"
# overrides that pick how a sweep runs, not what it compares
NOT_A_FACTOR = ("sweep", "launcher", "hydra/launcher", "hydra", "resume")


def swept_levels(sweep_dir: Path) -> dict[str, list[str]]:
    """Key -> levels of each swept key, in the order the sweep lists them.

    From ``multirun.yaml``: the command line's ``a=x,y`` sweeps, then the sweep file's
    ``hydra.sweeper.params`` (the command line wins, as in Hydra). Empty if there is no file.
    """
    path = Path(sweep_dir) / MULTIRUN_FILE
    if not path.is_file():
        return {}
    hydra_cfg = OmegaConf.load(path).hydra
    specs = list(hydra_cfg.overrides.task)
    specs += [f"{k}={v}" for k, v in (hydra_cfg.sweeper.get("params") or {}).items()]
    levels: dict[str, list[str]] = {}
    for override in OverridesParser.create().parse_overrides(specs):
        if override.is_sweep_override() and override.key_or_group not in NOT_A_FACTOR:
            levels.setdefault(override.key_or_group, list(override.sweep_string_iterator()))
    return levels


def task_overrides(hydra_cfg: DictConfig) -> list[str]:
    """This job's command-line overrides, less those that pick how a sweep runs."""
    return [o for o in hydra_cfg.overrides.task if override_key(o) not in NOT_A_FACTOR]


def swept_overrides(hydra_cfg: DictConfig) -> list[str]:
    """This job's overrides of the keys its sweep varies; outside a multirun, all its overrides.

    Read from the sweep's ``multirun.yaml``, so it works in launcher worker processes too.
    """
    task = task_overrides(hydra_cfg)
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return task
    swept = swept_levels(Path(hydra_cfg.sweep.dir))
    return [o for o in task if override_key(o) in swept] or task


@dataclass
class Job:
    """One job dir of a sweep and what its ``results.json`` says (``{}`` if it has none)."""

    path: Path
    results: dict
    overrides: list[str]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def status(self) -> str:
        return self.results.get("status", "failed")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def error(self) -> str | None:
        if not self.results:
            return "no results.json (the job crashed or was killed before it started)"
        if self.status == "running":
            return "did not finish (killed?); rerun the sweep command with resume=true"
        return self.results.get("error")

    @property
    def metrics(self) -> dict:
        return self.results.get("metrics") or {}

    @property
    def wandb_run(self) -> dict:
        """The W&B run it recorded (mode, id, project, entity, run_dir), or ``{}``."""
        return self.results.get("wandb") or {}

    @property
    def seed(self) -> int | None:
        seed = self.results.get("seed")
        if seed is None:
            seed = self.level(SEED)
        return None if seed is None else int(seed)

    def level(self, key: str) -> str | None:
        """This job's value of the override ``key`` (None if it does not set it)."""
        return next((o.split("=", 1)[1] for o in self.overrides if override_key(o) == key), None)


@dataclass
class Sweep:
    """A sweep dir: its jobs (ok or not) and the keys it varies."""

    path: Path
    jobs: list[Job]
    swept: dict[str, list[str]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.parent.name

    @property
    def ok(self) -> list[Job]:
        return [job for job in self.jobs if job.ok]

    @property
    def failed(self) -> list[Job]:
        return [job for job in self.jobs if not job.ok]

    @cached_property
    def factors(self) -> list[str]:
        """Swept keys (seed excluded) with more than one level among the ok jobs."""
        keys = list(self.swept) or sorted({override_key(o) for j in self.ok for o in j.overrides})
        return [key for key in keys if key != SEED and len({job.level(key) for job in self.ok}) > 1]

    @property
    def groups(self) -> list[str]:
        """The W&B groups its jobs logged to (one, normally)."""
        return sorted({g for job in self.jobs if (g := job.results.get("group"))})


def _job(path: Path) -> Job:
    results = read_results(path) or {}
    overrides = results.get("overrides")
    if overrides is None and (path / ".hydra" / "overrides.yaml").is_file():
        overrides = yaml.safe_load((path / ".hydra" / "overrides.yaml").read_text())
    overrides = [str(o) for o in overrides or [] if override_key(str(o)) not in NOT_A_FACTOR]
    return Job(path, results, overrides)


def load_sweep(sweep_dir: Path | str) -> Sweep:
    """Read a sweep dir: a job is a direct subdir holding ``.hydra/`` or ``results.json``."""
    path = Path(sweep_dir)
    if not path.is_dir():
        raise ConfigError(f"sweep dir {path} does not exist")
    job_dirs = sorted(
        p for p in path.iterdir() if (p / ".hydra").is_dir() or (p / "results.json").is_file()
    )
    if not job_dirs:
        raise ConfigError(f"{path} holds no jobs (no subdirectory with results.json or .hydra/)")
    return Sweep(path, [_job(p) for p in job_dirs], swept_levels(path))


def sweep_dataset(sweep: str) -> str:
    """The dataset a sweep file trains on, as Hydra composes it (``make sweep`` installs
    Fashion-MNIST first when it is the one)."""
    from hydra import compose, initialize_config_dir

    from cnn_ablations import resolvers

    resolvers.register()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return str(compose(CONFIG_NAME, overrides=[f"sweep={sweep}"]).data.dataset)


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


class DataCheck(Callback):
    """Hydra callback: logs the study's budget (and its ``note``) as its first line; a sweep
    whose dataset cannot be loaded stops before any job, with the loader's one line (e.g.
    Fashion-MNIST not installed and no network), never mid-sweep. The dataset stays loaded for
    the jobs of this process."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        from cnn_ablations.budget import budget_of
        from cnn_ablations.data.datasets import load_dataset

        # the study's first line: the question it answers, and where to find the other one
        note = f"; {config.note}" if config.get("note") else ""
        log.info("%s: %s%s", config.name, budget_of(config).sentence, note)

        try:
            load_dataset(config.data.dataset, config.data.root)
        except ConfigError as err:
            # Hydra turns an exception raised in a callback into a warning: exiting stops it
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(EXIT_CONFIG) from None


class WandbNameCheck(Callback):
    """Hydra callback: a sweep that logs to W&B under a group its W&B Report could not filter on
    (``name``, the sweep dir's name or ``logger.wandb.group`` with a ``'``, ``=``, ``+``, ...)
    stops before any job, with one line naming the character, and exits 2."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        node = config.get("logger", {}).get("wandb")
        if node is None or (node.get("mode") or os.environ.get("WANDB_MODE")) == "disabled":
            return
        try:
            if node.get("group"):
                check_wandb_name("logger.wandb.group", node.group)
            else:  # the group is <name>-<sweep dir name> (job.job_identity); the name first, as
                check_wandb_name("name", config.name)  # reading the dir creates it
                check_wandb_name("hydra.sweep.dir", Path(config.hydra.sweep.dir).name)
        except ConfigError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(EXIT_CONFIG) from None


class SweepSummary(Callback):
    """Hydra callback: writes ``sweep_summary.json``, runs the report, exits 1 on failures."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep = load_sweep(config.hydra.sweep.dir)
        summary = {
            "sweep_dir": str(sweep.path),
            "jobs": len(sweep.jobs),
            "failed": len(sweep.failed),
            "results": [
                {"job": j.name, "status": j.status, "error": j.error, "metrics": j.metrics}
                for j in sweep.jobs
            ],
        }
        (sweep.path / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
        if sweep.ok:
            from cnn_ablations.report import build_report

            try:
                build_report(sweep)
            except Exception as err:  # the sweep's results are on disk whatever the report does
                log.error(
                    "report failed (%s: %s); run `make report ARGS=%s` after fixing it",
                    type(err).__name__,
                    err,
                    sweep.path,
                )
        if sweep.failed:
            for job in sweep.failed:
                log.error("FAILED %s: %s", job.name, job.error)
            log.error(
                "%d of %d jobs failed; see %s",
                len(sweep.failed),
                len(sweep.jobs),
                sweep.path / SUMMARY_FILE,
            )
            raise SystemExit(1)
        log.info("all %d jobs ok: %s", len(sweep.jobs), sweep.path)
