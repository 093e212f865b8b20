"""The study's budget: early stopping in a real fit, the budget check on records written by the
project's own writers, claims judged only at their budget."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from tests.conftest import FAST, only_run_dir, results

from cnn_ablations.record import Metrics, RunRecord
from cnn_ablations.report import build_report
from cnn_ablations.report.budget_check import budget_check
from cnn_ablations.report.stats import analyse
from cnn_ablations.sweepdir import load_sweep
from cnn_ablations.tracking import CSVLogger
from fake_sweep import write_multirun

CONVERGED_CONFIG = {
    "trainer": {"max_epochs": 20},
    "callbacks": {"early_stopping": {"monitor": "val/acc", "patience": 3, "min_delta": 0.0}},
    "optimizer": {"lr": 0.001},
}
VARIANT_CONFIG = {  # what each variant changes, as a job's recorded config has it
    "baseline": {"model": {"pool": "max", "dropout": 0.0}},
    "avg_pool": {"model": {"pool": "avg", "dropout": 0.0}},
    "dropout": {"model": {"pool": "max", "dropout": 0.5}},
}


def baseline_curve(epochs: int) -> np.ndarray:
    return 0.80 + 0.10 * (1 - np.exp(-np.arange(1, epochs + 1) / 3))


def write_converged_job(sweep_dir, variant: str, seed: int, val_acc: np.ndarray, test_acc: float):
    """A job dir as a converged run leaves it: its ``RunRecord`` and the curves by the
    project's ``CSVLogger``."""
    job_dir = sweep_dir / f"variant={variant},seed={seed}"
    (job_dir / ".hydra").mkdir(parents=True)
    logger = CSVLogger(save_dir=str(job_dir), name="csv", version="")
    for epoch, value in enumerate(val_acc):
        logger.log_metrics({"epoch": epoch, "val/acc": value, "train/loss": 1 - value}, step=epoch)
    logger.save()
    epochs = len(val_acc)
    metrics = {
        "test/acc": test_acc,
        "val/acc_best": float(val_acc.max()),
        "train/loss": 0.1,
        "epochs": epochs,
        "best_epoch": int(val_acc.argmax()) + 1,
        "stopped_by": "patience",
        "params": 61706,
        "sec_per_epoch": 7.0,
    }
    RunRecord(
        status="ok",
        overrides=[f"variant={variant}", f"seed={seed}"],
        seed=seed,
        metrics=Metrics.model_validate(metrics),
        metrics_csv="csv/metrics.csv",
        config={**CONVERGED_CONFIG, **VARIANT_CONFIG[variant], "seed": seed},
    ).save(job_dir)


@pytest.fixture(scope="module")
def converged_sweep(tmp_path_factory):
    """baseline, avg_pool (behind at half of the epochs, ahead at the end) and dropout (behind
    throughout, by about the same) x 3 seeds, 12 epochs each."""
    sweep_dir = tmp_path_factory.mktemp("converged") / "lenet_ablation_converged" / "2026"
    sweep_dir.mkdir(parents=True)
    write_multirun(sweep_dir, {"variant": "baseline,avg_pool,dropout", "seed": "0,1,2"})
    epochs, noise = 12, np.random.default_rng(0)
    shift = {  # points added to the baseline's curve, per epoch
        "baseline": np.zeros(epochs),
        "avg_pool": np.where(np.arange(epochs) < 6, -3.0, 1.0),
        "dropout": np.full(epochs, -1.5),
    }
    for variant, points in shift.items():
        for seed in range(3):
            val_acc = baseline_curve(epochs) + points / 100 + noise.normal(0, 0.0005, epochs)
            write_converged_job(sweep_dir, variant, seed, val_acc, float(val_acc[-1]) - 0.005)
    return sweep_dir


def test_the_budget_check_flags_an_effect_that_flips_sign(converged_sweep):
    analysis = analyse(load_sweep(converged_sweep))
    assert analysis.budget.sentence == (
        "at convergence: early stopping on val/acc, patience 3, cap 20 epochs"
    )
    effects = analysis.effects.set_index("level")
    # avg_pool: -3 points at half of the 12 epochs (the best of epochs 1-6), +1 at the end
    assert effects.loc["avg_pool", "val_effect_mid"] == pytest.approx(-3.0, abs=0.2)
    assert effects.loc["avg_pool", "val_effect_end"] == pytest.approx(1.0, abs=0.2)
    assert not effects.loc["avg_pool", "settled"]
    # dropout: -1.5 at both, within its interval's half-width of itself
    assert effects.loc["dropout", "val_effect_mid"] == pytest.approx(-1.5, abs=0.2)
    assert effects.loc["dropout", "settled"]


def test_monte_carlo_the_budget_check_flags_about_5_percent_of_still_effects():
    """Through ``budget_check``: paired val effects at half of training and at its end, 4 to 10
    seeds, 4,000 studies each (Monte Carlo standard error of 5%: 0.0034). An effect that does
    not move (0 at both points, the end's noise on top of the middle's) is flagged in about 5%
    of studies; one that moves by 1 point (the study's ±1) almost always."""
    rng, reps = np.random.default_rng(3), 4_000
    se = math.sqrt(0.05 * 0.95 / reps)
    for n in (4, 6, 10):
        index = pd.RangeIndex(n)
        flagged = {"still": 0, "moving": 0}
        for _ in range(reps):
            mid = rng.normal(0.0, 0.3, n)
            end = mid + rng.normal(0.0, 0.2, n)
            check = budget_check(pd.Series(mid, index), pd.Series(end, index), 1.0)
            flagged["still"] += not check["settled"]
            moved = budget_check(pd.Series(mid, index), pd.Series(end + 1.0, index), 1.0)
            flagged["moving"] += not moved["settled"]
        assert flagged["still"] / reps < 0.05 + 4 * se, (n, flagged)
        assert flagged["moving"] / reps > 0.9, (n, flagged)


