"""The report's figures: per-epoch curves (mean ± std over seeds), test accuracy per condition."""

from pathlib import Path

import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from cnn_ablations.report.stats import Analysis

CURVE_METRICS = ["val/acc", "train/loss"]
DPI = 120


def epoch_curves(csv_path: Path) -> pd.DataFrame:
    """Per-epoch ``val/acc`` and ``train/loss`` from a CSVLogger file: last non-null per epoch."""
    rows = pd.read_csv(csv_path).dropna(subset=["epoch"])
    present = [m for m in CURVE_METRICS if m in rows.columns]
    curves = rows.groupby("epoch")[present].last().reindex(columns=CURVE_METRICS)
    curves.index = curves.index.astype(int)
    return curves.reset_index()


def sweep_curves(jobs: pd.DataFrame) -> pd.DataFrame:
    """Long table (condition, seed, epoch, val/acc, train/loss) over the jobs with a CSV."""
    frames = [
        epoch_curves(job.path / job.metrics_csv).assign(condition=job.condition, seed=job.seed)
        for job in jobs.itertuples()
        if isinstance(job.metrics_csv, str) and (job.path / job.metrics_csv).is_file()
    ]
    if not frames:
        return pd.DataFrame(columns=["condition", "seed", "epoch", *CURVE_METRICS])
    return pd.concat(frames, ignore_index=True)


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
    ax.set(xlabel="epoch", ylabel=metric, title=title)
    ax.grid(alpha=0.3)
    fig.savefig(path)


def accuracy_limits(values: pd.Series) -> tuple[float, float]:
    """An axis zoomed to where the accuracies differ, never past [0, 1]."""
    values = values.dropna()
    if values.empty:
        return 0.0, 1.0
    low, high = values.min(), values.max()
    margin = max(0.25 * (high - low), 0.01)
    return max(0.0, low - margin), min(1.0, high + margin)


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
    ax.set(xlabel="test accuracy (squares: mean ± std over seeds; dots: seeds)", title=title)
    ax.grid(axis="x", alpha=0.3)
    fig.savefig(path)


def write_figures(analysis: Analysis, out: Path) -> list[str]:
    """Write the report's figures into ``out``; return their file names."""
    name = analysis.sweep.name
    order = list(analysis.summary["condition"])
    curves = sweep_curves(analysis.jobs)
    plot_curve(curves, "val/acc", order, f"{name}: validation accuracy", out / "val_acc.png")
    plot_curve(curves, "train/loss", order, f"{name}: train loss", out / "train_loss.png")
    plot_test_acc(analysis, f"{name}: test accuracy", out / "test_acc.png")
    return ["val_acc.png", "train_loss.png", "test_acc.png"]
