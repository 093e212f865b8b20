"""`scripts/bench.py --quick` runs all three pipelines and writes its JSON (no timing asserted)."""

import json
import subprocess
import sys

from tests.conftest import REPO

PIPELINES = {"a_plain", "l_lightning", "b_project", "c_pil_w0", "c_pil_w2"}


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
        for name_, pipeline in entry["pipelines"].items():
            # (a) is timed once inside (l)'s fit and once inside (b)'s
            assert len(pipeline["epoch_times"]) == (2 if name_ == "a_plain" else 1), name_
            assert all(t > 0 for t in pipeline["epoch_times"])
        sec = {p: v["sec_per_epoch"] for p, v in entry["pipelines"].items()}
        ratios, paired = entry["ratios"], entry["paired_ratios"]
        assert len(paired["b/a"]) == len(paired["l/a"]) == 1
        assert ratios["b/a"] == paired["b/a"][0] and ratios["l/a"] == paired["l/a"][0]
        assert ratios["b/l"] == ratios["b/a"] / ratios["l/a"]
        assert ratios["c_w2/b"] == sec["c_pil_w2"] / sec["b_project"]
    assert report["results"]["cifar50k"]["image_shape"] == [3, 32, 32]
    assert report["scaling"]["sample_factor"] == 1.0  # quick: both sets cut to 512 samples
    assert "b/a" in result.stdout and f"wrote {out}" in result.stdout
