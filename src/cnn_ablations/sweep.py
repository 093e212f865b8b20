"""After a multirun: collect every job's results, print the comparison, fail if any job failed."""

import json
import logging
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from cnn_ablations.results import read_results

log = logging.getLogger(__name__)
SUMMARY_FILE = "sweep_summary.json"
NOT_A_FACTOR = ("sweep", "launcher", "hydra/launcher", "resume")


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def swept_overrides(hydra_cfg: DictConfig) -> list[str]:
    """This job's overrides for the keys the sweep varies (``a=x,y`` on the command line, or the
    sweep file's ``hydra.sweeper.params``); values fixed for the whole sweep are left out.

    Read from the sweep's ``multirun.yaml``, which Hydra writes before launching any job, so it
    works in launcher worker processes too. Outside a multirun: all of the job's overrides.
    """
    task = [o for o in hydra_cfg.overrides.task if override_key(o) not in NOT_A_FACTOR]
    multirun_file = Path(hydra_cfg.sweep.dir) / "multirun.yaml"
    if hydra_cfg.mode != RunMode.MULTIRUN or not multirun_file.is_file():
        return task
    sweep_cfg = OmegaConf.load(multirun_file).hydra
    parsed = OverridesParser.create().parse_overrides(list(sweep_cfg.overrides.task))
    swept = {o.key_or_group for o in parsed if o.is_sweep_override()}
    swept |= set(sweep_cfg.sweeper.get("params") or {})
    return [o for o in task if override_key(o) in swept] or task


def collect_jobs(sweep_dir: Path) -> list[dict]:
    """One entry per job dir (a dir with ``.hydra/``): its results, or a failure if it has none
    (a job still ``running`` when the sweep ends was killed)."""
    jobs = []
    for hydra_dir in sorted(sweep_dir.glob("*/.hydra")):
        job_dir = hydra_dir.parent
        results = read_results(job_dir) or {
            "status": "failed",
            "error": "no results.json (the job crashed or was killed)",
        }
        if results.get("status") == "running":
            results = {**results, "error": "did not finish (killed?); rerun with resume=true"}
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
