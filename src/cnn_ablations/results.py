"""Each job's ``results.json``: status, final metrics, overrides and provenance.

Sweeps, the report and resume read these instead of parsing logs. Written atomically (a temp
file renamed over the old one), so a crash or a full disk never leaves a half file.
"""

import json
import os
import platform
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path

RESULTS_FILE = "results.json"
PACKAGES = (
    "torch",
    "torchvision",
    "pytorch-lightning",
    "hydra-core",
    "torchmetrics",
    "wandb",
    "cnn-ablations",
)


def write_results(job_dir: str | Path, results: dict) -> Path:
    """Write ``results`` (plus provenance) to ``job_dir/results.json`` atomically."""
    path = Path(job_dir) / RESULTS_FILE
    payload = {**results, **provenance()}
    tmp = path.with_suffix(".json.tmp")
    try:
        tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # the previous results.json stays as it was
        raise
    return path


def read_results(job_dir: str | Path) -> dict | None:
    """The job's results, or None if it has none (never finished) or the file is unreadable."""
    try:
        return json.loads((Path(job_dir) / RESULTS_FILE).read_text())
    except (OSError, ValueError):
        return None


@cache  # once per process: a sweep's jobs share it, and git runs once, not per write
def provenance() -> dict:
    """Package versions and the git commit (with a dirty flag) of the code that ran."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"versions": versions, "git": _git_state()}


def _git_state() -> dict:
    src = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=src, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
