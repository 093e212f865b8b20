"""`scripts/bench.py --quick` runs all three pipelines and writes its JSON (no timing asserted)."""

import json
import subprocess
import sys

from tests.conftest import REPO

PIPELINES = {"a_plain", "b_project", "c_pil_w0", "c_pil_w2"}


def test_quick_bench_writes_every_pipeline_and_ratio(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench.py"), "--quick", "--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert set(report["results"]) == {"mnist5k", "mnist60k", "cifar50k"}
    for name, entry in report["results"].items():
        assert set(entry["pipelines"]) == PIPELINES, name
        assert entry["train_samples"] == 512 and entry["val_samples"] == 128
        for pipeline in entry["pipelines"].values():
            assert len(pipeline["epoch_times"]) == 1 and pipeline["sec_per_epoch"] > 0
        assert len(entry["b/a_paired"]) == 1
        sec = {p: v["sec_per_epoch"] for p, v in entry["pipelines"].items()}
        assert entry["ratios"]["b/a"] == sec["b_project"] / sec["a_plain"]  # one pair
        assert entry["ratios"]["c_w2/b"] == sec["c_pil_w2"] / sec["b_project"]
    assert report["results"]["cifar50k"]["image_shape"] == [3, 32, 32]
    assert report["scaling"]["sample_factor"] == 1.0  # quick: both sets cut to 512 samples
    assert "b/a" in result.stdout and f"wrote {out}" in result.stdout
