"""What a new user types first: ordinary commands complete; a bad value from any source ends in
one line on stderr, exit 2, no traceback and nothing on disk but the log.

In-process (``cli``), so the whole table costs seconds, not a fresh interpreter per row.
"""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tests.conftest import FAST, TINY, only_run_dir, results, run_dirs

# --- ordinary commands: each completes a tiny run and records what it ran -------------------

ORDINARY = {
    "defaults": [],
    "README: activation + epochs": ["model.activation=tanh", "trainer.max_epochs=20"],
    "README: the 1998 network": ["experiment=lenet5_1998"],
    "README: AlexNet-lite on colour digits": ["data=mnist5k_color", "model=alexnet_lite"],
    "a variant as a single run": ["sweep=lenet_ablation_digits", "variant=tanh"],
    "no progress bar": ["trainer.enable_progress_bar=false"],
    "no model summary": ["trainer.enable_model_summary=false"],
    "no checkpoints": ["trainer.enable_checkpointing=false"],
    "fast_dev_run": ["trainer.fast_dev_run=true"],
    "overfit_batches": ["trainer.overfit_batches=2"],
    "limit batches as fractions": ["trainer.limit_train_batches=0.05"],
    "gradient clipping": ["trainer.gradient_clip_val=0.5"],
    "gradient accumulation": ["trainer.accumulate_grad_batches=2"],
    "profiler": ["trainer.profiler=simple"],
    "anomaly detection": ["trainer.detect_anomaly=true"],
    "debug=fdr": ["debug=fdr"],
    "debug=limit": ["debug=limit"],
    "debug=profiler": ["debug=profiler"],
    "unseeded": ["seed=null"],
    "W&B offline": ["logger=wandb"],
}


@pytest.mark.parametrize("args", ORDINARY.values(), ids=ORDINARY.keys())
def test_ordinary_command_completes_a_run(args, cli, tmp_path):
    result = cli(*TINY, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = only_run_dir(tmp_path)
    record = results(run_dir)
    assert record["status"] == "ok" and record["error"] is None
    assert 0 <= record["metrics"]["test/acc"] <= 1
    # the record holds the config that ran, which is the one Hydra saved (resolved)
    saved = compose_like_saved(run_dir)
    assert record["config"]["model"] == saved["model"]
    assert record["config"]["trainer"] == saved["trainer"]
    assert "Traceback" not in result.stderr


def compose_like_saved(run_dir: Path) -> dict:
    """``.hydra/config.yaml`` resolved as the job resolved it (its own output dir)."""
    from omegaconf import OmegaConf

    saved = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    saved.paths.output_dir = str(run_dir)
    return OmegaConf.to_container(saved, resolve=True)


def test_fast_dev_run_tests_the_final_weights(cli, tmp_path):
    # fast_dev_run keeps no best checkpoint, which `trainer.test(ckpt_path="best")` would need
    assert cli(*FAST, "trainer.fast_dev_run=true").returncode == 0
    metrics = results(only_run_dir(tmp_path))["metrics"]
    assert metrics["tested_checkpoint"] == "final weights" and metrics["best_checkpoint"] is None
    assert metrics["epochs"] == 1 and 0 <= metrics["test/acc"] <= 1


def test_overfit_preset_fits_its_fixed_batches(cli, tmp_path):
    assert cli(*FAST, "debug=overfit").returncode == 0
    run_dir = only_run_dir(tmp_path)
    assert run_dir.parent.name == "debug"  # debug runs stay out of the experiments' dirs
    rows = [r for r in csv.DictReader((run_dir / "csv" / "metrics.csv").open()) if r["train/acc"]]
    assert len(rows) == 20
    # the same 3 batches every epoch: the loss falls far and the accuracy on them nears 1
    assert float(rows[-1]["train/loss"]) < float(rows[0]["train/loss"]) / 5
    assert float(rows[-1]["train/acc"]) >= 0.9


def test_unseeded_run_draws_records_and_uses_one_seed(cli, tmp_path):
    for _ in range(2):
        assert cli(*TINY, "seed=null").returncode == 0
    records = [results(d) for d in run_dirs(tmp_path)]
    seeds = [r["seed"] for r in records]
    assert all(isinstance(s, int) for s in seeds) and seeds[0] != seeds[1]
    for record, seed in zip(records, seeds, strict=True):
        assert record["config"]["seed"] == seed and record["config"]["data"]["seed"] == seed
    # rerunning with the recorded seed reproduces the run
    assert cli(*TINY, f"seed={seeds[0]}").returncode == 0
    (rerun,) = [d for d in run_dirs(tmp_path) if results(d)["overrides"][-1] == f"seed={seeds[0]}"]
    assert results(rerun)["metrics"]["test/acc"] == records[0]["metrics"]["test/acc"]


@pytest.mark.parametrize("flag", ["--cfg job", "--help", "--info", "--cfg hydra"])
def test_inspection_flags_create_no_run_dir(flag, cli, tmp_path):
    result = cli("variant=sigmoid", *flag.split())
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "outputs").exists()
    if flag == "--cfg job":  # the variant is part of the composed config
        assert "activation: sigmoid" in result.stdout


