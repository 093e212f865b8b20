"""The report of one sweep: tables, paired effect sizes and figures in ``SWEEP_DIR/report/``.

``python -m cnn_ablations.report [SWEEP_DIR]`` (default: the latest sweep under
``paths.output_root``); the end-of-sweep callback runs it too. Only jobs with ``status: ok``
enter tables, effects and figures; the others are listed as failed.
"""

from cnn_ablations.report.document import build_report

__all__ = ["build_report"]
