"""``hydra/sweeper=adaptive_seeds``: a sweep that decides how many seeds each effect needs.

It takes the grid Hydra's basic sweeper takes (``hydra.sweeper.params`` and the command line's
``key=a,b`` lists) and runs it in two stages through the configured launcher, as the basic
sweeper does, in one sweep dir:

1. every condition at the first ``first`` seeds of the seed pool: the grid's seed list, then
   the integers after its largest;
2. for each effect (a level vs its factor's reference, paired by seed), the seeds Stein's
   two-stage rule asks for to reach a 95% interval of half-width ``halfwidth`` points, at most
   ``max`` (``cnn_ablations.report.planning``); only the (condition, seed) jobs no ok job of the
   sweep dir has run, a reference condition at the union of its effects' seeds.

With ``lr_selection.enabled``, a stage 0 runs first: each condition's learning-rate trials, and
every job of the condition then trains at its chosen rate (``cnn_ablations.lr_select``).
The plan is written to ``<sweep>/seeds_plan.json`` and logged before stage 2. Stage-1 results are
read from the sweep dir (``load_sweep``), so ``resume=true`` plans identically and runs only the
jobs without an ok ``results.json``. This module is imported by Hydra's plugin scan on every run:
it imports only Hydra at the top.
"""

import itertools
import logging
from dataclasses import dataclass
from pathlib import Path

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

log = logging.getLogger(__name__)
SEED = "seed"


@dataclass
class AdaptiveSeedsSweeperConf:
    _target_: str = (
        "hydra_plugins.cnn_ablations_adaptive_seeds.adaptive_seeds_sweeper.AdaptiveSeedsSweeper"
    )
    params: dict[str, str] | None = None  # the grid, as for hydra/sweeper=basic
    first: int = 4  # stage 1: every condition at this many seeds
    max: int = 10  # no effect gets more paired seeds than this
    halfwidth: float = 1.0  # d: the 95% interval's half-width to reach, in points of test acc
    max_batch_size: int | None = None  # jobs per launcher call, as for the basic sweeper


ConfigStore.instance().store(
    group="hydra/sweeper",
    name="adaptive_seeds",
    node=AdaptiveSeedsSweeperConf,
    provider="cnn-ablations",
)