def test_record_joins_the_job_to_its_wandb_run(cli, tmp_path):
    assert cli(*TINY, "logger=wandb").returncode == 0
    run_dir = only_run_dir(tmp_path)
    record = results(run_dir)["wandb"]
    assert record["mode"] == "offline" and record["project"] == "cnn-ablations"
    offline = run_dir / record["run_dir"]
    assert offline.is_dir() and list(offline.glob(f"run-{record['id']}.wandb"))


# --- bad values: one line naming the key, exit 2, nothing but the log ------------------------

BAD = {
    # our checks
    "unknown switch value": (["model.activation=swish"], "model.activation='swish'"),
    "seed not a number": (["seed=abc"], "seed='abc'"),
    "lr not finite": (["optimizer.lr=nan"], "optimizer.lr=nan"),
    "negative batch size": (["data.batch_size=-4"], "data.batch_size=-4"),
    "dropout of 1": (["model.dropout=1.0"], "model.dropout=1.0"),
    "switch of another model": (["model=alexnet_lite", "+model.c3=lecun"], "model.c3"),
    # Lightning
    "zero devices": (["trainer.devices=0"], "trainer.devices=0"),
    "unknown precision": (["trainer.precision=17"], "trainer.precision=17"),
    # torch
    "beta >= 1": (["+optimizer.betas=[0.9,1.5]"], "optimizer.betas=[0.9,1.5]"),
    "nesterov without momentum": (
        ["optimizer=sgd", "optimizer.momentum=0", "+optimizer.nesterov=true"],
        "optimizer.nesterov=true",
    ),
    # data and checkpoint loaders
    "dataset offline": (["data=cifar10", "paths.data_dir=nowhere"], "cifar10"),
    "corrupt checkpoint": (["ckpt_path=garbage.ckpt"], "ckpt_path=garbage.ckpt"),
    "missing checkpoint": (["ckpt_path=missing.ckpt"], "ckpt_path=missing.ckpt"),
}
# Hydra refuses these before any job: there is no run dir at all
BAD_BEFORE_ANY_JOB = {
    "unparsable override": (["model.activation=[relu"], "model.activation=[relu"),
    "unknown option": (["model=lenet7"], "model=lenet7"),
    "unknown key": (["trainer.fast_dev_runn=true"], "trainer.fast_dev_runn"),
    "resume a dir with no run": (["resume=nowhere/run"], "resume=nowhere/run"),
    "unwritable output root": (["paths.output_root=blocker"], "paths.output_root"),
}


def assert_one_line(result, key: str) -> str:
    assert result.returncode == 2, result.stderr[-3000:]
    (line,) = result.stderr_lines
    assert line.startswith("error: ") and key in line, line
    return line


@pytest.mark.parametrize("args,key", BAD.values(), ids=BAD.keys())
def test_bad_value_is_one_line_and_leaves_only_the_log(args, key, cli, tmp_path):
    if "trainer.devices=0" in args and torch.cuda.is_available():
        pytest.skip("the message differs on a GPU machine")
    (tmp_path / "garbage.ckpt").write_text("garbage\n")
    assert_one_line(cli(*args, *FAST), key)
    run_dir = only_run_dir(tmp_path)
    assert sorted(p.name for p in run_dir.iterdir()) == [".hydra", "train.log"]


@pytest.mark.parametrize("args,key", BAD_BEFORE_ANY_JOB.values(), ids=BAD_BEFORE_ANY_JOB.keys())
def test_bad_value_before_any_job_creates_nothing(args, key, cli, tmp_path):
    (tmp_path / "blocker").write_text("a file where the output root should be")
    for mode in ([], ["-m"]):
        line = assert_one_line(cli(*mode, *args, *FAST), key)
        assert not (tmp_path / "outputs").exists() and not (tmp_path / "nowhere").exists()
    if "resume" in key:
        assert "holds no run" in line and "resume=true" in line


