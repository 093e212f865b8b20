"""Per-condition learning-rate selection on the validation split, a stage of
``hydra/sweeper=adaptive_seeds``: ``lr_selection.enabled=true``.

One learning rate for every variant favours those it suits: at Adam's 1e-3 a sigmoid LeNet-5
learns slowly where a ReLU one converges, and a fixed budget then reads "learns slower" as "ends
worse". With selection on, the sweeper first runs, for each condition (its swept overrides
without the seed), one trial job per factor in ``lr_selection.factors``: the condition at the
selection's own seed for ``lr_selection.epochs`` epochs with ``lr_selection.trial=<factor>``,
which makes the job a trial (:func:`as_trial`: ``optimizer.lr`` times the factor, no logger,
callbacks, checkpoints or test). Each trial is a job with its results.json, in
``<sweep>/lr_selection/<condition>,lr_factor=<factor>/``. The sweeper keeps the rate with the
best validation accuracy in ``<sweep>/lr_selection/<condition>.json`` and gives every job of the
condition ``optimizer.lr=<that rate> lr_selection.enabled=false`` (the job chooses nothing, and
re-runs from its saved config at that rate); each job's results.json records the choice. The
test split plays no part.
"""

import json
import logging
import os
import re
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict

from cnn_ablations.errors import ConfigError, check_number
from cnn_ablations.record import RunRecord

log = logging.getLogger(__name__)
CHOICES_DIR = "lr_selection"  # under the sweep dir: the trial jobs and each condition's choice
STAGE = "hydra/sweeper=adaptive_seeds"  # the sweeper that runs the trials


def trial_jobs(condition: list[str], name: str, selection: DictConfig) -> list:
    """The override lists of one condition's trial jobs (``condition``: its overrides, any
    seed among them; ``name``: its label, e.g. ``variant=tanh``): the condition at the
    selection's seed, for ``lr_selection.epochs`` (null: its own ``trainer.max_epochs``)."""
    kept = [o for o in condition if o.split("=", 1)[0] != "seed"]
    epochs = [] if selection.epochs is None else [f"trainer.max_epochs={selection.epochs}"]
    # Hydra's quoted values: k backslashes before a quote are written 2k+1, others as they are
    quoted = re.sub(r"(\\*)'", lambda m: 2 * m.group(1) + "\\'", f"{CHOICES_DIR}/{name}")
    return [
        [
            *kept,
            f"seed={selection.seed}",
            *epochs,
            f"lr_selection.trial={factor}",
            f"hydra.sweep.subdir='{quoted},lr_factor={factor}'",
        ]
        for factor in selection.factors
    ]


def as_trial(cfg: DictConfig) -> None:
    """Make ``cfg`` (``lr_selection.trial=<factor>``) its trial: ``optimizer.lr`` times the
    factor, trained without loggers, callbacks, checkpoints, progress bar or test."""
    check_number("lr_selection.trial", cfg.lr_selection.trial, above=0)
    with open_dict(cfg):
        cfg.optimizer.lr = float(cfg.optimizer.lr) * float(cfg.lr_selection.trial)
        cfg.trainer.enable_checkpointing = False
        cfg.trainer.enable_progress_bar = False
        cfg.trainer.enable_model_summary = False
        cfg.logger, cfg.callbacks = {}, {}
        cfg.test, cfg.ckpt_path = False, None


def choice_file(sweep_dir: Path, name: str) -> Path:
    return Path(sweep_dir) / CHOICES_DIR / f"{name}.json"


def choose(sweep_dir: Path, name: str, selection: DictConfig) -> dict | None:
    """The condition's rate: the one of its ok trial jobs with the best val/acc_best (the first
    on a tie, in the order of the factors), written to its choice file (kept if it exists),
    with the rates whose trial failed; None (no file) when every trial failed."""
    path = choice_file(sweep_dir, name)
    if path.is_file():
        return json.loads(path.read_text())
    trials, failed, epochs = [], [], None
    for factor in selection.factors:
        record = RunRecord.load(path.parent / f"{name},lr_factor={factor}")
        if record is None or record.status != "ok" or record.metrics is None:
            failed.append(factor)
            continue
        epochs = record.config["trainer"]["max_epochs"]
        trial = {"lr": record.config["optimizer"]["lr"]}
        trials.append(trial | {"val/acc_best": 100 * record.metrics.val_acc_best})
    if failed:
        log.warning(
            "lr_selection: %s: the trials at %s x optimizer.lr failed (their results.json under "
            "%s say why)%s",
            name,
            failed,
            path.parent,
            "" if trials else "; no rate is chosen, and its jobs fail",
        )
    if not trials:
        return None
    best = max(trials, key=lambda trial: trial["val/acc_best"])
    choice = {"lr": best["lr"], "trials": trials, "seed": selection.seed, "epochs": epochs}
    choice["failed_factors"] = failed
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(choice, indent=2) + "\n")
    os.replace(tmp, path)
    return choice


def chosen(cfg: DictConfig, condition: str) -> dict | None:
    """The learning-rate choice a job trains at, for its record: in a sweep whose sweeper chose
    one, its condition's (handed to it as ``optimizer.lr`` with ``lr_selection.enabled=false``);
    None elsewhere. ``lr_selection.enabled=true`` reaching a job means no sweeper ran its trials
    (a single run): refused."""
    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    if cfg.lr_selection.enabled and multirun:  # handed no rate: every trial failed
        raise ConfigError(
            f"lr_selection: no learning rate was chosen for {condition or 'all'}: every trial "
            f"failed (their results.json under {Path(hydra_cfg.sweep.dir) / CHOICES_DIR} say why)"
        )
    if cfg.lr_selection.enabled:
        raise ConfigError(
            f"lr_selection.enabled=true chooses optimizer.lr per condition of a sweep, in a stage "
            f"of {STAGE}: sweep with it (-m {STAGE} ...), or drop lr_selection.enabled"
        )
    if not multirun:
        return None
    path = choice_file(Path(hydra_cfg.sweep.dir), condition or "all")
    if not path.is_file():
        return None
    choice = json.loads(path.read_text())
    if float(cfg.optimizer.lr) != choice["lr"]:
        raise ConfigError(
            f"optimizer.lr={cfg.optimizer.lr} is not the rate chosen for {condition} "
            f"({choice['lr']}, {path}); give optimizer.lr={choice['lr']} or rerun the sweep"
        )
    return choice
