"""Train and test one configuration: ``python -m cnn_ablations.train [overrides]`` (or ``-m``).

A job is one pass: compose (Hydra) -> validate -> build -> fit -> test -> ``results.json``,
inside :func:`cnn_ablations.job.recorded`, which records the outcome, finishes W&B and maps
errors to exit codes: 0 ok, 1 failed, 2 a bad setting or input file, 130 interrupted. A
multirun goes on past failed jobs and exits 1 at the end if any failed.
"""

import atexit
import logging
import math
import os
import sys
import threading
from pathlib import Path
from typing import NoReturn

import hydra
import rich
import rich.syntax
import rich.tree
from hydra._internal.utils import get_args_parser
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from cnn_ablations import CONF_DIR, CONFIG_NAME, resolvers
from cnn_ablations.build import Parts, build
from cnn_ablations.errors import EXIT_CONFIG, describe_hydra_error, override_key, rejected_settings
from cnn_ablations.job import TRACEBACK_ENV, recorded
from cnn_ablations.lr_select import select_lr
from cnn_ablations.validate import validate_config

log = logging.getLogger(__name__)
# A job's saved .hydra/config.yaml is the composed config without Hydra's settings; re-running it
# adds this project's (run dir layout, train.log, end-of-sweep summary) from conf/hydra/.
HYDRA_SETTINGS = "+hydra=default"


def print_config_tree(cfg: DictConfig) -> None:
    """Print the resolved config as a rich tree, one branch per top-level group."""
    tree = rich.tree.Tree("config", style="bold")
    for key, value in cfg.items():
        text = (
            OmegaConf.to_yaml(value, resolve=True) if isinstance(value, DictConfig) else str(value)
        )
        tree.add(f"[bold]{key}[/]").add(rich.syntax.Syntax(text.rstrip(), "yaml", word_wrap=True))
    rich.print(tree)


def fit_and_test(cfg: DictConfig, parts: Parts, overrides: list[str]) -> dict:
    """Fit (unless ``train=false``), test the best checkpoint, and return the final metrics."""
    trainer, model, data = parts.trainer, parts.model, parts.datamodule
    metrics: dict = {"params": model.num_params}
    # Lightning checks some trainer settings only when fitting starts; a ValueError there is a
    # setting's fault when it names one of the trainer overrides
    with rejected_settings(
        "trainer", "Trainer", overrides, (MisconfigurationException,), explained_only=(ValueError,)
    ):
        if cfg.train:
            trainer.fit(model, datamodule=data, ckpt_path=parts.ckpt_path)
            metrics.update(fit_facts(trainer))
        checkpoint = trainer.checkpoint_callback
        best = checkpoint.best_model_path if checkpoint else ""
        metrics["best_checkpoint"] = best or None
        if cfg.test:
            # the best checkpoint by val/acc; without one (fast_dev_run, checkpointing off) the
            # weights the fit ended with; with train=false the checkpoint given
            tested = (best or None) if cfg.train else parts.ckpt_path
            trainer.test(model, datamodule=data, ckpt_path=tested)
            metrics.update(_scalars(trainer.callback_metrics, prefix="test/"))
            metrics["tested_checkpoint"] = tested or "final weights"
    return metrics


def _scalars(metrics: dict, prefix: str = "") -> dict:
    return {k: float(v) for k, v in metrics.items() if k.startswith(prefix) and v.numel() == 1}


