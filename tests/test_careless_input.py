"""What a careless user and a scheduler do: grids that would share a dir, Hydra's own parse
errors, records that cannot be read or do not pair, reports into a file, a sweep's console."""

import json
import subprocess
import sys

import pytest
from tests.conftest import TINY, run_cli, run_dirs

from cnn_ablations.errors import ConfigError
from cnn_ablations.report.stats import analyse
from cnn_ablations.sweepdir import load_sweep, read_plan
from fake_sweep import make_ofat_sweep, write_job, write_multirun


def last_line(result) -> str:
    return result.stderr_lines[-1] if result.stderr_lines else ""


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        (["seed=0,0"], "seed lists 0 twice"),
        (["optimizer.lr=1e-3,0.001", "seed=0"], "optimizer.lr lists 0.001 twice"),
    ],
)
def test_a_grid_that_lists_a_value_twice_is_refused_before_any_job(cli, tmp_path, grid, message):
    result = cli("-m", *grid, *TINY)
    assert result.returncode == 2
    assert message in last_line(result) and "one dir" in last_line(result)
    assert run_dirs(tmp_path, "sweeps") == []


def test_planned_seeds_refuse_one_seed_whose_jobs_would_share_a_dir(cli, tmp_path):
    result = cli(
        "-m", "hydra/sweeper=adaptive_seeds", "model.activation=relu,tanh", "seed=0", *TINY
    )
    assert result.returncode == 2
    assert "seed=0 is one seed" in last_line(result)
    assert "seed=0,1,2,3" in last_line(result)  # the fix
    assert run_dirs(tmp_path, "sweeps") == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["-m", "hydra/sweeper=adaptive_seeds", "hydra.sweeper.first=abc", "seed=0,1"],
            "hydra.sweeper.first=abc is not valid: Value 'abc' of type 'str' could not be "
            "converted to Integer; give hydra.sweeper.first a value of that type",
        ),
        (
            ["-m", "hydra.sweeper.params.model.activation=relu,tanh"],
            "write model.activation=relu,tanh (with -m) instead",
        ),
        (["-m", "hydra.job.name=a,b"], "Hydra's own settings (hydra.*) take one value"),
        (
            ["callbacks.early_stopping.patience=2"],
            "callbacks.early_stopping.patience is a key of budget=converged, not of this "
            "config; add budget=converged to the command line",
        ),
        (["model.lrn=true"], "model.lrn is a key of model=alexnet_lite"),
        (["seed=0,1"], "seed=0,1 lists several values: add -m (--multirun)"),
        (["+model.activation=tanh"], "set it without the +: model.activation=..."),
        (["trainer.max_epochs=${oops}"], "${oops} refers to a key this config does not have"),
        (["--config-name", "nope"], "--config-name nope: no such config; --config-name names"),
    ],
    ids=[
        "wrong-type",
        "sweep-params",
        "sweep-hydra-key",
        "early-stopping",
        "other-model",
        "list-without-m",
        "plus-existing",
        "interpolation",
        "config-name",
    ],
)
def test_hydras_own_errors_name_the_key_and_a_fix_that_works(cli, tmp_path, args, expected):
    result = cli(*args, *TINY)
    assert result.returncode == 2
    assert len(result.stderr_lines) == 1, result.stderr
    assert expected in last_line(result)
    assert "Exception" not in last_line(result)


