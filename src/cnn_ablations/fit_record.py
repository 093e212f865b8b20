"""The harness's callbacks on every job's fit (``runner.prepare`` adds them): the facts
results.json records, an exact resume, and a clean end of a DDP rank."""

import functools
import math
import time

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping


class FitFacts(pl.Callback):
    """Logs the trainable parameter count ``model/params`` when a fit starts, tracks the 1-based
    epoch of the best ``val/acc_best`` (kept in checkpoints), and when the fit ends puts its facts
    into ``trainer.callback_metrics``: ``fit/epochs``, ``fit/best_epoch``, ``fit/sec_per_epoch``
    and ``fit/early_stopped``. Into callback_metrics, not attributes: under ddp_spawn the fit
    runs in worker processes and Lightning carries only callback_metrics back to the main one."""

    def __init__(self):
        self.best_epoch, self.best = 0, -math.inf
        self.started: tuple[float, int] | None = None  # (clock, epoch) when this fit began

    def state_dict(self) -> dict:
        return {"best_epoch": self.best_epoch, "best": self.best}

    def load_state_dict(self, state_dict: dict) -> None:
        self.best_epoch, self.best = state_dict["best_epoch"], state_dict["best"]

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        if "best_epoch" in checkpoint:  # saved before FitFacts kept it: the module's then
            best = checkpoint["state_dict"].get("val_acc_best.max_value")
            self.best_epoch = checkpoint["best_epoch"]
            self.best = -math.inf if best is None else float(best)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.started = (time.perf_counter(), trainer.current_epoch)
        if trainer.global_step > 0:  # resumed: logged by the run that started it
            return
        for logger in trainer.loggers:
            logger.log_metrics({"model/params": pl_module.num_params}, step=0)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        best = trainer.callback_metrics.get("val/acc_best")
        if trainer.sanity_checking or best is None:
            return
        if float(best) > self.best:  # strictly better, as ModelCheckpoint keeps
            self.best_epoch, self.best = trainer.current_epoch + 1, float(best)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        started_at, first_epoch = self.started or (time.perf_counter(), trainer.current_epoch)
        epochs_this_fit = trainer.current_epoch - first_epoch
        seconds = time.perf_counter() - started_at
        stopped = any(
            isinstance(c, EarlyStopping) and c.stopped_epoch > 0 for c in trainer.callbacks
        )
        facts = {
            "fit/epochs": trainer.current_epoch,
            "fit/best_epoch": self.best_epoch,
            "fit/sec_per_epoch": seconds / epochs_this_fit if epochs_this_fit else math.nan,
            "fit/early_stopped": float(stopped),
        }
        trainer.callback_metrics.update(
            {key: torch.tensor(float(value)) for key, value in facts.items()}
        )


class ExactResume(pl.Callback):
    """Saves torch's RNG states in each checkpoint and restores them with it (dropout and
    augmentation draw only from torch): a run resumed from a checkpoint draws the same numbers
    as one that never stopped. Lightning restores model, optimizer and loops, not RNGs."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint["rng_states"] = {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        states = checkpoint.get("rng_states")
        if states is None:
            return
        torch.set_rng_state(states["torch"])
        if states["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(states["cuda"])


class EndProcessGroup(pl.Callback):
    """Ends this rank's process group before the interpreter does: left to the C++ destructors
    at exit, a gloo group (trainer=ddp_cpu) aborted a rank once here ("terminate called without
    an active exception"), failing a finished run. Lightning does the same for NCCL only."""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if torch.distributed.is_initialized():
            _destroy_process_group_at_exit()


@functools.cache
def _destroy_process_group_at_exit() -> None:
    import atexit

    def destroy() -> None:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()

    atexit.register(destroy)


def harness_callbacks() -> list[pl.Callback]:
    """The callbacks a job's fit carries besides its config's."""
    return [FitFacts(), ExactResume(), EndProcessGroup()]
