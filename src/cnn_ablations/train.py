"""Train and test one configuration: ``python -m cnn_ablations.train [overrides]`` (or ``-m``).

Composes ``conf/config.yaml``, validates it, builds data, model, loggers, callbacks and trainer
with ``hydra.utils.instantiate``, fits, tests the best checkpoint, and writes ``results.json`` in
the job's output dir (status ``running`` -> ``ok`` | ``failed`` | ``interrupted``). In a multirun
a failing job is recorded and the sweep goes on; ``resume=true`` continues a run or sweep.
"""

import logging
import sys
import time
from pathlib import Path

import hydra
import pytorch_lightning as pl
import rich
import rich.syntax
import rich.tree
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from cnn_ablations.errors import ConfigError, JobFailed, check_choice
from cnn_ablations.module import Classifier
from cnn_ablations.results import read_results, write_results
from cnn_ablations.sweep import NOT_A_FACTOR, override_key, swept_overrides
from cnn_ablations.tracking import CSVLogger, build_loggers, finish_wandb
from cnn_ablations.validate import check_checkpoint, validate_config

log = logging.getLogger(__name__)
CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")
MAX_TAG_LENGTH = 64  # W&B's limit
# `${module_name:a.b.lenet5.LeNet5}` -> "lenet5": the default experiment name in conf/config.yaml
OmegaConf.register_new_resolver("module_name", lambda target: target.split(".")[-2], replace=True)
# `${job_dirname:}`: a multirun job's dir name, from the overrides its sweep varies
OmegaConf.register_new_resolver(
    "job_dirname", lambda: ",".join(swept_overrides(HydraConfig.get())) or "job", replace=True
)


def resume_dir(parent: str, stamp: str, resume) -> str:
    """A run's or sweep's dir: ``parent/stamp`` for a new one; with ``resume=true`` the latest
    existing dir under ``parent`` (a new one if there is none); with ``resume=<dir>`` that dir."""
    if resume is None or resume is False:
        return f"{parent}/{stamp}"
    if resume is True:
        previous = sorted(p for p in Path(parent).glob("*") if p.is_dir())
        return str(previous[-1]) if previous else f"{parent}/{stamp}"
    return str(resume)


# cached: every job of a sweep (and the launcher) resolves the same dir
OmegaConf.register_new_resolver("resume_dir", resume_dir, use_cache=True, replace=True)


def apply_variant(cfg: DictConfig) -> None:
    """Apply ``cfg.variants[cfg.variant]`` (dotted key -> value) onto ``cfg`` in place."""
    if cfg.get("variant") is None:
        return
    check_choice("variant", cfg.variant, list(cfg.variants))
    for key, value in cfg.variants[cfg.variant].items():
        if OmegaConf.select(cfg, key, default="<missing>") == "<missing>":
            raise ConfigError(f"variant {cfg.variant!r} sets {key}, which is not a config key")
        with open_dict(cfg):
            OmegaConf.update(cfg, key, value, merge=True)


def job_identity(cfg: DictConfig) -> dict:
    """Overrides, variant (swept overrides minus seed), W&B run name, group, job type, tags."""
    hydra_cfg = HydraConfig.get()
    overrides = [o for o in hydra_cfg.overrides.task if override_key(o) not in NOT_A_FACTOR]
    swept = swept_overrides(hydra_cfg)
    variant = ",".join(o for o in swept if override_key(o) != "seed")
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    group = f"{cfg.name}-{Path(hydra_cfg.sweep.dir).name}" if multirun else cfg.name
    settings = []
    if cfg.get("variant") is not None:
        settings = [f"{k}={v}" for k, v in (cfg.variants.get(cfg.variant) or {}).items()]
    return {
        "overrides": overrides,
        "variant": variant,
        "run_name": ",".join(swept) or cfg.name,
        "group": group,
        "job_type": cfg.get("variant") or variant or "train",
        "tags": [t[:MAX_TAG_LENGTH] for t in overrides + settings],
        "multirun": multirun,
    }


