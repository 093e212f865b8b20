"""`cnn_ablations.dashboard` specs and `cnn_ablations.sync` against real offline W&B runs.

Nothing here reaches the network: WANDB_MODE=offline, no API key, HOME in a temp dir.
"""

import json
import os
import subprocess
import sys

import pytest
import wandb_workspaces.reports.v2 as wr
import wandb_workspaces.workspaces as ws

from cnn_ablations import dashboard, sync
from cnn_ablations.sweep import load_sweep
from fake_sweep import make_factorial_sweep, make_ofat_sweep

OFAT_GROUP = "lenet_ablation-2026-11-23_12-00-00"
MAKE_RUNS = """
import sys, wandb
for run_dir in sys.argv[1:]:
    run = wandb.init(mode="offline", dir=run_dir, project="cnn-ablations", config={"seed": 0})
    run.log({"val/acc": 0.5})
    run.finish()
"""


@pytest.fixture(autouse=True)
def _no_network(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("NETRC", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """A root holding the one-factor and the factorial synthetic sweeps."""
    root = tmp_path_factory.mktemp("sweeps")
    return root, make_ofat_sweep(root)[0], make_factorial_sweep(root)[0]


@pytest.fixture(scope="module")
def offline_runs(tmp_path_factory):
    """A root with two real offline W&B runs in job dirs, plus decoys, and the run dirs."""
    root = tmp_path_factory.mktemp("runs")
    job_dirs = [root / "outputs" / "sweeps" / "s" / "t" / f"seed={i}" for i in range(2)]
    for job_dir in job_dirs:
        job_dir.mkdir(parents=True)
    (root / "outputs" / "runs" / "wandb" / "run-20261123_120000-online1").mkdir(parents=True)
    (root / "outputs" / "offline-run-notes.txt").write_text("not a run")
    env = {**os.environ, "WANDB_MODE": "offline", "HOME": str(root), "WANDB_SILENT": "true"}
    env.pop("WANDB_API_KEY", None)
    script = [sys.executable, "-c", MAKE_RUNS, *map(str, job_dirs)]
    subprocess.run(script, env=env, check=True, timeout=120, capture_output=True)
    runs = sorted(p for d in job_dirs for p in (d / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and all(list(run.glob("run-*.wandb")) for run in runs)
    return root, runs


# --- dashboard ---------------------------------------------------------------------------------


def test_spec_has_one_section_per_factor(sweeps):
    _, ofat_dir, grid_dir = sweeps
    for sweep_dir, factors in [
        (ofat_dir, ["variant"]),
        (grid_dir, ["model.activation", "model.pool"]),
    ]:
        spec = dashboard.dashboard_spec(load_sweep(sweep_dir), "g1")
        assert spec["runset"] == {"filter": {"Group": "g1"}}
        assert spec["factors"] == factors
        factor_sections = [s for s in spec["sections"] if s["factor"]]
        assert [s["factor"] for s in factor_sections] == factors
        for section in factor_sections:
            panels = {
                (p["type"], p.get("y", p.get("metric")), p["groupby"]) for p in section["panels"]
            }
            assert panels == {
                ("line", "val/acc", section["factor"]),
                ("line", "train/loss", section["factor"]),
                ("bar", "test/acc", section["factor"]),
            }
        (overview,) = [s for s in spec["sections"] if not s["factor"]]
        (parallel,) = overview["panels"]
        assert parallel["columns"][: len(factors)] == [{"config": f} for f in factors]
        assert {"summary": "test/acc"} in parallel["columns"]


def test_workspace_builds_offline(sweeps):
    _, _, grid_dir = sweeps
    spec = dashboard.dashboard_spec(load_sweep(grid_dir), "g1")
    workspace = dashboard.build_workspace(spec, entity="someone", project="cnn-ablations")
    assert isinstance(workspace, ws.Workspace)
    assert [s.name for s in workspace.sections] == [s["name"] for s in spec["sections"]]
    first = workspace.sections[0].panels
    assert [type(p) for p in first] == [wr.LinePlot, wr.LinePlot, wr.BarPlot]
    assert first[0].groupby.name == "model.activation" and first[0].y == ["val/acc"]
    assert isinstance(workspace.sections[-1].panels[0], wr.ParallelCoordinatesPlot)
    assert "g1" in str(workspace.runset_settings.filters)


def test_print_outputs_spec_and_finds_sweep_by_group(sweeps, monkeypatch, capsys):
    root, ofat_dir, _ = sweeps
    monkeypatch.chdir(root)
    expected = dashboard.dashboard_spec(load_sweep(ofat_dir), OFAT_GROUP)
    assert dashboard.main(["--group", OFAT_GROUP, "--print"]) == 0
    assert json.loads(capsys.readouterr().out) == expected
    assert dashboard.main(["--group", "no-such-group", "--print"]) == 2
    assert "has W&B group 'no-such-group'; pass --sweep-dir" in capsys.readouterr().err


def test_print_reads_the_group_from_the_jobs_records(sweeps, monkeypatch, capsys):
    root, ofat_dir, _ = sweeps
    monkeypatch.chdir(root)
    assert dashboard.main(["--sweep-dir", str(ofat_dir), "--print"]) == 0
    spec = json.loads(capsys.readouterr().out)
    assert spec["runset"] == {"filter": {"Group": OFAT_GROUP}}


def test_save_without_api_key_exits_1(sweeps, monkeypatch, capsys):
    _, ofat_dir, _ = sweeps
    monkeypatch.delenv("WANDB_MODE")
    assert dashboard.main(["--group", OFAT_GROUP, "--sweep-dir", str(ofat_dir)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs a network" in err and "wandb login" in err
    assert "no API key" in err

    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)  # a key, but offline mode wins
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert dashboard.main(["--group", OFAT_GROUP, "--sweep-dir", str(ofat_dir)]) == 1
    assert "WANDB_MODE=offline" in capsys.readouterr().err


# --- sync --------------------------------------------------------------------------------------


def test_sync_command_uses_flags_of_installed_cli():
    command = sync.sync_command([sync.Path("a")], dry_run=True, project="p", entity="e")
    assert command == [
        str(sync.wandb_cli()),
        "sync",
        "--yes",
        "--dry-run",
        "-p",
        "p",
        "-e",
        "e",
        "a",
    ]
    help_text = subprocess.run(
        [sync.wandb_cli(), "sync", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for flag in ["--yes", "--dry-run", "-p, --project", "-e, --entity"]:
        assert flag in help_text


def test_dry_run_lists_exactly_the_offline_runs(offline_runs, monkeypatch, capfd):
    root, runs = offline_runs
    monkeypatch.chdir(root)
    assert sync.main(["--dry-run"]) == 0  # default path: outputs/
    out, err = capfd.readouterr()
    listed = [line.strip() for line in out.splitlines() if line.startswith("  ")]
    assert listed == [str(run.relative_to(root)) for run in runs]
    assert "Would sync 2 run(s)" in err  # wandb's own dry-run listing
    for run in runs:
        assert run.name.split("-")[-1] in err

    assert sync.main(["--dry-run", "-p", "other", str(runs[0]), "outputs"]) == 0  # no duplicates
    out, _ = capfd.readouterr()
    assert out.startswith("2 offline W&B run(s):")


def test_no_runs_exits_1(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    assert sync.main(["--dry-run", "empty"]) == 1
    assert capsys.readouterr().err == "sync: no offline W&B runs (offline-run-* dirs) under empty\n"
    assert sync.main([]) == 1  # outputs/ does not exist here
