"""How many seeds: Stein's two-stage plan and intervals (report/seeds.py), checked by Monte Carlo
and against scipy/statsmodels, and the ``hydra/sweeper=adaptive_seeds`` sweeper on real tiny
sweeps with each launcher."""

import json
import math
import os

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from scipy import stats
from statsmodels.stats.weightstats import DescrStatsW
from tests.conftest import FAST, REPO, compose_cfg, run_cli

from cnn_ablations.report.__main__ import main as report_main
from cnn_ablations.report.planning import plan_effect, replanned, stein_n
from cnn_ablations.report.runs import read_runs
from cnn_ablations.report.seeds import (
    EQUIVALENT,
    INCONCLUSIVE,
    RESOLVED,
    stein_halfwidth,
    stein_p_value,
    t_quantile,
    verdicts,
)
from cnn_ablations.report.stats import paired_interval
from fake_sweep import same_report

# --- the statistics ----------------------------------------------------------------------------


def test_quantiles_and_the_fixed_n_case_agree_with_scipy_and_statsmodels():
    assert t_quantile(3) == pytest.approx(3.182446, abs=1e-6)  # the t table's t(0.975, 3)
    diffs = np.random.default_rng(1).normal(0.8, 1.3, 7)
    # with n = n1 Stein's interval and p are the paired t-test's
    low, high = DescrStatsW(diffs).tconfint_mean(alpha=0.05)
    half = stein_halfwidth(diffs.std(ddof=1), 7, 7)
    assert (diffs.mean() - half, diffs.mean() + half) == pytest.approx((low, high))
    assert paired_interval(pd.Series(diffs))[1:] == pytest.approx((low, high))
    p = stein_p_value(diffs.mean(), diffs.std(ddof=1), 7, 7)
    assert p == pytest.approx(stats.ttest_1samp(diffs, 0).pvalue)


def test_stein_n_is_the_formula_and_the_plan_takes_the_next_seeds_up_to_the_cap():
    s1, n1, d = 1.7, 4, 1.0
    assert stein_n(s1, n1, d) == math.ceil((stats.t.ppf(0.975, 3) * s1 / d) ** 2) == 30
    assert stein_n(0.1, n1, d) == n1  # never fewer than stage 1 gave
    diffs = pd.Series([0.5, -1.0, 2.0], index=[0, 2, 3])  # seed 1's job failed: 3 pairs
    plan = plan_effect("variant", "tanh", "baseline", diffs, [4, 5, 6, 7], d, cap=5)
    assert (plan.n1, plan.n_needed, plan.n, plan.capped) == (3, stein_n(diffs.std(), 3, d), 5, True)
    assert plan.s1 == pytest.approx(diffs.std(ddof=1))
    assert plan.seeds == [0, 2, 3, 4, 5]  # the stage-1 pairs it has, then the pool's next


def test_stein_p_value_after_stage_2_is_steins_t_statistic_on_n1_minus_1_df():
    """At n > n1 (stage 2 ran), computed independently: Stein's T = √n·mean/s1 is Student's t
    with n1 − 1 df, so p = 2·P(T > |t|) = 2·(1 − cdf), by scipy's t distribution object."""
    rng = np.random.default_rng(5)
    for n1, n in [(4, 7), (4, 10), (3, 9), (6, 8)]:
        data = rng.normal(0.4, 1.1, n)
        s1 = data[:n1].std(ddof=1)
        statistic = math.sqrt(n) * data.mean() / s1
        expected = 2 * (1 - stats.t(df=n1 - 1).cdf(abs(statistic)))
        assert stein_p_value(data.mean(), s1, n1, n) == pytest.approx(expected, rel=1e-9)
        # and it is not the ordinary t-test on the n differences (which ignores the plan)
        assert stein_p_value(data.mean(), s1, n1, n) != pytest.approx(
            stats.ttest_1samp(data, 0).pvalue, rel=1e-3
        )


def test_monte_carlo_steins_p_value_rejects_a_null_effect_5_percent_of_the_time():
    """The planned design under effect = 0 (n1 = 4, d = 1, n chosen by s1, capped at 10):
    Stein's p < 0.05 in 5% of 40,000 studies; the naive t-test on the same n, more often."""
    rng, reps, n1, cap = np.random.default_rng(11), 40_000, 4, 10
    se = math.sqrt(0.05 * 0.95 / reps)
    for sigma in (0.5, 1.0):
        data = rng.normal(0.0, sigma, (reps, cap))
        s1 = data[:, :n1].std(axis=1, ddof=1)
        n = np.minimum(stein_n(s1, n1, 1.0), cap)
        taken = np.arange(cap) < n[:, None]
        xbar = (data * taken).sum(axis=1) / n
        rejected = np.mean(stein_p_value(xbar, s1, n1, n) < 0.05)
        assert abs(rejected - 0.05) < 3.5 * se, (sigma, rejected)


