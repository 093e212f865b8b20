"""Sweeps: multirun job dirs, one W&B run per job, sweep files, launchers, failures, DDP."""

import json

import hydra
import pytest
import torch
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf
from tests.conftest import CONF_DIR, TINY, compose_cfg, run_cli, run_dirs
from tests.wandb_records import run_record

from cnn_ablations.record import Metrics, RunRecord
from cnn_ablations.sweepdir import load_sweep, swept_levels


def test_2x2_multirun_gives_4_jobs_each_with_outputs_and_its_own_wandb_run(cli, tmp_path):
    args = ["-m", "model.activation=sigmoid,relu", "seed=0,1", *TINY, "logger=wandb"]
    result = cli(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = run_dirs(tmp_path, "sweeps")
    assert [j.name for j in jobs] == [
        "model.activation=relu,seed=0",
        "model.activation=relu,seed=1",
        "model.activation=sigmoid,seed=0",
        "model.activation=sigmoid,seed=1",
    ]
    sweep_dir = jobs[0].parent
    runs = []
    for job in jobs:
        results = json.loads((job / "results.json").read_text())
        assert results["status"] == "ok" and 0 < results["metrics"]["test/acc"] <= 1
        assert (job / "csv" / "metrics.csv").is_file()
        assert (job / "checkpoints" / "last.ckpt").is_file()
        (wandb_run,) = (job / "wandb").glob("offline-run-*")
        runs.append(run_record(wandb_run))
        activation = job.name.split(",")[0]
        assert runs[-1].job_type == activation  # the condition: swept overrides minus the seed
        assert results["condition"] == activation
        tags = {t.lower() for t in runs[-1].tags}
        assert tags == {o.lower() for o in results["overrides"]}  # one tag per override
        assert set(job.name.split(",")) <= set(results["overrides"])
        assert runs[-1].display_name == job.name
        assert results["wandb"]["id"] == runs[-1].run_id
    assert len({r.run_id for r in runs}) == 4
    assert {r.run_group for r in runs} == {f"lenet5-mnist5k-{sweep_dir.name}"}
    summary = json.loads((sweep_dir / "sweep_summary.json").read_text())
    assert summary["jobs"] == 4 and summary["failed"] == 0


def sweep_jobs(sweep: str, extra: list[str] | None = None) -> list[list[str]]:
    """The override sets a sweep file expands to, as Hydra's basic sweeper computes them."""
    cfg = compose_cfg([f"sweep={sweep}"], hydra_cfg=True)
    params = {**cfg.hydra.sweeper.params, **dict(e.split("=", 1) for e in (extra or []))}
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


@pytest.mark.parametrize(
    ("sweep", "count", "varying"),
    [
        ("lenet_ablation", 36, {"variant", "seed"}),
        ("lenet_ablation_full", 54, {"variant", "seed"}),
        ("lenet_ablation_digits", 27, {"variant", "seed"}),
        (
            "lenet_factorial",
            64,
            {
                "model.activation",
                "model.pool",
                "model.batchnorm",
                "model.dropout",
                "model.head",
                "seed",
            },
        ),
        ("lenet_ablation_converged", 36, {"variant", "seed"}),
        (
            "alexnet_ablation",
            32,
            {"model.lrn", "model.overlap_pool", "data.augment.pca_sigma", "seed"},
        ),
        (
            "alexnet_ablation_quick",
            24,
            {"model.lrn", "model.overlap_pool", "data.augment.pca_sigma", "seed"},
        ),
        ("lenet_vs_alexnet", 16, {"model", "data.augment.pca_sigma", "seed"}),
        ("lenet_vs_alexnet_quick", 12, {"model", "data.augment.pca_sigma", "seed"}),
    ],
)
def test_every_sweep_file_lists_its_jobs_and_each_job_builds(sweep, count, varying):
    jobs = sweep_jobs(sweep)
    assert len(jobs) == count and len({tuple(j) for j in jobs}) == count
    assert {o.split("=")[0] for o in jobs[0]} == varying
    seen_models = set()
    for job in jobs:
        cfg = compose_cfg([f"sweep={sweep}", *job])
        key = (cfg.model._target_, str(cfg.model), cfg.data.dataset)
        if key not in seen_models:  # build each distinct network once
            seen_models.add(key)
            net = hydra.utils.instantiate(cfg.model)
            size = cfg.model.input_size
            assert net(torch.zeros(2, cfg.model.in_channels, size, size)).shape == (2, 10)


def test_sweep_seeds_can_be_overridden_from_the_shell(tmp_path):
    """The command line's ``seed=0,...,4`` wins over the sweep file's seeds, for Hydra's sweeper
    (the jobs it expands) and for our reader of the sweep dir (``swept_levels``)."""
    cfg = compose_cfg(["sweep=lenet_ablation"], hydra_cfg=True)
    assert cfg.hydra.sweeper.params.seed == "0,1,2,3"
    task = ["sweep=lenet_ablation", "seed=0,1,2,3,4"]
    parsed = OverridesParser.create().parse_overrides(
        [*task, *(f"{k}={v}" for k, v in cfg.hydra.sweeper.params.items() if k != "seed")]
    )
    jobs = [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]
    assert len(jobs) == 9 * 5
    multirun = {"hydra": {"overrides": {"task": task}, "sweeper": dict(cfg.hydra.sweeper)}}
    OmegaConf.save(OmegaConf.create(multirun), tmp_path / "multirun.yaml")
    assert swept_levels(tmp_path)["seed"] == ["0", "1", "2", "3", "4"]


def leaves(cfg) -> dict:
    """Every leaf of a config as dotted key -> value."""

    def walk(node, prefix):
        if isinstance(node, dict):
            for key, value in node.items():
                yield from walk(value, f"{prefix}{key}.")
        else:
            yield prefix[:-1], node

    return dict(walk(OmegaConf.to_container(cfg, resolve=False), ""))


VARIANTS = sorted(p.stem for p in (CONF_DIR / "variant").glob("*.yaml"))


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_variant_changes_exactly_one_setting_of_the_baseline(variant):
    baseline = leaves(compose_cfg(["sweep=lenet_ablation", "variant=baseline"]))
    changed = leaves(compose_cfg(["sweep=lenet_ablation", f"variant={variant}"]))
    diff = {k for k in baseline.keys() | changed.keys() if baseline.get(k) != changed.get(k)}
    assert len(diff) == (0 if variant == "baseline" else 1), diff
    # what the file says is what the composed config holds
    for key, value in leaves(OmegaConf.load(CONF_DIR / "variant" / f"{variant}.yaml")).items():
        assert changed[key] == value


def test_ablation_sweep_lists_every_variant():
    cfg = compose_cfg(["sweep=lenet_ablation"], hydra_cfg=True)
    assert sorted(cfg.hydra.sweeper.params.variant.split(",")) == VARIANTS


def test_joblib_runs_the_jobs_and_a_failing_job_does_not_stop_the_sweep(tmp_path):
    result = run_cli(["-m", "launcher=joblib", "model.dropout=0.0,1.5", *TINY], tmp_path)
    assert result.returncode == 1
    jobs = {
        j.name: json.loads((j / "results.json").read_text()) for j in run_dirs(tmp_path, "sweeps")
    }
    assert jobs["model.dropout=0.0"]["status"] == "ok"
    failed = jobs["model.dropout=1.5"]
    assert failed["status"] == "failed" and "model.dropout=1.5" in failed["error"]
    assert "FAILED model.dropout=1.5" in result.stderr + result.stdout
    summary = json.loads(next(tmp_path.glob("outputs/sweeps/*/*/sweep_summary.json")).read_text())
    assert summary["failed"] == 1
    # the sweep was launched by the joblib launcher with 2 jobs (whether two of them overlap in
    # time depends on how fast the second worker imports torch on 2 cores: not asserted)
    multirun = next(tmp_path.glob("outputs/sweeps/*/*/multirun.yaml"))
    launcher = OmegaConf.load(multirun).hydra.launcher
    assert launcher._target_.endswith("JoblibLauncher") and launcher.n_jobs == 2


def test_slurm_launcher_preset_composes():
    cfg = compose_cfg(["launcher=slurm", "hydra.launcher.partition=gpu"], hydra_cfg=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.timeout_min) == ("gpu", 1, 120)
    assert cfg.trainer.accelerator == "gpu"


def assert_records_its_epochs(results: dict, epochs: int) -> None:
    """What the spawned workers trained reaches the record: the epochs and the time of one
    epoch, not the whole fit's time (ddp_spawn's main process never runs an epoch itself)."""
    metrics = results["metrics"]
    assert results["status"] == "ok"
    assert metrics["epochs"] == epochs and 1 <= metrics["best_epoch"] <= epochs
    assert metrics["stopped_by"] == "cap"
    assert 0 < metrics["sec_per_epoch"] * epochs < results["finished_at"] - results["started_at"]


def test_ddp_cpu_single_run_syncs_metrics_across_ranks(tmp_path):
    result = run_cli(["trainer=ddp_cpu", *TINY, "trainer.max_epochs=2", "logger=csv"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = [p.parent for p in tmp_path.glob("outputs/runs/*/*/.hydra")]
    results = json.loads((run_dir / "results.json").read_text())
    assert_records_its_epochs(results, epochs=2)
    # val/acc logged under DDP (each rank sees half of the 500 val digits) equals the accuracy
    # of the saved model on the whole val split computed here in one process
    from cnn_ablations.data import ImageDataModule
    from cnn_ablations.models.lenet5 import LeNet5

    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    net = LeNet5()
    net.load_state_dict({k.removeprefix("net."): v for k, v in state.items() if k[:4] == "net."})
    dm = ImageDataModule()
    dm.setup()
    x, y = dm.on_after_batch_transfer((dm.splits.val.images, dm.splits.val.labels), 0)
    with torch.no_grad():
        accuracy = (net.eval()(x).argmax(1) == y).float().mean().item()
    assert results["metrics"]["val/acc"] == pytest.approx(accuracy, abs=1e-6)


@pytest.mark.slow  # ~50 s: two 2-process DDP jobs; the single DDP run above stays in `make test`
def test_ddp_cpu_multirun_gives_one_dir_per_job(tmp_path):
    args = ["-m", "trainer=ddp_cpu", "trainer.strategy=ddp", "seed=0,1", *TINY]
    result = run_cli([*args, "trainer.max_epochs=2", "logger=csv"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(list(tmp_path.glob("outputs/sweeps/*"))) == 1  # no second sweep from rank 1
    jobs = run_dirs(tmp_path, "sweeps")
    assert [j.name for j in jobs] == ["seed=0", "seed=1"]
    for job in jobs:  # ddp became ddp_spawn inside the multirun
        assert_records_its_epochs(json.loads((job / "results.json").read_text()), epochs=2)


def test_killed_or_crashed_jobs_count_as_failed(tmp_path):
    for job in ("seed=0", "seed=1", "seed=2"):
        (tmp_path / job / ".hydra").mkdir(parents=True)
    RunRecord(status="ok", error=None, metrics=Metrics()).save(tmp_path / "seed=0")
    RunRecord(status="running", error=None).save(tmp_path / "seed=1")
    sweep = load_sweep(tmp_path)
    jobs = {j.name: j for j in sweep.jobs}
    assert jobs["seed=0"].ok
    assert not jobs["seed=1"].ok and jobs["seed=1"] in sweep.failed  # the summary counts it
    assert jobs["seed=1"].error.startswith("did not finish (killed?)")
    assert jobs["seed=2"].status == "failed" and "no results.json" in jobs["seed=2"].error


def test_a_single_value_on_the_command_line_takes_a_key_out_of_the_sweep_files_grid():
    """As Hydra does: ``model.overlap_pool=false`` replaces the file's ``false,true``, so the
    sweep (its grid size, the progress line's N) no longer varies it."""
    from cnn_ablations.overrides import sweep_levels

    command_line = ["model.overlap_pool=false", "seed=0,1"]
    sweep_file = ["model.lrn=false,true", "model.overlap_pool=false,true", "seed=0,1,2,3"]
    assert sweep_levels(command_line + sweep_file) == {
        "seed": ["0", "1"],
        "model.lrn": ["False", "True"],  # as Hydra parses them
    }
    jobs = sweep_jobs("alexnet_ablation", ["model.overlap_pool=false", "seed=0,1"])
    assert len(jobs) == 2 * 2 * 2  # lrn x pca_sigma x seeds, as Hydra's basic sweeper expands
