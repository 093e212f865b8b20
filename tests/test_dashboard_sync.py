"""`cnn_ablations.dashboard` specs and `cnn_ablations.sync` against real offline W&B runs.

Nothing here reaches the network: WANDB_MODE=offline, no API key, HOME in a temp dir.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import wandb_workspaces.reports.v2 as wr
import wandb_workspaces.workspaces as ws
from tests.conftest import TINY, run_cli
from tests.wandb_records import config, exit_code, history_keys, run_record

from cnn_ablations import dashboard, sync, wandb_views
from cnn_ablations.sweepdir import load_sweep
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


def assert_selects(runset: dict, group: str, run_ids: list[str]) -> None:
    """The serialized run set selects W&B group ``group`` AND a run id in ``run_ids``, as W&B
    reads it: each filter's key, op and connector (W&B's run ``name`` is the run id)."""
    assert runset["filters"]["filterFormat"] == "filterV2"
    group_filter, id_filter = runset["filters"]["filters"]
    assert group_filter["key"] == {"section": "run", "name": "group"}
    assert (group_filter["op"], group_filter["value"]) == ("=", group)
    assert id_filter["key"] == {"section": "run", "name": "name"}
    assert (id_filter["op"], id_filter["connector"]) == ("IN", "AND")
    assert sorted(id_filter["value"]) == sorted(run_ids)
    assert not group_filter["disabled"] and not id_filter["disabled"]


def test_report_carries_the_answer_and_one_panel_grid_per_factor(sweeps):
    from cnn_ablations.report.document import answer, question
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
        target = wandb_views.wandb_target(sweep)
        report = json.loads(wandb_views.serialized(wandb_views.wandb_report(sweep, target)))
        assert report["project"] == {"name": "cnn-ablations", "entityName": ""}
        markdown = [b["content"] for b in blocks_of(report, "markdown-block")]
        analysis = analyse(sweep)  # the budget, then the answer
        assert markdown[0].startswith(f"**{question(analysis)}**\n\n**{answer(analysis)}**")
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
    ofat = load_sweep(ofat_dir)
    report = json.loads(wandb_views.serialized(wandb_views.wandb_report(ofat, target)))
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
    assert wandb_views.group_key(sweep, "variant") == "run.jobType"  # job_type = the variant
    report = json.loads(
        wandb_views.serialized(wandb_views.wandb_report(sweep, wandb_views.wandb_target(sweep)))
    )
    grid, overview = blocks_of(report, "panel-grid")
    assert grid["metadata"]["runSets"][0]["grouping"] == [{"section": "run", "name": "jobType"}]
    assert {p["config"]["groupBy"] for p in panels_of(grid)} == {"jobType"}
    assert panels_of(overview)[0]["config"]["columns"][0] == {"accessor": "run:jobType"}


def test_workspace_has_the_same_panels_on_one_run_set_grouped_by_the_factors(sweeps):
    _, ofat_dir, grid_dir = sweeps
    sweep = load_sweep(grid_dir)
    target = wandb_views.wandb_target(sweep, entity="someone")
    workspace = wandb_views.build_workspace(sweep, target)
    assert isinstance(workspace, ws.Workspace)
    assert [s.name for s in workspace.sections] == [
        "how runs are grouped",  # two factors: the note says what the panels show
        "by model.activation",
        "by model.pool",
        "all factors",
    ]
    (note,) = workspace.sections[0].panels
    assert isinstance(note, wr.MarkdownPanel) and "one line per condition" in note.markdown
    assert "`config.model.activation`, then `config.model.pool`" in note.markdown
    first = workspace.sections[1].panels
    assert [type(p) for p in first] == [wr.LinePlot, wr.LinePlot, wr.BarPlot]
    assert first[0].groupby.name == "model.activation" and first[0].y == ["val/acc"]
    assert isinstance(workspace.sections[-1].panels[0], wr.ParallelCoordinatesPlot)
    view = json.loads(wandb_views.serialized(workspace))
    assert view["entity"] == "someone" and view["project"] == "cnn-ablations"
    (runset,) = view["spec"]["section"]["runSets"]
    assert filter_values(runset) == {"group": "lenet_grid-2026-11-24_09-00-00"}
    # W&B stores Lightning's nested config as model.value.activation; panels group as this
    assert runset["grouping"] == [
        {"section": "config", "name": "model.value.activation"},
        {"section": "config", "name": "model.value.pool"},
    ]
    assert view["spec"]["section"]["settings"]["useRunsTableGroupingInPanels"] is True

    one = load_sweep(ofat_dir)
    workspace = wandb_views.build_workspace(one, wandb_views.wandb_target(one))
    view = json.loads(wandb_views.serialized(workspace))
    (runset,) = view["spec"]["section"]["runSets"]
    assert runset["grouping"] == [{"section": "config", "name": "choices.value.variant"}]
    sections = view["spec"]["section"]["panelBankConfig"]["sections"]
    assert [s["name"] for s in sections] == ["by variant", "all factors"]  # one factor: no note


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
        target = wandb_views.wandb_target(sweep, entity="team")
        return wandb_views.wandb_report(sweep, target), wandb_views.build_workspace(sweep, target)

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
    target = wandb_views.wandb_target(sweep, entity="team")
    published = tmp_path / dashboard.PUBLISHED_FILE
    with pytest.raises(ConnectionError):
        views = wandb_views.wandb_report(sweep, target), wandb_views.build_workspace(sweep, target)
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
    runsets = [grid["metadata"]["runSets"][0] for grid in grids]
    runsets += workspace["spec"]["section"]["runSets"]
    assert len(runsets) == 3
    for runset in runsets:
        assert_selects(runset, group, run_ids)  # exactly the sweep's runs
        for key in runset["grouping"]:
            assert key["section"] == "config" and in_config(key["name"]), key
    assert [key["name"] for key in runsets[0]["grouping"]] == ["choices.value.variant"]
    assert runsets[1]["grouping"] == []  # all factors: one line per run
    assert runsets[2]["grouping"] == runsets[0]["grouping"]  # the workspace: by the factor
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


@pytest.fixture(scope="module")
def failed_sweep(tmp_path_factory):
    """A real sweep with offline W&B runs in which one job fails mid-fit (a non-finite loss)."""
    root = tmp_path_factory.mktemp("failed")
    args = [
        "-m", "optimizer.lr=0.01,1e10", *TINY, "optimizer=sgd", "trainer.limit_train_batches=15",
        "logger=wandb",
    ]  # fmt: skip
    result = run_cli(args, root)
    assert result.returncode == 1, result.stderr[-3000:]  # a job failed
    (sweep_dir,) = root.glob("outputs/sweeps/*/*")
    sweep = load_sweep(sweep_dir)
    assert [job.name for job in sweep.ok] == ["optimizer.lr=0.01"]
    assert [job.name for job in sweep.failed] == ["optimizer.lr=10000000000.0"]
    return sweep_dir


def run_dir_of(job_dir: Path) -> Path:
    (run,) = job_dir.glob("wandb/offline-run-*")
    return run


def test_a_failed_jobs_run_is_marked_failed_and_plotted_nowhere(failed_sweep, capsys):
    sweep = load_sweep(failed_sweep)
    (ok,), (failed,) = sweep.ok, sweep.failed
    ok_run, failed_run = run_dir_of(ok.path), run_dir_of(failed.path)
    assert exit_code(ok_run) == 0
    assert exit_code(failed_run) == 1  # W&B shows the run as failed, not finished
    ok_id, failed_id = run_record(ok_run).run_id, run_record(failed_run).run_id
    assert (ok.wandb_run.id, failed.wandb_run.id) == (ok_id, failed_id)

    assert dashboard.main(["--sweep-dir", str(failed_sweep), "--print"]) == 0
    report = report_json(failed_sweep)
    workspace = json.loads((failed_sweep / "report" / dashboard.WORKSPACE_FILE).read_text())
    runsets = [g["metadata"]["runSets"][0] for g in blocks_of(report, "panel-grid")]
    runsets += workspace["spec"]["section"]["runSets"]
    assert runsets
    for runset in runsets:
        assert_selects(runset, run_record(ok_run).run_group, [ok_id])
    assert failed_id not in json.dumps(runsets)
    failed_text = blocks_of(report, "markdown-block")[-1]["content"]
    assert failed_text.startswith("Their W&B runs are in no run set above.")
    assert f"**{failed.name}**" in failed_text and "non-finite loss" in failed_text

    target = wandb_views.wandb_target(sweep, entity="team")  # online: a link to the failed run
    text = wandb_views.failed_jobs_markdown(sweep, target)
    assert f"[W&B run {failed_id}](/team/cnn-ablations/runs/{failed_id})" in text


class SyncCalls:
    """``wandb sync``'s side of publishing: records each command line, uploads nothing."""

    def __init__(self, monkeypatch):
        self.commands: list[list[str]] = []
        monkeypatch.setattr(sync.subprocess, "run", self.run)

    def run(self, command, **kwargs):
        self.commands.append([str(part) for part in command])
        return subprocess.CompletedProcess(command, 0)

    def option(self, flag: str) -> str:
        (command,) = self.commands
        return command[command.index(flag) + 1]


