"""What a sweep's report computes: one row per job, the summary per condition, paired effects,
and for factorial sweeps two-way interactions.

A *condition* is a job's levels of the sweep's factors (``variant=sigmoid``, or
``model.activation=relu,model.pool=max``); its seeds are replicates. Accuracies and effects are
in percent (points). Effects compare each level of a factor with the factor's reference level,
paired by seed.
"""

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from scipy import stats

from cnn_ablations.report.claims import measured_claims
from cnn_ablations.sweep import SEED, Sweep

BASELINE = "baseline"
UNSET = "(default)"  # the level of a factor in a job that does not override it
METRICS = ["test/acc", "val/acc_best", "train/loss", "epochs", "params", "sec_per_epoch"]
CURVE_METRICS = ["val/acc", "train/loss"]
CONVERGED = 0.99  # "converged": the first epoch whose val/acc reaches this fraction of its best


@dataclass
class Analysis:
    """Everything the report shows, computed from one sweep."""

    sweep: Sweep
    jobs: pd.DataFrame  # one row per ok job: condition, seed, one column per factor, metrics
    curves: pd.DataFrame  # per epoch and ok job: condition, seed, epoch, val/acc, train/loss
    shared: list[str]  # overrides every ok job was given (left out of condition labels)
    levels: dict[str, list[str]]  # factor -> levels, reference first
    summary: pd.DataFrame
    effects: pd.DataFrame
    claims: pd.DataFrame  # the literature's claims the effects bear on, with verdicts
    interactions: pd.DataFrame


# --- per job -----------------------------------------------------------------------------------


def epoch_curves(csv_path: Path) -> pd.DataFrame:
    """Per-epoch ``val/acc`` and ``train/loss`` from a CSVLogger file: last non-null per epoch."""
    rows = pd.read_csv(csv_path).dropna(subset=["epoch"])
    present = [m for m in CURVE_METRICS if m in rows.columns]
    curves = rows.groupby("epoch")[present].last().reindex(columns=CURVE_METRICS)
    curves.index = curves.index.astype(int)
    return curves.reset_index()


def epochs_to_converge(val_acc: pd.Series) -> float:
    """The first epoch (counted from 1) whose val/acc reaches CONVERGED x its best."""
    values = val_acc.dropna().reset_index(drop=True)
    if values.empty:
        return math.nan
    return float((values >= CONVERGED * values.max()).idxmax() + 1)


def job_rows(sweep: Sweep) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per ok job (its condition, seed, factor levels, final metrics in percent, epochs
    to converge, learning rate) and the per-epoch curves of the jobs that have a CSV."""
    rows, curves = [], []
    for job in sweep.ok:
        levels = {key: job.level(key) or UNSET for key in sweep.factors}
        condition = ",".join(f"{key}={value}" for key, value in levels.items()) or "(defaults)"
        row = {"job": job.name, "condition": condition, SEED: job.seed, **levels}
        row |= {metric: job.metrics.get(metric) for metric in METRICS}
        row["lr"] = ((job.results.get("config") or {}).get("optimizer") or {}).get("lr")
        row["converged_epoch"] = math.nan
        csv_path = job.path / str(job.results.get("metrics_csv"))
        if job.results.get("metrics_csv") and csv_path.is_file():
            curve = epoch_curves(csv_path).assign(condition=condition, seed=job.seed)
            row["converged_epoch"] = epochs_to_converge(curve["val/acc"])
            curves.append(curve)
        rows.append(row)
    columns = ["job", "condition", SEED, *sweep.factors, *METRICS, "lr", "converged_epoch"]
    frame = pd.DataFrame(rows, columns=columns)
    frame[[*METRICS, "lr", "converged_epoch"]] = frame[[*METRICS, "lr", "converged_epoch"]].astype(
        float
    )
    for metric in ("test/acc", "val/acc_best"):
        frame[metric] *= 100
    curve_frame = (
        pd.concat(curves, ignore_index=True)
        if curves
        else pd.DataFrame(columns=["condition", SEED, "epoch", *CURVE_METRICS])
    )
    return frame, curve_frame


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


# --- per condition -----------------------------------------------------------------------------


def summarize(jobs: pd.DataFrame) -> pd.DataFrame:
    """One row per condition: n seeds, test accuracy (mean, sample std, min, max), the means of
    the rest; best mean test accuracy first."""
    summary = jobs.groupby("condition", as_index=False).agg(
        n=("test/acc", "size"),
        test_acc_mean=("test/acc", "mean"),
        test_acc_std=("test/acc", "std"),
        test_acc_min=("test/acc", "min"),
        test_acc_max=("test/acc", "max"),
        val_acc_best_mean=("val/acc_best", "mean"),
        train_loss_mean=("train/loss", "mean"),
        converged_epoch_mean=("converged_epoch", "mean"),
        epochs_mean=("epochs", "mean"),
        lr_mean=("lr", "mean"),
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
    """Effect on test accuracy (points) of each non-reference level of each factor, paired by
    seed.

    d_s = mean(test/acc | level, seed s) - mean(test/acc | reference, seed s); the effect is
    mean_s d_s with the 95% t-interval mean ± t(0.975, n-1)·sd/√n over the n seeds having both;
    its half-width is the smallest effect this n resolves. With several factors the means run
    over the other factors (main effects).
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
                    "ci_low": low,
                    "ci_high": high,
                    "half_width": (high - low) / 2,
                    "excludes_zero": bool(low > 0 or high < 0),
                }
            )
    columns = ["factor", "level", "reference", "n", "effect", "ci_low", "ci_high"]
    return pd.DataFrame(rows, columns=[*columns, "half_width", "excludes_zero"])


