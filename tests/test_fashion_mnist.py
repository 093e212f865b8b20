"""The real Fashion-MNIST, found offline in Debian's dataset-fashion-mnist (`make data`).

Skipped where the package is not installed (`.ci/run` installs it); the one-line failure when it
is missing runs everywhere.
"""

import json

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf
from tests.conftest import FAST, only_run_dir, results

from cnn_ablations.data import datasets
from cnn_ablations.data.datasets import SYSTEM_DIRS, load_dataset
from cnn_ablations.errors import ConfigError

INSTALLED = any((d / "t10k-labels-idx1-ubyte.gz").is_file() for d in SYSTEM_DIRS["FashionMNIST"])
needs_data = pytest.mark.skipif(
    not INSTALLED,
    reason="Fashion-MNIST is not installed: `make data` (Debian's dataset-fashion-mnist)",
)


@needs_data
def test_an_empty_data_dir_finds_the_system_package_and_the_canonical_split(tmp_path):
    splits = load_dataset("fashion_mnist", tmp_path)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (55_000, 5_000, 10_000)
    assert splits.train.images.dtype == torch.uint8
    assert tuple(splits.train.images.shape[1:]) == (1, 28, 28) and splits.num_classes == 10
    assert torch.bincount(splits.test.labels).tolist() == [1000] * 10  # the canonical test set
    train_and_val = torch.bincount(torch.cat([splits.train.labels, splits.val.labels]))
    assert train_and_val.tolist() == [6000] * 10
    # unpacked once, in torchvision's own layout: later loads read it from paths.data_dir
    assert sorted(p.name for p in (tmp_path / "FashionMNIST" / "raw").iterdir()) == [
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
    ]


@needs_data
def test_lenet5_learns_fashion_mnist_in_one_epoch(cli, tmp_path):
    args = ["data=fashion_mnist", f"paths.data_dir={tmp_path / 'data'}", "data.batch_size=128"]
    result = cli(*FAST, *args, "trainer.max_epochs=1")
    assert result.returncode == 0, result.stderr[-3000:]
    record = results(only_run_dir(tmp_path))
    assert record["metrics"]["test/acc"] >= 0.78  # 10,000 test images never trained on


def test_missing_everywhere_is_one_line_naming_both_ways(monkeypatch, tmp_path, cli):
    monkeypatch.setitem(SYSTEM_DIRS, "FashionMNIST", [tmp_path / "no-package"])
    for dataset in ("fashion_mnist", "fashion_mnist_color"):  # each names the set asked for
        with pytest.raises(ConfigError) as err:
            datasets.DATASETS[dataset](tmp_path / "data")
        message = str(err.value)
        assert message.startswith(f"dataset {dataset!r} is missing from")
        offline = "mnist5k_color" if dataset.endswith("_color") else "mnist5k"
        assert message.endswith(f"data={offline} works offline")
        assert "\n" not in message and "no-package" in message
        assert "make data" in message and "download=True" in message
    # a sweep on it stops before any job, with that line
    result = cli("-m", "data=fashion_mnist", f"paths.data_dir={tmp_path / 'empty'}", "seed=0,1")
    assert result.returncode == 2
    (line,) = result.stderr_lines
    assert line.startswith("error: dataset 'fashion_mnist' is missing from") and "make data" in line
    assert not list(tmp_path.glob("outputs/sweeps/*/*/*/results.json"))


@needs_data
def test_an_unwritable_data_dir_is_named_not_called_corrupt(tmp_path):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ConfigError) as err:
        load_dataset("fashion_mnist", tmp_path / "a-file" / "data")  # no dir can be made there
    message = str(err.value)
    assert "cannot unpack" in message and "set paths.data_dir to a writable dir" in message
    assert "corrupt" not in message and "\n" not in message


