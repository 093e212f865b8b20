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

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from cnn_ablations.build import instantiate
from cnn_ablations.module import Classifier

log = logging.getLogger(__name__)


def _choice_file(identity: dict, output_dir: Path) -> Path:
    if not identity["multirun"]:
        return output_dir / "lr_selection.json"
    name = identity["condition"] or "all"
    return Path(HydraConfig.get().sweep.dir) / "lr_selection" / f"{name}.json"


def trial_fit(cfg: DictConfig, lr: float, overrides: list[str]) -> float:
    """Best validation accuracy (percent) of a short fit at ``lr``: no logger, no checkpoints."""
    trial = copy.deepcopy(cfg)
    trial.seed = cfg.lr_selection.seed  # the data order follows (data.seed: ${seed})
    trial.optimizer.lr = lr
    trial.trainer.max_epochs = cfg.lr_selection.epochs or cfg.trainer.max_epochs
    pl.seed_everything(trial.seed, workers=True, verbose=False)
    datamodule = instantiate(trial.data, "data", overrides)
    datamodule.setup()
    model = Classifier(
        net=instantiate(trial.model, "model", overrides),
        optimizer=instantiate(trial.optimizer, "optimizer", overrides),
        scheduler=(
            instantiate(trial.scheduler, "scheduler", overrides) if trial.get("scheduler") else None
        ),
        num_classes=datamodule.num_classes,
    )
    quiet = {"enable_checkpointing": False, "enable_progress_bar": False}
    quiet |= {"enable_model_summary": False, "logger": False, "callbacks": []}
    trainer = instantiate(trial.trainer, "trainer", overrides, **quiet)
    trainer.fit(model, datamodule=datamodule)
    return 100 * float(trainer.callback_metrics["val/acc_best"])


def select_lr(cfg: DictConfig, identity: dict, output_dir: Path) -> dict:
    """The condition's learning rate and its trials, chosen here or read from its first job."""
    path = _choice_file(identity, output_dir)
    if path.is_file():
        choice = json.loads(path.read_text())
        log.info("lr_selection: lr %g, as chosen for this condition", choice["lr"])
        return choice
    trials = []
    for factor in cfg.lr_selection.factors:
        lr = float(cfg.optimizer.lr) * float(factor)
        trials.append({"lr": lr, "val/acc_best": trial_fit(cfg, lr, identity["overrides"])})
        log.info("lr_selection: lr %g -> best val/acc %.2f%%", lr, trials[-1]["val/acc_best"])
    best = max(trials, key=lambda trial: trial["val/acc_best"])
    choice = {
        "lr": best["lr"],
        "trials": trials,
        "seed": cfg.lr_selection.seed,
        "epochs": cfg.lr_selection.epochs or cfg.trainer.max_epochs,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # parallel jobs may race: same result
    tmp.write_text(json.dumps(choice, indent=2) + "\n")
    os.replace(tmp, path)
    log.info("lr_selection: chose lr %g", choice["lr"])
    return choice
