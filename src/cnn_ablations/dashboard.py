"""W&B views of one sweep, built with ``wandb-workspaces``: a Report and a workspace.

Usage: ``python -m cnn_ablations.dashboard [--sweep-dir DIR | --group GROUP] [--entity E]
[--project P] [--print | --publish]`` (``make dashboard``, ``make publish``).

The Report is what people share and come back to: the study's answer, the effects and the
literature's claims from the offline report, then per factor a panel grid of curves and bars
grouped by that factor, a parallel-coordinates panel and the failed jobs. The workspace is the
same panels on one run set grouped by the factors, for exploring. Both read the sweep's records
(``results.json``: W&B group, run ids, project, entity, config-group choices), never a constant,
and plot the runs of the ok jobs only, as the offline report counts them.

Offline, or with ``--print``, nothing is uploaded: the library's own serialized models go to
``SWEEP_DIR/report/wandb_report.json`` and ``wandb_workspace.json``. Online they are saved and
their URLs printed and kept in ``wandb_published.json``, so saving again updates them.
``--publish`` first uploads the sweep's offline runs (``wandb sync``; their ids do not change,
so a repeat adds no runs) to the same entity the views are saved to; without it, the offline
runs not uploaded yet are listed.
"""

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from cnn_ablations.errors import ConfigError, check_wandb_name, describe, first_line
from cnn_ablations.report.document import answer, question
from cnn_ablations.report.stats import CURVE_METRICS, analyse, design
from cnn_ablations.report.tables import claims_table, effects_table
from cnn_ablations.sweep import Sweep, find_sweeps, latest_sweep, load_sweep
from cnn_ablations.tracking import api_key_found

X_AXIS = "epoch"  # Lightning logs `epoch` with every metric
BARS = "test/acc"
SUMMARY_COLUMNS = ("val/acc_best", "test/acc")
REPORT_FILE = "wandb_report.json"
WORKSPACE_FILE = "wandb_workspace.json"
PUBLISHED_FILE = "wandb_published.json"
ENTITY_ENV = "WANDB_ENTITY"


@dataclass
class Target:
    """Where a sweep's runs are in W&B: entity (and where it came from), project, group, and the
    W&B run ids of the sweep's ok jobs: the runs the views plot."""

    entity: str
    project: str
    group: str
    run_ids: list[str]
    entity_source: str = ""


def wandb_target(
    sweep: Sweep, group: str | None = None, entity: str | None = None, project: str | None = None
) -> Target:
    """The W&B home of ``sweep``'s runs, from its jobs' records (arguments win). The entity is
    settled here, once: ``entity`` (``--entity``), else ``$WANDB_ENTITY``, else the jobs'
    records (their W&B run's entity, else ``logger.wandb.entity``); else it stays empty until
    :func:`settle_default_entity` asks W&B, online."""
    runs = [job.wandb_run for job in sweep.jobs]
    configured = [
        ((job.results.get("config") or {}).get("logger") or {}).get("wandb") or {}
        for job in sweep.jobs
    ]
    group = group or next(iter(sweep.groups), None)
    if group is None:
        raise ConfigError(f"the jobs of {sweep.path} record no W&B group; pass --group")
    check_wandb_name("group", group)
    project = project or next(
        (r["project"] for r in [*runs, *configured] if r.get("project")), None
    )
    if project is None:
        raise ConfigError(f"the jobs of {sweep.path} record no W&B project; pass --project")
    recorded = next((r["entity"] for r in [*runs, *configured] if r.get("entity")), None)
    entity, source = next(
        (
            (value, source)
            for value, source in [
                (entity, "--entity"),
                (os.environ.get(ENTITY_ENV), f"${ENTITY_ENV}"),
                (recorded, "the jobs' records"),
            ]
            if value
        ),
        ("", ""),
    )
    run_ids = [job.wandb_run["id"] for job in sweep.ok if job.wandb_run.get("id")]
    return Target(entity, project, group, run_ids, source)


def settle_default_entity(target: Target) -> None:
    """Without an entity from the flags, the environment or the records: the API key's default
    entity (W&B's own default for ``wandb sync`` and saving; needs the network)."""
    if not target.entity:
        import wandb

        target.entity = wandb.Api().default_entity
        target.entity_source = "your W&B default entity"


def describe_target(target: Target) -> str:
    """``entity team (from $WANDB_ENTITY), project p, group g``, printed before any saving."""
    entity = (
        f"entity {target.entity} (from {target.entity_source})"
        if target.entity
        else "entity: your W&B default entity when saved"
    )
    return f"{entity}, project {target.project}, group {target.group}"


