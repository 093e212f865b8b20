"""Tables, effect sizes and figures for one Hydra multirun sweep.

Usage: ``python -m cnn_ablations.report [SWEEP_DIR]`` (default: the latest sweep under
``outputs/sweeps/*/*``). Writes ``SWEEP_DIR/report/``: ``report.md``, ``summary.csv``,
``summary.md``, ``effects.csv``, ``val_acc.png``, ``train_loss.png`` and ``test_acc.png``.

A job is a direct subdirectory of the sweep dir holding ``results.json`` or ``.hydra/``; only
jobs with ``status == "ok"`` enter tables, effects and figures, the others are listed as failed.
"""

import argparse
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from scipy import stats

from cnn_ablations.errors import ConfigError

SWEEPS_ROOT = Path("outputs/sweeps")
SEED_KEY = "seed"
BASELINE = "baseline"
MISSING_LEVEL = "(default)"  # level of a factor in jobs that do not override it
METRICS = ["test/acc", "val/acc_best", "train/loss", "epochs", "params", "sec_per_epoch"]
CURVE_METRICS = ["val/acc", "train/loss"]
SUMMARY_HEADERS = [
    "variant",
    "n",
    "test acc (mean ± std)",
    "test acc [min, max]",
    "val acc best (mean ± std)",
    "val acc best [min, max]",
    "final train loss",
    "epochs",
    "params",
    "s/epoch",
]
EFFECT_HEADERS = [
    "factor",
    "level",
    "vs reference",
    "n seeds",
    "Δ test acc",
    "95% CI",
    "CI excludes 0",
]
TEXT_COLUMNS = {"variant", "factor", "level", "vs"}  # left-aligned in the terminal tables
DPI = 120


@dataclass
class SweepAnalysis:
    """Everything the report shows, computed from one sweep dir."""

    sweep_dir: Path
    jobs: pd.DataFrame  # one row per job dir, ok or not
    shared: list[str]  # overrides given to every ok job (left out of variant labels)
    levels: dict[str, list[str]]  # factor -> levels, reference level first
    summary: pd.DataFrame
    effects: pd.DataFrame

    @property
    def ok(self) -> pd.DataFrame:
        return self.jobs[self.jobs["status"] == "ok"]

    @property
    def failed(self) -> pd.DataFrame:
        return self.jobs[self.jobs["status"] != "ok"]


# --- finding and loading jobs ------------------------------------------------------------------


def find_sweeps(root: Path = SWEEPS_ROOT) -> list[Path]:
    """Sweep dirs ``root/<name>/<timestamp>``, oldest first (timestamp dir name, then mtime)."""
    dirs = [p for p in root.glob("*/*") if p.is_dir()]
    return sorted(dirs, key=lambda p: (p.name, p.stat().st_mtime))


def find_latest_sweep(root: Path = SWEEPS_ROOT) -> Path:
    """The most recent sweep dir under ``root``."""
    sweeps = find_sweeps(root)
    if not sweeps:
        raise ConfigError(f"no sweep found under {root}/*/* (run a sweep or pass SWEEP_DIR)")
    return sweeps[-1]


def override_key(override: str) -> str:
    """``+model.pool=avg`` -> ``model.pool``."""
    return override.split("=", 1)[0].lstrip("+~")


def override_value(override: str) -> str:
    """``model.pool=avg`` -> ``avg``."""
    return override.split("=", 1)[1] if "=" in override else ""


def _job_dirs(sweep_dir: Path) -> list[Path]:
    return sorted(
        p
        for p in sweep_dir.iterdir()
        if p.is_dir() and ((p / "results.json").is_file() or (p / ".hydra").is_dir())
    )


