"""Train and test one configuration: ``python -m cnn_ablations.train [overrides]`` (or ``-m``).

A job is one pass: compose (Hydra) -> validate -> build (the core's ``build``, through
``runner.prepare``) -> fit -> test -> ``results.json``, inside
:func:`cnn_ablations.job.task_wrapper`, which records the outcome. :func:`main` turns outcomes
into one stderr line and an exit code: 0 ok, 1 failed, 2 a bad setting or input file, and for an
interruption 128 + the signal (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP). A multirun goes on past
failed jobs and exits 1 at the end if any failed.
"""

import argparse
import logging
import multiprocessing
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import hydra
import rich
import rich.syntax
import rich.tree
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from cnn_ablations import CONF_DIR, CONFIG_NAME, resolvers
from cnn_ablations.errors import EXIT_CONFIG
from cnn_ablations.job import Attempt, task_wrapper
from cnn_ablations.lr_select import as_trial, chosen
from cnn_ablations.outcome import RunEnded, describe_hydra_error, exit_code
from cnn_ablations.overrides import RESUME, override_key, value_of, with_saved
from cnn_ablations.record import LrSelection, Metrics
from cnn_ablations.runner import compute_facts, fit_and_test, prepare
from cnn_ablations.signals import Stopped, interrupt_name, received, stop_on_signals
from cnn_ablations.sweepdir import saved_overrides
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


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=CONFIG_NAME)
@task_wrapper
def run(cfg: DictConfig, attempt: Attempt) -> Metrics:
    """One job: validate, build, fit and test; returns the final metrics."""
    selection = cfg.get("lr_selection") or {}  # configs saved before it existed have none
    trial = selection.get("trial") is not None  # a trial job of the sweep's lr_selection stage
    if trial:
        as_trial(cfg)
    validate_config(cfg)
    choice = chosen(cfg, attempt.identity.condition) if selection and not trial else None
    if choice is not None:
        attempt.record.lr_selection = LrSelection.model_validate(choice)
    attempt.settle_seed()
    if attempt.identity.shares_console:  # a sweep's console: the job's own log keeps it
        log.info("config:\n%s", OmegaConf.to_yaml(cfg, resolve=True))
    else:
        print_config_tree(cfg)
    prepared = prepare(cfg, attempt.identity, attempt.output_dir)
    attempt.record.wandb, attempt.record.metrics_csv = prepared.wandb, prepared.metrics_csv
    attempt.record.compute = compute_facts(cfg, prepared.parts.trainer, attempt.identity.multirun)
    attempt.write("running")
    identity = attempt.identity
    facts = fit_and_test(cfg, prepared, identity.overrides, verbose=not identity.shares_console)
    metrics = Metrics.model_validate(facts)
    log.info(
        "done: test/acc=%.4f val/acc_best=%.4f epochs=%s in %s",
        metrics.test_acc if metrics.test_acc is not None else float("nan"),
        metrics.val_acc_best if metrics.val_acc_best is not None else float("nan"),
        metrics.epochs,
        attempt.output_dir,
    )
    return metrics


def command_line(argv: list[str]) -> list[str]:
    """``argv`` as Hydra is to run it: a job's saved config re-run gets this project's Hydra
    settings, and ``resume=<run dir>`` the overrides that run was started with (those ``argv``
    sets itself stay; the job refuses any that differ)."""
    flags = argparse.ArgumentParser(add_help=False)
    flags.add_argument("--config-dir", "-cd")
    flags.add_argument("--config-name", "-cn")
    flags.add_argument("--multirun", "-m", action="store_true")
    args, rest = flags.parse_known_args(argv)
    if args.config_dir and args.config_name:
        saved = Path(args.config_dir) / f"{args.config_name}.yaml"
        rerun = saved.is_file() and (saved.parent / "hydra.yaml").is_file()
        if rerun and not any(override_key(o) == "hydra" for o in rest):
            return [*argv, HYDRA_SETTINGS]
    resume = value_of(argv, RESUME)
    if resume is None or args.multirun or any(a.startswith("-") for a in argv):
        return argv
    saved = saved_overrides(Path(resume))
    return argv if saved is None else with_saved(argv, saved)