def test_the_budget_check_change_interval_is_the_paired_t_interval():
    mid = pd.Series([0.1, -0.4, 0.3, 0.2, 0.0])
    end = pd.Series([0.5, 0.2, 0.9, 0.4, 0.7])
    check = budget_check(mid, end, 1.0)
    result = stats.ttest_rel(end, mid)
    low, high = result.confidence_interval(0.95)
    assert (check["change_low"], check["change_high"]) == pytest.approx((low, high))
    assert result.pvalue < 0.05 and check["settled"] is False


def test_the_report_names_its_budget_and_marks_unsettled_effects(converged_sweep):
    report_dir = build_report(converged_sweep)
    lines = (report_dir / "report.md").read_text().splitlines()
    assert lines[2] == (
        "**Budget: at convergence: early stopping on val/acc, patience 3, cap 20 epochs.**"
    )
    effects = pd.read_csv(report_dir / "effects.csv").set_index("level")
    assert not effects.loc["avg_pool", "settled"]  # CSV: the raw values
    assert effects.loc["dropout", "settled"]
    avg_pool_row = next(line for line in lines if line.startswith("| `variant` | `avg_pool`"))
    assert avg_pool_row.endswith("| NOT SETTLED |")
    summary = pd.read_csv(report_dir / "summary.csv").set_index("condition")
    assert summary.loc["variant=baseline", "best_epoch_mean"] == 12
    assert summary.loc["variant=baseline", "stopped_by_patience"] == 3


def test_claims_are_judged_only_at_their_budget(converged_sweep):
    claims = analyse(load_sweep(converged_sweep)).claims
    pooling = claims[claims["level"] == "avg_pool"].iloc[0]
    assert pooling["budget"] == "converged" and "max pooling" in pooling["claim"]
    assert pooling["verdict"].endswith("(effect not settled at this budget)")
    dropout = claims[claims["level"] == "dropout"].set_index("budget")
    assert dropout.loc["converged", "verdict"] == "contradicts"  # -1.5 points, 3 seeds
    assert dropout.loc["speed", "verdict"] == "not tested at this budget"


def test_a_fixed_budget_study_does_not_judge_claims_about_converged_training(tmp_path):
    from fake_sweep import make_factorial_sweep

    sweep_dir, _ = make_factorial_sweep(tmp_path)  # 3 epochs, model.pool among its factors
    claims = analyse(load_sweep(sweep_dir)).claims
    pooling = claims[claims["factor"] == "model.pool"]
    assert len(pooling) and set(pooling["budget"]) == {"converged"}
    assert set(pooling["verdict"]) == {"not tested at this budget"}
    speed = claims[claims["factor"] == "model.activation"]
    assert set(speed["budget"]) == {"speed"} and "not tested" not in speed["verdict"].iloc[0]


def test_early_stopping_ends_a_real_fit_by_patience(cli, tmp_path):
    # min_delta 0.5: no epoch after the first can improve val/acc by 50 points, so patience 1
    # stops the fit after epoch 2, far below the cap
    result = cli(
        *FAST,
        "budget=converged",
        "callbacks.early_stopping.patience=1",
        "callbacks.early_stopping.min_delta=0.5",
        "trainer.max_epochs=30",
    )
    assert result.returncode == 0, result.stderr
    record = results(only_run_dir(tmp_path))
    metrics = record["metrics"]
    assert (metrics["epochs"], metrics["stopped_by"]) == (2, "patience")
    assert metrics["best_epoch"] in (1, 2)
    assert metrics["val/acc_best"] >= 0.85  # it learned: 500 held-out digits
    assert not math.isnan(metrics["sec_per_epoch"]) and metrics["sec_per_epoch"] > 0


@pytest.mark.parametrize(
    ("overrides", "start"),
    [
        (["callbacks.early_stopping.monitor=val/foo"], "error: callbacks.early_stopping.monitor="),
        (["callbacks.early_stopping.monitor=val/loss"], "error: callbacks.early_stopping.mode=max"),
        (["callbacks.early_stopping.patience=0"], "error: callbacks.early_stopping.patience=0"),
    ],
)
def test_early_stopping_settings_are_checked_before_training(cli, tmp_path, overrides, start):
    result = cli(*FAST, "budget=converged", "trainer.max_epochs=10", *overrides)
    assert result.returncode == 2
    (line,) = result.stderr_lines
    assert line.startswith(start)
    assert not (only_run_dir(tmp_path) / "results.json").exists()  # nothing trained


def test_a_cap_early_stopping_cannot_act_within_is_refused(cli):
    result = cli(*FAST, "budget=converged", "trainer.max_epochs=3")
    assert result.returncode == 2
    (line,) = result.stderr_lines
    assert line.startswith("error: trainer.max_epochs=3 is the cap of budget=converged")
    assert "raise trainer.max_epochs" in line
