"""Per-condition learning-rate selection on the validation split: ``lr_selection.enabled=true``.

One learning rate for every variant favours those it suits: at Adam's 1e-3 a sigmoid LeNet-5
learns slowly where a ReLU one converges, and a fixed budget then reads "learns slower" as "ends
worse". With selection on, each condition (its swept overrides without the seed) first trains one
short fit per rate in ``lr_selection.factors`` x ``optimizer.lr``, from a seed of its own, and
keeps the rate with the best validation accuracy; every seed of the condition then trains at that
rate. The test split plays no part. The first job of a condition chooses; the others read its
choice from ``<sweep dir>/lr_selection/<condition>.json``. ``results.json`` records the trials.
"""

import copy
import json
import logging
import os
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from cnn_ablations.build import build
from cnn_ablations.job import Identity

log = logging.getLogger(__name__)


def _choice_file(identity: Identity, output_dir: Path) -> Path:
    if not identity.multirun:
        return output_dir / "lr_selection.json"
    name = identity.condition or "all"
    return Path(HydraConfig.get().sweep.dir) / "lr_selection" / f"{name}.json"


def trial_fit(
    cfg: DictConfig, lr: float, epochs: int, identity: Identity, output_dir: Path
) -> float:
    """Best validation accuracy (percent) of a short fit at ``lr``, built as the job itself is
    (``build``) but with no loggers, callbacks, checkpoints or bar, from the selection's seed."""
    trial = copy.deepcopy(cfg)
    with open_dict(trial):
        trial.seed = cfg.lr_selection.seed  # the data order follows (data.seed: ${seed})
        trial.optimizer.lr = lr
        trial.trainer.max_epochs = epochs
        trial.trainer.enable_checkpointing = False
        trial.trainer.enable_progress_bar = False
        trial.trainer.enable_model_summary = False
        trial.logger, trial.callbacks = {}, {}
        trial.resume, trial.ckpt_path = False, None
    parts = build(trial, identity, output_dir)
    parts.trainer.fit(parts.model, datamodule=parts.datamodule)
    return 100 * float(parts.trainer.callback_metrics["val/acc_best"])


def select_lr(cfg: DictConfig, identity: Identity, output_dir: Path) -> dict:
    """The condition's learning rate and its trials, chosen here or read from its first job."""
    path = _choice_file(identity, output_dir)
    if path.is_file():
        choice = json.loads(path.read_text())
        log.info("lr_selection: lr %g, as chosen for this condition", choice["lr"])
        return choice
    epochs = cfg.lr_selection.epochs or cfg.trainer.max_epochs
    trials = []
    for factor in cfg.lr_selection.factors:
        lr = float(cfg.optimizer.lr) * float(factor)
        best_val = trial_fit(cfg, lr, epochs, identity, output_dir)
        trials.append({"lr": lr, "val/acc_best": best_val})
        log.info("lr_selection: lr %g -> best val/acc %.2f%%", lr, trials[-1]["val/acc_best"])
    best = max(trials, key=lambda trial: trial["val/acc_best"])
    choice = {
        "lr": best["lr"],
        "trials": trials,
        "seed": cfg.lr_selection.seed,
        "epochs": epochs,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # parallel jobs may race: same result
    tmp.write_text(json.dumps(choice, indent=2) + "\n")
    os.replace(tmp, path)
    log.info("lr_selection: chose lr %g", choice["lr"])
    return choice
