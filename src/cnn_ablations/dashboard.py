"""A W&B workspace for one sweep, built with ``wandb-workspaces``.

Usage: ``python -m cnn_ablations.dashboard [--sweep-dir DIR | --group GROUP] [--project P]
[--entity E] [--print]``. The ablation factors come from the sweep dir's jobs (as in the
report); each gets a section whose panels group the runs by that W&B config key. ``--print``
shows the spec and saves nothing (no network); saving needs a network and an API key.
"""

import argparse
import json
import os
import sys
from pathlib import Path

from cnn_ablations.errors import ConfigError
from cnn_ablations.sweep import Sweep, find_sweeps, latest_sweep, load_sweep
from cnn_ablations.tracking import api_key_found

PROJECT = "cnn-ablations"
X_AXIS = "epoch"  # Lightning logs `epoch` with every metric


def dashboard_spec(sweep: Sweep, group: str) -> dict:
    """Readable workspace spec: a runset filtered to ``group``, one section per factor.

    Each factor section has line panels of val/acc and train/loss and a bar panel of test/acc,
    all grouped by the factor's config key (mean ± std over runs); a last section holds a
    parallel-coordinates panel of all factors against test/acc.
    """
    keys = sweep.factors
    sections = [
        {
            "name": f"by {key}",
            "factor": key,
            "panels": [
                {"type": "line", "x": X_AXIS, "y": "val/acc", "groupby": key},
                {"type": "line", "x": X_AXIS, "y": "train/loss", "groupby": key},
                {"type": "bar", "metric": "test/acc", "groupby": key},
            ],
        }
        for key in keys
    ]
    columns = [{"config": key} for key in keys]
    columns += [{"summary": "val/acc_best"}, {"summary": "test/acc"}]
    overview = {"type": "parallel_coordinates", "columns": columns}
    sections.append({"name": "all factors", "factor": None, "panels": [overview]})
    return {
        "name": f"Ablation: {group}",
        "runset": {"filter": {"Group": group}},
        "factors": keys,
        "sections": sections,
    }


def _panel(spec: dict):
    """One wandb-workspaces panel from a spec entry."""
    import wandb_workspaces.reports.v2 as wr

    if spec["type"] == "line":
        return wr.LinePlot(
            title=f"{spec['y']} by {spec['groupby']}",
            x=spec["x"],
            y=[spec["y"]],
            title_x=spec["x"],
            title_y=spec["y"],
            groupby=wr.Config(spec["groupby"]),
            groupby_aggfunc="mean",
            groupby_rangefunc="stddev",
        )
    if spec["type"] == "bar":
        return wr.BarPlot(
            title=f"{spec['metric']} by {spec['groupby']} (mean ± std)",
            metrics=[spec["metric"]],
            orientation="v",
            groupby=wr.Config(spec["groupby"]),
            groupby_aggfunc="mean",
            groupby_rangefunc="stddev",
        )
    metrics = [
        wr.Config(c["config"]) if "config" in c else wr.SummaryMetric(c["summary"])
        for c in spec["columns"]
    ]
    return wr.ParallelCoordinatesPlot(
        title="factors vs test/acc",
        columns=[wr.ParallelCoordinatesPlotColumn(metric=m) for m in metrics],
    )


def build_workspace(spec: dict, entity: str, project: str = PROJECT):
    """The ``ws.Workspace`` for a spec from :func:`dashboard_spec` (not saved)."""
    import wandb_workspaces.workspaces as ws

    return ws.Workspace(
        entity=entity,
        project=project,
        name=spec["name"],
        runset_settings=ws.RunsetSettings(
            filters=[ws.Metric("Group") == spec["runset"]["filter"]["Group"]]
        ),
        sections=[
            ws.Section(
                name=section["name"],
                is_open=True,
                panels=[_panel(panel) for panel in section["panels"]],
            )
            for section in spec["sections"]
        ],
    )


def offline_reason() -> str | None:
    """Why a workspace cannot be saved from here (offline mode, no API key), else None."""
    mode = os.environ.get("WANDB_MODE", "").lower()
    if mode in {"offline", "dryrun", "disabled"}:
        return f"WANDB_MODE={mode} is set"
    if api_key_found() is None:
        return "no API key was found (WANDB_API_KEY is unset and `wandb login` was not run)"
    return None


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
        description="Build a W&B workspace comparing the variants of one sweep.",
    )
    parser.add_argument(
        "--sweep-dir", type=Path, help="sweep dir (default: --group's, else the latest sweep)"
    )
    parser.add_argument("--group", help="W&B group of the sweep's runs (default: its jobs' group)")
    parser.add_argument("--project", default=PROJECT, help=f"W&B project (default {PROJECT})")
    parser.add_argument("--entity", help="W&B entity (default: your default entity)")
    parser.add_argument(
        "--print", action="store_true", help="print the spec and save nothing (no network)"
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
        group = args.group or next(iter(sweep.groups), None)
        if group is None:
            raise ConfigError(f"the jobs of {sweep.path} record no W&B group; pass --group")
        spec = dashboard_spec(sweep, group)
    except ConfigError as err:
        print(f"dashboard: error: {err}", file=sys.stderr)
        return 2
    if args.print:
        print(json.dumps(spec, indent=2))
        return 0
    reason = offline_reason()
    if reason:
        print(
            f"dashboard: saving a workspace needs a network and a W&B API key, but {reason}; "
            "run `wandb login` (online), or use --print to see the spec offline",
            file=sys.stderr,
        )
        return 1
    import wandb

    entity = args.entity or wandb.Api().default_entity
    workspace = build_workspace(spec, entity, args.project).save()
    print(f"Workspace saved: {workspace.url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
