"""results.json's schema (record.RunRecord): round trips, records of earlier writes, the doc."""

import json
import re
import shutil
from pathlib import Path

import pytest

from cnn_ablations.errors import ConfigError
from cnn_ablations.record import (
    RESULTS_FILE,
    GitState,
    LrSelection,
    Metrics,
    RunRecord,
    UnreadableRecord,
    WandbRun,
)

REPO = Path(__file__).resolve().parents[1]
# results.json files written by the code before RunRecord (record version 1, no version field):
# a single run with W&B offline, a sweep job with lr_selection (CSV only), a failed sweep job
SAVED = sorted((Path(__file__).parent / "records").glob("*.json"))
PROVENANCE = ("version", "versions", "git")  # what a save writes anew


def _without(data: dict, keys=PROVENANCE) -> dict:
    return {k: v for k, v in data.items() if k not in keys}


@pytest.mark.parametrize("saved", SAVED, ids=[p.stem for p in SAVED])
def test_a_record_of_the_earlier_writer_loads_and_saves_back_the_same(saved, tmp_path):
    shutil.copy(saved, tmp_path / RESULTS_FILE)
    record = RunRecord.load(tmp_path)
    original = json.loads(saved.read_text())
    assert record.version == 1 and record.status == original["status"]
    assert record.overrides == original["overrides"] and record.seed == original["seed"]
    if original.get("metrics"):
        assert record.metrics.test_acc == original["metrics"]["test/acc"]
        assert record.metrics.named()["val/acc_best"] == original["metrics"]["val/acc_best"]
    record.save(tmp_path)
    again = json.loads((tmp_path / RESULTS_FILE).read_text())
    assert _without(again) == _without(original)  # every field and metric, value for value
    assert again["version"] == 1 and set(again["versions"]) >= {"torch", "wandb"}


def test_a_full_record_round_trips(tmp_path):
    record = RunRecord(
        status="ok",
        overrides=["variant=tanh", "seed=1"],
        condition="variant=tanh",
        variant="tanh",
        choices={"variant": "tanh", "experiment": None},
        group="lenet5-mnist5k-2026-01-01_00-00-00",
        seed=1,
        output_dir=str(tmp_path),
        started_at=1.0,
        lr_selection=LrSelection.model_validate(
            {"lr": 0.003, "trials": [{"lr": 0.003, "val/acc_best": 97.5}], "seed": 7, "epochs": 2}
        ),
        config={"optimizer": {"lr": 0.003}},
        wandb=WandbRun(mode="offline", id="abc", project="p", run_dir="wandb/offline-run-x"),
        metrics_csv="csv/metrics.csv",
        metrics=Metrics.model_validate({"test/acc": 0.98, "params": 61706, "lr-Adam": 0.001}),
        finished_at=2.5,
    )
    record.save(tmp_path)
    loaded = RunRecord.load(tmp_path)
    assert loaded == record
    assert loaded.duration == 1.5 and loaded.metrics.named()["lr-Adam"] == 0.001
    assert isinstance(loaded.git, GitState)
    assert not list(tmp_path.glob("*.tmp"))


def test_a_missing_record_is_none_and_an_unreadable_or_wrong_one_is_one_line(tmp_path):
    assert RunRecord.load(tmp_path) is None
    (tmp_path / RESULTS_FILE).write_text('{"status": "ok", "metr')  # cut short
    with pytest.raises(UnreadableRecord, match=r"is not readable JSON \(.*; truncated or edit"):
        RunRecord.load(tmp_path)
    (tmp_path / RESULTS_FILE).write_text("[]")
    with pytest.raises(UnreadableRecord, match=r"holds no record \(a JSON list\)"):
        RunRecord.load(tmp_path)
    (tmp_path / RESULTS_FILE).write_text(json.dumps({"status": "done"}))
    with pytest.raises(ConfigError, match=r"does not fit the record schema: status: "):
        RunRecord.load(tmp_path)
    (tmp_path / RESULTS_FILE).write_text(json.dumps({"version": 99, "status": "ok"}))
    with pytest.raises(ConfigError, match="version 99, newer than this code's"):
        RunRecord.load(tmp_path)


def test_assignments_are_checked():
    with pytest.raises(ValueError, match="status"):
        RunRecord().status = "finished"


def _documented(section: str) -> list[str]:
    """The field names in the first column of ``docs/outputs.md``'s table under ``section``."""
    text = (REPO / "docs" / "outputs.md").read_text().split(section, 1)[1]
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    return [name for row in rows for name in re.findall(r"`([^`]+)`", row.split("|")[1])]


def _metrics_row() -> list[str]:
    text = (REPO / "docs" / "outputs.md").read_text().split("## `results.json`", 1)[1]
    row = next(line for line in text.splitlines() if line.startswith("| `metrics`"))
    return re.findall(r"`([^`]+)`", row.split("|")[2])


def test_the_schema_table_in_the_docs_lists_exactly_the_record_fields():
    fields = [f.alias or name for name, f in RunRecord.model_fields.items()]
    assert sorted(_documented("## `results.json`")) == sorted(fields)
    metrics = [f.alias or name for name, f in Metrics.model_fields.items()]
    assert set(metrics) <= set(_metrics_row()), set(metrics) - set(_metrics_row())
