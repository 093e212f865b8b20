"""The W&B views of one sweep, built with ``wandb-workspaces`` (not saved): a Report and a
workspace, both read from the sweep's records (W&B group, run ids, project, entity,
config-group choices), never a constant, and plotting the runs of the ok jobs only, as the
offline report counts them. ``dashboard`` saves them or writes them to files.

The Report is what people share and come back to: the study's answer, the effects and the
literature's claims from the offline report, then per factor a panel grid of curves and bars
grouped by that factor, a parallel-coordinates panel and the failed jobs. The workspace is the
same panels on one run set grouped by the factors, for exploring.
"""

import os
from dataclasses import dataclass

from cnn_ablations.errors import ConfigError, check_wandb_name
from cnn_ablations.report.document import answer, question
from cnn_ablations.report.runs import CURVES
from cnn_ablations.report.stats import analyse, design
from cnn_ablations.report.tables import claims_table, effects_table
from cnn_ablations.sweepdir import Sweep

X_AXIS = "epoch"  # Lightning logs `epoch` with every metric
BARS = "test/acc"
SUMMARY_COLUMNS = ("val/acc_best", "test/acc")
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
    runs = [job.wandb_run for job in sweep.jobs if job.wandb_run]
    configured = [(job.config.get("logger") or {}).get("wandb") or {} for job in sweep.jobs]
    group = group or next(iter(sweep.groups), None)
    if group is None:
        raise ConfigError(f"the jobs of {sweep.path} record no W&B group; pass --group")
    check_wandb_name("group", group)
    project = project or _first([r.project for r in runs], configured, "project")
    if project is None:
        raise ConfigError(f"the jobs of {sweep.path} record no W&B project; pass --project")
    recorded = _first([r.entity for r in runs], configured, "entity")
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
    run_ids = [job.wandb_run.id for job in sweep.ok if job.wandb_run]
    return Target(entity, project, group, run_ids, source)


def _first(recorded: list, configured: list[dict], key: str):
    """The first value the jobs' W&B runs recorded, else the first their configs set."""
    return next((v for v in [*recorded, *(c.get(key) for c in configured)] if v), None)


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


def group_key(sweep: Sweep, factor: str) -> str:
    """What W&B groups a factor's runs by: ``config.choices.<group>`` when the sweep varies a
    config group (``variant=...``), ``config.<factor>`` for a config value; for records from
    before jobs logged their choices, the run's job type (the variant, else the condition)."""
    if any(job.record and factor in job.record.choices for job in sweep.jobs):
        return f"config.choices.{factor}"
    if all(_has_key(job.config, factor) for job in sweep.ok):
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
        for metric in CURVES
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
        run_id = job.wandb_run.id if job.wandb_run else None
        where = f"`{job.path}`"
        if run_id and target.entity:
            where = f"[W&B run {run_id}](/{target.entity}/{target.project}/runs/{run_id}), {where}"
        error = (job.error or f"status {job.status}").splitlines()[0]
        lines.append(f"- **{job.name}** ({where}): {error}")
    if not lines:
        return "None: every job finished."
    return "\n".join(["Their W&B runs are in no run set above.", "", *lines])


def wandb_report(sweep: Sweep, target: Target, resolve_projects: bool = False):
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
        "are paired by seed (Δ = level − reference on the same seed), each with one 95% "
        "interval, its verdict's (Stein's where the seeds were planned, else the paired t); "
        "*settled at this budget* is the budget check (the effect's change on validation "
        "accuracy from half of the epochs to the end, with its own interval); the offline "
        "report (`report/report.md`) has the summary table, runs.csv and figures.",
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