def grid_jobs(overrides: list[Override]) -> list[list[str]]:
    """Every job of a grid, as Hydra's basic sweeper expands it: one list per key (a later
    override of a key replaces an earlier one, in the earlier's place), then their product."""
    lists: dict[str, list[str]] = {}
    for override in overrides:
        key = override.get_key_element()
        if not override.is_sweep_override():
            lists[key] = [f"{key}={override.get_value_element_as_str()}"]
        elif override.is_discrete_sweep():
            lists[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            raise HydraException(f"adaptive_seeds does not support the sweep {override.input_line}")
    return [list(job) for job in itertools.product(*lists.values())]


def _error(message: str) -> Exception:
    from cnn_ablations.errors import ConfigError

    return ConfigError(f"hydra/sweeper=adaptive_seeds: {message}")


class AdaptiveSeedsSweeper(Sweeper):
    """Stein's two-stage design over seeds (module docstring)."""

    def __init__(
        self,
        params: dict[str, str] | None,
        first: int,
        max: int,  # noqa: A002 - the config key's name
        halfwidth: float,
        max_batch_size: int | None,
    ) -> None:
        self.params = dict(params or {})
        self.first, self.cap, self.halfwidth = first, max, halfwidth
        self.max_batch_size = max_batch_size
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher = None
        self.job_idx = 0  # keeps increasing across the stages' launches

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    # --- the grid ------------------------------------------------------------------------------

    def _grid(self, arguments: list[str]) -> tuple[list[str], dict[tuple, list[str]], list[int]]:
        """The keys the conditions vary, each condition's override list (its seed entry a
        placeholder), and the grid's seeds; expanded as the basic sweeper expands a grid."""
        if self.first < 2:
            raise _error(f"hydra.sweeper.first={self.first}: Stein's rule needs >= 2 seeds")
        if self.cap < self.first:
            raise _error(f"hydra.sweeper.max={self.cap} is below first={self.first}; raise it")
        if not self.halfwidth > 0:
            raise _error(f"hydra.sweeper.halfwidth={self.halfwidth} must be > 0 (points)")
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        grid = [f"{k}={v}" for k, v in self.params.items()]
        overrides = parser.parse_overrides([*grid, *arguments])
        last = {o.get_key_element(): o for o in overrides}  # a later override of a key wins
        seed_list = last.get(SEED)
        if seed_list is None or not seed_list.is_sweep_override():
            given = "the grid lists no seeds"
            if seed_list is not None:
                given = (
                    f"seed={seed_list.get_value_element_as_str()} is one seed, and the "
                    "stage-1 jobs of each condition would share one dir"
                )
            raise _error(
                f"{given}; give a seed list (seed=0,1,2,3) in hydra.sweeper.params or on the "
                "command line: it starts the seed pool"
            )
        keys = [k for k, o in last.items() if o.is_sweep_override() and k != SEED]
        conditions: dict[tuple, list[str]] = {}
        seeds: list[int] = []
        jobs = grid_jobs(overrides)
        for job in jobs:
            values = dict(o.split("=", 1) for o in job)
            try:
                seed = int(values[SEED])
            except ValueError:
                raise _error(f"seed={values[SEED]}: the grid's seeds must be integers") from None
            if seed not in seeds:
                seeds.append(seed)
            conditions.setdefault(tuple(values[k] for k in keys), job)
        if len(conditions) * len(seeds) != len(jobs):
            raise _error(
                "the grid lists one value twice (to Hydra 1e-3 and 0.001 are one value): "
                f"{len(jobs)} jobs but {len(conditions)} conditions x {len(seeds)} seeds"
            )
        return keys, conditions, seeds

    @classmethod
    def _with_seed(cls, job: list[str], seed: int) -> list[str]:
        return cls._with(job, [f"{SEED}={seed}"])

    @staticmethod
    def _with(job: list[str], handed: list[str]) -> list[str]:
        """``job`` with each of the ``handed`` overrides in place of its own of that key, or
        after its overrides."""
        keys = {o.split("=", 1)[0]: o for o in handed}
        kept = [keys.pop(o.split("=", 1)[0], o) for o in job]
        return [*kept, *keys.values()]

    # --- launching -----------------------------------------------------------------------------

    def _launch(self, jobs: list[list[str]]) -> list:
        """Launch ``jobs`` batch by batch as the basic sweeper does; the launchers' returns."""
        returns = []
        size = self.max_batch_size or len(jobs) or 1
        for batch in (jobs[start : start + size] for start in range(0, len(jobs), size)):
            self.validate_batch_is_legal(batch)
            results = self.launcher.launch(batch, initial_job_idx=self.job_idx)
            for result in results:
                _ = result.return_value  # a job's exception stops the sweep, as in BasicSweeper
            self.job_idx += len(batch)
            returns.append(results)
        return returns

    @staticmethod
    def _done(sweep, keys: list[str]) -> set[tuple[tuple, int]]:
        """(condition, seed) of the sweep's ok jobs."""
        return {(tuple(job.level(k) for k in keys), job.seed) for job in sweep.ok}

    def sweep(self, arguments: list[str]) -> list:
        from cnn_ablations.errors import ConfigError
        from cnn_ablations.report.planning import seeds_plan, write_plan
        from cnn_ablations.report.runs import parsed, runs_frame
        from cnn_ablations.sweepdir import PLAN_FILE, load_sweep, save_multirun

        keys, conditions, listed = self._grid(list(arguments))
        sweep_dir = Path(self.config.hydra.sweep.dir)
        save_multirun(self.config, sweep_dir)
        pool = listed + [max(listed) + 1 + i for i in range(self.first + self.cap)]
        pool = pool[: self.first + self.cap]  # enough when every stage-1 seed of an effect failed
        stage1, later = pool[: self.first], pool[self.first :]

        try:
            done = self._done(load_sweep(sweep_dir), keys)
        except ConfigError:  # no job dir yet
            done = set()
        rates = self._select_rates(keys, conditions, sweep_dir)
        conditions = {c: self._with(job, rates.get(c, [])) for c, job in conditions.items()}
        todo = [(c, s) for s in stage1 for c in conditions if (c, s) not in done]  # seed by seed
        log.info(
            "adaptive_seeds stage 1: %d conditions x seeds %s: %d jobs to run",
            len(conditions),
            stage1,
            len(todo),
        )
        returns = self._launch([self._with_seed(conditions[c], s) for c, s in todo])

        sweep = load_sweep(sweep_dir)
        plan = seeds_plan(parsed(runs_frame(sweep)), pool, self.first, self.halfwidth, self.cap)
        needed = {c: set(stage1) for c in conditions}
        for effect in plan:
            position = keys.index(effect.factor)
            for condition in conditions:
                if condition[position] in (effect.level, effect.reference):
                    needed[condition] |= set(effect.seeds)
        planned = [(c, s) for s in later for c in conditions if s in needed[c]]
        done = self._done(sweep, keys)
        todo = [job for job in planned if job not in done]
        failed = [j.name for j in sweep.failed if j.seed in stage1]
        write_plan(
            sweep_dir / PLAN_FILE,
            {"halfwidth": self.halfwidth, "first": self.first, "max": self.cap},
            plan,
            seed_pool=pool,
            stage1_seeds=stage1,
            stage1_failed=failed,
            stage2_jobs=[
                ",".join([*(f"{k}={v}" for k, v in zip(keys, c, strict=True)), f"seed={s}"])
                for c, s in planned
            ],
        )
        self._log_plan(plan, failed, len(planned), len(todo), sweep_dir)
        return returns + self._launch([self._with_seed(conditions[c], s) for c, s in todo])

    def _select_rates(self, keys: list[str], conditions: dict, sweep_dir: Path) -> dict:
        """With ``lr_selection.enabled``: each condition's trial jobs (those its choice file does
        not settle yet) through the launcher, then its rate as overrides,
        ``optimizer.lr=<rate> lr_selection.enabled=false`` (``cnn_ablations.lr_select``)."""
        selection = self.config.get("lr_selection")
        if not selection or not selection.enabled:
            return {}
        from cnn_ablations import lr_select

        if "optimizer.lr" in keys:
            raise _error(
                "the grid sweeps optimizer.lr and lr_selection.enabled=true chooses it per "
                "condition: sweep one or the other"
            )
        names = {c: ",".join(f"{k}={v}" for k, v in zip(keys, c, strict=True)) or "all"
                 for c in conditions}  # fmt: skip
        trials = [
            job
            for c, overrides in conditions.items()
            if not lr_select.choice_file(sweep_dir, names[c]).is_file()
            for job in lr_select.trial_jobs(overrides, names[c], selection)
        ]
        log.info(
            "lr_selection: %d conditions x rates %s x optimizer.lr: %d trial jobs to run",
            len(conditions),
            list(selection.factors),
            len(trials),
        )
        self._launch(trials)
        rates = {}
        for c in conditions:
            choice = lr_select.choose(sweep_dir, names[c], selection)
            if choice is not None:  # else its jobs fail, saying why
                log.info("lr_selection: %s -> lr %g", names[c], choice["lr"])
                rates[c] = [f"optimizer.lr={choice['lr']!r}", "lr_selection.enabled=false"]
        return rates

    def _log_plan(
        self, plan: list, failed: list[str], planned: int, todo: int, sweep_dir: Path
    ) -> None:
        for job in failed:
            log.warning(
                "adaptive_seeds: stage-1 job %s failed; its condition is planned from "
                "the seeds it has",
                job,
            )
        for e in plan:
            if e.n_needed is None:
                log.info(
                    "  %s=%s vs %s: %d paired seed(s) in stage 1, too few to plan",
                    e.factor,
                    e.level,
                    e.reference,
                    e.n1,
                )
                continue
            cap = f" (capped: Stein needs {e.n_needed})" if e.capped else ""
            log.info(
                "  %s=%s vs %s: s1=%.2f over %d seeds -> n=%d%s",
                e.factor,
                e.level,
                e.reference,
                e.s1,
                e.n1,
                e.n,
                cap,
            )
        log.info(
            "adaptive_seeds stage 2 (plan for ±%g points in %s): %d jobs, %d of them to run",
            self.halfwidth,
            sweep_dir / "seeds_plan.json",
            planned,
            todo,
        )