def _read_job(job_dir: Path) -> dict:
    """One job's row: status, error, overrides, seed and the metrics of ``results.json``."""
    results: dict = {}
    error = None
    results_path = job_dir / "results.json"
    if results_path.is_file():
        try:
            results = json.loads(results_path.read_text())
        except json.JSONDecodeError as err:
            error = f"unreadable results.json: {err}"
    else:
        error = "no results.json (job did not finish)"
    overrides = results.get("overrides")
    overrides_path = job_dir / ".hydra" / "overrides.yaml"
    if overrides is None and overrides_path.is_file():
        overrides = yaml.safe_load(overrides_path.read_text())
    overrides = [str(o) for o in overrides or []]
    seeds = [override_value(o) for o in overrides if override_key(o) == SEED_KEY]
    seed = results.get("seed")
    if seed is None and seeds:
        seed = seeds[0]
    metrics = results.get("metrics") or {}
    return {
        "job": job_dir.name,
        "path": job_dir,
        "status": results.get("status", "incomplete") if error is None else "incomplete",
        "error": results.get("error") or error,
        "overrides": overrides,
        "setting": ",".join(o for o in overrides if override_key(o) != SEED_KEY),
        "seed": None if seed is None else int(seed),
        "group": results.get("group"),
        **{m: metrics.get(m) for m in METRICS},
    }


def load_jobs(sweep_dir: Path) -> pd.DataFrame:
    """One row per job dir of ``sweep_dir`` (see the module docstring for what counts)."""
    if not sweep_dir.is_dir():
        raise ConfigError(f"sweep dir {sweep_dir} does not exist")
    job_dirs = _job_dirs(sweep_dir)
    if not job_dirs:
        raise ConfigError(f"{sweep_dir} holds no jobs (no subdirectory with results.json)")
    jobs = pd.DataFrame([_read_job(d) for d in job_dirs])
    jobs[METRICS] = jobs[METRICS].astype(float)
    return jobs


def settings_by_key(jobs: pd.DataFrame) -> pd.DataFrame:
    """Override values per job, one column per override key (seed excluded)."""
    rows = [
        {override_key(o): override_value(o) for o in overrides if override_key(o) != SEED_KEY}
        for overrides in jobs["overrides"]
    ]
    return pd.DataFrame(rows, index=jobs.index, dtype=object).fillna(MISSING_LEVEL)


def factors(jobs: pd.DataFrame) -> list[str]:
    """Override keys (seed excluded) whose value varies across the ok jobs."""
    values = settings_by_key(jobs[jobs["status"] == "ok"])
    return [key for key in values.columns if values[key].nunique() > 1]


def shared_overrides(jobs: pd.DataFrame) -> list[str]:
    """Overrides (seed excluded) that every ok job was given."""
    ok = jobs.loc[jobs["status"] == "ok", "overrides"]
    if ok.empty:
        return []
    common = set.intersection(*(set(o) for o in ok))
    return [o for o in ok.iloc[0] if o in common and override_key(o) != SEED_KEY]


# --- reference levels --------------------------------------------------------------------------


