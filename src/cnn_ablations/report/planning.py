"""The seeds planner of ``hydra/sweeper=adaptive_seeds``: how many seeds each effect needs by
Stein's rule (``report/seeds.py`` has the rule's intervals), planned from a runs table. The
sweeper plans stage 2 with it, and a report rebuilt from ``runs.csv`` alone recomputes the plan
with it."""

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cnn_ablations.overrides import SEED
from cnn_ablations.report.seeds import CONFIDENCE, t_quantile
from cnn_ablations.report.stats import factor_levels, job_rows, paired_differences, study_budget


def stein_n(s1, n1: int, halfwidth: float):
    """Paired differences in all that Stein's rule asks for: max(n1, ⌈(t·s1/d)²⌉) (arrays too)."""
    need = np.ceil((t_quantile(n1 - 1) * np.asarray(s1, dtype=float) / halfwidth) ** 2)
    return np.maximum(n1, need).astype(int)


@dataclass
class EffectPlan:
    """One effect's stage-2 plan."""

    factor: str
    level: str
    reference: str
    n1: int  # paired differences stage 1 gave (fewer than ``first`` if jobs failed)
    s1: float | None  # their sample standard deviation (None when n1 < 2)
    n_needed: int | None  # Stein's n (None: n1 < 2, no variance to plan from)
    n: int  # the differences planned in all: min(n_needed, max)
    capped: bool  # n_needed > max
    seeds: list[int]  # the seeds of those n differences: stage 1's, then the next of the pool


def plan_effect(
    factor: str,
    level: str,
    reference: str,
    diffs: pd.Series,
    later_seeds: list[int],
    halfwidth: float,
    cap: int,
) -> EffectPlan:
    """Stein's plan for one effect from its stage-1 differences (index: seed); the extra seeds
    are the first of ``later_seeds`` (the pool after stage 1)."""
    n1 = len(diffs)
    seeds = [int(s) for s in diffs.index]
    if n1 < 2:
        return EffectPlan(factor, level, reference, n1, None, None, n1, False, seeds)
    s1 = float(diffs.std(ddof=1))
    needed = int(stein_n(s1, n1, halfwidth))
    n = max(min(needed, cap), n1)
    return EffectPlan(
        factor, level, reference, n1, s1, needed, n, needed > n, seeds + later_seeds[: n - n1]
    )


def plan_seeds(
    differences: Iterable[tuple[str, str, str, pd.Series]],
    later_seeds: list[int],
    halfwidth: float,
    cap: int,
) -> list[EffectPlan]:
    """Every effect's plan from its stage-1 paired differences, as
    ``stats.paired_differences`` yields them: (factor, level, reference, d by seed)."""
    return [
        plan_effect(factor, level, reference, diffs, later_seeds, halfwidth, cap)
        for factor, level, reference, diffs in differences
    ]


def write_plan(path: Path, settings: dict, plan: list[EffectPlan], **extra) -> None:
    """``seeds_plan.json``: the design's settings, each effect's plan, and ``extra`` facts."""
    record = {**settings, "confidence": CONFIDENCE, "effects": [asdict(e) for e in plan], **extra}
    Path(path).write_text(json.dumps(record, indent=2) + "\n")


def seeds_plan(
    runs: pd.DataFrame, pool: list[int], first: int, halfwidth: float, cap: int
) -> list[EffectPlan]:
    """Each effect's seeds plan (``hydra/sweeper=adaptive_seeds``) from a runs table's stage-1
    jobs: those at the first ``first`` seeds of ``pool``; stage 2 takes the next."""
    jobs, _ = job_rows(runs, study_budget(runs))
    stage1, later = pool[:first], pool[first:]
    jobs = jobs[jobs[SEED].isin(stage1)]
    return plan_seeds(paired_differences(jobs, factor_levels(runs, jobs)), later, halfwidth, cap)


def replanned(runs: pd.DataFrame) -> dict | None:
    """The seeds plan recomputed from a runs table's ``plan_*`` columns (None without them)."""
    if "plan_halfwidth" not in runs or runs["plan_halfwidth"].isna().all():
        return None
    row = runs[["plan_halfwidth", "plan_first", "plan_max"]].dropna().iloc[0]
    halfwidth, first, cap = float(row["plan_halfwidth"]), int(row["plan_first"]), int(row.plan_max)
    pool = json.loads(runs["plan_seed_pool"].dropna().iloc[0])
    plan = seeds_plan(runs, pool, first, halfwidth, cap)
    settings = {"halfwidth": halfwidth, "first": first, "max": cap}
    return {**settings, "effects": [asdict(effect) for effect in plan], "seed_pool": pool}
