"""What a sweep's report computes from its runs table (``runs.csv``, report/runs.py): the
study's budget, one row per ok job, the summary per condition, paired effects with their budget
check, and for factorial sweeps two-way interactions.

A *condition* is a job's levels of the sweep's factors (``variant=sigmoid``, or
``model.activation=relu,model.pool=max``); its seeds are replicates. Accuracies and effects are
in percent (points). Effects compare each level of a factor with the factor's reference level,
paired by seed.
"""

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd

from cnn_ablations.budget import CONVERGED, Budget
from cnn_ablations.overrides import SEED, override_key
from cnn_ablations.report.budget_check import budget_check, paired_interval
from cnn_ablations.report.claims import measured_claims
from cnn_ablations.report.interactions import interactions
from cnn_ablations.report.runs import CURVES, budget_from, factors_of, parsed, runs_frame
from cnn_ablations.report.seeds import verdicts
from cnn_ablations.sweepdir import Sweep, read_plan

BASELINE = "baseline"
OK = "ok"  # a job's status once it finished
HANDED = {SEED, "lr_selection.enabled"}  # keys a sweeper sets per job, not the study's settings
# the jobs frame's metrics (accuracies in percent) <- their runs.csv columns
METRICS = {
    "test/acc": "test_acc",
    "val/acc_best": "val_acc_best",
    "train/loss": "train_loss",
    "epochs": "epochs",
    "params": "params",
    "sec_per_epoch": "sec_per_epoch",
    "lr": "lr",
    "best_epoch": "best_epoch",
    "val_acc_epoch1": "val_acc_epoch1",
    "val_acc_final": "val_acc_final",
    "val_mid": "val_acc_best_at_half",  # the budget check's inputs: the best val/acc at half of
    "val_end": "val_acc_best_at_end",  # each job's epochs, and at its end
}
METRIC_AT_BUDGET = ["test/acc", "val_mid", "val_end"]  # the effects' metric, the budget check's
REACHED = 0.95  # learning speed: epochs to reach this fraction of the baseline's best val/acc


@dataclass
class Analysis:
    """Everything the report shows, computed from one sweep's runs table (``runs.csv``)."""

    runs: pd.DataFrame  # one row per job, ok or not (report/runs.py)
    plan: dict | None  # the seeds plan (adaptive_seeds), as seeds_plan.json holds it
    budget: Budget | None  # None: the jobs trained for different budgets
    jobs: pd.DataFrame  # one row per ok job: condition, seed, one column per factor, metrics
    curves: pd.DataFrame  # per epoch and ok job: condition, seed, epoch, val/acc %, train/loss
    shared: list[str]  # overrides every ok job was given (left out of condition labels)
    levels: dict[str, list[str]]  # factor -> levels, reference first
    summary: pd.DataFrame
    effects: pd.DataFrame
    claims: pd.DataFrame  # the literature's claims the effects bear on, with verdicts
    interactions: pd.DataFrame
    unpaired: list[str]  # one line per level whose seeds have no reference job to pair with

    @property
    def sweep(self) -> str:
        """``<sweep name>/<its dir>``, e.g. ``lenet_ablation/2026-12-06_09-25-40``."""
        return str(self.runs["sweep"].iloc[0]) if len(self.runs) else "(no jobs)"

    @property
    def failed(self) -> pd.DataFrame:
        """The jobs that are not ok: job, status, error."""
        return self.runs.loc[self.runs["status"] != OK, ["job", "status", "error"]]


def study_budget(runs: pd.DataFrame) -> Budget | None:
    """The one budget every ok job trained for; None if they differ or there are none."""
    budgets = {budget_from(row) for _, row in runs[runs["status"] == OK].iterrows()}
    return budgets.pop() if len(budgets) == 1 else None


# --- per job -----------------------------------------------------------------------------------