def _split_top_level(text: str) -> list[str]:
    """Split ``a,[1,2],b`` on the commas outside brackets."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += (char in "([{") - (char in ")]}")
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [*parts, text[start:]]


def _sweep_values(value: object) -> list[str]:
    """Levels of one sweep parameter: ``a,b``, ``choice(a,b)`` or a YAML list."""
    if isinstance(value, list):
        return [str(v) for v in value]
    text = str(value).strip()
    choice = re.fullmatch(r"choice\((.*)\)", text)
    if choice:
        text = choice.group(1)
    return [v.strip().strip("'\"") for v in _split_top_level(text)]


def sweep_order(sweep_dir: Path) -> dict[str, list[str]]:
    """Levels per key in the order the sweep lists them (multirun.yaml), if it is there.

    Command-line sweeps (``hydra.overrides.task``) win over ``hydra.sweeper.params``, as in Hydra.
    """
    path = sweep_dir / "multirun.yaml"
    if not path.is_file():
        return {}
    hydra = (yaml.safe_load(path.read_text()) or {}).get("hydra") or {}
    task = (hydra.get("overrides") or {}).get("task") or []
    specs = [(o.split("=", 1)[0], override_value(o)) for o in task]
    specs += list(((hydra.get("sweeper") or {}).get("params") or {}).items())
    order: dict[str, list[str]] = {}
    for key, value in specs:
        order.setdefault(override_key(str(key)), _sweep_values(value))
    return order


def _natural_key(level: str) -> tuple:
    try:
        return (0, float(level), "")
    except ValueError:
        return (1, 0.0, level)


def factor_levels(jobs: pd.DataFrame, order: dict[str, list[str]]) -> dict[str, list[str]]:
    """Levels of each factor, reference first.

    Reference: ``baseline`` if it is a level, else the first level the sweep lists in
    multirun.yaml (``order``), else the first in sorted order (numbers numerically).
    """
    values = settings_by_key(jobs[jobs["status"] == "ok"])
    levels = {}
    for key in factors(jobs):
        found = set(values[key])
        listed = order.get(key, [])
        if found <= set(listed):
            ordered = [level for level in listed if level in found]
        else:
            ordered = sorted(found, key=_natural_key)
        if BASELINE in found:
            ordered = [BASELINE] + [level for level in ordered if level != BASELINE]
        levels[key] = ordered
    return levels


# --- tables ------------------------------------------------------------------------------------


def variant_labels(jobs: pd.DataFrame, shared: list[str]) -> pd.Series:
    """Display label per job: its overrides minus the seed and the overrides all jobs share."""
    return jobs.apply(
        lambda job: (
            ",".join(o for o in job["overrides"] if override_key(o) != SEED_KEY and o not in shared)
            or job["setting"]
            or "(defaults)"
        ),
        axis=1,
    )


def summarize(ok: pd.DataFrame, labels: pd.Series) -> pd.DataFrame:
    """One row per variant: n seeds, mean/std (ddof=1)/min/max of accuracies, means of the rest."""
    frame = ok.assign(variant=labels.loc[ok.index])
    summary = frame.groupby(["variant", "setting"], as_index=False).agg(
        n=("test/acc", "size"),
        test_acc_mean=("test/acc", "mean"),
        test_acc_std=("test/acc", "std"),
        test_acc_min=("test/acc", "min"),
        test_acc_max=("test/acc", "max"),
        val_acc_best_mean=("val/acc_best", "mean"),
        val_acc_best_std=("val/acc_best", "std"),
        val_acc_best_min=("val/acc_best", "min"),
        val_acc_best_max=("val/acc_best", "max"),
        train_loss_mean=("train/loss", "mean"),
        epochs_mean=("epochs", "mean"),
        params_mean=("params", "mean"),
        sec_per_epoch_mean=("sec_per_epoch", "mean"),
    )
    summary = summary.rename(columns={"setting": "overrides"})
    return summary.sort_values(
        ["test_acc_mean", "variant"], ascending=[False, True], na_position="last"
    ).reset_index(drop=True)


def effects(ok: pd.DataFrame, levels: dict[str, list[str]]) -> pd.DataFrame:
    """Effect on test/acc of each non-reference level of each factor, paired by seed.

    d_s = mean(test/acc | level, seed s) - mean(test/acc | reference, seed s); the effect is
    mean_s d_s with the 95% t-interval mean ± t(0.975, n-1)·sd/√n over the n seeds having both.
    With several factors the means run over the other factors (main effects).
    """
    values = settings_by_key(ok)
    rows = []
    for factor, ordered in levels.items():
        reference = ordered[0]
        per_seed = (
            ok.assign(level=values[factor])
            .groupby(["seed", "level"])["test/acc"]
            .mean()
            .unstack("level")
            .reindex(columns=ordered)
        )
        for level in ordered[1:]:
            diffs = (per_seed[level] - per_seed[reference]).dropna()
            n, mean, sd = len(diffs), diffs.mean(), diffs.std(ddof=1)
            half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n) if n >= 2 else math.nan
            rows.append(
                {
                    "factor": factor,
                    "level": level,
                    "reference": reference,
                    "n": n,
                    "effect": mean,
                    "sd": sd,
                    "ci_low": mean - half,
                    "ci_high": mean + half,
                    "excludes_zero": bool(n >= 2 and (mean - half > 0 or mean + half < 0)),
                }
            )
    columns = ["factor", "level", "reference", "n", "effect", "sd", "ci_low", "ci_high"]
    return pd.DataFrame(rows, columns=[*columns, "excludes_zero"])


def analyse_sweep(sweep_dir: Path) -> SweepAnalysis:
    """Load the jobs of ``sweep_dir`` and compute the summary and the effects."""
    jobs = load_jobs(sweep_dir)
    shared = shared_overrides(jobs)
    jobs["variant"] = variant_labels(jobs, shared)
    ok = jobs[jobs["status"] == "ok"]
    levels = factor_levels(jobs, sweep_order(sweep_dir))
    return SweepAnalysis(
        sweep_dir=sweep_dir,
        jobs=jobs,
        shared=shared,
        levels=levels,
        summary=summarize(ok, jobs["variant"]),
        effects=effects(ok, levels),
    )


def design(levels: dict[str, list[str]]) -> str:
    """One sentence naming the comparison the effects table makes."""
    if len(levels) == 1 and next(iter(levels.values()))[0] == BASELINE:
        return f"one factor at a time: each `{next(iter(levels))}` level vs `{BASELINE}`"
    return "main effects: each level vs its factor's reference level, averaged over the others"


# --- display -----------------------------------------------------------------------------------


def _num(value: float, digits: int = 4, sign: bool = False) -> str:
    if pd.isna(value):
        return ""
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _mean_std(mean: float, std: float) -> str:
    return _num(mean) if pd.isna(std) else f"{_num(mean)} ± {_num(std)}"


def summary_display(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary as formatted strings, as summary.md and report.md show it."""
    rows = [
        {
            "variant": row.variant,
            "n": str(row.n),
            "test acc (mean ± std)": _mean_std(row.test_acc_mean, row.test_acc_std),
            "test acc [min, max]": f"[{_num(row.test_acc_min)}, {_num(row.test_acc_max)}]",
            "val acc best (mean ± std)": _mean_std(row.val_acc_best_mean, row.val_acc_best_std),
            "val acc best [min, max]": (
                f"[{_num(row.val_acc_best_min)}, {_num(row.val_acc_best_max)}]"
            ),
            "final train loss": _num(row.train_loss_mean),
            "epochs": _num(row.epochs_mean, 1),
            "params": "" if pd.isna(row.params_mean) else f"{row.params_mean:,.0f}",
            "s/epoch": _num(row.sec_per_epoch_mean, 2),
        }
        for row in summary.itertuples()
    ]
    return pd.DataFrame(rows, columns=SUMMARY_HEADERS)