@pytest.fixture
def online(monkeypatch):
    """An API key, no WANDB_MODE and no WANDB_ENTITY: what `make publish` sees after login."""
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.delenv("WANDB_ENTITY", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)


@pytest.mark.parametrize(
    ("env", "flag", "entity", "source"),
    [
        ("team-env", None, "team-env", "$WANDB_ENTITY"),
        ("team-env", "team-flag", "team-flag", "--entity"),
        (None, None, "me", "your W&B default entity"),
    ],
)
def test_one_entity_is_passed_to_sync_and_to_the_saved_views(
    failed_sweep, tmp_path, monkeypatch, capsys, online, env, flag, entity, source
):
    import shutil

    import wandb

    sweep_dir = shutil.copytree(failed_sweep, tmp_path / failed_sweep.name)
    if env:
        monkeypatch.setenv("WANDB_ENTITY", env)
    monkeypatch.setattr(wandb, "Api", lambda: type("Api", (), {"default_entity": "me"}))
    server, calls = FakeServer(monkeypatch), SyncCalls(monkeypatch)
    args = ["--sweep-dir", str(sweep_dir), "--publish", *(["--entity", flag] if flag else [])]
    assert dashboard.main(args) == 0
    out = capsys.readouterr().out
    assert f"W&B entity {entity} (from {source}), project cnn-ablations" in out
    assert calls.option("-e") == entity and calls.option("-p") == "cnn-ablations"
    (command,) = calls.commands
    assert len(command[command.index("-e") + 2 :]) == 2  # both jobs' offline runs
    report, workspace = server.saved.values()
    assert (report.entity, workspace.entity) == (entity, entity)
    grids = [block for block in report.blocks if isinstance(block, wr.PanelGrid)]
    runsets = [runset for grid in grids for runset in grid.runsets]
    assert runsets and {(r.entity, r.project) for r in runsets} == {(entity, "cnn-ablations")}


