"""``runs.csv``: one row per job of a sweep, the table a reader recomputes every effect from."""

import pandas as pd

from cnn_ablations.overrides import SEED
from cnn_ablations.sweepdir import Sweep

UNSET = "(default)"  # the level of a factor in a job that does not override it
# the budget check's inputs: the best val/acc (percent) by half of the job's epochs, and by its end
BUDGET_CHECK_COLUMNS = {"val_mid": "val_acc_best_at_half", "val_end": "val_acc_best_at_end"}


def runs_frame(sweep: Sweep, curves: pd.DataFrame | None = None) -> pd.DataFrame:
    """``runs.csv``: one row per job of the sweep, ok or not, with what a reader needs to
    recompute every effect and its budget check and to see how each number was made
    (accuracies in percent). ``curves``: ``stats.job_rows``' per-job frame, whose best val/acc
    at half of each job's epochs and at its end (``val_mid``, ``val_end``) it adds."""

    def percent(value: float | None) -> float | None:
        return None if value is None else 100 * value

    def when(stamp: float | None) -> str | None:
        return None if stamp is None else pd.Timestamp(stamp, unit="s", tz="UTC").isoformat()

    rows = []
    for job in sweep.jobs:
        record, metrics = job.record, job.metrics
        compute = record.compute if record else None
        rows.append(
            {
                "job": job.name,
                **{key: job.level(key) or UNSET for key in sweep.factors},
                SEED: job.seed,
                "status": job.status,
                "test_acc": percent(metrics.test_acc),
                "val_acc_best": percent(metrics.val_acc_best),
                "epochs": metrics.epochs,
                "best_epoch": metrics.best_epoch,
                "stopped_by": metrics.stopped_by,
                "sec_per_epoch": metrics.sec_per_epoch,
                "lr": (job.config.get("optimizer") or {}).get("lr"),
                "started_at": when(record.started_at if record else None),
                "finished_at": when(record.finished_at if record else None),
                "precision": compute.precision if compute else None,
                "threads": compute.threads if compute else None,
                "parallel_jobs": compute.parallel_jobs if compute else None,
                "wandb_run": record.wandb.id if record and record.wandb else None,
                "error": None if job.ok else job.error,
            }
        )
    runs = pd.DataFrame(rows)
    if curves is not None and len(runs):
        budget_check = curves.set_index("job")[["val_mid", "val_end"]]
        runs = runs.join(budget_check.rename(columns=BUDGET_CHECK_COLUMNS), on="job")
    return runs
