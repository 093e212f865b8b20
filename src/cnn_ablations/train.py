"""Train and test one configuration: ``python -m cnn_ablations.train [overrides]`` (or ``-m``).

Composes ``conf/config.yaml``, builds data, model, loggers, callbacks and trainer with
``hydra.utils.instantiate``, fits, tests the best checkpoint, and writes ``results.json`` in the
job's output dir. In a multirun a failing job is recorded and the sweep goes on.
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

from cnn_ablations.errors import ConfigError, check_choice
from cnn_ablations.module import Classifier
from cnn_ablations.results import write_results
from cnn_ablations.sweep import NOT_A_FACTOR, override_key, swept_overrides
from cnn_ablations.tracking import build_loggers, finish_wandb

log = logging.getLogger(__name__)
CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")
MAX_TAG_LENGTH = 64  # W&B's limit
# `${module_name:a.b.lenet5.LeNet5}` -> "lenet5": the default experiment name in conf/config.yaml
OmegaConf.register_new_resolver("module_name", lambda target: target.split(".")[-2], replace=True)
# `${job_dirname:}`: a multirun job's dir name, from the overrides its sweep varies
OmegaConf.register_new_resolver(
    "job_dirname", lambda: ",".join(swept_overrides(HydraConfig.get())) or "job", replace=True
)


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


def train(cfg: DictConfig, output_dir: Path, identity: dict) -> dict:
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
    loggers = build_loggers(
        cfg, identity["run_name"], identity["group"], identity["job_type"], identity["tags"]
    )
    for logger in loggers:
        logger.log_hyperparams(datamodule.summary)
    callbacks = [hydra.utils.instantiate(c) for c in cfg.callbacks.values()]
    strategy = {}
    if identity["multirun"] and cfg.trainer.get("strategy") == "ddp":
        # plain ddp re-runs the Hydra command per rank, which would start a second sweep
        log.warning("multirun: using strategy=ddp_spawn instead of ddp (one run per job)")
        strategy = {"strategy": "ddp_spawn"}
    trainer = build(cfg.trainer, "trainer", logger=loggers, callbacks=callbacks, **strategy)

    metrics: dict = {"params": model.num_params}
    if cfg.train:
        start = time.perf_counter()
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
        fit_seconds = time.perf_counter() - start
        metrics.update(_scalars(trainer.callback_metrics))
        metrics["epochs"] = trainer.current_epoch
        metrics["sec_per_epoch"] = fit_seconds / max(trainer.current_epoch, 1)
    if cfg.test:
        ckpt = "best" if cfg.train else cfg.ckpt_path
        trainer.test(model, datamodule=datamodule, ckpt_path=ckpt)
        metrics.update(_scalars(trainer.callback_metrics, prefix="test/"))
    metrics["best_checkpoint"] = (
        trainer.checkpoint_callback.best_model_path if (trainer.checkpoint_callback) else None
    )
    return metrics


def _failure(message: str) -> dict:
    return {"status": "failed", "error": message, "finished_at": time.time()}


def _scalars(metrics: dict, prefix: str = "") -> dict:
    return {k: float(v) for k, v in metrics.items() if k.startswith(prefix) and v.numel() == 1}


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the test accuracy (what a Hydra sweeper would optimise)."""
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    identity = job_identity(cfg)
    record = {key: identity[key] for key in ("overrides", "variant", "group")}
    record |= {"seed": cfg.seed, "output_dir": str(output_dir), "started_at": time.time()}
    try:
        apply_variant(cfg)
        print_config_tree(cfg)
        metrics = train(cfg, output_dir, identity)
    except ConfigError as err:
        log.error("%s", err)
        if not identity["multirun"]:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        write_results(output_dir, {**record, **_failure(str(err))})
        return None
    except Exception as err:
        lines = [line for line in str(err).splitlines() if line.strip()]
        message = f"{type(err).__name__}: {lines[-1] if lines else ''}"  # spawn errors: last
        write_results(output_dir, {**record, **_failure(message)})
        if not identity["multirun"]:
            raise
        log.exception("job failed, the sweep goes on: %s", message)
        return None
    finally:
        finish_wandb()
    write_results(
        output_dir,
        {**record, "status": "ok", "error": None, "metrics": metrics, "finished_at": time.time()},
    )
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
