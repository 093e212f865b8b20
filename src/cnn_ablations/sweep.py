"""After a multirun: collect every job's results, print the comparison, fail if any job failed."""

import json
import logging
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from cnn_ablations.results import read_results

log = logging.getLogger(__name__)
SUMMARY_FILE = "sweep_summary.json"


def collect_jobs(sweep_dir: Path) -> list[dict]:
    """One entry per job dir (a dir with ``.hydra/``): its results, or a failure if it has none."""
    jobs = []
    for hydra_dir in sorted(sweep_dir.glob("*/.hydra")):
        job_dir = hydra_dir.parent
        results = read_results(job_dir) or {
            "status": "failed",
            "error": "no results.json (the job crashed or was killed)",
        }
        jobs.append({"job": job_dir.name, **results})
    return jobs


class SweepSummary(Callback):
    """Hydra callback: writes ``sweep_summary.json``, runs the report, exits 1 on failures."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        jobs = collect_jobs(sweep_dir)
        failed = [j for j in jobs if j.get("status") != "ok"]
        summary = {
            "sweep_dir": str(sweep_dir),
            "jobs": len(jobs),
            "failed": len(failed),
            "results": [{k: j.get(k) for k in ("job", "status", "error", "metrics")} for j in jobs],
        }
        (sweep_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
        if any(j.get("status") == "ok" for j in jobs):
            from cnn_ablations.report import build_report

            try:
                build_report(sweep_dir)
            except Exception as err:  # the sweep's results are on disk whatever the report does
                log.error(
                    "report failed (%s: %s); run `make report ARGS=%s` after fixing it",
                    type(err).__name__,
                    err,
                    sweep_dir,
                )
        if failed:
            for job in failed:
                log.error("FAILED %s: %s", job["job"], job.get("error"))
            log.error(
                "%d of %d jobs failed; see %s", len(failed), len(jobs), sweep_dir / SUMMARY_FILE
            )
            raise SystemExit(1)
        log.info("all %d jobs ok: %s", len(jobs), sweep_dir)