def unsynced_runs(sweep: Sweep) -> list[Path]:
    """The offline run dirs of the sweep's ok jobs that ``wandb sync`` has not uploaded."""
    from cnn_ablations.sync import is_synced

    runs = [job.path / job.wandb_run["run_dir"] for job in sweep.ok if _offline(job.wandb_run)]
    return [run for run in runs if not is_synced(run)]


def _offline(run: dict) -> bool:
    return run.get("mode") == "offline" and bool(run.get("run_dir"))


def group_key(sweep: Sweep, factor: str) -> str:
    """What W&B groups a factor's runs by: ``config.choices.<group>`` when the sweep varies a
    config group (``variant=...``), ``config.<factor>`` for a config value; for records from
    before jobs logged their choices, the run's job type (the variant, else the condition)."""
    if any(factor in (job.results.get("choices") or {}) for job in sweep.jobs):
        return f"config.choices.{factor}"
    if all(_has_key(job.results.get("config") or {}, factor) for job in sweep.ok):
        return f"config.{factor}"
    return "run.jobType"


def _has_key(config: dict, dotted: str) -> bool:
    node = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _metric(key: str):
    """A :func:`group_key` as the metric object panels take."""
    import wandb_workspaces.reports.v2 as wr

    section, _, name = key.partition(".")
    return wr.Config(name) if section == "config" else wr.Metric("JobType")


def _group_by(key: str):
    """A :func:`group_key` as the ``wandb_workspaces.expr`` metric a workspace run set groups by
    (``expr.Config``: the workspace maps it to W&B's unflattened ``model.value.activation``)."""
    from wandb_workspaces import expr

    section, _, name = key.partition(".")
    return expr.Config(name) if section == "config" else expr.Metric("JobType")


def run_filters(target: Target):
    """The runs the views plot: the sweep's W&B group and the run ids of its ok jobs (failed
    jobs' runs are left out). Records with no run ids: the group alone."""
    from wandb_workspaces import expr

    group = expr.Metric("Group") == target.group
    if not target.run_ids:
        return expr.And(group)
    return expr.And(group, expr.Metric("ID").isin(target.run_ids))


def factor_panels(factor: str, key: str) -> list:
    """Curves against epoch and test bars, the runs grouped by ``key`` (mean ± std)."""
    import wandb_workspaces.reports.v2 as wr

    grouping = {"groupby": _metric(key), "groupby_aggfunc": "mean", "groupby_rangefunc": "stddev"}
    curves = [
        wr.LinePlot(
            title=f"{metric} by {factor}",
            x=X_AXIS,
            y=[metric],
            title_x=X_AXIS,
            title_y=metric,
            **grouping,
        )
        for metric in CURVE_METRICS
    ]
    bars = wr.BarPlot(
        title=f"{BARS} by {factor} (mean ± std)", metrics=[BARS], orientation="v", **grouping
    )
    return [*curves, bars]


def overview_panel(keys: list[str]):
    """Every factor's key and the final accuracies, one line per run."""
    import wandb_workspaces.reports.v2 as wr

    metrics = [_metric(key) for key in keys] + [wr.SummaryMetric(m) for m in SUMMARY_COLUMNS]
    return wr.ParallelCoordinatesPlot(
        title=f"factors vs {BARS}",
        columns=[wr.ParallelCoordinatesPlotColumn(metric=m) for m in metrics],
    )


def failed_jobs_markdown(sweep: Sweep, target: Target) -> str:
    """One line per failed job: its W&B run (a link where it has one) or dir, and its error."""
    lines = []
    for job in sweep.failed:
        run_id = job.wandb_run.get("id")
        where = f"`{job.path}`"
        if run_id and target.entity:
            where = f"[W&B run {run_id}](/{target.entity}/{target.project}/runs/{run_id}), {where}"
        error = (job.error or f"status {job.status}").splitlines()[0]
        lines.append(f"- **{job.name}** ({where}): {error}")
    if not lines:
        return "None: every job finished."
    return "\n".join(["Their W&B runs are in no run set above.", "", *lines])