def test_setting_rejected_mid_fit_names_the_key_and_records_the_failure(cli, tmp_path):
    # Lightning checks val_check_interval against the batches only when fitting starts
    line = assert_one_line(cli(*FAST, "trainer.val_check_interval=1000"), "val_check_interval")
    assert "change trainer.val_check_interval" in line
    record = results(only_run_dir(tmp_path))
    assert record["status"] == "failed" and "val_check_interval" in record["error"]


def test_full_error_env_gives_the_traceback(cli, monkeypatch):
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(Exception, match="model.activation='swish'"):
        cli(*FAST, "model.activation=swish")


def test_a_bad_job_in_a_multirun_is_recorded_and_the_sweep_goes_on(cli, tmp_path):
    result = cli("-m", *TINY, "model.dropout=0.0,1.5")
    assert result.returncode == 1
    jobs = {d.name: results(d) for d in run_dirs(tmp_path, "sweeps")}
    assert jobs["model.dropout=0.0"]["status"] == "ok"
    assert jobs["model.dropout=1.5"]["status"] == "failed"
    assert "model.dropout=1.5" in jobs["model.dropout=1.5"]["error"]


# --- runs never collide; a job's saved config is the config it ran -------------------------


def test_two_runs_started_together_get_two_complete_records(tmp_path):
    command = [sys.executable, "-m", "cnn_ablations.train", *TINY, "logger=wandb"]
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "PATH": "/usr/bin:/bin"}
    procs = [
        subprocess.Popen([*command, f"seed={seed}"], cwd=tmp_path, env=env, stderr=subprocess.PIPE)
        for seed in (0, 1)
    ]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()[-2000:]
    dirs = run_dirs(tmp_path)
    assert len(dirs) == 2
    wandb_ids = set()
    for run_dir in dirs:
        record = results(run_dir)
        assert record["status"] == "ok" and record["output_dir"] == str(run_dir)
        rows = list(csv.DictReader((run_dir / "csv" / "metrics.csv").open()))
        assert any(r["val/acc"] for r in rows) and any(r["test/acc"] for r in rows)
        assert (run_dir / "checkpoints" / "last.ckpt").is_file()
        wandb_ids.add(record["wandb"]["id"])
        assert (run_dir / record["wandb"]["run_dir"]).is_dir()
    assert len(wandb_ids) == 2
    assert {results(d)["seed"] for d in dirs} == {0, 1}


def test_rerunning_a_variant_job_from_its_saved_config_reproduces_it(cli, tmp_path):
    sweep = ["-m", "sweep=lenet_ablation_digits", "variant=dropout", "seed=3", *TINY]
    assert cli(*sweep).returncode == 0
    (job,) = run_dirs(tmp_path, "sweeps")
    assert "dropout: 0.5" in (job / ".hydra" / "config.yaml").read_text()  # saved as it ran
    result = cli("--config-dir", str(job / ".hydra"), "--config-name", "config")
    assert result.returncode == 0, result.stderr[-3000:]
    rerun = only_run_dir(tmp_path)
    assert rerun.parent.name == "lenet_ablation_digits"  # the project's layout, not Hydra's
    first, second = results(job), results(rerun)
    assert second["config"]["model"] == first["config"]["model"]
    for key in ("test/acc", "test/loss", "val/acc_best", "train/loss", "params"):
        assert second["metrics"][key] == first["metrics"][key], key
    rows = [list(csv.reader((d / "csv" / "metrics.csv").open())) for d in (job, rerun)]
    assert rows[0] == rows[1]
    # with --config-path (no conf/ groups on the search path) `logger=csv` sets a string
    result = cli("--config-path", str(job / ".hydra"), "--config-name", "config", "logger=csv")
    assert result.returncode == 2
    (line,) = result.stderr_lines
    assert line.startswith("error: logger=csv is not a logger config") and "logger.<key>" in line


def test_full_disk_is_one_line_and_leaves_readable_records(cli, tmp_path):
    mount = tmp_path / "tiny"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)])
    if mounted.returncode != 0 or not shutil.which("umount"):
        pytest.skip("needs root to mount a 600 KB tmpfs")
    try:
        result = cli(*FAST, f"paths.output_root={mount}", "trainer.max_epochs=3")
        assert result.returncode == 1
        (line,) = result.stderr_lines
        assert line.startswith("error: no space left on the device of ") and str(mount) in line
        assert not list(mount.rglob("*.tmp"))
        run_dir = next(mount.glob("runs/*/*"))
        json.loads((run_dir / "results.json").read_text())  # intact, whatever it could record
        rows = list(csv.DictReader((run_dir / "csv" / "metrics.csv").open()))
        assert any(r["val/acc"] for r in rows)  # the finished epoch's curves are there
    finally:
        subprocess.run(["umount", str(mount)], check=True)
