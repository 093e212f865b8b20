"""Shared fixtures: W&B never touches the network; CLI runs happen in temp dirs.

``cli`` runs ``python -m cnn_ablations.train`` in this process (a tiny run costs ~1 s, not the
~6 s of a fresh interpreter); ``run_cli`` runs it as a real subprocess, for what needs one
(two runs at once, signals, DDP, launchers).
"""

import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from cnn_ablations import CONF_DIR, CONFIG_NAME, resolvers

resolvers.register()  # for compose() in tests; the CLI registers them itself
REPO = Path(__file__).resolve().parents[1]
# Fast settings for CLI runs: no progress bar/summary, CSV only.
FAST = [
    "callbacks=minimal",
    "logger=csv",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]
# A run of a few batches: it tests the plumbing, not the learning.
TINY = [
    *FAST,
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
]


@pytest.fixture(autouse=True)
def _offline_wandb(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")


@dataclass
class Result:
    """How a CLI run ended."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def _reset_logging() -> None:
    """Close the handlers Hydra gave the root logger (train.log, the captured console)."""
    root = logging.getLogger()
    for handler in root.handlers[:]:
        handler.close()
        root.removeHandler(handler)
    logging.captureWarnings(False)


@pytest.fixture
def cli(monkeypatch, capsys, tmp_path):
    """``cli(*args, cwd=tmp_path)``: run the training CLI in this process and return a Result."""
    from cnn_ablations import train

    def run(*args: str, cwd: Path = tmp_path) -> Result:
        monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "argv", ["cnn_ablations.train", *args])
        threads = torch.get_num_threads()  # a run's torch_threads would outlive it here
        code = 0
        try:
            train.main()
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        finally:
            torch.set_num_threads(threads)
            _reset_logging()
            for key in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS"):
                os.environ.pop(key, None)
        out = capsys.readouterr()
        return Result(code, out.out, out.err)

    return run


def run_cli(
    args: list[str],
    cwd: Path,
    timeout: int = 600,
    env: dict | None = None,
    module: str = "cnn_ablations.train",
) -> subprocess.CompletedProcess:
    """Run ``python -m <module> <args>`` in a subprocess in ``cwd`` with W&B offline."""
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


def compose_cfg(overrides: list[str], hydra_cfg: bool = False):
    """The composed training config (as the CLI would compose it, without running anything)."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(CONFIG_NAME, overrides=overrides, return_hydra_config=hydra_cfg)


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


def run_dirs(root: Path, kind: str = "runs") -> list[Path]:
    """Run (or sweep job) dirs under ``root/outputs/<kind>/``."""
    pattern = "outputs/runs/*/*/.hydra" if kind == "runs" else "outputs/sweeps/*/*/*/.hydra"
    return sorted(p.parent for p in root.glob(pattern))


def only_run_dir(root: Path) -> Path:
    """The single run directory under ``root/outputs/runs/<name>/``."""
    dirs = run_dirs(root)
    assert len(dirs) == 1, dirs
    return dirs[0]


def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())
