"""The report on synthetic sweeps, checked against independent numpy/scipy sums."""

import io
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread
from rich.console import Console
from scipy import stats

from cnn_ablations.report import build_report
from cnn_ablations.report.__main__ import main
from cnn_ablations.report.runs import epoch_curves
from cnn_ablations.report.stats import analyse
from cnn_ablations.report.tables import claims_table, effects_table, summary_table
from cnn_ablations.sweepdir import load_sweep
from fake_sweep import (
    EPOCHS,
    curve,
    make_factorial_sweep,
    make_ofat_sweep,
    same_report,
    write_job,
    write_multirun,
)

VARIANTS = ["baseline", "sigmoid", "relu"]
FIGURES = ["effects.png", "val_acc.png", "train_loss.png", "test_acc.png"]
REPORT_FILES = ["report.md", "summary.csv", "summary.md", "effects.csv", "claims.csv", *FIGURES]


@pytest.fixture(scope="module")
def ofat(tmp_path_factory):
    """(sweep dir, test acc per (variant, seed), report dir) of the one-factor sweep."""
    sweep_dir, acc = make_ofat_sweep(tmp_path_factory.mktemp("ofat"))
    return sweep_dir, acc, build_report(sweep_dir)


@pytest.fixture(scope="module")
def factorial(tmp_path_factory):
    """(sweep dir, test acc per (activation, pool, seed), report dir) of the 2x2 grid."""
    sweep_dir, acc = make_factorial_sweep(tmp_path_factory.mktemp("grid"))
    return sweep_dir, acc, build_report(sweep_dir)


def paired_t(diffs: list[float]) -> tuple[float, float, float]:
    """Mean and 95% t-interval of paired differences."""
    d = np.array(diffs)
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    return d.mean(), d.mean() - half, d.mean() + half


def test_summary_matches_numpy(ofat):
    _, acc, report_dir = ofat
    summary = pd.read_csv(report_dir / "summary.csv").set_index("condition")
    means = {v: np.mean([acc[v, s] for s in range(3)]) for v in VARIANTS}
    assert list(summary.index) == [f"variant={v}" for v in sorted(means, key=means.get)[::-1]]
    for variant in VARIANTS:
        values = 100 * np.array([acc[variant, s] for s in range(3)])  # percent
        row = summary.loc[f"variant={variant}"]
        assert row["n"] == 3  # the failed relu jobs are not counted
        assert row["test_acc_mean"] == pytest.approx(values.mean())
        assert row["test_acc_std"] == pytest.approx(values.std(ddof=1))
        assert row["test_acc_min"] == pytest.approx(values.min())
        assert row["test_acc_max"] == pytest.approx(values.max())
        assert row["val_acc_best_mean"] == pytest.approx(values.mean() + 0.5)
        final_loss = [curve(a / 100, EPOCHS - 1)[1] for a in values]
        assert row["train_loss_mean"] == pytest.approx(np.mean(final_loss))
        assert (row["epochs_mean"], row["params_mean"], row["lr_mean"]) == (EPOCHS, 61706, 0.001)
        assert row["sec_per_epoch_mean"] == pytest.approx(np.mean([1.5, 2.5, 3.5]))


def test_a_fixed_budget_reports_learning_speed(ofat):
    _, acc, report_dir = ofat
    summary = pd.read_csv(report_dir / "summary.csv").set_index("condition")
    assert (
        f"**Budget: learning speed: fixed {EPOCHS} epochs.**"
        in ((report_dir / "report.md").read_text().splitlines()[2])
    )
    baseline_best = np.mean([100 * acc["baseline", s] + 0.5 for s in range(3)])  # val/acc_best
    for variant in VARIANTS:
        val = {s: [100 * curve(acc[variant, s], e)[0] for e in range(EPOCHS)] for s in range(3)}
        reached = [
            next((e + 1 for e, v in enumerate(val[s]) if v >= 0.95 * baseline_best), np.nan)
            for s in range(3)
        ]
        row = summary.loc[f"variant={variant}"]
        assert row["val_acc_epoch1_mean"] == pytest.approx(np.mean([val[s][0] for s in range(3)]))
        assert row["val_acc_final_mean"] == pytest.approx(np.mean([val[s][-1] for s in range(3)]))
        expected = np.nanmean(reached) if not np.isnan(reached).all() else np.nan
        assert row["epochs_to_reach_mean"] == pytest.approx(expected, nan_ok=True)


