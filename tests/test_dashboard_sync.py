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
from tests.conftest import TINY, run_cli
from tests.wandb_records import config, history_keys, run_record

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


def report_json(sweep_dir) -> dict:
    return json.loads((sweep_dir / "report" / dashboard.REPORT_FILE).read_text())


def blocks_of(report: dict, kind: str) -> list[dict]:
    return [b for b in report["spec"]["blocks"] if b["type"] == kind]


def panels_of(grid: dict) -> list[dict]:
    return grid["metadata"]["panelBankSectionConfig"]["panels"]


def filter_values(runset: dict) -> dict:
    """run attribute -> value of each filter of a serialized run set."""
    return {f["key"]["name"]: f["value"] for f in runset["filters"]["filters"]}


def test_report_carries_the_answer_and_one_panel_grid_per_factor(sweeps):
    from cnn_ablations.report.document import answer
    from cnn_ablations.report.stats import analyse

    _, ofat_dir, grid_dir = sweeps
    for sweep_dir, grouping in [
        (ofat_dir, {"variant": "choices.value.variant"}),  # a config group: its choice
        (
            grid_dir,
            {"model.activation": "model.value.activation", "model.pool": "model.value.pool"},
        ),
    ]:
        sweep = load_sweep(sweep_dir)
        target = dashboard.wandb_target(sweep)
        report = json.loads(dashboard.serialized(dashboard.build_report(sweep, target)))
        assert report["project"] == {"name": "cnn-ablations", "entityName": ""}
        markdown = [b["content"] for b in blocks_of(report, "markdown-block")]
        assert markdown[0].startswith(f"**{answer(analyse(sweep))}**")
        assert markdown[1].startswith("| factor | level | vs |")  # the effects table
        headings = [b["children"][0]["text"] for b in blocks_of(report, "heading")]
        assert [h for h in headings if h.startswith("By ")] == [f"By {f}" for f in grouping]
        *factor_grids, overview = blocks_of(report, "panel-grid")
        assert len(factor_grids) == len(grouping)
        for grid, key in zip(factor_grids, grouping.values(), strict=True):
            (runset,) = grid["metadata"]["runSets"]
            assert filter_values(runset) == {"group": target.group}  # no W&B runs recorded
            assert runset["grouping"] == [{"section": "config", "name": key}]
            panels = [
                (p["viewType"], p["config"]["metrics"], p["config"]["groupBy"])
                for p in panels_of(grid)
            ]
            assert panels == [
                ("Run History Line Plot", ["val/acc"], key),
                ("Run History Line Plot", ["train/loss"], key),
                ("Bar Chart", ["test/acc"], key),
            ]
            assert {p["config"].get("xAxis") for p in panels_of(grid)} == {"epoch", None}
        (parallel,) = panels_of(overview)
        columns = [c["accessor"] for c in parallel["config"]["columns"]]
        assert columns == [
            *(f"config:{k}" for k in grouping.values()),
            "summary:val/acc_best",
            "summary:test/acc",
        ]
    failed = markdown[-1]  # grid: no failures; the one-factor sweep has two
    assert failed == "None: every job finished."
    report = json.loads(dashboard.serialized(dashboard.build_report(load_sweep(ofat_dir), target)))
    failed = blocks_of(report, "markdown-block")[-1]["content"]
    assert "**variant=relu,seed=3**" in failed and "loss is NaN" in failed
    assert "**variant=relu,seed=4**" in failed and "no results.json" in failed


def test_records_without_choices_group_a_config_group_by_job_type(sweeps, tmp_path):
    import shutil

    _, ofat_dir, _ = sweeps
    old = shutil.copytree(ofat_dir, tmp_path / "old" / ofat_dir.name)
    for path in old.glob("*/results.json"):  # as written before jobs logged their choices
        record = json.loads(path.read_text())
        del record["choices"]
        path.write_text(json.dumps(record))
    sweep = load_sweep(old)
    assert dashboard.group_key(sweep, "variant") == "run.jobType"  # job_type = the variant
    report = json.loads(
        dashboard.serialized(dashboard.build_report(sweep, dashboard.wandb_target(sweep)))
    )
    grid, overview = blocks_of(report, "panel-grid")
    assert grid["metadata"]["runSets"][0]["grouping"] == [{"section": "run", "name": "jobType"}]
    assert {p["config"]["groupBy"] for p in panels_of(grid)} == {"jobType"}
    assert panels_of(overview)[0]["config"]["columns"][0] == {"accessor": "run:jobType"}