@contextmanager
def hydra_raising(argv: list[str]) -> Iterator[None]:
    """Hydra runs ``argv`` and raises its errors instead of printing them and exiting 1:
    ``HYDRA_FULL_ERROR=1`` is its only switch for that. Both are put back after."""
    saved_argv, saved_env = sys.argv, os.environ.get("HYDRA_FULL_ERROR")
    sys.argv = [sys.argv[0], *argv]
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        yield
    finally:
        sys.argv = saved_argv
        if saved_env is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = saved_env


def main() -> None:
    """The one place an outcome becomes a stderr line and an exit code (``SystemExit``): a job's
    (:class:`RunEnded`), or Hydra's errors before any job runs (an unparsable override, an
    unknown option or key, a run dir that cannot be made), one line and exit 2.
    ``HYDRA_FULL_ERROR=1`` gives the traceback of a failure instead of its line."""
    resolvers.register()
    stop_on_signals()
    wants_traceback = os.environ.get("HYDRA_FULL_ERROR") == "1"
    try:
        with hydra_raising(command_line(sys.argv[1:])):
            run()
        return
    except RunEnded as ended:
        outcome = ended
    except KeyboardInterrupt as stop:  # outside a job: a sweep's process waiting on its launcher
        print(f"interrupted by {interrupt_name(stop)}; {continuation()}", file=sys.stderr)
        sys.exit(exit_code(stop))
    except Exception as err:
        if received() is not None:  # a stopped sweep's launcher lost a worker (joblib)
            stop = Stopped(received())
            print(f"interrupted by {interrupt_name(stop)}; {continuation()}", file=sys.stderr)
            sys.exit(exit_code(stop))
        if wants_traceback:
            raise
        print(f"error: {describe_hydra_error(err)}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    cause = outcome.__cause__
    if wants_traceback and isinstance(cause, Exception) and outcome.code < 128:  # not a signal
        raise cause
    if outcome.line:
        print(outcome.line, file=sys.stderr)
    sys.exit(outcome.code)


def continuation() -> str:
    """How to continue a run or sweep interrupted outside its job: its command with
    ``resume=<its dir>`` (a joblib sweep's process knows no dir: ``resume=true``)."""
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        return f"rerun the sweep command with resume={HydraConfig.get().sweep.dir}"
    if HydraConfig.initialized():
        return f"rerun the same command with resume={HydraConfig.get().runtime.output_dir}"
    return "rerun the same command with resume=true"


def exit_fast(code: int | str | None) -> NoReturn:
    """``sys.exit(code)`` without the interpreter's teardown of its modules, when nothing else
    runs: after Lightning's imports (~4,300 modules) Python spends seconds at exit freeing them
    one by one, for nothing outside this process (docs/performance.md has the measurement).

    What the exit would write is written first: the log handlers (train.log), W&B's service,
    the standard streams. While another non-daemon thread or a child process is alive (a
    launcher's pool), or for ``sys.exit("message")``, it is the ordinary exit, which waits.
    """
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    if not isinstance(code, int | None) or multiprocessing.active_children():
        sys.exit(code)
    if any(not thread.daemon for thread in others):
        sys.exit(code)
    logging.shutdown()
    if "wandb" in sys.modules:
        sys.modules["wandb"].teardown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


def cli() -> NoReturn:
    """The console entry point (``python -m cnn_ablations.train``, ``cnn-train``): ``main``,
    then :func:`exit_fast`. (``main`` alone is for calls from Python.)"""
    try:
        main()
    except SystemExit as exit_:
        exit_fast(exit_.code)
    exit_fast(0)


if __name__ == "__main__":
    cli()