def test_the_advice_for_an_early_stopping_key_works_when_followed(cli, tmp_path):
    result = cli(
        "callbacks.early_stopping.patience=2", "budget=converged", *TINY, "trainer.max_epochs=3"
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_an_unreadable_record_is_named_and_the_report_keeps_the_rest(tmp_path):
    sweep_dir, acc = make_ofat_sweep(tmp_path)
    record = sweep_dir / "variant=sigmoid,seed=2" / "results.json"
    record.write_text(record.read_text()[:40])  # cut mid-write (a full disk, a copy)
    sweep = load_sweep(sweep_dir)
    job = next(j for j in sweep.jobs if j.name == "variant=sigmoid,seed=2")
    assert not job.ok and "is not readable JSON" in job.error and "truncated" in job.error
    assert job.level("variant") == "sigmoid"  # still known from .hydra/overrides.yaml
    analysis = analyse(sweep)
    sigmoid = analysis.effects.set_index("level").loc["sigmoid"]
    assert sigmoid["n"] == 2  # the other seeds still count
    from cnn_ablations.report import build_report

    report = (build_report(sweep) / "report.md").read_text()
    assert "`variant=sigmoid,seed=2`: " in report and "is not readable JSON" in report


@pytest.mark.parametrize(
    ("name", "text", "reader"),
    [
        ("multirun.yaml", "hydra: [unclosed", load_sweep),
        ("seeds_plan.json", '{"halfwidth": 1.0, "stage2_j', read_plan),
        ("seeds_plan.json", "[1, 2]", read_plan),
    ],
    ids=["multirun-yaml", "truncated-plan", "not-a-plan"],
)
def test_an_unreadable_sweep_file_is_one_line_naming_it_and_the_fix(tmp_path, name, text, reader):
    sweep_dir, _ = make_ofat_sweep(tmp_path)
    (sweep_dir / name).write_text(text)
    with pytest.raises(ConfigError, match=rf"{name} cannot be read .*; it is written by"):
        reader(sweep_dir)


def test_seeds_that_do_not_pair_are_named_in_one_line(tmp_path):
    sweep_dir = tmp_path / "outputs" / "sweeps" / "s" / "2026-12-01_00-00-00"
    sweep_dir.mkdir(parents=True)
    write_multirun(sweep_dir, {"variant": "baseline,sigmoid", "seed": "0,1,2,3"})
    for seed in (0, 1):
        write_job(sweep_dir, ["variant=baseline"], seed, 0.9)
    for seed in (2, 3):
        write_job(sweep_dir, ["variant=sigmoid"], seed, 0.8)
    analysis = analyse(load_sweep(sweep_dir))
    assert analysis.unpaired == [
        "variant=sigmoid: seeds 2, 3 have no variant=baseline job of the same seed (it ran "
        "seeds 0, 1), so they pair with nothing and its effect uses n = 0; run "
        "variant=baseline at those seeds"
    ]


def test_a_report_printed_into_a_file_has_whole_tables(tmp_path):
    sweep_dir, _ = make_ofat_sweep(tmp_path)
    out = tmp_path / "report.log"
    with out.open("w") as file:  # a cluster job's log: no terminal, no COLUMNS
        subprocess.run(
            [sys.executable, "-m", "cnn_ablations.report", str(sweep_dir)],
            stdout=file,
            check=True,
            env={"PATH": "/usr/bin:/bin"},
        )
    text = out.read_text()
    header = next(line for line in text.splitlines() if "95% CI low" in line)
    for column in ("95% CI high", "verdict", "settled"):
        assert column in header, header
    assert max(len(line) for line in text.splitlines()) > 80


def test_a_sweeps_console_is_a_line_per_job_and_ends_with_the_answer(tmp_path):
    result = run_cli(["-m", "model.activation=relu,tanh", "seed=0,1", *TINY], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    console = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    jobs = run_dirs(tmp_path, "sweeps")
    for number, job in enumerate(jobs, 1):
        assert sum(f"job {number}/4 · " in line for line in console) == 1
        assert sum(f"] - {job.name}: ok · test/acc " in line for line in console) == 1
    assert not [line for line in console if "_target_" in line or "GPU available" in line]
    assert console[-1].startswith("Report: ") and console[-1].endswith("report.md")
    assert any("Effects on test accuracy" in line for line in console)
    assert len(console) < 40, "\n".join(console)
    train_log = (jobs[0] / "train.log").read_text()
    assert "_target_" in train_log and "GPU available" in train_log  # the detail is kept here
    record = json.loads((jobs[0] / "results.json").read_text())
    assert record["compute"]["parallel_jobs"] == 1 and record["compute"]["threads"] >= 1


@pytest.mark.parametrize("to_group", [False, True], ids=["to-the-sweep", "to-its-group"])
def test_sigterm_stops_a_parallel_sweep_records_every_running_job_and_resume_ends_it(
    tmp_path, to_group
):
    """A joblib sweep preempted by SIGTERM, sent to its process (Kubernetes) or to its whole
    process group (SLURM's scancel): exit 143, every job that was running recorded
    ``interrupted``, the line names the sweep dir; resume with it finishes every job."""
    import os
    import signal
    import time

    args = ["-m", "launcher=joblib", "seed=0,1", *TINY, "trainer.max_epochs=40"]
    args += ["trainer.limit_train_batches=10"]
    command = [sys.executable, "-m", "cnn_ablations.train", *args]
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}
    stderr_file = tmp_path / "stderr.txt"
    with stderr_file.open("w") as stderr:
        proc = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.time() + 240
    while len(list(tmp_path.glob("outputs/sweeps/*/*/*/checkpoints/last.ckpt"))) < 2:
        assert proc.poll() is None and time.time() < deadline, stderr_file.read_text()[-2000:]
        time.sleep(0.1)
    if to_group:
        os.killpg(proc.pid, signal.SIGTERM)
    else:
        proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 143
    jobs = run_dirs(tmp_path, "sweeps")
    records = [json.loads((job / "results.json").read_text()) for job in jobs]
    assert [r["status"] for r in records] == ["interrupted", "interrupted"]
    assert {r["error"] for r in records} == {"interrupted by SIGTERM"}
    sweep_dir = jobs[0].parent
    last = stderr_file.read_text().strip().splitlines()
    assert any(
        line.startswith("interrupted by SIGTERM; rerun the sweep command with resume=")
        and line.endswith(str(sweep_dir.relative_to(tmp_path)))
        for line in last
    ), last
    result = run_cli([*args, f"resume={sweep_dir}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    for job in jobs:
        record = json.loads((job / "results.json").read_text())
        assert record["status"] == "ok" and record["metrics"]["epochs"] == 40
