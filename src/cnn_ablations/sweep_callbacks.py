"""The Hydra callbacks of a sweep (``conf/hydra/default.yaml``): the data check before its
first job, and the summary and report after its last.
"""

import json
import logging
import os
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from cnn_ablations import CONF_DIR, CONFIG_NAME, resolvers
from cnn_ablations.errors import EXIT_CONFIG, EXIT_FAILED, ConfigError, check_wandb_name
from cnn_ablations.outcome import RunEnded
from cnn_ablations.overrides import repeated_level
from cnn_ablations.signals import wait_for_records
from cnn_ablations.sweepdir import load_sweep

log = logging.getLogger(__name__)
SUMMARY_FILE = "sweep_summary.json"


def sweep_dataset(sweep: str) -> str:
    """The dataset a sweep file trains on, as Hydra composes it (``make sweep`` installs
    Fashion-MNIST first when it is the one)."""
    from hydra import compose, initialize_config_dir

    resolvers.register()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return str(compose(CONFIG_NAME, overrides=[f"sweep={sweep}"]).data.dataset)


class DataCheck(Callback):
    """Logs the study's budget (and its ``note``) as its first line; a sweep whose dataset
    cannot be loaded stops before any job, with the loader's one line (e.g. Fashion-MNIST not
    installed and no network), never mid-sweep. The dataset stays loaded for the jobs of this
    process."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        # imported here, as the report below: every run instantiates these callbacks
        from cnn_ablations.budget import budget_of
        from cnn_ablations.data.datasets import load_dataset

        # the study's first line: the question it answers, and where to find the other one
        note = f"; {config.note}" if config.get("note") else ""
        budget = budget_of(config, config.hydra.runtime.choices)
        log.info("%s: %s%s", config.name, budget.sentence, note)

        try:
            load_dataset(config.data.dataset, config.data.root)
        except ConfigError as err:
            raise RunEnded(EXIT_CONFIG, f"error: {err}") from err


class GridCheck(Callback):
    """A grid that lists one value twice (``seed=0,0``, ``optimizer.lr=1e-3,0.001``) stops
    before any job, with one line and exit 2: its two jobs would write into one dir. So does
    ``lr_selection.enabled`` with a sweeper that does not run its trials (adaptive_seeds does)."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        selection = config.get("lr_selection") or {}
        sweeper = str(config.hydra.sweeper.get("_target_", ""))
        if selection.get("enabled") and not sweeper.endswith("AdaptiveSeedsSweeper"):
            raise RunEnded(
                EXIT_CONFIG,
                "error: lr_selection.enabled=true: the learning-rate trials are a stage of "
                "hydra/sweeper=adaptive_seeds (before its stage 1), not of this sweeper; add "
                "hydra/sweeper=adaptive_seeds, or drop lr_selection.enabled",
            )
        specs = [str(o) for o in config.hydra.overrides.task]
        specs += [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()]
        repeated = repeated_level(specs)
        if repeated is not None:
            key, value = repeated
            raise RunEnded(
                EXIT_CONFIG,
                f"error: {key} lists {value} twice (to Hydra, 1e-3 and 0.001 are one value); its "
                "two jobs would write into one dir: list each value once",
            )


class StopWaitsForRecords(Callback):
    """A sweep's process stopped by SIGTERM or SIGHUP while its jobs run in workers (joblib)
    waits until none of them is still ``running`` (``signals``), so that the launcher does not
    kill a worker while it records its job as interrupted."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        def recording() -> bool:  # the dir is read only then: reading it creates it
            try:
                jobs = load_sweep(config.hydra.sweep.dir, started=True).jobs
            except ConfigError:
                return False
            return any(job.status == "running" for job in jobs)

        wait_for_records(recording)


class WandbNameCheck(Callback):
    """A sweep that logs to W&B under a group its W&B Report could not filter on (``name``, the
    sweep dir's name or ``logger.wandb.group`` with a ``'``, ``=``, ``+``, ...) stops before
    any job, with one line naming the character, and exits 2."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        node = config.get("logger", {}).get("wandb")
        if node is None or (node.get("mode") or os.environ.get("WANDB_MODE")) == "disabled":
            return
        try:
            if node.get("group"):
                check_wandb_name("logger.wandb.group", node.group)
            else:  # the group is <name>-<sweep dir name> (job.job_identity); the name first, as
                check_wandb_name("name", config.name)  # reading the dir creates it
                check_wandb_name("hydra.sweep.dir", Path(config.hydra.sweep.dir).name)
        except ConfigError as err:
            raise RunEnded(EXIT_CONFIG, f"error: {err}") from err


class SweepSummary(Callback):
    """Writes ``sweep_summary.json``, runs the report, and ends with exit 1 if a job failed."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep = load_sweep(config.hydra.sweep.dir)
        summary = {
            "sweep_dir": str(sweep.path),
            "jobs": len(sweep.jobs),
            "failed": len(sweep.failed),
            "results": [
                {
                    "job": job.name,
                    "status": job.status,
                    "error": job.error,
                    "metrics": job.metrics.model_dump(by_alias=True, exclude_unset=True),
                }
                for job in sweep.jobs
            ],
        }
        (sweep.path / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
        for job in sweep.failed:
            log.error("FAILED %s: %s", job.name, job.error)
        if sweep.failed:
            log.error(
                "%d of %d jobs failed; see %s",
                len(sweep.failed),
                len(sweep.jobs),
                sweep.path / SUMMARY_FILE,
            )
        else:
            log.info("all %d jobs ok: %s", len(sweep.jobs), sweep.path)
        if sweep.ok:  # the console ends with the answer: its headline, effects and report.md
            # imported here: every run instantiates these callbacks, and pandas, scipy and
            # matplotlib would add ~1 s to each
            from cnn_ablations.report.document import build_report, report_console

            try:
                build_report(sweep, report_console(), brief=True)
            except Exception as err:  # the sweep's results are on disk whatever the report does
                log.error(
                    "report failed (%s: %s); run `make report ARGS=%s` after fixing it",
                    type(err).__name__,
                    err,
                    sweep.path,
                )
        if sweep.failed:
            raise RunEnded(EXIT_FAILED, None)
