"""Write ``SWEEP_DIR/report/`` (runs.csv, then report.md, CSVs and figures computed from it) and
print the tables to a terminal."""

import shutil
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.markup import escape

from cnn_ablations.budget import CONVERGED
from cnn_ablations.report.figures import write_figures
from cnn_ablations.report.planning import replanned
from cnn_ablations.report.runs import RUNS_FILE, parsed, read_runs, runs_frame
from cnn_ablations.report.seeds import EQUIVALENT
from cnn_ablations.report.stats import BASELINE, OK, Analysis, analyse_runs, design
from cnn_ablations.report.tables import (
    claims_table,
    effects_table,
    interactions_table,
    summary_table,
)
from cnn_ablations.sweepdir import Sweep, load_sweep, read_plan

REPORT_DIR = "report"
UNBOUNDED_WIDTH = 10_000  # columns of a console that is no terminal: tables are never cut


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def answer(analysis: Analysis) -> str:
    """The study's answer in a sentence: how many effects it resolves (each on its own, and as a
    family: Holm), with how many seeds and how finely, in the verdicts' intervals (Stein's
    where the seeds were planned)."""
    effects = analysis.effects
    if effects.empty:
        return (
            "No override varies across the completed jobs: there is nothing to compare, so no "
            "effect and no verdict (sweep a key besides the seed, e.g. model.activation=relu,tanh)."
        )
    excluding = int(effects["excludes_zero"].sum())
    resolved = int(effects["resolved"].sum())
    half = effects["half_width"].dropna()
    finest = f"; 95% intervals ±{half.min():.2f} to ±{half.max():.2f} points" if len(half) else ""
    sentence = (
        f"{resolved} of {len(effects)} effects resolved after Holm's correction across them "
        f"({excluding} of the 95% intervals exclude 0 one by one) with "
        f"{span(effects['n'])} seeds{finest}."
    )
    return sentence + seeds_plan_answer(analysis)


def span(values) -> str:
    """``4`` or ``4 to 10``: the range of a count."""
    low, high = int(values.min()), int(values.max())
    return f"{low}" if low == high else f"{low} to {high}"


def seeds_plan_answer(analysis: Analysis) -> str:
    """For a sweep whose seeds were planned (adaptive_seeds): how many effects its verdicts
    find equivalent to the reference."""
    plan, effects = analysis.plan, analysis.effects
    if plan is None or effects["n_needed"].isna().all():
        return ""
    d = plan["halfwidth"]
    equivalent = int((effects["verdict"] == EQUIVALENT.format(d=d)).sum())
    return (
        f" Seeds planned per effect by Stein's rule for ±{d:g} points (Stein's intervals); "
        f"{equivalent} with no practical difference (within ±{d:g})."
    )


def question(analysis: Analysis) -> str:
    """The question the study answers: its budget, or that its jobs' budgets differ."""
    if analysis.budget is None:
        return "Budget: the jobs trained for different budgets; the effects mix them."
    return f"Budget: {analysis.budget.sentence}."


def training_columns(analysis: Analysis) -> str:
    """What the summary's training columns are, as the budget chooses them."""
    if analysis.budget is not None and analysis.budget.annealed:
        return "Epochs trained and the best epoch (the checkpoint tested)."
    if analysis.budget is not None and analysis.budget.kind == CONVERGED:
        return (
            "Epochs trained, the best epoch (the checkpoint tested), how many jobs early "
            "stopping ended, and how many hit the cap still improving."
        )
    return (
        "Learning speed: validation accuracy after epoch 1 and at the end, and the epochs to "
        "reach 95% of the baseline's best validation accuracy."
    )


def compute_line(runs: pd.DataFrame) -> str | None:
    """How the ok jobs' numbers were computed (results.json's ``compute``), e.g. ``precision
    32-true, channels-last, 1 thread per job, 2 jobs at once, cpu AMD EPYC``; a fact that
    differs between jobs lists its values."""
    ok = runs[(runs["status"] == OK) & runs["precision"].notna()]
    if ok.empty:
        return None

    def values(name: str) -> str:
        found = {str(int(v)) if isinstance(v, float) else str(v) for v in ok[name]}
        return "/".join(sorted(found))

    layout = values("memory_format").replace("channels_last", "channels-last")
    return (
        f"precision {values('precision')}, {layout}, {values('threads')} thread(s) per job, "
        f"{values('parallel_jobs')} job(s) at once, on {values('device')} ({values('cpu')})"
    )


def still_improving(analysis: Analysis) -> list[str]:
    """The jobs that hit the epoch cap while still improving (converged studies)."""
    jobs = analysis.jobs
    return list(jobs.loc[jobs["still_improving"], "job"])


