"""Shared fixtures: W&B never touches the network; CLI runs happen in temp dirs."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import cnn_ablations.train  # noqa: F401  (registers the config's resolvers)

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"
# Fast settings for CLI runs: no progress bar/summary, fewer log lines.
FAST = [
    "callbacks=minimal",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


@pytest.fixture(autouse=True)
def _offline_wandb(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")


def run_cli(
    args: list[str],
    cwd: Path,
    timeout: int = 600,
    env: dict | None = None,
    module: str = "cnn_ablations.train",
) -> subprocess.CompletedProcess:
    """Run ``python -m <module> <args>`` in ``cwd`` with W&B offline; capture output."""
    full_env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def bare_trainer(root: Path, **kwargs):
    """A CPU ``pl.Trainer`` with no logger, checkpoints, progress bar or summary (in-process)."""
    import pytorch_lightning as pl

    quiet = {
        "accelerator": "cpu",
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    return pl.Trainer(default_root_dir=root, **quiet, **kwargs)


def only_run_dir(root: Path) -> Path:
    """The single run directory under ``root/outputs/runs/<name>/``."""
    dirs = [p.parent for p in root.glob("outputs/runs/*/*/.hydra")]
    assert len(dirs) == 1, dirs
    return dirs[0]