def build_report(sweep: Sweep, target: Target, resolve_projects: bool = False):
    """The ``wr.Report`` of a sweep (not saved). ``resolve_projects`` names the entity and
    project in each run set, which makes wandb-workspaces look the project up online."""
    import wandb_workspaces.reports.v2 as wr

    analysis = analyse(sweep)
    the_answer = answer(analysis)
    home = {"entity": target.entity, "project": target.project} if resolve_projects else {}
    keys = {factor: group_key(sweep, factor) for factor in sweep.factors}

    def runs(name: str, key: str | None = None):  # the runs table grouped as the panels are
        grouping = [key] if key else []
        return wr.Runset(name=name, filters=run_filters(target), groupby=grouping, **home)

    intro = [
        f"**{question(analysis)}**",
        f"**{the_answer}**",
        f"Design: {design(analysis.levels)}." if analysis.levels else "",
        f"Sweep dir `{sweep.path}`; W&B group `{target.group}`; {len(sweep.ok)} jobs ok, "
        f"{len(sweep.failed)} failed (listed at the end; the panels show the ok jobs). Effects "
        "are paired by seed (Δ = level − reference on the same seed, 95% t-interval); *settled "
        "at this budget* is the budget check (the effect on validation accuracy at half of the "
        "epochs vs at the end); the offline report (`report/report.md`) has the summary table "
        "and figures.",
    ]
    blocks = [wr.MarkdownBlock(text="\n\n".join(line for line in intro if line))]
    if analysis.levels:
        blocks += [
            wr.H2(text="Effects on test accuracy"),
            wr.MarkdownBlock(text=effects_table(analysis).to_markdown()),
        ]
    claims = claims_table(analysis)
    if not claims.data.empty:
        blocks += [
            wr.H2(text="What the literature reports"),
            wr.MarkdownBlock(text=claims.to_markdown()),
        ]
    for factor, key in keys.items():
        blocks += [
            wr.H2(text=f"By {factor}"),
            wr.P(text=f"Runs grouped by {key}: mean ± std over seeds."),
            wr.PanelGrid(runsets=[runs(factor, key)], panels=factor_panels(factor, key)),
        ]
    blocks += [
        wr.H2(text="All factors"),
        wr.PanelGrid(runsets=[runs("all runs")], panels=[overview_panel(list(keys.values()))]),
        wr.H2(text="Failed jobs"),
        wr.MarkdownBlock(text=failed_jobs_markdown(sweep, target)),
    ]
    return wr.Report(
        entity=target.entity,
        project=target.project,
        title=f"Ablation: {sweep.name} {sweep.path.name}"[:128],
        description=the_answer,
        blocks=blocks,
        width="fluid",
    )


def build_workspace(sweep: Sweep, target: Target):
    """The ``ws.Workspace`` of a sweep (not saved): a section of panels per factor and one
    with the parallel-coordinates panel, on one run set grouped by the factors.

    W&B writes workspace sections with ``useRunsTableGroupingInPanels``: panels group as the
    run set does, not by their own setting. With one factor that is the factor; with several,
    the run set groups by each in turn (one line per condition) and a note at the top says so.
    """
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws

    keys = {factor: group_key(sweep, factor) for factor in sweep.factors}
    sections = [
        ws.Section(name=f"by {factor}", is_open=True, panels=factor_panels(factor, key))
        for factor, key in keys.items()
    ]
    overview = ws.Section(
        name="all factors", is_open=True, panels=[overview_panel([*keys.values()])]
    )
    if len(keys) > 1:
        note = ws.Section(
            name="how runs are grouped",
            is_open=True,
            panels=[wr.MarkdownPanel(markdown=grouping_note(list(keys.values())))],
        )
        sections.insert(0, note)
    return ws.Workspace(
        entity=target.entity,
        project=target.project,
        name=f"Ablation: {target.group}",
        runset_settings=ws.RunsetSettings(
            filters=run_filters(target), groupby=[_group_by(key) for key in keys.values()]
        ),
        sections=[*sections, overview],
        # W&B's default draws the first 10 runs of the run set in each panel
        settings=ws.WorkspaceSettings(max_runs=max(10, len(target.run_ids))),
    )


def grouping_note(keys: list[str]) -> str:
    """What a workspace grouped by several factors shows, and how to see one factor alone."""
    order = ", then ".join(f"`{key}`" for key in keys)
    return (
        f"This sweep varies {len(keys)} factors. The runs table groups by {order}, and every "
        "panel here groups as the runs table does: one line per condition (mean ± std over "
        "seeds), whatever the section's name. To see one factor alone (its levels averaged over "
        "the others), set the runs table's *Group* to that key only; the Report has a panel grid "
        "per factor."
    )


def serialized(view) -> str:
    """A Report's or workspace's own model, as wandb-workspaces sends it (JSON)."""
    return view._to_model().model_dump_json(by_alias=True, exclude_none=True, indent=2)


def offline_reason() -> str | None:
    """Why nothing can be uploaded from here (offline mode, no API key), else None."""
    mode = os.environ.get("WANDB_MODE", "").lower()
    if mode in {"offline", "dryrun", "disabled"}:
        return f"WANDB_MODE={mode} is set"
    if api_key_found() is None:
        return "no API key was found (WANDB_API_KEY is unset and `wandb login` was not run)"
    return None