def effects_display(effects_: pd.DataFrame) -> pd.DataFrame:
    """The effects as formatted strings."""
    rows = [
        {
            "factor": row.factor,
            "level": row.level,
            "vs reference": row.reference,
            "n seeds": str(row.n),
            "Δ test acc": _num(row.effect, sign=True),
            "95% CI": (
                "n < 2: no interval"
                if pd.isna(row.ci_low)
                else f"[{_num(row.ci_low, sign=True)}, {_num(row.ci_high, sign=True)}]"
            ),
            "CI excludes 0": "yes" if row.excludes_zero else "no",
        }
        for row in effects_.itertuples()
    ]
    return pd.DataFrame(rows, columns=EFFECT_HEADERS)


def markdown_table(table: pd.DataFrame, code_columns: tuple[str, ...] = ()) -> str:
    """A GitHub-flavoured markdown table; ``code_columns`` are set in backticks."""

    def cell(column: str, value: str) -> str:
        text = str(value).replace("|", "\\|").replace("\n", " ")
        return f"`{text}`" if column in code_columns and text else text

    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = [
        "| " + " | ".join(cell(c, v) for c, v in zip(table.columns, row, strict=True)) + " |"
        for row in table.itertuples(index=False)
    ]
    return "\n".join([header, rule, *body])


