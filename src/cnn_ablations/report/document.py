"""Write ``SWEEP_DIR/report/`` (report.md, CSVs, figures) and print the tables to a terminal."""

from pathlib import Path

from rich.console import Console
from rich.markup import escape

from cnn_ablations.report.figures import write_figures
from cnn_ablations.report.stats import BASELINE, Analysis, analyse, design
from cnn_ablations.report.tables import effects_table, summary_table
from cnn_ablations.sweep import Sweep, load_sweep

REPORT_DIR = "report"


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def render_markdown(analysis: Analysis, figures: list[str]) -> str:
    """The text of report.md (figures and CSVs linked by relative path)."""
    sweep = analysis.sweep
    lines = [
        f"# Ablation report: {sweep.name} ({sweep.path.name})",
        "",
        f"- Sweep dir: `{_display_path(sweep.path)}`",
        f"- W&B group: {', '.join(f'`{g}`' for g in sweep.groups) or 'unknown'}",
        f"- Jobs: {len(sweep.ok)} ok, {len(sweep.failed)} failed "
        "(failed jobs are in no table or figure)",
    ]
    if analysis.shared:
        shared = ", ".join(f"`{o}`" for o in analysis.shared)
        lines.append(f"- Overrides shared by all jobs (left out of condition labels): {shared}")
    lines += [
        "",
        "## Summary",
        "",
        "One row per condition, best mean test accuracy first; mean and sample std (ddof=1) over "
        "seeds, blank std for n = 1. Final train loss, epochs, params and s/epoch are means. "
        "Data: [summary.csv](summary.csv).",
        "",
        summary_table(analysis).to_markdown(),
        "",
        "## Effects on test accuracy",
        "",
    ]
    if analysis.levels:
        lines += [
            f"Design: {design(analysis.levels)}. For each seed s, d_s = mean test acc at the "
            "level − mean test acc at the reference (same seed); Δ = mean of d_s over the n "
            "seeds, 95% CI = Δ ± t(0.975, n−1)·sd(d_s)/√n (paired by seed, t-based). Reference "
            f"level: `{BASELINE}` if present, else the first value the sweep lists in "
            "multirun.yaml, else the first in sorted order. **yes** = the interval excludes 0. "
            "Data: [effects.csv](effects.csv).",
            "",
            effects_table(analysis).to_markdown(),
        ]
    else:
        lines.append("No override varies across the completed jobs: there is nothing to compare.")
    lines += ["", "## Figures", ""]
    for name in figures:
        lines += [f"![{name.removesuffix('.png').replace('_', ' ')}]({name})", ""]
    lines += ["## Failed jobs", ""]
    lines += [f"- `{job.name}`: {job.error or 'status ' + job.status}" for job in sweep.failed]
    if not sweep.failed:
        lines.append("None.")
    return "\n".join(lines) + "\n"


def write_report(analysis: Analysis) -> Path:
    """Write CSVs, markdown and figures into ``SWEEP_DIR/report/``; return that dir."""
    out = analysis.sweep.path / REPORT_DIR
    out.mkdir(exist_ok=True)
    summary, effects = summary_table(analysis), effects_table(analysis)
    summary.to_csv(out / "summary.csv")
    effects.to_csv(out / "effects.csv")
    (out / "summary.md").write_text(summary.to_markdown() + "\n")
    figures = write_figures(analysis, out)
    (out / "report.md").write_text(render_markdown(analysis, figures))
    return out


def print_report(analysis: Analysis, console: Console) -> None:
    """The summary and effects tables, then the failed jobs."""
    for table in (summary_table(analysis), effects_table(analysis)):
        if not table.data.empty:
            console.print(table.to_rich(console.width))
    for job in analysis.sweep.failed:
        console.print(f"[red]failed[/red] {escape(job.name)}: {escape(str(job.error))}")


def build_report(sweep: Sweep | Path | str, console: Console | None = None) -> Path:
    """Analyse a sweep (or sweep dir), write its report dir and return it; print the tables to
    ``console`` if one is given."""
    analysis = analyse(sweep if isinstance(sweep, Sweep) else load_sweep(sweep))
    out = write_report(analysis)
    if console is not None:
        print_report(analysis, console)
        console.print(f"Report: {_display_path(out / 'report.md')}")
    return out