def save_online(report, workspace, published: Path) -> dict:
    """Save both views and return their URLs. A view ``published`` names is loaded from its URL
    and updated in place (a new one is made if it is gone); each URL is recorded as soon as its
    view is saved, so a failure part-way makes no duplicate next time."""
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws

    urls = json.loads(published.read_text()) if published.is_file() else {}

    def update(key: str, view, load, fields: tuple[str, ...]):
        if urls.get(key):
            try:
                saved = load(urls[key])
            except Exception as err:  # deleted, or no access: save a new one
                print(f"dashboard: cannot load {urls[key]} ({first_line(err)}); saving a new {key}")
            else:
                for name in fields:
                    setattr(saved, name, getattr(view, name))
                view = saved
        urls[key] = view.save().url
        published.write_text(json.dumps(urls, indent=2) + "\n")

    update("report", report, wr.Report.from_url, ("title", "description", "blocks"))
    update("workspace", workspace, ws.Workspace.from_url, ("sections", "runset_settings"))
    return urls


def sweep_for_group(group: str) -> Sweep:
    """The newest sweep under paths.output_root whose jobs log to W&B group ``group``."""
    for sweep_dir in reversed(find_sweeps()):
        sweep = load_sweep(sweep_dir)
        if group in sweep.groups:
            return sweep
    raise ConfigError(f"no sweep under paths.output_root has W&B group {group!r}; pass --sweep-dir")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cnn_ablations.dashboard",
        description="Build the W&B Report and workspace of one sweep (saved when online).",
    )
    parser.add_argument(
        "--sweep-dir", type=Path, help="sweep dir (default: --group's, else the latest sweep)"
    )
    parser.add_argument("--group", help="W&B group of the sweep's runs (default: its records')")
    parser.add_argument("--project", help="W&B project (default: the one its runs logged to)")
    parser.add_argument("--entity", help="W&B entity (default: its runs', else your default)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--print", action="store_true", help="write the JSON files and upload nothing"
    )
    mode.add_argument(
        "--publish", action="store_true", help="upload the sweep's offline runs first, then save"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.sweep_dir:
            sweep = load_sweep(args.sweep_dir)
        elif args.group:
            sweep = sweep_for_group(args.group)
        else:
            sweep = load_sweep(latest_sweep())
        target = wandb_target(sweep, args.group, args.entity, args.project)
    except ConfigError as err:
        print(f"dashboard: error: {err}", file=sys.stderr)
        return 2
    out = sweep.path / "report"
    out.mkdir(exist_ok=True)
    reason = None if args.print else offline_reason()
    if reason and args.publish:
        print(
            f"dashboard: publishing needs a network and a W&B API key, but {reason}; run "
            "`wandb login` on a machine with a network, then `make publish` again",
            file=sys.stderr,
        )
        return 1
    if args.print or reason:
        (out / REPORT_FILE).write_text(serialized(build_report(sweep, target)) + "\n")
        (out / WORKSPACE_FILE).write_text(serialized(build_workspace(sweep, target)) + "\n")
        print(f"W&B Report and workspace of {sweep.path} (not uploaded):")
        print(f"  W&B {describe_target(target)}")
        print(f"  {out / REPORT_FILE}\n  {out / WORKSPACE_FILE}")
        if reason:
            print(
                f"Not uploaded: {reason}. After `wandb login`: "
                f"make publish ARGS=--sweep-dir={sweep.path}"
            )
        return 0
    try:
        settle_default_entity(target)
    except Exception as err:  # network, auth: one line, not a trace
        print(
            f"dashboard: cannot ask W&B for your default entity ({describe(err)}); pass "
            f"--entity or set {ENTITY_ENV}",
            file=sys.stderr,
        )
        return 1
    print(f"W&B {describe_target(target)}")
    if args.publish:
        from cnn_ablations import sync

        options = ["-p", target.project, "-e", target.entity]
        offline_runs = sync.find_offline_runs([sweep.path])
        if offline_runs and sync.main([str(sweep.path), *options]) != 0:
            print("dashboard: wandb sync failed (above); the Report was not saved", file=sys.stderr)
            return 1
    elif unsynced := unsynced_runs(sweep):
        print(
            f"dashboard: warning: {len(unsynced)} of the sweep's {len(sweep.ok)} ok runs are "
            "offline and not uploaded, so their panels stay empty; upload them with `make "
            f"publish ARGS=--sweep-dir={sweep.path}`:",
            file=sys.stderr,
        )
        for run in unsynced:
            print(f"  {run}", file=sys.stderr)
    try:
        urls = save_online(
            build_report(sweep, target, resolve_projects=True),
            build_workspace(sweep, target),
            out / PUBLISHED_FILE,
        )
    except Exception as err:  # network, auth, a project with no runs yet: one line, not a trace
        print(
            f"dashboard: saving to W&B failed ({describe(err)}); "
            f"if the sweep's runs are not uploaded yet, run `make publish "
            f"ARGS=--sweep-dir={sweep.path}`",
            file=sys.stderr,
        )
        return 1
    print(f"Report saved: {urls['report']}\nWorkspace saved: {urls['workspace']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