def test_one_table_model_gives_the_same_columns_everywhere(ofat):
    """The markdown has the readable labels, the CSV the snake_case names, column for column."""
    sweep_dir, _, report_dir = ofat
    text = (report_dir / "report.md").read_text()
    analysis = analyse(load_sweep(sweep_dir))
    tables = {"summary": summary_table, "effects": effects_table, "claims": claims_table}
    for name, make in tables.items():
        table = make(analysis)
        assert "| " + " | ".join(c.name for c in table.columns) + " |" in text, name
        csv_header = (report_dir / f"{name}.csv").read_text().splitlines()[0].split(",")
        assert csv_header == [c.csv_name for c in table.columns], name


def test_csvs_round_trip_through_pandas_with_snake_case_names(ofat, factorial):
    """Each CSV reads back into pandas with identifier-like names and the analysis's numbers."""
    effects = pd.read_csv(ofat[2] / "effects.csv")
    assert list(effects.columns) == [
        "factor", "level", "reference", "n", "delta", "ci_low", "ci_high", "halfwidth",
        "interval", "excludes_zero", "resolved", "verdict", "val_delta_mid", "val_delta_end",
        "val_change", "change_low", "change_high", "settled",
    ]  # fmt: skip
    expected = analyse(load_sweep(ofat[0])).effects
    for written, computed in [
        ("delta", "effect"), ("ci_low", "ci_low"), ("ci_high", "ci_high"),
        ("halfwidth", "half_width"),
    ]:  # fmt: skip
        assert effects[written].tolist() == pytest.approx(expected[computed].tolist())
    assert effects["excludes_zero"].dtype == bool
    claims = pd.read_csv(ofat[2] / "claims.csv")
    assert list(claims.columns) == [
        "claim", "budget", "source", "setting", "factor", "level", "reference", "expected",
        "delta", "ci_low", "ci_high", "verdict",
    ]  # fmt: skip
    interactions = pd.read_csv(factorial[2] / "interactions.csv")
    assert list(interactions.columns) == [
        "factor_a", "level_a", "factor_b", "level_b", "interaction", "ci_low", "ci_high",
        "p_value", "excludes_zero",
    ]  # fmt: skip
    for path in [*ofat[2].glob("*.csv"), *factorial[2].glob("*.csv")]:
        names = pd.read_csv(path).columns
        if path.name == "runs.csv":  # its factor and config columns are config keys
            keys = {"model.activation", "model.pool"}
            names = [n for n in names if n not in keys and not n.startswith("config:")]
        assert all(re.fullmatch(r"[a-z][a-z0-9_]*", name) for name in names), (path, names)


def test_runs_csv_has_a_row_per_job_from_which_each_effect_is_recomputed(ofat):
    runs = pd.read_csv(ofat[2] / "runs.csv")
    sweep = load_sweep(ofat[0])
    assert sorted(runs["job"]) == sorted(job.name for job in sweep.jobs)  # failed ones too
    assert set(runs.loc[runs["status"] != "ok", "job"]) == {j.name for j in sweep.failed}
    ok = runs[runs["status"] == "ok"].pivot(index="seed", columns="variant", values="test_acc")
    effects = analyse(sweep).effects.set_index("level")
    for level in ("sigmoid", "relu"):
        assert (ok[level] - ok["baseline"]).mean() == pytest.approx(effects.loc[level, "effect"])
    assert {"started_at", "finished_at", "precision", "threads", "wandb_run"} <= set(runs.columns)
    jobs = analyse(sweep).jobs.set_index("job")
    ok = runs[runs["status"] == "ok"].set_index("job")
    for column, source in [("val_acc_best_at_half", "val_mid"), ("val_acc_best_at_end", "val_end")]:
        assert ok[column].tolist() == pytest.approx(jobs.loc[ok.index, source].tolist())