def fit_facts(trainer) -> dict:
    """The fit's final metrics and its facts, as ``Classifier.on_train_end`` left them in
    ``trainer.callback_metrics`` (which, unlike the trainer's own state, returns from ddp_spawn
    workers): epochs trained, the 1-based best epoch, this fit's seconds per epoch, and what
    stopped it: ``patience`` (early stopping), ``cap`` (``trainer.max_epochs``) or ``limit``
    (``max_time``, ``max_steps``, a debug flag)."""
    scalars = _scalars(trainer.callback_metrics)
    facts = {k: v for k, v in scalars.items() if k.startswith("fit/")}
    found = {k: v for k, v in scalars.items() if k not in facts}
    epochs = int(facts.get("fit/epochs", 0))
    seconds = facts.get("fit/sec_per_epoch", math.nan)  # NaN: no epoch ran in this fit
    stopped_by = "limit"
    if facts.get("fit/early_stopped"):
        stopped_by = "patience"
    elif trainer.max_epochs is not None and epochs >= trainer.max_epochs:
        stopped_by = "cap"
    return found | {
        "epochs": epochs,
        "best_epoch": int(facts.get("fit/best_epoch", 0)),
        "sec_per_epoch": None if math.isnan(seconds) else seconds,
        "stopped_by": stopped_by,
    }


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=CONFIG_NAME)
def run(cfg: DictConfig) -> float | None:
    """One job; returns the test accuracy (what a Hydra sweeper would optimise)."""
    with recorded(cfg) as job:
        previous = job.finished_before()
        if previous is not None:
            return previous.get("test/acc")
        validate_config(cfg)
        # the condition's rate, chosen on the validation split (configs saved before this
        # option existed have no lr_selection)
        if (cfg.get("lr_selection") or {}).get("enabled"):
            job.record["lr_selection"] = select_lr(cfg, job.identity, job.output_dir)
            cfg.optimizer.lr = job.record["lr_selection"]["lr"]
        job.settle_seed()
        print_config_tree(cfg)
        parts = build(cfg, job.identity, job.output_dir)
        job.record["wandb"] = parts.wandb
        job.record["metrics_csv"] = parts.metrics_csv
        job.write("running")
        job.metrics = fit_and_test(cfg, parts, job.identity["overrides"])
        log.info(
            "done: test/acc=%.4f val/acc_best=%.4f epochs=%s in %s",
            job.metrics.get("test/acc", float("nan")),
            job.metrics.get("val/acc_best", float("nan")),
            job.metrics.get("epochs"),
            job.output_dir,
        )
    return (job.metrics or {}).get("test/acc")


def _rerunning_saved_config(argv: list[str]) -> bool:
    """``--config-dir <job>/.hydra --config-name config``: a job's saved config, re-run."""
    args, _ = get_args_parser().parse_known_args(argv)
    if not (args.config_dir and args.config_name):
        return False
    saved = Path(args.config_dir) / f"{args.config_name}.yaml"
    has_hydra_settings = any(override_key(o) == "hydra" for o in args.overrides)
    return saved.is_file() and (saved.parent / "hydra.yaml").is_file() and not has_hydra_settings


def main() -> None:
    """Console entry point: Hydra's errors before any job runs (an unparsable override, an
    unknown option or key, a run dir that cannot be made) end with one line and exit 2."""
    resolvers.register()
    if _rerunning_saved_config(sys.argv[1:]):
        sys.argv.append(HYDRA_SETTINGS)
    saved_env = {key: os.environ.get(key) for key in ("HYDRA_FULL_ERROR", TRACEBACK_ENV)}
    wants_traceback = os.environ.get(TRACEBACK_ENV, saved_env["HYDRA_FULL_ERROR"]) == "1"
    os.environ[TRACEBACK_ENV] = "1" if wants_traceback else "0"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises instead of printing its own block
    try:
        run()
    except Exception as err:
        if wants_traceback:
            raise
        print(f"error: {describe_hydra_error(err)}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def exit_without_teardown(code: int | str | None) -> NoReturn:
    """``sys.exit(code)`` without the interpreter's teardown of its modules.

    After Lightning's imports (~4,300 modules) Python spends ~2 s at exit freeing them one by one,
    a fifth of a one-epoch run, for nothing outside this process. This does what
    ``Py_FinalizeEx`` does first, in its order (join non-daemon threads and run threading's exit
    hooks, e.g. joblib's executor shutdown; run the atexit handlers: logging's flush, W&B's
    teardown, multiprocessing's clean-up; flush the standard streams), then ends the process.
    """
    threading._shutdown()  # as Py_FinalizeEx does; neither step has a public equivalent
    atexit._run_exitfuncs()
    if isinstance(code, str):  # sys.exit("message"): printed, status 1
        print(code, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)


def cli() -> NoReturn:
    """The console entry point (``python -m cnn_ablations.train``, ``cnn-train``): ``main``,
    then :func:`exit_without_teardown`. (``main`` alone is for calls from Python.)"""
    try:
        main()
    except SystemExit as exit_:
        exit_without_teardown(exit_.code)
    exit_without_teardown(0)


if __name__ == "__main__":
    cli()