def simulate(mean, sigma, n1, d, cap, reps, rng):
    """Stein's design through stein_n and stein_halfwidth, vectorized over ``reps`` studies:
    whether the fixed-width, exact and naive intervals cover ``mean``."""
    data = rng.normal(mean, sigma, (reps, cap))
    s1 = data[:, :n1].std(axis=1, ddof=1)
    n = np.minimum(stein_n(s1, n1, d), cap)
    taken = np.arange(cap) < n[:, None]
    xbar = (data * taken).sum(axis=1) / n
    sn = np.sqrt(((data - xbar[:, None]) ** 2 * taken).sum(axis=1) / (n - 1))
    error = np.abs(xbar - mean)
    return {
        "fixed": np.mean(error <= d),
        "stein": np.mean(error <= stein_halfwidth(s1, n1, n)),
        "naive": np.mean(error <= t_quantile(n - 1) * sn / np.sqrt(n)),
        "mean_n": n.mean(),
    }


def test_monte_carlo_coverage_of_the_two_stage_intervals_and_of_the_naive_one():
    """Paired differences N(0.7, σ²), n1 = 4, d = 1 point, 40,000 studies per case (Monte Carlo
    standard error of a 95% coverage: 0.0011)."""
    rng, reps = np.random.default_rng(2024), 40_000
    se = math.sqrt(0.95 * 0.05 / reps)
    for sigma in (0.5, 1.0, 2.0):
        free = simulate(0.7, sigma, 4, 1.0, cap=400, reps=reps, rng=rng)  # n never capped
        assert free["fixed"] >= 0.95 - 3 * se, (sigma, free)  # mean ± d: at least 95%
        assert abs(free["stein"] - 0.95) < 3 * se, (sigma, free)  # ± t·s1/√n: exactly 95%
        capped = simulate(0.7, sigma, 4, 1.0, cap=10, reps=reps, rng=rng)
        assert abs(capped["stein"] - 0.95) < 3 * se, (sigma, capped)  # exact under the cap too
    # σ = 1: the t-interval on the same n, ignoring that s1 chose n, covers less than 95%
    naive = simulate(0.7, 1.0, 4, 1.0, cap=400, reps=reps, rng=rng)["naive"]
    assert naive < 0.95 - 5 * se, naive  # measured 0.925
    # σ = 2 with the cap at 10: mean ± d no longer covers, hence the report's "cap reached"
    assert simulate(0.7, 2.0, 4, 1.0, cap=10, reps=reps, rng=rng)["fixed"] < 0.90


def effect_rows(diffs: dict[str, pd.Series]) -> pd.DataFrame:
    rows = []
    for level, d in diffs.items():
        mean, low, high = paired_interval(d)
        rows.append(
            {"factor": "variant", "level": level, "reference": "baseline", "n": len(d),
             "effect": mean, "ci_low": low, "ci_high": high, "half_width": (high - low) / 2,
             "excludes_zero": bool(low > 0 or high < 0)}
        )  # fmt: skip
    return pd.DataFrame(rows)