def test_saving_without_publish_warns_of_runs_not_uploaded(
    failed_sweep, tmp_path, monkeypatch, capsys, online
):
    import shutil

    from wandb.cli.beta_sync import _is_synced

    sweep_dir = shutil.copytree(failed_sweep, tmp_path / failed_sweep.name)
    FakeServer(monkeypatch)
    assert dashboard.main(["--sweep-dir", str(sweep_dir), "--entity", "team"]) == 0
    err = capsys.readouterr().err
    ok_run = run_dir_of(sweep_dir / "optimizer.lr=0.01")
    assert "1 of the sweep's 1 ok runs are offline and not uploaded" in err
    assert f"make publish ARGS=--sweep-dir={sweep_dir}" in err
    assert f"  {ok_run}" in err.splitlines()  # listed; the failed job's run is plotted nowhere

    (run_file,) = ok_run.glob("run-*.wandb")
    marker = run_file.with_name(run_file.name + ".synced")  # what `wandb sync` leaves
    marker.touch()
    assert _is_synced(run_file)  # wandb's own test of the marker
    assert dashboard.main(["--sweep-dir", str(sweep_dir), "--entity", "team"]) == 0
    assert "not uploaded" not in capsys.readouterr().err


# --- names W&B views can use -------------------------------------------------------------------


def _breaks_wandb_views(char: str) -> bool:
    """Whether wandb-workspaces rewrites or refuses a W&B group holding ``char``: in a run set's
    filter (re-parsed from a string) or in the workspace's name."""
    from wandb_workspaces import expr

    group = f"lenet{char}bn-2026-11-23_12-00-00"
    try:
        runset = wr.Runset(filters=expr.And(expr.Metric("Group") == group))
        (written,) = json.loads(runset._to_model().model_dump_json(by_alias=True))["filters"][
            "filters"
        ]
        ws.Workspace(entity="e", project="p", name=f"Ablation: {group}")
    except Exception:  # SyntaxError for ', pydantic's ValidationError for a name
        return True
    return written["value"] != group


def test_the_refused_characters_are_those_wandb_workspaces_breaks_on():
    import string
    import warnings

    from cnn_ablations.errors import ConfigError, check_wandb_name

    def refused(char: str) -> bool:
        try:
            check_wandb_name("name", f"lenet{char}bn")
        except ConfigError as err:
            assert str(err).startswith(f"name={f'lenet{char}bn'!r} contains {char!r}, which")
            return True
        return False

    candidates = [c for c in string.printable if c.isprintable()] + list("±×é€😀")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the library warns as it rewrites < and >
        breaking = {c for c in candidates if _breaks_wandb_views(c)}
    assert {"'", "=", "<", ">", "+", "±"} <= breaking
    assert {c for c in candidates if refused(c)} == breaking


def test_a_sweep_whose_wandb_group_breaks_the_views_stops_before_any_job(tmp_path):
    result = run_cli(["-m", "name=lenet+bn", "seed=0,1", *TINY, "logger=wandb"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: name='lenet+bn' contains '+', which the W&B Report and workspace of the sweep "
        "cannot filter on or be named with; use letters, digits, '-', '_' or '.'"
    )
    assert not (tmp_path / "outputs").exists()  # no job ran, no sweep dir was made


def test_dashboard_refuses_a_group_it_cannot_filter_on(sweeps, capsys):
    _, ofat_dir, _ = sweeps
    assert dashboard.main(["--sweep-dir", str(ofat_dir), "--group", "a'b", "--print"]) == 2
    assert capsys.readouterr().err.startswith('dashboard: error: group="a\'b" contains "\'"')


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