def build(node: DictConfig, key: str, **kwargs):
    """``hydra.utils.instantiate``, turning a bad setting into a one-line ``ConfigError``."""
    try:
        return hydra.utils.instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, ConfigError):
            raise cause from None
        if isinstance(cause, TypeError) and "unexpected keyword argument" in str(cause):
            bad = str(cause).split("argument")[-1].strip(" '")
            target = node.get("_target_", "?").split(".")[-1]
            raise ConfigError(f"{key}.{bad} does not apply to {target}; remove it") from None
        raise


def print_config_tree(cfg: DictConfig) -> None:
    """Print the resolved config as a rich tree, one branch per top-level group."""
    tree = rich.tree.Tree("config", style="bold")
    for key, value in cfg.items():
        text = (
            OmegaConf.to_yaml(value, resolve=True) if isinstance(value, DictConfig) else str(value)
        )
        tree.add(f"[bold]{key}[/]").add(rich.syntax.Syntax(text.rstrip(), "yaml"))
    rich.print(tree)


def train(cfg: DictConfig, output_dir: Path, identity: dict, record: dict) -> dict:
    """Fit and test one configuration; return the final metrics."""
    if cfg.seed is not None:
        pl.seed_everything(cfg.seed, workers=True)
    if cfg.get("torch_threads"):
        torch.set_num_threads(cfg.torch_threads)
    datamodule = build(cfg.data, "data")
    datamodule.setup()
    net = build(cfg.model, "model")
    model = Classifier(
        net=net,
        optimizer=build(cfg.optimizer, "optimizer"),
        scheduler=build(cfg.scheduler, "scheduler") if cfg.get("scheduler") else None,
        num_classes=datamodule.num_classes,
        compile_net=cfg.compile,
        channels_last=cfg.channels_last,
    )
    ckpt_path = cfg.ckpt_path
    if cfg.resume and ckpt_path is None and cfg.train:
        ckpt_path = _last_checkpoint(cfg, output_dir)
    ckpt_step = check_checkpoint(ckpt_path, model)

    loggers = build_loggers(
        cfg, identity["run_name"], identity["group"], identity["job_type"], identity["tags"]
    )
    if cfg.resume:  # rows after the checkpoint (the interrupted epoch) are logged again
        for logger in loggers:
            if isinstance(logger, CSVLogger):
                logger.drop_rows_after(ckpt_step if ckpt_step is not None else -1)
    for logger in loggers:
        logger.log_hyperparams(datamodule.summary)
    callbacks = [hydra.utils.instantiate(c) for c in cfg.callbacks.values()]
    strategy = {}
    if identity["multirun"] and cfg.trainer.get("strategy") == "ddp":
        # plain ddp re-runs the Hydra command per rank, which would start a second sweep
        log.warning("multirun: using strategy=ddp_spawn instead of ddp (one run per job)")
        strategy = {"strategy": "ddp_spawn"}
    trainer = build(cfg.trainer, "trainer", logger=loggers, callbacks=callbacks, **strategy)
    write_results(output_dir, {**record, "status": "running", "error": None})

    metrics: dict = {"params": model.num_params}
    if cfg.train:
        start = time.perf_counter()
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
        fit_seconds = time.perf_counter() - start
        metrics.update(_scalars(trainer.callback_metrics))
        metrics["epochs"] = trainer.current_epoch
        resumed_epochs = (ckpt_step or 0) // max(trainer.num_training_batches, 1)
        metrics["sec_per_epoch"] = fit_seconds / max(trainer.current_epoch - resumed_epochs, 1)
    if cfg.test:
        ckpt = "best" if cfg.train else ckpt_path
        trainer.test(model, datamodule=datamodule, ckpt_path=ckpt)
        metrics.update(_scalars(trainer.callback_metrics, prefix="test/"))
    metrics["best_checkpoint"] = (
        trainer.checkpoint_callback.best_model_path if (trainer.checkpoint_callback) else None
    )
    return metrics


