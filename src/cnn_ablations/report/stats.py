"""What a sweep's report computes: one row per job, the summary per condition, paired effects.

A *condition* is a job's swept overrides without the seed (``variant=sigmoid``, or
``model.activation=relu,model.pool=max``); its seeds are replicates. Effects compare each level
of a factor with the factor's reference level, paired by seed.
"""

import math
from dataclasses import dataclass

import pandas as pd
from scipy import stats

from cnn_ablations.sweep import SEED, Sweep

BASELINE = "baseline"
UNSET = "(default)"  # the level of a factor in a job that does not override it
METRICS = ["test/acc", "val/acc_best", "train/loss", "epochs", "params", "sec_per_epoch"]


@dataclass
class Analysis:
    """Everything the report shows, computed from one sweep."""

    sweep: Sweep
    jobs: pd.DataFrame  # one row per ok job: condition, seed, one column per factor, metrics
    shared: list[str]  # overrides every ok job was given (left out of condition labels)
    levels: dict[str, list[str]]  # factor -> levels, reference first
    summary: pd.DataFrame
    effects: pd.DataFrame


def job_rows(sweep: Sweep) -> pd.DataFrame:
    """One row per ok job: its condition label, seed, factor levels and final metrics."""
    rows = []
    for job in sweep.ok:
        levels = {key: job.level(key) or UNSET for key in sweep.factors}
        condition = ",".join(f"{key}={value}" for key, value in levels.items())
        rows.append(
            {
                "job": job.name,
                "path": job.path,
                "condition": condition or "(defaults)",
                SEED: job.seed,
                **levels,
                **{metric: job.metrics.get(metric) for metric in METRICS},
                "metrics_csv": job.results.get("metrics_csv"),
            }
        )
    columns = ["job", "path", "condition", SEED, *sweep.factors, *METRICS, "metrics_csv"]
    frame = pd.DataFrame(rows, columns=columns)
    frame[METRICS] = frame[METRICS].astype(float)
    return frame


def shared_overrides(sweep: Sweep) -> list[str]:
    """Overrides (the seed aside) that every ok job was given."""
    if not sweep.ok:
        return []
    common = set.intersection(*(set(job.overrides) for job in sweep.ok))
    first = sweep.ok[0].overrides
    return [o for o in first if o in common and not o.startswith(f"{SEED}=")]


def _natural_key(level: str) -> tuple:
    try:
        return (0, float(level), "")
    except ValueError:
        return (1, 0.0, level)


def factor_levels(sweep: Sweep, jobs: pd.DataFrame) -> dict[str, list[str]]:
    """Levels of each factor, reference first: ``baseline`` if it is a level, else the first
    level the sweep lists, else the first in sorted order (numbers numerically)."""
    levels = {}
    for key in sweep.factors:
        found = set(jobs[key])
        listed = sweep.swept.get(key, [])
        ordered = [lv for lv in listed if lv in found] + sorted(
            found - set(listed), key=_natural_key
        )
        if BASELINE in found:
            ordered = [BASELINE] + [lv for lv in ordered if lv != BASELINE]
        levels[key] = ordered
    return levels


def summarize(jobs: pd.DataFrame) -> pd.DataFrame:
    """One row per condition: n seeds, mean/std (ddof=1)/min/max of the accuracies, means of
    the rest; best mean test accuracy first."""
    summary = jobs.groupby("condition", as_index=False).agg(
        n=("test/acc", "size"),
        test_acc_mean=("test/acc", "mean"),
        test_acc_std=("test/acc", "std"),
        test_acc_min=("test/acc", "min"),
        test_acc_max=("test/acc", "max"),
        val_acc_best_mean=("val/acc_best", "mean"),
        val_acc_best_std=("val/acc_best", "std"),
        train_loss_mean=("train/loss", "mean"),
        epochs_mean=("epochs", "mean"),
        params_mean=("params", "mean"),
        sec_per_epoch_mean=("sec_per_epoch", "mean"),
    )
    return summary.sort_values(
        ["test_acc_mean", "condition"], ascending=[False, True], na_position="last"
    ).reset_index(drop=True)


def paired_interval(diffs: pd.Series, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean of paired differences and its t-interval (NaN bounds when n < 2)."""
    n, mean = len(diffs), diffs.mean()
    if n < 2:
        return mean, math.nan, math.nan
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * diffs.std(ddof=1) / math.sqrt(n)
    return mean, mean - half, mean + half


def effects(jobs: pd.DataFrame, levels: dict[str, list[str]]) -> pd.DataFrame:
    """Effect on test/acc of each non-reference level of each factor, paired by seed.

    d_s = mean(test/acc | level, seed s) - mean(test/acc | reference, seed s); the effect is
    mean_s d_s with the 95% t-interval mean ± t(0.975, n-1)·sd/√n over the n seeds having both.
    With several factors the means run over the other factors (main effects).
    """
    rows = []
    for factor, ordered in levels.items():
        reference = ordered[0]
        per_seed = (
            jobs.groupby([SEED, factor])["test/acc"].mean().unstack(factor).reindex(columns=ordered)
        )
        for level in ordered[1:]:
            diffs = (per_seed[level] - per_seed[reference]).dropna()
            mean, low, high = paired_interval(diffs)
            rows.append(
                {
                    "factor": factor,
                    "level": level,
                    "reference": reference,
                    "n": len(diffs),
                    "effect": mean,
                    "sd": diffs.std(ddof=1) if len(diffs) > 1 else math.nan,
                    "ci_low": low,
                    "ci_high": high,
                    "excludes_zero": bool(low > 0 or high < 0),
                }
            )
    columns = ["factor", "level", "reference", "n", "effect", "sd", "ci_low", "ci_high"]
    return pd.DataFrame(rows, columns=[*columns, "excludes_zero"])


def design(levels: dict[str, list[str]]) -> str:
    """One sentence naming the comparison the effects table makes."""
    if len(levels) == 1 and next(iter(levels.values()))[0] == BASELINE:
        return f"one factor at a time: each `{next(iter(levels))}` level vs `{BASELINE}`"
    return "main effects: each level vs its factor's reference level, averaged over the others"


def analyse(sweep: Sweep) -> Analysis:
    """The summary and the effects of ``sweep``'s ok jobs."""
    jobs = job_rows(sweep)
    levels = factor_levels(sweep, jobs)
    return Analysis(
        sweep=sweep,
        jobs=jobs,
        shared=shared_overrides(sweep),
        levels=levels,
        summary=summarize(jobs),
        effects=effects(jobs, levels),
    )
