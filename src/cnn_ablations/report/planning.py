"""The seeds plan of a ``hydra/sweeper=adaptive_seeds`` sweep from its runs table: what the
sweeper plans stage 2 by, and what a report rebuilt from ``runs.csv`` alone recomputes."""

import json
from dataclasses import asdict

import pandas as pd

from cnn_ablations.overrides import SEED
from cnn_ablations.report.seeds import EffectPlan, plan_seeds
from cnn_ablations.report.stats import factor_levels, job_rows, paired_differences, study_budget


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