def test_workspace_has_the_same_panels_on_one_run_set(sweeps):
    _, _, grid_dir = sweeps
    sweep = load_sweep(grid_dir)
    workspace = dashboard.build_workspace(sweep, dashboard.wandb_target(sweep, entity="someone"))
    assert isinstance(workspace, ws.Workspace)
    assert [s.name for s in workspace.sections] == [
        "by model.activation",
        "by model.pool",
        "all factors",
    ]
    first = workspace.sections[0].panels
    assert [type(p) for p in first] == [wr.LinePlot, wr.LinePlot, wr.BarPlot]
    assert first[0].groupby.name == "model.activation" and first[0].y == ["val/acc"]
    assert isinstance(workspace.sections[-1].panels[0], wr.ParallelCoordinatesPlot)
    view = json.loads(dashboard.serialized(workspace))
    assert view["entity"] == "someone" and view["project"] == "cnn-ablations"
    assert "lenet_grid-2026-11-24_09-00-00" in str(workspace.runset_settings.filters)


def test_print_writes_the_librarys_models_and_finds_a_sweep_by_group(sweeps, monkeypatch, capsys):
    from wandb_workspaces.reports.v2 import internal

    root, ofat_dir, _ = sweeps
    monkeypatch.chdir(root)
    assert dashboard.main(["--group", OFAT_GROUP, "--print"]) == 0
    out = capsys.readouterr().out
    written = ofat_dir.resolve().relative_to(root.resolve()) / "report" / dashboard.REPORT_FILE
    assert "(not uploaded)" in out and str(written) in out
    text = (ofat_dir / "report" / dashboard.REPORT_FILE).read_text()
    report = wr.Report._from_model(internal.ReportViewspec.model_validate_json(text))
    assert report.title == "Ablation: lenet_ablation 2026-11-23_12-00-00"
    assert sum(isinstance(b, wr.PanelGrid) for b in report.blocks) == 2  # variant, all factors
    assert (ofat_dir / "report" / dashboard.WORKSPACE_FILE).is_file()
    assert dashboard.main(["--group", "no-such-group", "--print"]) == 2
    assert "has W&B group 'no-such-group'; pass --sweep-dir" in capsys.readouterr().err


