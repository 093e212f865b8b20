"""How far a sweep is: ``job k/N · <job> · f failed · ETA``, at each job's start and in its bar.

Read from the sweep dir (the jobs' records), so it holds under any launcher.
"""

import statistics
import time

import joblib
from omegaconf import DictConfig
from pytorch_lightning.callbacks import RichProgressBar

from cnn_ablations.sweepdir import load_sweep


def duration_text(seconds: float) -> str:
    """``45s``, ``2m10s``, ``1h05m``."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return (
        f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
    )


def parallel_jobs(hydra_cfg: DictConfig) -> int:
    """How many jobs its launcher runs at once (joblib's ``n_jobs``, where -1 is every core and
    -2 all but one, as joblib counts; 1 for the other launchers)."""
    n_jobs = int(hydra_cfg.launcher.get("n_jobs") or 1)
    return n_jobs if n_jobs > 0 else max(joblib.cpu_count() + 1 + n_jobs, 1)


def sweep_progress(hydra_cfg: DictConfig, job_name: str) -> str:
    """``job 4/27 · variant=tanh,seed=0 · 1 failed · ETA 2m10s`` for a multirun job.

    N is how many jobs the sweep runs (``Sweep.planned_size``: with planned seeds, stage 1's,
    then stage 1's and stage 2's); the ETA is the median time of its finished jobs times the
    jobs left, divided by the launcher's parallel jobs.
    """
    sweep = load_sweep(hydra_cfg.sweep.dir, started=True)
    total = sweep.planned_size
    others = [job for job in sweep.jobs if job.name != job_name and job.record]
    finished = [job.record.duration for job in others if job.record.duration is not None]
    failed = sum(not job.ok for job in others if job.record.duration is not None)
    parts = [f"job {hydra_cfg.job.num + 1}/{total}", job_name]
    if failed:
        parts.append(f"{failed} failed")
    if finished:
        left = max(total - len(finished), 1)
        parallel = parallel_jobs(hydra_cfg)
        parts.append(f"ETA {duration_text(statistics.median(finished) * left / parallel)}")
    return " · ".join(parts)


class JobProgressBar(RichProgressBar):
    """Lightning's rich bar, redrawn at most ``redraws_per_second``, its description prefixed
    with the job's place in its sweep.

    Lightning asks for a redraw after every batch; its refresh thread then renders at up to
    ``refresh_rate`` (100) times a second, ~15% of a LeNet-5 epoch on 2 cores. Lowering
    ``refresh_rate`` instead would make each bar's close wait up to 1/refresh_rate (its thread
    sleeps that long between polls): 0.25 s twice a job at 4/s. So the thread keeps polling at
    100/s and the requests are throttled here.
    """

    def __init__(self, redraws_per_second: float, **kwargs):
        super().__init__(**kwargs)
        self.min_interval = 1 / redraws_per_second
        self.last_redraw = 0.0
        self.job_label = ""

    def refresh(self, hard: bool = False) -> None:
        now = time.monotonic()
        if hard or now - self.last_redraw >= self.min_interval:
            self.last_redraw = now
            super().refresh(hard)

    def _get_train_description(self, current_epoch: int) -> str:
        description = super()._get_train_description(current_epoch)
        return f"{self.job_label} · {description}" if self.job_label else description