# --- curves and figures ------------------------------------------------------------------------


def epoch_curves(csv_path: Path) -> pd.DataFrame:
    """Per-epoch ``val/acc`` and ``train/loss`` from a CSVLogger file: last non-null per epoch."""
    rows = pd.read_csv(csv_path).dropna(subset=["epoch"])
    present = [m for m in CURVE_METRICS if m in rows.columns]
    curves = rows.groupby("epoch")[present].last().reindex(columns=CURVE_METRICS)
    curves.index = curves.index.astype(int)
    return curves.reset_index()


def sweep_curves(ok: pd.DataFrame) -> pd.DataFrame:
    """Long table (variant, seed, epoch, val/acc, train/loss) over the ok jobs that have a CSV."""
    frames = [
        epoch_curves(job.path / "csv" / "metrics.csv").assign(variant=job.variant, seed=job.seed)
        for job in ok.itertuples()
        if (job.path / "csv" / "metrics.csv").is_file()
    ]
    if not frames:
        return pd.DataFrame(columns=["variant", "seed", "epoch", *CURVE_METRICS])
    return pd.concat(frames, ignore_index=True)


def _colors(variants: list[str]) -> dict[str, tuple]:
    cmap = colormaps["tab10" if len(variants) <= 10 else "tab20"]
    return {v: cmap(i % cmap.N) for i, v in enumerate(variants)}


def _no_data(ax) -> None:
    ax.text(0.5, 0.5, "no completed jobs", ha="center", va="center", transform=ax.transAxes)


def plot_curve(
    curves: pd.DataFrame, metric: str, variants: list[str], title: str, path: Path
) -> None:
    """Mean over seeds per variant and epoch with a ±1 std band (epochs counted from 1)."""
    colors = _colors(variants)
    longest = max((len(v) for v in variants), default=0)
    fig = Figure(figsize=(min(6.5 + 0.075 * longest, 16), 5), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    stats_ = curves.groupby(["variant", "epoch"])[metric].agg(["mean", "std"]).reset_index()
    for variant in variants:
        line = stats_[stats_["variant"] == variant].dropna(subset=["mean"])
        if line.empty:
            continue
        epoch = line["epoch"] + 1
        n = curves.loc[curves["variant"] == variant, "seed"].nunique()
        ax.plot(epoch, line["mean"], marker="o", color=colors[variant], label=f"{variant} (n={n})")
        band = line["std"].fillna(0)
        ax.fill_between(
            epoch, line["mean"] - band, line["mean"] + band, color=colors[variant], alpha=0.2
        )
    if stats_["mean"].notna().any():
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=9, title="variant")
    else:
        _no_data(ax)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="epoch", ylabel=metric, title=title)
    ax.grid(alpha=0.3)
    fig.savefig(path)


