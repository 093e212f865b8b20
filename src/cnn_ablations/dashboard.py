"""Save the W&B Report and workspace of one sweep (``wandb_views`` builds them).

Usage: ``python -m cnn_ablations.dashboard [--sweep-dir DIR | --group GROUP] [--entity E]
[--project P] [--print | --publish]`` (``make dashboard``, ``make publish``).

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
from pathlib import Path

from cnn_ablations.errors import ConfigError, one_line
from cnn_ablations.record import WandbRun
from cnn_ablations.sweepdir import Sweep, find_sweeps, latest_sweep, load_sweep
from cnn_ablations.tracking import api_key_found
from cnn_ablations.wandb_views import (
    ENTITY_ENV,
    build_workspace,
    describe_target,
    serialized,
    settle_default_entity,
    wandb_report,
    wandb_target,
)

REPORT_FILE = "wandb_report.json"
WORKSPACE_FILE = "wandb_workspace.json"
PUBLISHED_FILE = "wandb_published.json"


def unsynced_runs(sweep: Sweep) -> list[Path]:
    """The offline run dirs of the sweep's ok jobs that ``wandb sync`` has not uploaded."""
    from cnn_ablations.sync import is_synced

    runs = [job.path / job.wandb_run.run_dir for job in sweep.ok if _offline(job.wandb_run)]
    return [run for run in runs if not is_synced(run)]


def _offline(run: WandbRun | None) -> bool:
    return run is not None and run.mode == "offline" and bool(run.run_dir)


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
                why = one_line(err, typed=False)
                print(f"dashboard: cannot load {urls[key]} ({why}); saving a new {key}")
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
        (out / REPORT_FILE).write_text(serialized(wandb_report(sweep, target)) + "\n")
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
            f"dashboard: cannot ask W&B for your default entity ({one_line(err)}); pass "
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
            wandb_report(sweep, target, resolve_projects=True),
            build_workspace(sweep, target),
            out / PUBLISHED_FILE,
        )
    except Exception as err:  # network, auth, a project with no runs yet: one line, not a trace
        print(
            f"dashboard: saving to W&B failed ({one_line(err)}); "
            f"if the sweep's runs are not uploaded yet, run `make publish "
            f"ARGS=--sweep-dir={sweep.path}`",
            file=sys.stderr,
        )
        return 1
    print(f"Report saved: {urls['report']}\nWorkspace saved: {urls['workspace']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