def _last_checkpoint(cfg: DictConfig, output_dir: Path) -> str | None:
    directory = OmegaConf.select(cfg, "callbacks.model_checkpoint.dirpath")
    last = Path(directory or output_dir / "checkpoints") / "last.ckpt"
    if last.is_file():
        log.info("resume: continuing from %s", last)
        return str(last)
    log.warning("resume: no checkpoint in %s; training from the start", last.parent)
    return None


def _check_resumable(previous: dict | None, identity: dict, output_dir: Path) -> None:
    if previous and previous.get("overrides") != identity["overrides"]:
        raise ConfigError(
            f"resume: {output_dir} was run with overrides {previous.get('overrides')}, not "
            f"{identity['overrides']}; repeat its command with resume=true, or pass "
            "resume=<dir> of the run you mean"
        )


def _scalars(metrics: dict, prefix: str = "") -> dict:
    return {k: float(v) for k, v in metrics.items() if k.startswith(prefix) and v.numel() == 1}


def _finish(output_dir: Path, record: dict, status: str, error: str | None, **extra) -> None:
    results = {**record, "status": status, "error": error, **extra}
    write_results(output_dir, {**results, "finished_at": time.time()})


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the test accuracy (what a Hydra sweeper would optimise).

    Exit status of a single run: 0 ok, 1 failed, 2 bad config, 130 interrupted. A multirun goes
    on past failed jobs and exits 1 at the end if any failed (see ``sweep.SweepSummary``).
    """
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    identity = job_identity(cfg)
    multirun = identity["multirun"]
    record = {key: identity[key] for key in ("overrides", "variant", "group")}
    record |= {"seed": cfg.seed, "output_dir": str(output_dir), "started_at": time.time()}
    try:
        if cfg.resume:
            previous = read_results(output_dir)
            _check_resumable(previous, identity, output_dir)
            if previous and previous.get("status") == "ok":
                log.info("resume: %s already finished; skipping it", output_dir)
                return previous["metrics"].get("test/acc")
        apply_variant(cfg)
        validate_config(cfg)
        record["config"] = OmegaConf.to_container(cfg, resolve=True)
        print_config_tree(cfg)
        metrics = train(cfg, output_dir, identity, record)
    except ConfigError as err:
        log.error("%s", err)
        if not multirun:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        _finish(output_dir, record, "failed", str(err))
        return None
    except JobFailed as err:
        _finish(output_dir, record, "failed", str(err).split(";")[0])
        log.error("job failed: %s", err)
        if not multirun:
            print(f"error: job failed: {err}", file=sys.stderr)
            sys.exit(1)
        return None
    except (KeyboardInterrupt, SystemExit) as err:
        # Ctrl-C (Lightning turns it into SystemExit after a graceful shutdown): the CSV and
        # checkpoints/last.ckpt of the last finished epoch are on disk. A multirun stops too.
        _finish(output_dir, record, "interrupted", f"interrupted ({type(err).__name__})")
        if multirun:
            hint = f"rerun the sweep command with resume={HydraConfig.get().sweep.dir}"
        else:
            command = " ".join(["python -m cnn_ablations.train", *identity["overrides"]])
            hint = f"continue with: {command} resume={output_dir}"
        print(f"interrupted; {hint}", file=sys.stderr)
        sys.exit(130)
    except Exception as err:
        lines = [line for line in str(err).splitlines() if line.strip()]
        message = f"{type(err).__name__}: {lines[-1] if lines else ''}"  # spawn errors: last
        _finish(output_dir, record, "failed", message)
        if not multirun:
            raise
        log.exception("job failed, the sweep goes on: %s", message)
        return None
    finally:
        finish_wandb()
    _finish(output_dir, record, "ok", None, metrics=metrics)
    log.info(
        "done: test/acc=%.4f val/acc_best=%.4f epochs=%s in %s",
        metrics.get("test/acc", float("nan")),
        metrics.get("val/acc_best", float("nan")),
        metrics.get("epochs"),
        output_dir,
    )
    return metrics.get("test/acc")


if __name__ == "__main__":
    main()