def plot_test_acc(summary: pd.DataFrame, ok: pd.DataFrame, title: str, path: Path) -> None:
    """Horizontal bars of mean test accuracy (best on top), std error bars, seeds as dots."""
    colors = _colors(list(summary["variant"]))
    fig = Figure(figsize=(9, 1.5 + 0.55 * max(len(summary), 1)), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    for y, row in enumerate(summary.itertuples()):
        std = 0.0 if pd.isna(row.test_acc_std) else row.test_acc_std
        ax.barh(y, row.test_acc_mean, xerr=std, color=colors[row.variant], alpha=0.8, capsize=4)
        seeds = ok.loc[ok["variant"] == row.variant, "test/acc"]
        ax.plot(seeds, [y] * len(seeds), "k.", alpha=0.6)
        ax.annotate(
            _mean_std(row.test_acc_mean, row.test_acc_std),
            (max(row.test_acc_mean + std, seeds.max()), y),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=9,
        )
    if summary.empty:
        _no_data(ax)
    ax.set_yticks(range(len(summary)), summary["variant"])
    ax.invert_yaxis()
    ax.set_xlim(0, 1.3 * (ok["test/acc"].max() if ok["test/acc"].notna().any() else 1.0))
    ax.set(xlabel="test accuracy (bars: mean ± std over seeds; dots: seeds)", title=title)
    ax.grid(axis="x", alpha=0.3)
    fig.savefig(path)


# --- report ------------------------------------------------------------------------------------


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def render_report(analysis: SweepAnalysis) -> str:
    """The text of report.md (figures and CSVs linked by relative path)."""
    ok, failed = analysis.ok, analysis.failed
    sweep_dir = analysis.sweep_dir
    groups = sorted(set(ok["group"].dropna()) | set(failed["group"].dropna()))
    lines = [
        f"# Ablation report: {sweep_dir.parent.name} ({sweep_dir.name})",
        "",
        f"- Sweep dir: `{_display_path(sweep_dir)}`",
        f"- W&B group: {', '.join(f'`{g}`' for g in groups) or 'unknown'}",
        f"- Jobs: {len(ok)} ok, {len(failed)} failed (failed jobs are in no table or figure)",
    ]
    if analysis.shared:
        shared = ", ".join(f"`{o}`" for o in analysis.shared)
        lines.append(f"- Overrides shared by all jobs (left out of variant labels): {shared}")
    lines += [
        "",
        "## Summary",
        "",
        "One row per variant, best mean test accuracy first; mean ± sample std (ddof=1) over "
        "seeds, blank std for n = 1. Final train loss, epochs, params and s/epoch are means. "
        "Data: [summary.csv](summary.csv).",
        "",
        markdown_table(summary_display(analysis.summary), code_columns=("variant",)),
        "",
        "## Effects on test accuracy",
        "",
    ]
    if analysis.levels:
        effects_table = effects_display(analysis.effects)
        excludes = effects_table["CI excludes 0"]
        effects_table["CI excludes 0"] = excludes.replace({"yes": "**yes**"})
        lines += [
            f"Design: {design(analysis.levels)}. For each seed s, d_s = mean test acc at the "
            "level − mean test acc at the reference (same seed); Δ = mean of d_s over the n "
            "seeds, 95% CI = Δ ± t(0.975, n−1)·sd(d_s)/√n (paired by seed, t-based). Reference "
            f"level: `{BASELINE}` if present, else the first value the sweep lists in "
            "multirun.yaml, else the first in sorted order. **yes** = the interval excludes 0. "
            "Data: [effects.csv](effects.csv).",
            "",
            markdown_table(effects_table, code_columns=("factor", "level", "vs reference")),
        ]
    else:
        lines.append("No override varies across the completed jobs: there is nothing to compare.")
    lines += [
        "",
        "## Figures",
        "",
        "![Validation accuracy per epoch, mean ± 1 std over seeds](val_acc.png)",
        "",
        "![Train loss per epoch, mean ± 1 std over seeds](train_loss.png)",
        "",
        "![Mean test accuracy per variant with std error bars](test_acc.png)",
        "",
        "## Failed jobs",
        "",
    ]
    lines += [
        f"- `{job.job}`: {job.error or 'status ' + job.status}" for job in failed.itertuples()
    ]
    if failed.empty:
        lines.append("None.")
    return "\n".join(lines) + "\n"


def write_report(analysis: SweepAnalysis) -> Path:
    """Write CSVs, markdown and figures into ``SWEEP_DIR/report/``; return that dir."""
    out = analysis.sweep_dir / "report"
    out.mkdir(exist_ok=True)
    analysis.summary.to_csv(out / "summary.csv", index=False)
    analysis.effects.to_csv(out / "effects.csv", index=False)
    table = markdown_table(summary_display(analysis.summary), code_columns=("variant",))
    (out / "summary.md").write_text(table + "\n")
    name = analysis.sweep_dir.parent.name
    variants = list(analysis.summary["variant"])
    curves = sweep_curves(analysis.ok)
    plot_curve(curves, "val/acc", variants, f"{name}: validation accuracy", out / "val_acc.png")
    plot_curve(curves, "train/loss", variants, f"{name}: train loss", out / "train_loss.png")
    plot_test_acc(analysis.summary, analysis.ok, f"{name}: test accuracy", out / "test_acc.png")
    (out / "report.md").write_text(render_report(analysis))
    return out


def _rich_table(title: str, table: pd.DataFrame, width: int) -> Table:
    """Numbers are never cut: text columns share what is left of ``width`` and fold."""
    widths = {c: max(len(c), *table[c].astype(str).str.len()) for c in table.columns}
    numeric = [c for c in table.columns if c not in TEXT_COLUMNS]
    left = width - sum(widths[c] for c in numeric) - 3 * len(table.columns)
    text_width = max(left // max(len(table.columns) - len(numeric), 1), 8)
    rich_table = Table(title=title, box=box.SIMPLE_HEAD)
    for column in table.columns:
        if column in numeric:
            rich_table.add_column(column, justify="right", min_width=widths[column])
        else:
            rich_table.add_column(
                column, overflow="fold", min_width=min(widths[column], text_width)
            )
    for row in table.itertuples(index=False):
        rich_table.add_row(*(escape(str(v)) for v in row))
    return rich_table


def print_report(analysis: SweepAnalysis, console: Console) -> None:
    """Compact summary and effects tables (all columns are in report.md), then failed jobs."""
    summary = pd.DataFrame(
        {
            "variant": analysis.summary["variant"],
            "n": analysis.summary["n"],
            "test acc": analysis.summary["test_acc_mean"].map(_num),
            "± std": analysis.summary["test_acc_std"].map(_num),
            "val best": analysis.summary["val_acc_best_mean"].map(_num),
            "loss": analysis.summary["train_loss_mean"].map(_num),
            "s/ep": analysis.summary["sec_per_epoch_mean"].map(lambda x: _num(x, 2)),
        }
    )
    effects_ = analysis.effects
    effects_table = pd.DataFrame(
        {
            "factor": effects_["factor"],
            "level": effects_["level"],
            "vs": effects_["reference"],
            "n": effects_["n"],
            "Δ acc": effects_["effect"].map(lambda x: _num(x, sign=True)),
            "CI lo": effects_["ci_low"].map(lambda x: _num(x, sign=True)),
            "CI hi": effects_["ci_high"].map(lambda x: _num(x, sign=True)),
            "≠0": effects_["excludes_zero"].map({True: "yes", False: "no"}),
        }
    )
    name = analysis.sweep_dir.parent.name
    if not summary.empty:
        title = f"{name}: summary (mean over seeds; loss = final train loss)"
        console.print(_rich_table(title, summary, console.width))
    if not effects_table.empty:
        title = "Effects on test acc (paired by seed, t-based 95% CI; ≠0: CI excludes 0)"
        console.print(_rich_table(title, effects_table, console.width))
    for job in analysis.failed.itertuples():
        console.print(f"[red]failed[/red] {escape(job.job)}: {escape(str(job.error))}")


def build_report(sweep_dir: Path | str, console: Console | None = None) -> Path:
    """Analyse ``sweep_dir``, write ``sweep_dir/report/`` and return its path.

    Prints the tables to ``console`` if one is given.
    """
    analysis = analyse_sweep(Path(sweep_dir))
    out = write_report(analysis)
    if console is not None:
        print_report(analysis, console)
        console.print(f"Report: {_display_path(out / 'report.md')}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cnn_ablations.report",
        description="Tables, effect sizes and figures for a Hydra multirun sweep.",
    )
    parser.add_argument(
        "sweep_dir",
        nargs="?",
        type=Path,
        help=f"sweep dir (default: the latest under {SWEEPS_ROOT}/*/*)",
    )
    args = parser.parse_args(argv)
    try:
        build_report(args.sweep_dir or find_latest_sweep(), Console())
    except ConfigError as err:
        print(f"report: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