def test_verdicts_are_holm_across_the_family_and_equivalence_within_d():
    rng = np.random.default_rng(7)
    seeds = list(range(10))
    diffs = {  # the plan's seeds have been run: stage 1 at 0-3, then what each needed
        "sigmoid": pd.Series(-8 + rng.normal(0, 0.5, 4), index=seeds[:4]),
        "tanh": pd.Series(0.05 + rng.normal(0, 0.3, 4), index=seeds[:4]),
        "avg_pool": pd.Series(0.9 + rng.normal(0, 3.0, 10), index=seeds),
    }
    plan = {"halfwidth": 1.0, "effects": []}
    for level, d in diffs.items():
        entry = plan_effect("variant", level, "baseline", d.iloc[:4], seeds[4:], 1.0, cap=10)
        plan["effects"].append(entry.__dict__)
        diffs[level] = d[d.index.isin(entry.seeds)]
    out = verdicts(effect_rows(diffs), {("variant", k): v for k, v in diffs.items()}, plan)
    out = out.set_index("level")
    for level, d in diffs.items():
        entry = next(e for e in plan["effects"] if e["level"] == level)
        half = stats.t.ppf(0.975, 3) * entry["s1"] / math.sqrt(len(d))
        # one interval per effect, the verdict's: Stein's; the t-interval is the secondary one
        assert out.loc[level, ["ci_low", "ci_high"]].tolist() == pytest.approx(
            [d.mean() - half, d.mean() + half]
        )
        assert out.loc[level, "n"] == len(d) and out.loc[level, "half_width"] == pytest.approx(half)
        t_mean, t_low, t_high = paired_interval(d)
        assert out.loc[level, ["t_low", "t_high"]].tolist() == pytest.approx([t_low, t_high])
    # Holm by hand: the i-th smallest of m p-values is compared with α/(m − i)
    p = out["p_value"].sort_values()
    holm, still = {}, True
    for i, (level, value) in enumerate(p.items()):
        still = still and value <= 0.05 / (len(p) - i)
        holm[level] = still
    assert out["resolved"].to_dict() == holm
    assert out.loc["sigmoid", "verdict"] == RESOLVED
    assert out.loc["tanh", "verdict"] == EQUIVALENT.format(d=1.0)  # inside ±1 point
    assert out.loc["tanh", "interval"].startswith("Stein's (n reached")
    assert out.loc["avg_pool", "interval"].startswith("Stein's (cap reached: n=10 of")
    assert out.loc["avg_pool", "verdict"] in (RESOLVED, INCONCLUSIVE)
    # no plan (a fixed list of seeds): the paired t-test's p, Holm, no equivalence verdict
    plain = verdicts(effect_rows(diffs), {("variant", k): v for k, v in diffs.items()}, None)
    t_p = [stats.ttest_1samp(d, 0).pvalue for d in diffs.values()]
    assert plain["p_value"].tolist() == pytest.approx(t_p)
    assert plain["n_needed"].isna().all() and plain["t_low"].isna().all()
    assert set(plain["interval"]) == {"paired t"}
    assert set(plain["verdict"]) <= {RESOLVED, INCONCLUSIVE}


# --- the sweeper -------------------------------------------------------------------------------

# 3 train batches of digits; the test set is read whole. lr=0.0010001 trains as lr=0.001 does
# (the same test accuracy at every seed: s1 = 0, no stage 2); lr=0.01 differs by several points.
TINY_SWEEP = [
    *FAST,
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=1",
    "hydra/sweeper=adaptive_seeds",
    "hydra.sweeper.first=2",
    "hydra.sweeper.max=3",
    "hydra.sweeper.halfwidth=0.5",
]


def sweep_dir_of(root):
    (multirun,) = root.glob("outputs/sweeps/*/*/multirun.yaml")
    return multirun.parent


def check_stage_2_is_the_plan(sweep_dir, levels):
    """The job dirs are stage 1 (every level at seeds 0, 1) and, for each effect, its planned
    seeds at its level and the reference: no other job; all ok; s1 recomputed from results."""
    plan = json.loads((sweep_dir / "seeds_plan.json").read_text())
    acc = {}
    for job in sweep_dir.glob("*/results.json"):
        record = json.loads(job.read_text())
        assert record["status"] == "ok", record["error"]
        acc[job.parent.name] = 100 * record["metrics"]["test/acc"]
    expected = {f"optimizer.lr={lr},seed={s}" for lr in levels for s in (0, 1)}
    for effect in plan["effects"]:
        for lr in (effect["level"], effect["reference"]):
            expected |= {f"optimizer.lr={lr},seed={s}" for s in effect["seeds"]}
        d = [acc[f"optimizer.lr={effect['level']},seed={s}"] - acc[f"optimizer.lr=0.001,seed={s}"]
             for s in (0, 1)]  # fmt: skip
        assert effect["s1"] == pytest.approx(np.std(d, ddof=1))
        assert effect["n_needed"] == stein_n(np.std(d, ddof=1), 2, 0.5)
    assert set(acc) == expected
    assert sorted(plan["stage2_jobs"]) == sorted(expected - {n for n in expected if n[-1] in "01"})
    return plan