@pytest.mark.parametrize("fixture", ["ofat", "factorial"])
def test_a_report_is_rebuilt_from_its_runs_csv_alone(fixture, request, tmp_path, capsys):
    """``--runs runs.csv`` rebuilds every table from the CSV alone (no sweep dir, records or
    curves files), claims and interactions included, identical to the records' report."""
    sweep_dir, _, report_dir = request.getfixturevalue(fixture)
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "runs.csv").write_bytes((report_dir / "runs.csv").read_bytes())
    assert main(["--runs", str(alone / "runs.csv"), "--out", str(tmp_path / "rebuilt")]) == 0
    same_report(report_dir, tmp_path / "rebuilt")
    assert "Report:" in capsys.readouterr().out
    assert main(["--runs", str(alone / "runs.csv")]) == 0  # in place: next to the CSV
    same_report(report_dir, alone)


def test_a_runs_csv_that_is_not_one_is_refused_in_one_line(ofat, tmp_path, capsys):
    bad = tmp_path / "runs.csv"
    bad.write_text("a,b\n1,2\n")
    assert main(["--runs", str(bad)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "is not a readable runs.csv (no column job, sweep, seed, status and" in line
    assert main(["--runs", str(tmp_path / "missing.csv")]) == 2
    assert "missing.csv is not a readable runs.csv" in capsys.readouterr().err
    edited = pd.read_csv(ofat[2] / "runs.csv", dtype=str)  # a number edited into text
    edited.loc[2, "test_acc"] = "91,2"
    edited.to_csv(bad, index=False)
    assert main(["--runs", str(bad)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"(test_acc is '91,2' for job {edited.loc[2, 'job']}, not a number)" in line


def test_effects_vs_baseline_match_scipy_in_points(ofat):
    sweep_dir, acc, report_dir = ofat
    effects = analyse(load_sweep(sweep_dir)).effects
    assert list(effects["level"]) == ["sigmoid", "relu"]  # multirun.yaml order, baseline first
    for row in effects.itertuples():
        diffs = [100 * (acc[row.level, s] - acc["baseline", s]) for s in range(3)]
        mean, low, high = paired_t(diffs)
        assert (row.factor, row.reference, row.n) == ("variant", "baseline", 3)
        assert (row.effect, row.ci_low, row.ci_high) == pytest.approx((mean, low, high))
        assert row.half_width == pytest.approx((high - low) / 2)
        assert row.excludes_zero == (low > 0 or high < 0)
    assert effects.set_index("level").loc["sigmoid", "excludes_zero"]  # Δ ≈ -10 points
    written = pd.read_csv(report_dir / "effects.csv")
    assert written["delta"].tolist() == pytest.approx(effects["effect"].tolist())


def test_claims_are_matched_by_the_config_a_variant_changes(ofat, factorial):
    claims = pd.read_csv(ofat[2] / "claims.csv")
    # variant=sigmoid changed model.activation relu -> sigmoid (its jobs' configs say so);
    # variant=relu changed nothing a claim covers
    (row,) = claims.itertuples()
    assert (row.level, row.reference, row.expected) == ("sigmoid", "baseline", "lower")
    assert row.verdict == "agrees" and "Krizhevsky" in row.source
    grid = pd.read_csv(factorial[2] / "claims.csv").set_index("factor")
    assert grid.loc["model.activation", "expected"] == "higher"  # tanh -> relu
    assert grid.loc["model.activation", "verdict"] == "agrees"  # +3 points, resolved
    assert grid.loc["model.pool", "expected"] == "lower"  # max -> avg


def test_report_md_leads_with_the_answer_and_links_resolve(ofat):
    sweep_dir, _, report_dir = ofat
    text = (report_dir / "report.md").read_text()
    assert text.index("![Effects on test accuracy") < text.index("## Effects")
    assert (
        "**1 of 2 effects resolved after Holm's correction across them (1 of the 95% intervals "
        "exclude 0 one by one) with 3 seeds" in text
    )
    assert "lenet_ablation" in text and sweep_dir.name in text
    assert "9 ok, 2 failed" in text
    failed = text.split("## Failed jobs")[1]
    assert "`variant=relu,seed=3`: loss is NaN" in failed
    assert "`variant=relu,seed=4`: no results.json" in failed
    assert "| `variant` | `sigmoid` | `baseline` | 3 |" in text and "**yes**" in text
    assert "`trainer.max_epochs=3`" in text  # shared override named once, not in labels
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert set(FIGURES) <= set(links)
    for link in links:
        assert (report_dir / link).is_file(), link


def test_every_file_written_and_figures_decode(ofat, factorial):
    for _, _, report_dir in (ofat, factorial):
        for name in REPORT_FILES:
            assert (report_dir / name).stat().st_size > 0, name
        for name in FIGURES:
            image = imread(report_dir / name)
            assert image.shape[1] > 300 and image.shape[0] > 200, name
            assert image.std() > 0, name  # not blank


def test_test_accuracy_axis_stays_within_0_and_100(ofat):
    from cnn_ablations.report.figures import accuracy_limits

    assert accuracy_limits(pd.Series([99.5, 99.9])) == (pytest.approx(98.5), 100.0)
    assert accuracy_limits(pd.Series([80.0, 90.0])) == (77.5, 92.5)  # zoomed to the data


def test_epoch_curves_take_last_non_null_per_epoch(ofat, tmp_path):
    sweep_dir, acc, _ = ofat
    curves = epoch_curves(sweep_dir / "variant=sigmoid,seed=1" / "csv" / "metrics.csv")
    assert list(curves["epoch"]) == list(range(EPOCHS))
    expected = np.array([curve(acc["sigmoid", 1], e) for e in range(EPOCHS)])
    np.testing.assert_allclose(curves[["val/acc", "train/loss"]], expected)

    rows = "epoch,step,val/acc,train/loss\n0,1,0.1,\n0,1,0.2,\n0,2,,1.5\n1,3,0.3,\n1,4,,1.2\n"
    (tmp_path / "metrics.csv").write_text(rows)
    curves = epoch_curves(tmp_path / "metrics.csv")
    np.testing.assert_allclose(curves[["val/acc", "train/loss"]], [[0.2, 1.5], [0.3, 1.2]])


def test_factorial_main_effects_match_scipy(factorial):
    sweep_dir, acc, report_dir = factorial
    effects = analyse(load_sweep(sweep_dir)).effects.set_index("factor")
    # References are the first levels in multirun.yaml (tanh, max), not sorted order.
    assert effects.loc["model.activation", ["level", "reference"]].tolist() == ["relu", "tanh"]
    assert effects.loc["model.pool", ["level", "reference"]].tolist() == ["avg", "max"]
    activation = [
        100 * np.mean([acc["relu", p, s] - acc["tanh", p, s] for p in ("max", "avg")])
        for s in range(3)
    ]
    pool = [
        100 * np.mean([acc[a, "avg", s] - acc[a, "max", s] for a in ("tanh", "relu")])
        for s in range(3)
    ]
    for factor, diffs in [("model.activation", activation), ("model.pool", pool)]:
        mean, low, high = paired_t(diffs)
        row = effects.loc[factor]
        assert row["n"] == 3
        assert (row["effect"], row["ci_low"], row["ci_high"]) == pytest.approx((mean, low, high))
    summary = pd.read_csv(report_dir / "summary.csv")
    assert len(summary) == 4 and (summary["n"] == 3).all()
    assert "main effects" in (report_dir / "report.md").read_text()


@pytest.mark.parametrize("interaction", [0.0, 0.05])
def test_interaction_is_the_mean_per_seed_difference_of_differences(interaction, tmp_path):
    """OLS with seed blocks on a balanced 2x2: the interaction estimate equals the mean over
    seeds of (relu - tanh at avg) - (relu - tanh at max), and a 5-point interaction resolves."""
    sweep_dir, acc = make_factorial_sweep(tmp_path, interaction=interaction)
    (row,) = analyse(load_sweep(sweep_dir)).interactions.itertuples()
    relu_effect = {
        pool: [acc["relu", pool, s] - acc["tanh", pool, s] for s in range(3)]
        for pool in ("avg", "max")
    }
    contrasts = [
        100 * (avg - max_) for avg, max_ in zip(relu_effect["avg"], relu_effect["max"], strict=True)
    ]
    assert (row.factor_a, row.level_a, row.factor_b, row.level_b) == (
        "model.activation", "relu", "model.pool", "avg",
    )  # fmt: skip
    assert row.interaction == pytest.approx(np.mean(contrasts))
    assert row.ci_low < row.interaction < row.ci_high and 0 <= row.p_value <= 1
    assert row.excludes_zero == (interaction > 0)


def test_single_seed_has_blank_std_and_no_interval(tmp_path):
    sweep_dir = tmp_path / "one_seed" / "2026-01-01_00-00-00"
    write_job(sweep_dir, ["variant=baseline"], 0, 0.9)
    write_job(sweep_dir, ["variant=relu"], 0, 0.95)
    analysis = analyse(load_sweep(sweep_dir))
    assert analysis.summary["test_acc_std"].isna().all()
    (effect,) = analysis.effects.itertuples()
    assert (effect.level, effect.n) == ("relu", 1)
    assert effect.effect == pytest.approx(5.0)
    assert math.isnan(effect.ci_low) and not effect.excludes_zero
    assert analysis.interactions.empty


def test_cli_defaults_to_latest_sweep(tmp_path, monkeypatch, capsys):
    ofat_dir, _ = make_ofat_sweep(tmp_path)
    grid_dir, _ = make_factorial_sweep(tmp_path)  # later timestamp
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "250")  # rich folds long labels in narrow terminals
    assert main([]) == 0
    assert (grid_dir / "report" / "report.md").is_file()
    assert not (ofat_dir / "report").exists()
    out = capsys.readouterr().out
    assert "model.activation=relu,model.pool=max" in out and "report.md" in out
    assert "effects resolved" in out

    assert main([str(ofat_dir)]) == 0  # failed jobs do not fail the report
    out = capsys.readouterr().out
    assert "failed variant=relu,seed=3: loss is NaN" in out


def test_cli_errors_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([]) == 2
    assert "no sweep found under outputs" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["empty"]) == 2
    assert "empty holds no jobs" in capsys.readouterr().err


def test_a_model_comparison_is_judged_by_the_capacity_claim_with_its_setting(tmp_path):
    """``model=lenet5,alexnet_lite`` changes the model group's choice (and every model key);
    the capacity claim is matched by that choice, and the claims say where the setting
    differs from the paper's."""
    sweep_dir = tmp_path / "outputs" / "sweeps" / "lenet_vs_alexnet" / "2026-12-02_03-00-00"
    sweep_dir.mkdir(parents=True)
    write_multirun(sweep_dir, {"model": "lenet5,alexnet_lite", "seed": "0,1,2"})
    converged = {"callbacks": {"early_stopping": {"monitor": "val/acc", "patience": 3}}}
    rng = np.random.default_rng(2)
    models = {  # as conf/model/ has them: the networks' dropout differs too
        "lenet5": {"_target_": "LeNet5", "dropout": 0.0},
        "alexnet_lite": {"_target_": "AlexNetLite", "dropout": 0.5},
    }
    for model, mean in [("lenet5", 0.88), ("alexnet_lite", 0.91)]:
        for seed in range(3):
            config = {**converged, "model": models[model]}
            acc = float(mean + rng.normal(0, 0.002))
            write_job(sweep_dir, [f"model={model}"], seed, acc, config=config)
    claims = pd.read_csv(build_report(sweep_dir) / "claims.csv")
    (row,) = claims.itertuples()  # not the dropout claims: the model swap is not a dropout ablation
    assert (row.level, row.reference, row.expected) == ("alexnet_lite", "lenet5", "higher")
    assert row.budget == "converged" and row.verdict == "agrees"  # +3 points, 3 seeds
    assert "0.54M" in row.setting and "Sec. 6" in row.source
    # the setting is a long note: in report.md and the CSV, not in the terminal's table
    table = claims_table(analyse(load_sweep(sweep_dir)))
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(table.to_rich(120))
    assert "the literature" in console.export_text() and "this setting" not in console.export_text()
    assert "| this setting |" in table.to_markdown()


@pytest.mark.parametrize("shipped", ["example_report", "example_report/learning_speed"])
def test_each_shipped_report_is_what_its_runs_csv_rebuilds(shipped, tmp_path):
    """docs/'s reports are rebuilt from their runs.csv by this code, table for table: a change
    that moves a number of theirs must regenerate them."""
    source = Path(__file__).resolve().parents[1] / "docs" / shipped
    assert main(["--runs", str(source / "runs.csv"), "--out", str(tmp_path)]) == 0
    same_report(source, tmp_path)