def job_rows(runs: pd.DataFrame, budget: Budget | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per ok job of a runs table and the per-epoch curves of the jobs that have them.

    A row: condition, seed, factor levels, final metrics (accuracies in percent), learning rate,
    best epoch, what stopped it, whether it hit the cap still improving (within ``patience``
    epochs of its best), val/acc at epoch 1 and at the end, and the best val/acc at half of its
    epochs and at the end (the budget check's inputs).
    """
    patience = budget.patience if budget and budget.kind == CONVERGED else None
    factors = factors_of(runs)
    ok = runs[runs["status"] == OK]
    frame = pd.DataFrame(
        {
            "job": ok["job"],
            "condition": [
                ",".join(f"{key}={row[key]}" for key in factors) or "(defaults)"
                for _, row in ok.iterrows()
            ],
            SEED: ok[SEED].astype(int),
            **{key: ok[key] for key in factors},
            **{metric: ok[column].astype(float) for metric, column in METRICS.items()},
            "stopped_by": ok["stopped_by"],
        }
    ).reset_index(drop=True)
    capped = frame["stopped_by"] == "cap"
    frame["still_improving"] = (
        capped & (frame["best_epoch"] > frame["epochs"].fillna(0) - patience)
        if patience is not None
        else False
    )
    curves = []
    for row, val_acc, train_loss in zip(
        frame.itertuples(), ok[CURVES["val/acc"]], ok[CURVES["train/loss"]], strict=True
    ):
        if isinstance(val_acc, str):
            values = {"val/acc": json.loads(val_acc), "train/loss": json.loads(train_loss)}
            curve = pd.DataFrame({"epoch": range(len(values["val/acc"])), **values})
            curves.append(curve.assign(condition=row.condition, seed=getattr(row, SEED)))
    curve_frame = (
        pd.concat(curves, ignore_index=True)
        if curves
        else pd.DataFrame(columns=["condition", SEED, "epoch", *CURVES])
    )
    return frame, curve_frame


def epochs_to_reach(curves: pd.DataFrame, jobs: pd.DataFrame, target: float) -> pd.Series:
    """Per job (as ``jobs`` orders them): the first epoch (from 1) whose val/acc reaches
    ``target`` percent; NaN if it never does."""
    reached = {}
    for (condition, seed), curve in curves.groupby(["condition", SEED]):
        hits = curve.index[curve["val/acc"] >= target]
        reached[condition, seed] = float(curve.loc[hits[0], "epoch"]) + 1 if len(hits) else math.nan
    return pd.Series(
        [reached.get((c, s), math.nan) for c, s in zip(jobs["condition"], jobs[SEED], strict=True)],
        index=jobs.index,
        dtype=float,
    )


def reference_condition(levels: dict[str, list[str]]) -> str:
    """The condition label of every factor at its reference level (the baseline)."""
    return ",".join(f"{key}={ordered[0]}" for key, ordered in levels.items()) or "(defaults)"


def shared_overrides(runs: pd.DataFrame) -> list[str]:
    """Overrides that every ok job was given, less the seed and what a sweeper hands each job
    (``lr_selection.enabled=false``, with its chosen rate); runs.csv leaves out ``paths.*``."""
    given = [json.loads(o) for o in runs.loc[runs["status"] == OK, "overrides"]]
    if not given:
        return []
    common = set.intersection(*(set(overrides) for overrides in given))
    return [o for o in given[0] if o in common and override_key(o) not in HANDED]


def factor_levels(runs: pd.DataFrame, jobs: pd.DataFrame) -> dict[str, list[str]]:
    """Levels of each factor among ``jobs``, reference first: ``baseline`` if it is a level, else
    in the order of the runs table (the order the sweep lists them in: report/runs.py)."""
    levels = {}
    for key in factors_of(runs):
        found = set(jobs[key])
        ordered = [lv for lv in dict.fromkeys(runs[key]) if lv in found]
        if BASELINE in found:
            ordered = [BASELINE] + [lv for lv in ordered if lv != BASELINE]
        levels[key] = ordered
    return levels


# --- per condition -----------------------------------------------------------------------------


def summarize(jobs: pd.DataFrame) -> pd.DataFrame:
    """One row per condition: n seeds, test accuracy (mean, sample std, min, max), the means of
    the rest, how many jobs early stopping ended and how many hit the cap still improving; best
    mean test accuracy first."""
    summary = jobs.groupby("condition", as_index=False).agg(
        n=("test/acc", "size"),
        test_acc_mean=("test/acc", "mean"),
        test_acc_std=("test/acc", "std"),
        test_acc_min=("test/acc", "min"),
        test_acc_max=("test/acc", "max"),
        val_acc_best_mean=("val/acc_best", "mean"),
        train_loss_mean=("train/loss", "mean"),
        epochs_mean=("epochs", "mean"),
        best_epoch_mean=("best_epoch", "mean"),
        stopped_by_patience=("stopped_by", lambda s: int((s == "patience").sum())),
        still_improving=("still_improving", "sum"),
        val_acc_epoch1_mean=("val_acc_epoch1", "mean"),
        val_acc_final_mean=("val_acc_final", "mean"),
        epochs_to_reach_mean=("epochs_to_reach", "mean"),
        lr_mean=("lr", "mean"),
        params_mean=("params", "mean"),
        sec_per_epoch_mean=("sec_per_epoch", "mean"),
    )
    return summary.sort_values(
        ["test_acc_mean", "condition"], ascending=[False, True], na_position="last"
    ).reset_index(drop=True)


def per_seed(jobs: pd.DataFrame, factor: str, ordered: list[str], metric: str) -> pd.DataFrame:
    """Seed x level: the mean of ``metric`` over the seed's jobs at each level of ``factor``."""
    table = jobs.groupby([SEED, factor])[metric].mean().unstack(factor)
    return table.reindex(columns=ordered)


def paired_differences(
    jobs: pd.DataFrame, levels: dict[str, list[str]]
) -> Iterator[tuple[str, str, str, pd.Series]]:
    """(factor, level, reference, d by seed) of each effect, as :func:`effects` pairs them:
    d_s = mean(test/acc | level, seed s) - mean(test/acc | reference, seed s), over the seeds
    having both (the seeds planner and Stein's intervals read these)."""
    for factor, ordered in levels.items():
        reference = ordered[0]
        test_acc = per_seed(jobs, factor, ordered, "test/acc")
        for level in ordered[1:]:
            yield factor, level, reference, (test_acc[level] - test_acc[reference]).dropna()


def effects(
    jobs: pd.DataFrame,
    levels: dict[str, list[str]],
    halfwidth: float | None = None,
    checked: bool = True,
) -> pd.DataFrame:
    """Effect on test accuracy (points) of each non-reference level of each factor, paired by
    seed, with its budget check.

    d_s = mean(test/acc | level, seed s) - mean(test/acc | reference, seed s); the effect is
    mean_s d_s with the 95% t-interval mean ± t(0.975, n-1)·sd/√n over the n seeds having both
    (``seeds.verdicts`` replaces it by Stein's where the seeds were planned). With several
    factors the means run over the other factors (main effects). Budget check: the same paired
    effect on the best val/acc at half of each job's epochs (``val_effect_mid``) and at its end
    (``val_effect_end``), and :func:`budget_check` on the two (``halfwidth``: the plan's d).
    Not ``checked`` (an annealed budget, whose half-way point is mid-schedule, the learning
    rate still at half its peak): the change is shown, ``settled`` is left blank.
    """
    rows = []
    for factor, ordered in levels.items():
        reference = ordered[0]
        test_acc, mid, end = (per_seed(jobs, factor, ordered, m) for m in METRIC_AT_BUDGET)
        for level in ordered[1:]:
            diffs = (test_acc[level] - test_acc[reference]).dropna()
            mean, low, high = paired_interval(diffs)
            mid_diffs = (mid[level] - mid[reference]).dropna()
            end_diffs = (end[level] - end[reference]).dropna()
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
                    "val_effect_mid": mid_diffs.mean(),
                    "val_effect_end": end_diffs.mean(),
                    **budget_check(mid_diffs, end_diffs, halfwidth),
                }
            )
            if not checked:
                rows[-1]["settled"] = None
    columns = ["factor", "level", "reference", "n", "effect", "ci_low", "ci_high", "half_width"]
    columns += ["excludes_zero", "val_effect_mid", "val_effect_end", "val_change", "change_low"]
    columns += ["change_high", "settled"]
    return pd.DataFrame(rows, columns=columns)


