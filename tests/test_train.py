"""End-to-end: the CLI trains LeNet-5 on the bundled digits and leaves every output behind."""

import csv
import json

import pytest
from tests.conftest import FAST, only_run_dir, results, run_cli


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """One real short training run of the default config, from a temp dir, via the CLI."""
    cwd = tmp_path_factory.mktemp("cli")
    result = run_cli([*FAST, "logger=wandb", "trainer.max_epochs=5", "name=smoke"], cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return only_run_dir(cwd), result


def test_default_training_learns_real_digits(default_run):
    run_dir, _ = default_run
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "ok"
    assert results["metrics"]["val/acc_best"] >= 0.95
    assert results["metrics"]["test/acc"] >= 0.93  # 500 held-out digits never seen in training
    assert results["metrics"]["epochs"] == 5
    assert results["metrics"]["params"] == 61706  # LeNet-5 (modern): 6+16 conv maps, 120-84-10


def test_run_writes_csv_checkpoints_and_offline_wandb(default_run):
    run_dir, _ = default_run
    assert run_dir.parent.name == "smoke" and run_dir.parent.parent.name == "runs"
    rows = list(csv.DictReader((run_dir / "csv" / "metrics.csv").open()))
    val_epochs = sorted({int(r["epoch"]) for r in rows if r.get("val/acc")})
    assert val_epochs == [0, 1, 2, 3, 4]
    assert any(r.get("train/loss") for r in rows) and any(r.get("test/acc") for r in rows)
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert list((run_dir / "checkpoints").glob("best-epoch*.ckpt"))
    wandb_runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(wandb_runs) == 1
    assert list(wandb_runs[0].glob("run-*.wandb"))
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert (run_dir / ".hydra" / "overrides.yaml").is_file()
    assert (run_dir / "train.log").is_file()


def test_cli_prints_the_resolved_config_and_the_result(default_run):
    run_dir, result = default_run
    # the config tree shows resolved values, wrapped rather than cut: the run's own dir
    assert "max_epochs: 5" in result.stdout
    tree = "".join(line.strip(" │├└─") for line in result.stdout.splitlines())
    assert f"default_root_dir:{run_dir}" in tree.replace("default_root_dir: ", "default_root_dir:")
    test_acc = results(run_dir)["metrics"]["test/acc"]
    assert f"done: test/acc={test_acc:.4f}" in result.stdout and str(run_dir) in result.stdout


def test_full_mnist_offline_fails_with_one_clear_line(cli, tmp_path):
    result = cli("data=mnist", f"paths.data_dir={tmp_path / 'data'}")
    assert result.returncode == 2
    (line,) = result.stderr_lines
    assert line.startswith("error: dataset 'mnist' is missing from")
    assert "data=mnist5k works offline" in line
    run_dir = only_run_dir(tmp_path)
    assert sorted(p.name for p in run_dir.iterdir()) == [".hydra", "train.log"]