def interactions(jobs: pd.DataFrame, levels: dict[str, list[str]]) -> pd.DataFrame:
    """Two-way interactions of a factorial sweep on test accuracy (points), from statsmodels.

    For each pair of factors an OLS model with every factor's main effect, seed as a block and
    the pair's interaction (treatment coding, each factor's reference level as its baseline):
    each interaction coefficient with its 95% interval, and the pair's F-test p-value (type-2
    ANOVA). For 2-level factors the coefficient is (A's effect at B's level) − (A's effect at
    B's reference).
    """
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    columns = ["factor_a", "level_a", "factor_b", "level_b", "interaction", "ci_low", "ci_high"]
    columns += ["p_value", "excludes_zero"]
    factors = list(levels)
    if len(factors) < 2 or jobs[SEED].nunique() < 2:
        return pd.DataFrame(columns=columns)
    names = {factor: f"f{i}" for i, factor in enumerate(factors)}  # formula-safe column names
    data = jobs.rename(columns={**names, "test/acc": "acc"}).astype({SEED: str})
    terms = {f: f"C({names[f]}, Treatment(reference={levels[f][0]!r}))" for f in factors}
    rows = []
    for a, b in itertools.combinations(factors, 2):
        main = " + ".join(terms.values())
        fit = smf.ols(f"acc ~ {main} + {terms[a]}:{terms[b]} + C({SEED})", data).fit()
        if fit.df_resid < 1:
            continue
        p_value = sm.stats.anova_lm(fit, typ=2)["PR(>F)"][f"{terms[a]}:{terms[b]}"]
        bounds = fit.conf_int(0.05)
        for level_a, level_b in itertools.product(levels[a][1:], levels[b][1:]):
            name = f"{terms[a]}[T.{level_a}]:{terms[b]}[T.{level_b}]"
            if name not in fit.params:
                continue
            low, high = bounds.loc[name]
            rows.append(
                {
                    "factor_a": a,
                    "level_a": level_a,
                    "factor_b": b,
                    "level_b": level_b,
                    "interaction": fit.params[name],
                    "ci_low": low,
                    "ci_high": high,
                    "p_value": p_value,
                    "excludes_zero": bool(low > 0 or high < 0),
                }
            )
    return pd.DataFrame(rows, columns=columns)


def design(levels: dict[str, list[str]]) -> str:
    """One sentence naming the comparison the effects table makes."""
    if len(levels) == 1 and next(iter(levels.values()))[0] == BASELINE:
        return f"one factor at a time: each `{next(iter(levels))}` level vs `{BASELINE}`"
    return "main effects: each level vs its factor's reference level, averaged over the others"


def analyse(sweep: Sweep) -> Analysis:
    """The summary, effects, claims and interactions of ``sweep``'s ok jobs."""
    jobs, curves = job_rows(sweep)
    levels = factor_levels(sweep, jobs)
    main_effects = effects(jobs, levels)
    return Analysis(
        sweep=sweep,
        jobs=jobs,
        curves=curves,
        shared=shared_overrides(sweep),
        levels=levels,
        summary=summarize(jobs),
        effects=main_effects,
        claims=measured_claims(sweep, jobs, main_effects),
        interactions=interactions(jobs, levels),
    )