def unpaired_seeds(jobs: pd.DataFrame, levels: dict[str, list[str]]) -> list[str]:
    """One line per level with seeds that no job of its reference level ran: those jobs pair
    with nothing, so they are in no effect (the reference's extra seeds are not listed: a
    planned-seeds sweep runs the reference at the union of its effects' seeds)."""
    lines = []
    for factor, ordered in levels.items():
        reference = ordered[0]
        test_acc = per_seed(jobs, factor, ordered, "test/acc")
        paired_with = set(test_acc.index[test_acc[reference].notna()])
        for level in ordered[1:]:
            ran = set(test_acc.index[test_acc[level].notna()])
            alone = sorted(ran - paired_with)
            if alone:
                lines.append(
                    f"{factor}={level}: seeds {', '.join(map(str, alone))} have no "
                    f"{factor}={reference} job of the same seed (it ran seeds "
                    f"{', '.join(map(str, sorted(paired_with))) or 'none'}), so they pair with "
                    f"nothing and its effect uses n = {len(ran & paired_with)}; run "
                    f"{factor}={reference} at those seeds"
                )
    return lines


def design(levels: dict[str, list[str]]) -> str:
    """One sentence naming the comparison the effects table makes."""
    if len(levels) == 1 and next(iter(levels.values()))[0] == BASELINE:
        return f"one factor at a time: each `{next(iter(levels))}` level vs `{BASELINE}`"
    return "main effects: each level vs its factor's reference level, averaged over the others"


def analyse(sweep: Sweep) -> Analysis:
    """:func:`analyse_runs` of a sweep's records (its runs table and seeds_plan.json)."""
    return analyse_runs(parsed(runs_frame(sweep)), read_plan(sweep.path))


def analyse_runs(runs: pd.DataFrame, plan: dict | None) -> Analysis:
    """The budget, summary, effects, claims and interactions of a runs table's ok jobs;
    ``plan``: its seeds plan (None: the seeds were listed)."""
    budget = study_budget(runs)
    jobs, curves = job_rows(runs, budget)
    levels = factor_levels(runs, jobs)
    baseline_best = jobs.loc[jobs["condition"] == reference_condition(levels), "val/acc_best"]
    jobs["epochs_to_reach"] = epochs_to_reach(curves, jobs, REACHED * baseline_best.mean())
    differences = {(f, lv): d for f, lv, _, d in paired_differences(jobs, levels)}
    halfwidth = plan["halfwidth"] if plan else None
    checked = budget is None or not budget.annealed  # annealed: a pilot checks it (docs)
    main_effects = verdicts(effects(jobs, levels, halfwidth, checked), differences, plan)
    return Analysis(
        runs=runs,
        plan=plan,
        budget=budget,
        jobs=jobs,
        curves=curves,
        shared=shared_overrides(runs),
        levels=levels,
        summary=summarize(jobs),
        effects=main_effects,
        claims=measured_claims(runs, jobs, main_effects, budget),
        interactions=interactions(jobs, levels),
        unpaired=unpaired_seeds(jobs, levels),
    )