def test_adaptive_seeds_runs_stage_2_for_exactly_the_planned_effects_and_resumes(cli, tmp_path):
    result = cli("-m", *TINY_SWEEP, "optimizer.lr=0.001,0.0010001,0.01", "seed=0,1")
    assert result.returncode == 0, result.stderr[-3000:]
    sweep_dir = sweep_dir_of(tmp_path)
    plan = check_stage_2_is_the_plan(sweep_dir, ["0.001", "0.0010001", "0.01"])
    by_level = {e["level"]: e for e in plan["effects"]}
    assert by_level["0.0010001"]["s1"] == 0 and by_level["0.0010001"]["seeds"] == [0, 1]
    assert by_level["0.01"]["capped"] and by_level["0.01"]["seeds"] == [0, 1, 2]
    assert plan["stage2_jobs"] == ["optimizer.lr=0.001,seed=2", "optimizer.lr=0.01,seed=2"]
    # each job's progress line counts the jobs the sweep runs: 6 in stage 1, then 8
    for name, line in [
        ("optimizer.lr=0.01,seed=1", "job 6/6 · optimizer.lr=0.01,seed=1"),
        ("optimizer.lr=0.01,seed=2", "job 8/8 · optimizer.lr=0.01,seed=2"),
    ]:
        assert line in (sweep_dir / name / "train.log").read_text()
    effects = pd.read_csv(sweep_dir / "report" / "effects.csv", dtype={"level": str})
    effects = effects.set_index("level")
    assert effects.loc["0.01", "n_needed"] == by_level["0.01"]["n_needed"]
    assert effects.loc["0.01", "interval"].startswith("Stein's (cap reached: n=3 of")
    assert "verdict" in effects and "resolved" in effects
    answer = (sweep_dir / "report" / "report.md").read_text()
    assert "with 2 to 3 seeds" in answer  # Stein's n per effect: a range
    assert "Seeds planned per effect by Stein's rule for ±0.5 points (Stein's intervals);" in answer
    # the report rebuilt from its runs.csv alone replans the seeds from the stage-1 rows and
    # gives every table of the records' report (python -m cnn_ablations.report --runs)
    assert report_main(["--runs", str(sweep_dir / "report" / "runs.csv"), "--out",
                        str(tmp_path / "rebuilt")]) == 0  # fmt: skip
    assert replanned(read_runs(sweep_dir / "report" / "runs.csv"))["effects"] == plan["effects"]
    same_report(sweep_dir / "report", tmp_path / "rebuilt")

    # after a kill: one stage-2 job never ran, one stage-1 job was cut off mid-fit
    import shutil

    shutil.rmtree(sweep_dir / "optimizer.lr=0.01,seed=2")
    record = json.loads((sweep_dir / "optimizer.lr=0.001,seed=1" / "results.json").read_text())
    record["status"] = "running"
    (sweep_dir / "optimizer.lr=0.001,seed=1" / "results.json").write_text(json.dumps(record))
    started = {p.parent.name: json.loads(p.read_text())["started_at"]
               for p in sweep_dir.glob("*/results.json")}  # fmt: skip
    before = (sweep_dir / "seeds_plan.json").read_text()
    result = cli(
        "-m", *TINY_SWEEP, "optimizer.lr=0.001,0.0010001,0.01", "seed=0,1", f"resume={sweep_dir}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (sweep_dir / "seeds_plan.json").read_text() == before  # planned identically
    check_stage_2_is_the_plan(sweep_dir, ["0.001", "0.0010001", "0.01"])
    rerun = {p.parent.name for p in sweep_dir.glob("*/results.json")
             if json.loads(p.read_text())["started_at"] != started.get(p.parent.name)}  # fmt: skip
    assert rerun == {"optimizer.lr=0.01,seed=2", "optimizer.lr=0.001,seed=1"}


def test_adaptive_seeds_needs_a_seed_list_in_the_grid(cli):
    result = cli("-m", *TINY_SWEEP, "optimizer.lr=0.001,0.01")
    assert result.returncode == 2
    assert result.stderr_lines[-1].startswith("error: hydra/sweeper=adaptive_seeds: the grid lists")


@pytest.mark.slow  # ~1-2 minutes on 2 cores: worker processes import torch
@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_adaptive_seeds_runs_through_the_launcher(launcher, tmp_path):
    args = ["-m", *TINY_SWEEP, f"hydra/launcher={launcher}", "optimizer.lr=0.001,0.01", "seed=0,1"]
    # the subprocess runs in tmp_path: put this checkout's src/ (and its plugin) on its path
    result = run_cli(args, tmp_path, env={"PYTHONPATH": str(REPO / "src")})
    assert result.returncode == 0, result.stderr[-3000:]
    sweep_dir = sweep_dir_of(tmp_path)
    target = OmegaConf.load(sweep_dir / "multirun.yaml").hydra.launcher._target_
    assert target.endswith(
        {"joblib": "JoblibLauncher", "submitit_local": "LocalLauncher"}[launcher]
    )
    plan = check_stage_2_is_the_plan(sweep_dir, ["0.001", "0.01"])
    assert plan["stage2_jobs"]  # |Δ| of several points at halfwidth 0.5: capped, seed 2 ran


def test_lenet_ablation_full_plans_its_seeds_and_the_converged_study_can():
    cfg = compose_cfg(["sweep=lenet_ablation_full"], hydra_cfg=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("AdaptiveSeedsSweeper")
    assert (sweeper.first, sweeper.max, sweeper.halfwidth) == (4, 10, 1.0)
    assert sweeper.params.seed.split(",")[:4] == ["0", "1", "2", "3"]
    cfg = compose_cfg(["sweep=lenet_ablation_converged", "hydra.sweeper.halfwidth=0.5"], True)
    assert cfg.hydra.sweeper._target_.endswith("AdaptiveSeedsSweeper")
    assert cfg.hydra.sweeper.halfwidth == 0.5 and "variant" in cfg.hydra.sweeper.params


def test_the_converged_study_anneals_with_a_rate_per_condition_and_parallel_jobs():
    """lenet_ablation_converged's recipe (docs/sweeps.md: its pilot): 12 epochs with a cosine
    to 0, each condition's rate chosen on the validation split, parallel 1-thread jobs, bf16
    only where the CPU has it, channels-last."""
    from cnn_ablations.budget import budget_of
    from cnn_ablations.resolvers import native_bf16

    cfg = compose_cfg(["sweep=lenet_ablation_converged"], hydra_cfg=True)
    budget = budget_of(cfg, cfg.hydra.runtime.choices)
    assert budget.kind == "converged" and budget.annealed and budget.epochs == 12
    assert "early_stopping" not in cfg.callbacks
    assert cfg.scheduler._target_.endswith("CosineAnnealingLR") and cfg.scheduler.T_max == 12
    assert cfg.lr_selection.enabled and cfg.lr_selection.epochs == 3
    assert cfg.hydra.launcher._target_.endswith("JoblibLauncher") and cfg.torch_threads == 1
    assert cfg.hydra.launcher.n_jobs == len(os.sched_getaffinity(0))
    assert cfg.trainer.precision == ("bf16-mixed" if native_bf16() else 32)
    assert cfg.channels_last is True
    # a cosine over a short fixed budget without budget=annealed still measures learning speed
    speed = compose_cfg(["sweep=lenet_ablation", "scheduler=cosine"], hydra_cfg=True)
    assert budget_of(speed, speed.hydra.runtime.choices).kind == "speed"
    gpu = compose_cfg(["sweep=lenet_ablation_converged", "trainer=gpu"])
    assert gpu.trainer.precision == 32  # the CPU's bf16 is not the GPU's choice


@pytest.mark.parametrize("sweep", ["alexnet_ablation", "lenet_vs_alexnet"])
def test_the_colour_studies_are_converged_planned_and_fast(sweep):
    """The second study's sweep files: 55k colour images, early stopping, planned seeds, and the
    speed switches: bf16 where the CPU has it (AlexNet-lite's epoch ~3x faster with AMX:
    docs/performance.md), channels-last, parallel jobs; the recipe the pilot kept (Adam at 1e-3,
    dropout 0.5: docs/models.md)."""
    from cnn_ablations.resolvers import native_bf16

    cfg = compose_cfg([f"sweep={sweep}"], hydra_cfg=True)
    assert cfg.data.dataset == "fashion_mnist_color" and cfg.data.batch_size == 128
    assert cfg.callbacks.early_stopping.monitor == "val/acc" and cfg.trainer.max_epochs == 30
    assert cfg.hydra.sweeper._target_.endswith("AdaptiveSeedsSweeper")
    assert (cfg.hydra.sweeper.first, cfg.hydra.sweeper.halfwidth) == (4, 1.0)
    assert cfg.trainer.precision == ("bf16-mixed" if native_bf16() else 32)  # where it pays
    assert cfg.channels_last is True and cfg.hydra.launcher._target_.endswith("JoblibLauncher")
    assert cfg.optimizer._target_ == "torch.optim.Adam" and cfg.optimizer.lr == 1e-3
    assert compose_cfg([f"sweep={sweep}", "model=alexnet_lite"]).model.dropout == 0.5