def render_markdown(analysis: Analysis, figures: list[str]) -> str:
    """The text of report.md (figures and CSVs linked by relative path)."""
    runs, failed = analysis.runs, analysis.failed
    name, _, sweep_id = analysis.sweep.partition("/")
    groups = sorted(runs["wandb_group"].dropna().unique())
    lines = [f"# Ablation report: {name} ({sweep_id})", ""]
    lines += [f"**{question(analysis)}**", ""]
    if "effects.png" in figures:
        lines += ["![Effects on test accuracy, 95% CI](effects.png)", ""]
    lines += [
        f"**{answer(analysis)}**",
        "",
        f"- Sweep: `{analysis.sweep}` (under `<paths.output_root>/sweeps/`)",
        f"- W&B group: {', '.join(f'`{g}`' for g in groups) or 'unknown'}",
        f"- Jobs: {len(runs) - len(failed)} ok, {len(failed)} failed "
        f"(failed jobs are in no table or figure); one row per job, what every table and "
        f"figure here is computed from: [{RUNS_FILE}]({RUNS_FILE})",
    ]
    computed = compute_line(runs)
    if computed:
        lines.append(f"- Computed with: {computed}")
    if analysis.shared:
        shared = ", ".join(f"`{o}`" for o in analysis.shared)
        lines.append(f"- Overrides shared by all jobs (left out of condition labels): {shared}")
    for line in analysis.unpaired:
        lines.append(f"- **Unpaired seeds:** {line}")
    capped = still_improving(analysis)
    if capped:
        names = ", ".join(f"`{name}`" for name in capped)
        lines.append(
            f"- **{len(capped)} jobs hit the epoch cap while still improving** (best epoch within "
            f"the patience of the end; raise trainer.max_epochs): {names}"
        )
    lines += [
        "",
        "## Effects on test accuracy",
        "",
    ]
    if analysis.levels:
        lines += [
            f"Design: {design(analysis.levels)}. For each seed s, d_s = mean test acc at the "
            "level − mean test acc at the reference (same seed); Δ = mean of d_s over the n "
            "seeds. **One interval per effect, the verdict's**, here and in the figure, the "
            "claims and the W&B Report: where the seeds were planned (`hydra/sweeper="
            "adaptive_seeds`), Stein's two-stage interval Δ ± t(0.975, n1−1)·s1/√n (n1, s1: the "
            "first stage's seeds and their sd), valid although the data chose n; else the paired "
            "t-interval Δ ± t(0.975, n−1)·sd(d_s)/√n. The ordinary t-interval of a planned "
            "effect, which ignores that n was chosen, is a secondary column. Reference level: "
            f"`{BASELINE}` if present, else the first value the sweep lists in multirun.yaml, "
            "else the first in sorted order. **yes** = the interval excludes 0. *Resolved "
            "(Holm)*: p < 0.05 after Holm's correction across these effects (Holm 1979: the "
            "family-wise error rate ≤ 5%). Verdict: resolved (its direction is the sign of Δ), "
            "else *no practical difference (within ±d)* when the whole 95% interval lies inside "
            "±d (d: the seeds plan's half-width): two one-sided tests at 2.5% each, one effect "
            "at a time (no correction across the effects: each equivalence is a 2.5% error rate "
            "per side), else *inconclusive at this n*: no direction is claimed (an interval "
            "may exclude 0 one by one and not be resolved after Holm). *Budget check*: per "
            "seed, the change of the paired effect on the best "
            "validation accuracy from half of each job's epochs to its end; the effect is **not "
            "settled at this budget** (a diamond in the figure) when that change's 95% "
            "interval excludes 0, or when the effect's direction reverses between the two "
            "points (its validation interval higher at one, lower at the other): more training "
            "could change it. With an annealed budget (the learning rate decayed to 0 over the "
            "epochs) half-way is mid-schedule, the rate still at half its peak, so every effect "
            "is still on its way there: the change is shown but not judged, and the budget is "
            "checked instead by a pilot at twice the epochs (docs/sweeps.md). "
            "Data: [effects.csv](effects.csv), one row per job: [runs.csv](runs.csv).",
            "",
            effects_table(analysis).to_markdown(),
        ]
    else:
        lines.append("No table: the completed jobs differ in nothing but the seed.")
    claims = claims_table(analysis)
    if not claims.data.empty:
        lines += [
            "",
            "## What the literature reports",
            "",
            "Each claim is about converged training or about the speed of learning (*about*); "
            "this study judges only the claims of its own budget, the others read *not tested "
            "at this budget*. Each judged claim set against this sweep's effect: *agrees* when "
            "the effect is resolved (Holm, as in the effects table) on the claimed side, "
            "*contradicts* when on the other side, else the effect's verdict: *no practical "
            "difference (within ±d)* or *inconclusive at this n*. Data: [claims.csv](claims.csv).",
            "",
            claims.to_markdown(),
        ]
    if not analysis.interactions.empty:
        lines += [
            "",
            "## Interactions",
            "",
            "Two-way interactions from an OLS model with every factor's main effect, seed as a "
            "block and the pair's interaction (statsmodels; p: the pair's type-2 ANOVA F-test). "
            "For two-level factors the estimate is (A's effect at B's level) − (A's effect at "
            "B's reference). Data: [interactions.csv](interactions.csv).",
            "",
            interactions_table(analysis).to_markdown(),
        ]
    lines += [
        "",
        "## Summary",
        "",
        "One row per condition, best mean test accuracy first; mean and sample std (ddof=1) over "
        f"seeds, blank std for n = 1. {training_columns(analysis)} "
        "Data: [summary.csv](summary.csv).",
        "",
        summary_table(analysis).to_markdown(),
        "",
        "## Figures",
        "",
    ]
    for name in figures:
        if name != "effects.png":
            lines += [f"![{name.removesuffix('.png').replace('_', ' ')}]({name})", ""]
    lines += ["## Failed jobs", ""]
    lines += [
        f"- `{job}`: {error if isinstance(error, str) else 'status ' + status}"
        for job, status, error in failed.itertuples(index=False)
    ]
    if failed.empty:
        lines.append("None.")
    return "\n".join(lines) + "\n"


