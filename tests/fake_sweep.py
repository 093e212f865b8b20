"""Synthetic sweep dirs in the layout the training entry point writes (see sweep.load_sweep), and
a check that two report dirs agree."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from matplotlib.image import imread

SHARED = ["sweep=lenet_ablation", "trainer.max_epochs=3"]
EPOCHS = 3


def curve(test_acc: float, epoch: int) -> tuple[float, float]:
    """Known (val/acc, train/loss) of a job at an epoch."""
    return test_acc - 0.01 * (EPOCHS - 1 - epoch), 1.0 / (epoch + 1) + test_acc


def write_metrics_csv(path: Path, test_acc: float) -> None:
    """A sparse CSVLogger file: step rows, a validation row and a train-epoch row per epoch."""
    rows, step = [], 0
    for epoch in range(EPOCHS):
        val_acc, train_loss = curve(test_acc, epoch)
        for _ in range(2):
            step += 1
            rows.append({"epoch": epoch, "step": step, "train/loss_step": 2.0, "lr-Adam": 1e-3})
        rows.append({"epoch": epoch, "step": step, "val/loss": 0.5, "val/acc": val_acc})
        rows.append({"epoch": epoch, "step": step, "train/loss": train_loss, "train/acc": 0.5})
    rows.append({"epoch": EPOCHS - 1, "step": step, "test/acc": test_acc, "test/loss": 0.3})
    path.parent.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(path, index=False)


def write_job(
    sweep_dir: Path,
    overrides: list[str],
    seed: int,
    test_acc: float,
    status: str = "ok",
    error: str | None = None,
    config: dict | None = None,
) -> Path:
    """One job dir with results.json, .hydra/overrides.yaml and csv/metrics.csv. ``config``
    is the recorded config (the seed, the job's dir and the W&B logger are added, as in a real
    record); the config-group choices are the ``variant`` override's, if there is one."""
    all_overrides = [*SHARED, *overrides, f"seed={seed}"]
    job_dir = sweep_dir / ",".join([*overrides, f"seed={seed}"])
    (job_dir / ".hydra").mkdir(parents=True)
    (job_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(all_overrides))
    results = {
        "status": status,
        "error": error,
        "overrides": all_overrides,
        "condition": ",".join(overrides),
        "seed": seed,
        "group": f"{sweep_dir.parent.name}-{sweep_dir.name}",
        "choices": {"model": "lenet5", **dict(o.split("=") for o in overrides if "." not in o)},
        "metrics": {
            "val/acc_best": test_acc + 0.005,
            "test/acc": test_acc,
            "test/loss": 0.3,
            "train/loss": curve(test_acc, EPOCHS - 1)[1],
            "epochs": EPOCHS,
            "params": 61706,
            "sec_per_epoch": 1.5 + seed,
        },
        "output_dir": str(job_dir),
        "metrics_csv": "csv/metrics.csv",
        "config": {
            **(config or {}),
            "seed": seed,
            "paths": {"output_dir": str(job_dir)},
            "optimizer": {"lr": 0.001},
            "trainer": {"max_epochs": EPOCHS},
            "logger": {"wandb": {"project": "cnn-ablations", "entity": None}},
        },
    }
    (job_dir / "results.json").write_text(json.dumps(results))
    write_metrics_csv(job_dir / "csv" / "metrics.csv", test_acc)
    return job_dir


def write_multirun(sweep_dir: Path, params: dict[str, str]) -> None:
    """multirun.yaml with ``hydra.sweeper.params``."""
    config = {"hydra": {"sweeper": {"params": params}, "overrides": {"task": SHARED}}}
    (sweep_dir / "multirun.yaml").write_text(yaml.safe_dump(config))


def make_ofat_sweep(root: Path) -> tuple[Path, dict[tuple[str, int], float]]:
    """3 variants (baseline first) × 3 seeds, one failed job and one job that never finished.

    Returns the sweep dir and the test accuracy of each ok (variant, seed).
    """
    sweep_dir = root / "outputs" / "sweeps" / "lenet_ablation" / "2026-11-23_12-00-00"
    sweep_dir.mkdir(parents=True)
    write_multirun(sweep_dir, {"variant": "sigmoid,baseline,relu", "seed": "0,1,2"})
    rng = np.random.default_rng(0)
    means = {"baseline": 0.90, "sigmoid": 0.80, "relu": 0.93}
    acc = {
        (variant, seed): round(float(mean + rng.normal(0, 0.01)), 6)
        for variant, mean in means.items()
        for seed in range(3)
    }
    activation = {"baseline": "relu", "sigmoid": "sigmoid", "relu": "relu"}
    for (variant, seed), value in acc.items():
        config = {"model": {"activation": activation[variant], "pool": "max"}}
        write_job(sweep_dir, [f"variant={variant}"], seed, value, config=config)
    write_job(sweep_dir, ["variant=relu"], 3, 0.01, status="failed", error="loss is NaN")
    (sweep_dir / "variant=relu,seed=4" / ".hydra").mkdir(parents=True)
    return sweep_dir, acc


def make_factorial_sweep(
    root: Path, interaction: float = 0.0
) -> tuple[Path, dict[tuple[str, str, int], float]]:
    """model.activation (tanh, relu) × model.pool (max, avg) × 3 seeds; ``interaction`` is added
    to the relu+avg cell.

    multirun.yaml lists tanh and max first, so they are the reference levels although
    sorted order would pick relu and avg. Returns the sweep dir and acc per (act, pool, seed).
    """
    sweep_dir = root / "outputs" / "sweeps" / "lenet_grid" / "2026-11-24_09-00-00"
    sweep_dir.mkdir(parents=True)
    write_multirun(
        sweep_dir, {"model.activation": "tanh,relu", "model.pool": "max,avg", "seed": "0,1,2"}
    )
    rng = np.random.default_rng(1)
    acc = {}
    for activation in ["tanh", "relu"]:
        for pool in ["max", "avg"]:
            for seed in range(3):
                value = 0.9 + 0.03 * (activation == "relu") - 0.01 * (pool == "avg")
                value += interaction * (activation == "relu" and pool == "avg")
                acc[activation, pool, seed] = round(float(value + rng.normal(0, 0.005)), 6)
                overrides = [f"model.activation={activation}", f"model.pool={pool}"]
                config = {"model": {"activation": activation, "pool": pool}}
                write_job(sweep_dir, overrides, seed, acc[activation, pool, seed], config=config)
    return sweep_dir, acc


def same_report(built: Path, rebuilt: Path) -> None:
    """Every table (CSV and markdown) of two report dirs is identical, and both have every
    figure."""
    for name in ["report.md", "summary.md", "runs.csv", "summary.csv", "effects.csv", "claims.csv",
                 "interactions.csv"]:  # fmt: skip
        assert (built / name).exists() == (rebuilt / name).exists(), name
        if (built / name).exists():
            assert (rebuilt / name).read_text() == (built / name).read_text(), name
    for figure in built.glob("*.png"):
        assert imread(rebuilt / figure.name).shape == imread(figure).shape