def test_offline_writes_the_files_and_publish_refuses_in_one_line(sweeps, monkeypatch, capsys):
    _, ofat_dir, _ = sweeps
    monkeypatch.delenv("WANDB_MODE")
    for view in (dashboard.REPORT_FILE, dashboard.WORKSPACE_FILE):
        (ofat_dir / "report" / view).unlink(missing_ok=True)
    assert dashboard.main(["--sweep-dir", str(ofat_dir)]) == 0  # no key: nothing to upload to
    out = capsys.readouterr().out
    assert "Not uploaded: no API key was found" in out and "make publish" in out
    assert (ofat_dir / "report" / dashboard.REPORT_FILE).is_file()

    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)  # a key, but offline mode wins
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert dashboard.main(["--sweep-dir", str(ofat_dir), "--publish"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "WANDB_MODE=offline" in err and "wandb login" in err
    assert not (ofat_dir / "report" / dashboard.PUBLISHED_FILE).exists()


class FakeServer:
    """W&B's side of saving, for ``save_online``: ``save`` gives a view an id (its first time)
    and a URL, ``from_url`` returns the saved view. Everything else is the library's own."""

    def __init__(self, monkeypatch, fail_workspace: bool = False):
        self.saved: dict[str, object] = {}
        self.loaded: list[str] = []
        server = self

        def url(view) -> str:
            return next(u for u, saved in server.saved.items() if saved is view)

        def save(view):
            if fail_workspace and isinstance(view, ws.Workspace):
                raise ConnectionError("network unreachable")
            if not any(saved is view for saved in server.saved.values()):
                server.saved[f"https://w/{type(view).__name__}{len(server.saved)}"] = view
            return view

        def from_url(link):
            server.loaded.append(link)
            return server.saved[link]

        for cls in (wr.Report, ws.Workspace):
            monkeypatch.setattr(cls, "save", save)
            monkeypatch.setattr(cls, "url", property(url))
            monkeypatch.setattr(cls, "from_url", staticmethod(from_url))


def test_saving_again_updates_the_saved_views_in_place(sweeps, monkeypatch, tmp_path):
    _, ofat_dir, grid_dir = sweeps
    server = FakeServer(monkeypatch)
    published = tmp_path / dashboard.PUBLISHED_FILE

    def views(sweep_dir):
        sweep = load_sweep(sweep_dir)
        target = dashboard.wandb_target(sweep, entity="team")
        return dashboard.build_report(sweep, target), dashboard.build_workspace(sweep, target)

    first = dashboard.save_online(*views(ofat_dir), published)
    assert json.loads(published.read_text()) == first and len(server.saved) == 2
    report, workspace = views(grid_dir)  # new blocks, e.g. after more seeds
    assert dashboard.save_online(report, workspace, published) == first  # same URLs
    assert server.loaded == [first["report"], first["workspace"]] and len(server.saved) == 2
    updated = server.saved[first["report"]]
    assert updated.blocks == report.blocks and updated.title == report.title
    assert server.saved[first["workspace"]].sections == workspace.sections


def test_a_failed_save_keeps_the_url_of_what_was_saved(sweeps, monkeypatch, tmp_path):
    _, ofat_dir, _ = sweeps
    FakeServer(monkeypatch, fail_workspace=True)
    sweep = load_sweep(ofat_dir)
    target = dashboard.wandb_target(sweep, entity="team")
    published = tmp_path / dashboard.PUBLISHED_FILE
    with pytest.raises(ConnectionError):
        views = dashboard.build_report(sweep, target), dashboard.build_workspace(sweep, target)
        dashboard.save_online(*views, published)
    assert list(json.loads(published.read_text())) == ["report"]  # next time: updated, not copied


@pytest.fixture(scope="module")
def logged_sweep(tmp_path_factory):
    """A real sweep over a config group (variant) with offline W&B runs, and its dir."""
    root = tmp_path_factory.mktemp("logged")
    args = ["-m", "variant=baseline,tanh", "seed=0,1", *TINY, "logger=wandb"]
    result = run_cli(args, root)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep_dir,) = root.glob("outputs/sweeps/*/*")
    return sweep_dir


def test_every_panel_plots_what_the_runs_logged(logged_sweep, capsys):
    assert dashboard.main(["--sweep-dir", str(logged_sweep), "--print"]) == 0
    runs = sorted(logged_sweep.glob("*/wandb/offline-run-*"))
    assert len(runs) == 4
    logged = set.intersection(*(history_keys(run) for run in runs))
    configs = [config(run) for run in runs]
    run_ids = sorted(run_record(run).run_id for run in runs)
    group = run_record(runs[0]).run_group

    def in_config(key: str) -> bool:  # "choices.value.variant" -> config["choices"]["variant"]
        top, _, rest = key.partition(".value")
        for cfg in configs:
            node = cfg.get(top)
            for part in filter(None, rest.split(".")):
                node = node.get(part) if isinstance(node, dict) else None
            if node is None:
                return False
        return True

    report = report_json(logged_sweep)
    workspace = json.loads((logged_sweep / "report" / dashboard.WORKSPACE_FILE).read_text())
    grids = blocks_of(report, "panel-grid")
    assert len(grids) == 2  # variant, all factors
    for grid in grids:
        (runset,) = grid["metadata"]["runSets"]
        filters = filter_values(runset)
        assert filters.keys() == {"group", "name"} and filters["group"] == group
        assert sorted(filters["name"]) == run_ids  # exactly the sweep's runs
    (runset,) = workspace["spec"]["section"]["runSets"]
    assert filter_values(runset) == filter_values(grids[0]["metadata"]["runSets"][0])
    sections = workspace["spec"]["section"]["panelBankConfig"]["sections"]
    panels = [p for grid in grids for p in panels_of(grid)]
    panels += [p for section in sections for p in section["panels"]]
    assert len(panels) == 2 * 4  # 3 for the factor + parallel coordinates, in each view
    for panel in panels:
        settings = panel["config"]
        for metric in settings.get("metrics", []):
            assert metric in logged, metric
        assert settings.get("xAxis", "epoch") in logged
        if "groupBy" in settings:
            assert in_config(settings["groupBy"]), settings["groupBy"]
        for column in settings.get("columns", []):
            section, _, key = column["accessor"].partition(":")
            assert in_config(key) if section == "config" else key in logged, column
    assert {cfg["choices"]["variant"] for cfg in configs} == {"baseline", "tanh"}


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