@pytest.mark.slow  # 10 epochs of 55k images: ~1 minute
@needs_data
def test_the_d2l_preset_lands_near_the_books_lenet(cli, tmp_path):
    """d2l.ai's LeNet (sigmoid, avg pool, SGD 0.9, batch 256, 10 epochs) reports ~0.78."""
    result = cli(*FAST, "experiment=lenet5_d2l", f"paths.data_dir={tmp_path / 'data'}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert 0.74 <= results(only_run_dir(tmp_path))["metrics"]["test/acc"] <= 0.85


def test_lr_selection_is_a_stage_of_the_sweep_with_one_job_per_trial(cli, tmp_path):
    from tests.conftest import TINY, run_dirs

    args = [
        "-m",
        *TINY,
        "hydra/sweeper=adaptive_seeds",
        "hydra.sweeper.first=2",
        "hydra.sweeper.max=2",
        "variant=baseline,sigmoid",
        "seed=0,1",
        "budget=converged",
        "trainer.max_epochs=3",
        "callbacks.early_stopping.patience=1",
        "lr_selection.enabled=true",
        "lr_selection.factors=[0.1,10,1e30]",
        "lr_selection.epochs=1",
    ]  # fmt: skip (1e30: a rate that diverges, a failed trial)
    result = cli(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = {d.name: results(d) for d in run_dirs(tmp_path, "sweeps")}
    assert set(jobs) == {f"variant={v},seed={s}" for v in ("baseline", "sigmoid") for s in (0, 1)}
    (sweep_dir,) = {d.parent for d in run_dirs(tmp_path, "sweeps")}
    summary = pd.read_csv(sweep_dir / "report" / "summary.csv").set_index("condition")
    for variant in ("baseline", "sigmoid"):
        # stage 0: one job per rate, at the selection's seed, trained and validated only
        trials = [results(sweep_dir / "lr_selection" / f"variant={variant},lr_factor={factor}")
                  for factor in (0.1, 10)]  # fmt: skip
        for trial, factor in zip(trials, (0.1, 10), strict=True):
            assert (trial["status"], trial["seed"], trial["metrics"]["epochs"]) == ("ok", 12345, 1)
            assert trial["config"]["optimizer"]["lr"] == pytest.approx(1e-3 * factor)
            assert trial["config"]["callbacks"] == {} and trial["config"]["logger"] == {}
            assert "test/acc" not in trial["metrics"]
        huge = results(sweep_dir / "lr_selection" / f"variant={variant},lr_factor={1e30}")
        # ReLU diverges at 1e27 (a failed trial, not chosen, and said so); sigmoid saturates
        assert huge["status"] == ("failed" if variant == "baseline" else "ok")
        trials += [huge] if huge["status"] == "ok" else []
        choice = json.loads((sweep_dir / "lr_selection" / f"variant={variant}.json").read_text())
        assert choice["failed_factors"] == ([1e30] if variant == "baseline" else [])
        assert choice["trials"] == [
            {
                "lr": t["config"]["optimizer"]["lr"],
                "val/acc_best": 100 * t["metrics"]["val/acc_best"],
            }
            for t in trials
        ]
        best = max(choice["trials"], key=lambda t: t["val/acc_best"])
        assert choice["lr"] == best["lr"]
        for seed in (0, 1):  # every seed of the condition trained at the rate handed to it
            record = jobs[f"variant={variant},seed={seed}"]
            assert f"optimizer.lr={choice['lr']!r}" in record["overrides"]
            assert record["config"]["optimizer"]["lr"] == choice["lr"]
            assert record["lr_selection"] == choice
        assert summary.loc[f"variant={variant}", "lr_mean"] == choice["lr"]  # the report's lr
    # a job re-run from its saved config trains at its condition's rate, with no trials
    job = sweep_dir / "variant=sigmoid,seed=1"
    result = cli("--config-dir", str(job / ".hydra"), "--config-name", "config")
    assert result.returncode == 0, result.stderr[-3000:]
    (rerun,) = run_dirs(tmp_path, "runs")
    for key in ("test/acc", "val/acc_best", "train/loss"):
        assert results(rerun)["metrics"][key] == jobs[job.name]["metrics"][key], key


def test_lr_trial_jobs_parse_whatever_the_condition_and_train_its_own_epochs():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from cnn_ablations.lr_select import trial_jobs

    name = "data.name='it\\'s',model.pool=a\\\\b"  # a quote and a backslash in its levels
    selection = OmegaConf.create({"seed": 7, "epochs": None, "factors": [0.3, 3.0]})
    parser = OverridesParser.create()
    jobs = trial_jobs(["variant=tanh", "seed=0"], name, selection)
    for factor, job in zip((0.3, 3.0), jobs, strict=True):
        parsed = {o.key_or_group: o.value() for o in parser.parse_overrides(job)}
        assert parsed["hydra.sweep.subdir"] == f"lr_selection/{name},lr_factor={factor}"
        assert (parsed["seed"], parsed["lr_selection.trial"]) == (7, factor)
        assert "trainer.max_epochs" not in parsed  # the condition's own epochs
    selection.epochs = 2
    assert "trainer.max_epochs=2" in trial_jobs(["variant=tanh"], name, selection)[0]


def test_lr_selection_outside_adaptive_seeds_is_refused_before_any_job(cli, tmp_path):
    from tests.conftest import TINY

    single = cli(*TINY, "lr_selection.enabled=true")
    assert single.returncode == 2
    assert "a stage of hydra/sweeper=adaptive_seeds" in single.stderr_lines[-1]
    basic = cli("-m", *TINY, "seed=0,1", "lr_selection.enabled=true")
    assert basic.returncode == 2
    assert "a stage of hydra/sweeper=adaptive_seeds" in basic.stderr_lines[-1]
    assert not list(tmp_path.glob("outputs/sweeps/*/*/*/results.json"))


def test_a_condition_whose_every_trial_failed_fails_its_jobs_and_the_sweep_goes_on(cli, tmp_path):
    from tests.conftest import TINY, run_dirs

    args = ["-m", *TINY, "hydra/sweeper=adaptive_seeds", "hydra.sweeper.first=2",
            "hydra.sweeper.max=2", "variant=baseline,sigmoid", "seed=0,1",
            "lr_selection.enabled=true", "lr_selection.factors=[1e30]"]  # fmt: skip
    assert cli(*args).returncode == 1  # a sweep with failed jobs
    jobs = {d.name: results(d) for d in run_dirs(tmp_path, "sweeps")}
    for seed in (0, 1):  # ReLU diverges at that rate, sigmoid trains
        failed = jobs[f"variant=baseline,seed={seed}"]
        assert failed["status"] == "failed"
        assert (
            "no learning rate was chosen for variant=baseline: every trial failed"
            in (failed["error"])
        )
        assert jobs[f"variant=sigmoid,seed={seed}"]["status"] == "ok"
