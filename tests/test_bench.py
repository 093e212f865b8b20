"""The benchmarks run end to end and report what they measured (no timing is asserted)."""

import json
import subprocess
import sys

import pytest
from tests.conftest import REPO

PIPELINES = {"a_plain", "l_lightning", "b_project", "c_pil_w0", "c_pil_w2"}


def run_script(name: str, *args: str, cwd) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "scripts" / name), *args]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_quick_bench_times_every_pipeline_on_every_dataset(tmp_path):
    out = tmp_path / "bench.json"
    result = run_script("bench.py", "--quick", "--out", str(out), cwd=tmp_path)
    report = json.loads(out.read_text())
    assert set(report["results"]) == {"mnist5k", "mnist60k", "cifar50k"}
    for name, entry in report["results"].items():
        assert set(entry["pipelines"]) == PIPELINES, name
        assert entry["train_samples"] == 512 and entry["val_samples"] == 128
        for pipeline, timing in entry["pipelines"].items():
            # (a) ran once inside (l)'s fit and once inside (b)'s, epoch by epoch
            assert len(timing["epoch_times"]) == (2 if pipeline == "a_plain" else 1), pipeline
            assert all(0 < t < 300 for t in timing["epoch_times"])
        assert len(entry["paired_ratios"]["b/a"]) == len(entry["paired_ratios"]["l/a"]) == 1
        assert all(0.1 < ratio < 50 for ratio in entry["ratios"].values()), entry["ratios"]
    assert report["results"]["cifar50k"]["image_shape"] == [3, 32, 32]
    assert "b/a" in result.stdout and f"wrote {out}" in result.stdout


def test_bench_sweep_measures_a_real_sweep(tmp_path):
    out = tmp_path / "bench_sweep.json"
    result = run_script(
        "bench_sweep.py", "--quick", "--sections", "sweep", "--out", str(out), cwd=tmp_path
    )
    report = json.loads(out.read_text())
    (run,) = report["sweep"]["runs"]["a"]
    assert (run["jobs"], run["failed"]) == (2, 0)  # the quick sweep: seed=0,1
    assert set(run["metrics"]) == {"seed=0", "seed=1"}
    assert run["fit_seconds"] > 0 and all(o > 0 for o in run["overhead_per_job"])
    assert run["wall"] > run["fit_seconds"]
    assert "per-job overhead" in result.stdout


@pytest.mark.slow  # ten whole runs: ~100 s
def test_bench_sweep_start_up_epoch_lrn_and_precision(tmp_path):
    out = tmp_path / "bench_sweep.json"
    sections = "startup,epoch,lrn,precision"
    result = run_script(
        "bench_sweep.py", "--quick", "--sections", sections, "--out", str(out), cwd=tmp_path
    )
    report = json.loads(out.read_text())
    timed = [report[s] for s in ("startup", "epoch", "lrn")]
    timed += [report["precision"]["default"], report["precision"]["lrn_overlap"]]
    for section in timed:
        (ratio,) = section["ratios"]
        assert ratio > 0 and section["b_median"] > 0
    assert set(report["lrn"]["layer_ms"]) == {"torch", "project"}
    assert "precision: AlexNet-lite (lrn_overlap) epoch" in result.stdout
