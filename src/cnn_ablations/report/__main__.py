"""``python -m cnn_ablations.report [SWEEP_DIR]``: write and print one sweep's report;
``--runs RUNS_CSV``: rebuild a report from its runs.csv alone."""

import argparse
import sys
from pathlib import Path

from cnn_ablations.errors import EXIT_CONFIG, ConfigError
from cnn_ablations.report.document import build_report, rebuild_report, report_console
from cnn_ablations.sweepdir import default_output_root, latest_sweep


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cnn_ablations.report",
        description="Tables, paired effect sizes and figures for a Hydra multirun sweep.",
    )
    parser.add_argument(
        "sweep_dir",
        nargs="?",
        type=Path,
        help=f"sweep dir (default: the latest under {default_output_root()}/)",
    )
    parser.add_argument(
        "--runs",
        type=Path,
        metavar="RUNS_CSV",
        help="rebuild the report from this runs.csv alone (a report's per-job table), its seeds "
        "plan recomputed from its stage-1 jobs; no sweep dir is read",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="with --runs: the dir to write the report into (default: the runs.csv's dir)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.runs and args.sweep_dir:
        parser.error("give a sweep dir or --runs RUNS_CSV, not both")
    if args.out and not args.runs:
        parser.error("--out goes with --runs (a sweep's report is written into SWEEP_DIR/report)")
    try:
        if args.runs:
            rebuild_report(args.runs, args.out, report_console())
        else:
            build_report(args.sweep_dir or latest_sweep(), report_console())
    except ConfigError as err:
        print(f"report: error: {err}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


if __name__ == "__main__":
    sys.exit(main())