def write_report(analysis: Analysis, out: Path) -> Path:
    """Write CSVs, markdown and figures into ``out`` (runs.csv is already there); return it."""
    summary = summary_table(analysis)
    summary.to_csv(out / "summary.csv")
    effects_table(analysis).to_csv(out / "effects.csv")
    claims_table(analysis).to_csv(out / "claims.csv")
    if not analysis.interactions.empty:
        interactions_table(analysis).to_csv(out / "interactions.csv")
    (out / "summary.md").write_text(summary.to_markdown() + "\n")
    figures = write_figures(analysis, out)
    (out / "report.md").write_text(render_markdown(analysis, figures))
    return out


def report_console() -> Console:
    """Rich's console on stdout; where stdout is no terminal (a file, a pipe, a cluster job's
    log) rich would cut every table at 80 columns, so there it has no width limit."""
    console = Console()
    return console if console.is_terminal else Console(width=UNBOUNDED_WIDTH)


def print_report(analysis: Analysis, console: Console, brief: bool = False) -> None:
    """The summary, effects, claims and interactions tables (``brief``: the effects table
    alone, as a sweep ends), the answer, the failed jobs."""
    console.print(f"[bold]{escape(question(analysis))}[/bold]")
    tables = [effects_table] if brief else [summary_table, effects_table, claims_table]
    for table in (make(analysis) for make in tables + ([] if brief else [interactions_table])):
        if not table.data.empty:
            console.print(table.to_rich(console.width))
    console.print(f"[bold]{escape(answer(analysis))}[/bold]")
    for line in analysis.unpaired:
        console.print(f"[yellow]unpaired seeds[/yellow] {escape(line)}")
    for name in still_improving(analysis):
        console.print(f"[yellow]at the cap, still improving[/yellow] {escape(name)}")
    for job, _, error in analysis.failed.itertuples(index=False):
        console.print(f"[red]failed[/red] {escape(job)}: {escape(str(error))}")


def build_report(
    sweep: Sweep | Path | str, console: Console | None = None, brief: bool = False
) -> Path:
    """Write a sweep's (or sweep dir's) runs.csv into its report dir, then the report computed
    from it; return the dir. Print the tables (``brief``: the answer and the effects table) to
    ``console`` if one is given."""
    sweep = sweep if isinstance(sweep, Sweep) else load_sweep(sweep)
    out = sweep.path / REPORT_DIR
    out.mkdir(exist_ok=True)
    runs = runs_frame(sweep)
    runs.to_csv(out / RUNS_FILE, index=False)
    analysis = analyse_runs(parsed(runs), read_plan(sweep.path))
    return _written(analysis, out, console, brief)


def rebuild_report(runs_csv: Path, out: Path | None = None, console: Console | None = None) -> Path:
    """The report of a ``runs.csv`` alone, its seeds plan recomputed from its stage-1 jobs,
    written into ``out`` (default: the CSV's dir, with a copy of the CSV); return the dir."""
    runs = read_runs(runs_csv)
    out = out or runs_csv.parent
    out.mkdir(parents=True, exist_ok=True)
    if not (out / RUNS_FILE).exists() or not (out / RUNS_FILE).samefile(runs_csv):
        shutil.copyfile(runs_csv, out / RUNS_FILE)
    return _written(analyse_runs(runs, replanned(runs)), out, console)


def _written(analysis: Analysis, out: Path, console: Console | None, brief: bool = False) -> Path:
    write_report(analysis, out)
    if console is not None:
        print_report(analysis, console, brief)
        console.print(f"Report: {_display_path(out / 'report.md')}", soft_wrap=True)
    return out
