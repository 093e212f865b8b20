"""Upload offline W&B runs: ``python -m cnn_ablations.sync [PATH ...] [--dry-run] [-p P] [-e E]``.

Finds every ``offline-run-*`` dir under the paths (default: ``paths.output_root``), lists them
and runs ``wandb sync --yes [--dry-run] [-p PROJECT] [-e ENTITY] DIRS...`` (the wandb >= 0.30
CLI form) with the ``wandb`` executable of this Python environment. ``--dry-run`` needs no
network.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

from cnn_ablations.sweepdir import default_output_root

OFFLINE_PREFIX = "offline-run-"
SYNCED_SUFFIX = ".wandb.synced"


def find_offline_runs(paths: list[Path]) -> list[Path]:
    """``offline-run-*`` dirs under ``paths`` (or the paths themselves), sorted, no duplicates."""
    runs: dict[Path, Path] = {}  # resolved -> as found
    for root in paths:
        if root.is_dir() and root.name.startswith(OFFLINE_PREFIX):
            runs.setdefault(root.resolve(), root)
            continue
        for dirpath, dirnames, _ in os.walk(root):
            for name in [d for d in dirnames if d.startswith(OFFLINE_PREFIX)]:
                run = Path(dirpath) / name
                runs.setdefault(run.resolve(), run)
                dirnames.remove(name)  # nothing to find inside a run
    return sorted(runs.values())


def is_synced(run: Path) -> bool:
    """Whether ``wandb sync`` uploaded the offline run in ``run``: it leaves a
    ``run-<id>.wandb.synced`` marker next to the run file (and skips the run next time)."""
    return any(run.glob(f"*{SYNCED_SUFFIX}"))


def wandb_cli() -> Path:
    """The ``wandb`` executable next to this Python interpreter."""
    return Path(sys.executable).parent / "wandb"


def sync_command(
    runs: list[Path], dry_run: bool, project: str | None, entity: str | None
) -> list[str]:
    """The ``wandb sync`` command line for ``runs``."""
    command = [str(wandb_cli()), "sync", "--yes"]
    if dry_run:
        command.append("--dry-run")
    if project:
        command += ["-p", project]
    if entity:
        command += ["-e", entity]
    return command + [str(run) for run in runs]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cnn_ablations.sync",
        description="List offline W&B runs and upload them with `wandb sync`.",
    )
    root = default_output_root()
    parser.add_argument("paths", nargs="*", type=Path, default=[root], help=f"default: {root}/")
    parser.add_argument("--dry-run", action="store_true", help="list what would be synced")
    parser.add_argument("-p", "--project", help="override the W&B project of all runs")
    parser.add_argument("-e", "--entity", help="override the W&B entity of all runs")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    runs = find_offline_runs(args.paths)
    if not runs:
        searched = ", ".join(str(p) for p in args.paths)
        print(
            f"sync: no offline W&B runs ({OFFLINE_PREFIX}* dirs) under {searched}", file=sys.stderr
        )
        return 1
    if not wandb_cli().is_file():
        print(f"sync: error: no wandb executable at {wandb_cli()}", file=sys.stderr)
        return 2
    print(f"{len(runs)} offline W&B run(s):")
    for run in runs:
        print(f"  {run}")
    sys.stdout.flush()  # before wandb's own output
    return subprocess.run(sync_command(runs, args.dry_run, args.project, args.entity)).returncode


if __name__ == "__main__":
    sys.exit(main())
