"""A W&B workspace for one sweep, built with ``wandb-workspaces``.

Usage: ``python -m cnn_ablations.dashboard --group GROUP [--sweep-dir DIR] [--project P]
[--entity E] [--print]``. The ablation factors come from the sweep dir's jobs (as in the
report); each gets a section whose panels group the runs by that W&B config key. ``--print``
shows the spec and saves nothing (no network); saving needs a network and an API key.
"""

import argparse
import json
import netrc
import os
import sys
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import wandb
import wandb_workspaces.reports.v2 as wr
import wandb_workspaces.workspaces as ws

from cnn_ablations.errors import ConfigError
from cnn_ablations.report import SWEEPS_ROOT, factors, find_sweeps, load_jobs

PROJECT = "cnn-ablations"
X_AXIS = "epoch"  # Lightning logs `epoch` with every metric


def dashboard_spec(sweep: Path | str | pd.DataFrame, group: str) -> dict:
    """Readable workspace spec: a runset filtered to ``group``, one section per factor.

    ``sweep`` is a sweep dir or its jobs table (``report.load_jobs``). Each factor section
    has line panels of val/acc and train/loss and a bar panel of test/acc, all grouped by the
    factor's config key (mean ± std over runs); a last section holds a parallel-coordinates
    panel of all factors against test/acc.
    """
    jobs = sweep if isinstance(sweep, pd.DataFrame) else load_jobs(Path(sweep))
    keys = factors(jobs)
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


def build_workspace(spec: dict, entity: str, project: str = PROJECT) -> ws.Workspace:
    """The ``ws.Workspace`` for a spec from :func:`dashboard_spec` (not saved)."""
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
    if os.environ.get("WANDB_API_KEY"):
        return None
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        if netrc.netrc(path).authenticators(host):
            return None
    except (OSError, netrc.NetrcParseError):
        pass
    return f"no API key was found (WANDB_API_KEY is unset and {path} has no {host} entry)"


def sweep_for_group(group: str) -> Path:
    """The newest sweep dir under outputs/sweeps whose jobs log to W&B group ``group``."""
    for sweep_dir in reversed(find_sweeps()):
        results = next(sweep_dir.glob("*/results.json"), None)
        if results and json.loads(results.read_text()).get("group") == group:
            return sweep_dir
    raise ConfigError(f"no sweep under {SWEEPS_ROOT}/*/* has group {group!r}; pass --sweep-dir")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cnn_ablations.dashboard",
        description="Build a W&B workspace comparing the variants of one sweep.",
    )
    parser.add_argument("--group", required=True, help="W&B group of the sweep's runs")
    parser.add_argument(
        "--sweep-dir", type=Path, help="sweep dir (default: the one whose jobs have --group)"
    )
    parser.add_argument("--project", default=PROJECT, help=f"W&B project (default {PROJECT})")
    parser.add_argument("--entity", help="W&B entity (default: your default entity)")
    parser.add_argument(
        "--print", action="store_true", help="print the spec and save nothing (no network)"
    )
    args = parser.parse_args(argv)
    try:
        spec = dashboard_spec(args.sweep_dir or sweep_for_group(args.group), args.group)
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
    entity = args.entity or wandb.Api().default_entity
    workspace = build_workspace(spec, entity, args.project).save()
    print(f"Workspace saved: {workspace.url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
