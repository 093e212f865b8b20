"""``python -m cnn_ablations.report [SWEEP_DIR]``: write and print one sweep's report."""

import argparse
import sys
from pathlib import Path

from cnn_ablations.errors import EXIT_CONFIG, ConfigError
from cnn_ablations.report.document import build_report, report_console
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        build_report(args.sweep_dir or latest_sweep(), report_console())
    except ConfigError as err:
        print(f"report: error: {err}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


if __name__ == "__main__":
    sys.exit(main())
