"""The report's figures: the effects as a forest plot, per-epoch curves (mean ± std over seeds),
test accuracy per condition."""

from pathlib import Path

import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from cnn_ablations.report.budget_check import unsettled
from cnn_ablations.report.seeds import INCONCLUSIVE, RESOLVED
from cnn_ablations.report.stats import Analysis

DPI = 120
LABELS = {"val/acc": "val/acc %"}  # the curves' axis labels: accuracies in percent


def _colors(conditions: list[str]) -> dict[str, tuple]:
    cmap = colormaps["tab10" if len(conditions) <= 10 else "tab20"]
    return {c: cmap(i % cmap.N) for i, c in enumerate(conditions)}


def _no_data(ax) -> None:
    ax.text(0.5, 0.5, "no completed jobs", ha="center", va="center", transform=ax.transAxes)


def plot_curve(curves: pd.DataFrame, metric: str, order: list[str], title: str, path: Path) -> None:
    """Mean over seeds per condition and epoch with a ±1 std band (epochs counted from 1)."""
    colors = _colors(order)
    longest = max((len(c) for c in order), default=0)
    fig = Figure(figsize=(min(6.5 + 0.075 * longest, 16), 5), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    stats_ = curves.groupby(["condition", "epoch"])[metric].agg(["mean", "std"]).reset_index()
    for condition in order:
        line = stats_[stats_["condition"] == condition].dropna(subset=["mean"])
        if line.empty:
            continue
        epoch = line["epoch"] + 1
        n = curves.loc[curves["condition"] == condition, "seed"].nunique()
        color = colors[condition]
        ax.plot(epoch, line["mean"], marker="o", color=color, label=f"{condition} (n={n})")
        band = line["std"].fillna(0)
        ax.fill_between(epoch, line["mean"] - band, line["mean"] + band, color=color, alpha=0.2)
    if stats_["mean"].notna().any():
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=9, title="condition")
    else:
        _no_data(ax)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="epoch", ylabel=LABELS.get(metric, metric), title=title)
    ax.grid(alpha=0.3)
    fig.savefig(path)


def accuracy_limits(values: pd.Series) -> tuple[float, float]:
    """An axis (percent) zoomed to where the accuracies differ, never past [0, 100]."""
    values = values.dropna()
    if values.empty:
        return 0.0, 100.0
    low, high = values.min(), values.max()
    margin = max(0.25 * (high - low), 1.0)
    return max(0.0, low - margin), min(100.0, high + margin)


def plot_test_acc(analysis: Analysis, title: str, path: Path) -> None:
    """Mean test accuracy per condition (best on top), ± std error bars, seeds as dots."""
    summary, jobs = analysis.summary, analysis.jobs
    colors = _colors(list(summary["condition"]))
    fig = Figure(figsize=(9, 1.5 + 0.55 * max(len(summary), 1)), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    for y, row in enumerate(summary.itertuples()):
        std = 0.0 if pd.isna(row.test_acc_std) else row.test_acc_std
        color = colors[row.condition]
        ax.errorbar(row.test_acc_mean, y, xerr=std, fmt="s", color=color, capsize=4, ms=8)
        seeds = jobs.loc[jobs["condition"] == row.condition, "test/acc"]
        ax.plot(seeds, [y] * len(seeds), "k.", alpha=0.6)
    if summary.empty:
        _no_data(ax)
    ax.set_yticks(range(len(summary)), summary["condition"])
    ax.invert_yaxis()
    ax.set_xlim(*accuracy_limits(jobs["test/acc"]))
    ax.set(xlabel="test accuracy % (squares: mean ± std over seeds; dots: seeds)", title=title)
    ax.grid(axis="x", alpha=0.3)
    fig.savefig(path)


def short_verdict(verdict: str) -> str:
    """``resolved``, ``within ±1`` (no practical difference) or ``inconclusive``."""
    if verdict in (RESOLVED, INCONCLUSIVE):
        return verdict.removesuffix(" at this n")
    return verdict.split("(")[-1].rstrip(")")  # "no practical difference (within ±1)"


def plot_effects(analysis: Analysis, title: str, path: Path) -> None:
    """Forest plot: each level's Δ test accuracy vs its reference with its verdict's 95%
    interval (Stein's where the seeds were planned), one row per level, grouped by factor, a
    zero line and, with planned seeds, the ±d band of "no practical difference". Blue and
    filled: resolved after Holm's correction; each label ends with the verdict; a diamond and
    "not settled": the budget check finds the effect still moving."""
    effects = analysis.effects
    fig = Figure(figsize=(10, 1.6 + 0.42 * max(len(effects), 1)), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    plan = analysis.plan
    if plan:
        d = plan["halfwidth"]
        ax.axvspan(-d, d, color="tab:green", alpha=0.08, lw=0, label=f"within ±{d:g}")
    labels, positions, y = [], [], 0.0
    for factor, rows in effects.groupby("factor", sort=False):
        for row in rows.itertuples():
            color = "tab:blue" if row.resolved else "tab:gray"
            if pd.notna(row.ci_low):
                ax.plot([row.ci_low, row.ci_high], [y, y], color=color, lw=2)
            moving = unsettled(row.settled)
            face = color if row.resolved else "white"
            ax.plot(row.effect, y, "D" if moving else "o", color=color, markerfacecolor=face, ms=7)
            verdict = short_verdict(row.verdict)
            note = f"{verdict}, not settled" if moving else verdict
            labels.append(f"{factor}: {row.level} vs {row.reference} ({note})")
            positions.append(y)
            y += 1
        y += 0.5  # a gap between factors
    if effects.empty:
        _no_data(ax)
    ax.axvline(0, color="black", lw=1)
    ax.set_yticks(positions, labels)
    ax.invert_yaxis()
    ax.set_xlabel("Δ test accuracy, points: the verdict's 95% interval (filled: resolved, Holm)")
    fig.suptitle(f"{title}\n{analysis.budget.sentence if analysis.budget else 'mixed budgets'}")
    ax.grid(axis="x", alpha=0.3)
    fig.savefig(path)


def write_figures(analysis: Analysis, out: Path) -> list[str]:
    """Write the report's figures into ``out``; return their file names."""
    name = analysis.sweep.partition("/")[0]
    order = list(analysis.summary["condition"])
    figures = []
    if analysis.levels:
        plot_effects(analysis, f"{name}: effects on test accuracy", out / "effects.png")
        figures.append("effects.png")
    curves = analysis.curves
    plot_curve(curves, "val/acc", order, f"{name}: validation accuracy %", out / "val_acc.png")
    plot_curve(curves, "train/loss", order, f"{name}: train loss", out / "train_loss.png")
    plot_test_acc(analysis, f"{name}: test accuracy", out / "test_acc.png")
    return [*figures, "val_acc.png", "train_loss.png", "test_acc.png"]
