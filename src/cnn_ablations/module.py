"""The training loop: one LightningModule that trains any classifier network from `models/`."""

import atexit
import functools
import math
import os
import time
from collections.abc import Callable, Sequence

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.callbacks import EarlyStopping
from torch import nn
from torchmetrics import MaxMetric
from torchmetrics.classification import MulticlassAccuracy

from cnn_ablations.errors import JobFailed
from cnn_ablations.models.layers import count_trainable_parameters

NVML_CUDA_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"


@functools.cache
def _destroy_process_group_at_exit() -> None:
    """End this rank's process group before the interpreter does: left to the C++ destructors
    at exit, a gloo group (trainer=ddp_cpu) aborted a rank once here ("terminate called without
    an active exception"), failing a finished run. Lightning does the same for NCCL only."""

    def destroy() -> None:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()

    atexit.register(destroy)


class NonFiniteLossError(JobFailed):
    """Training produced a NaN/inf loss; the job stops and is recorded as failed."""


class FastCpuFit(pl.Callback):
    """Two process-wide settings that cost time on every CPU step (docs/performance.md), changed
    for a fit and put back when it ends, however it ends:

    1. ``trainer.deterministic=true`` also makes torch fill every new tensor with NaN, a
       debugging aid for ops that read uninitialised memory (none here): ~3% of a LeNet-5 step.
       Same seed, same numbers still holds (tests/test_robustness.py checks it).
    2. Lightning sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` at import (so that forked workers can
       still use CUDA); then ``torch.cuda.is_available()`` asks NVML afresh on every call, and
       Adam calls it on every step: +0.7 ms per step without a usable GPU. A CPU fit forks no
       CUDA workers, so it is unset for one.
    """

    def __init__(self):
        self.saved: tuple[bool, str | None] | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        fill = torch.utils.deterministic.fill_uninitialized_memory
        self.saved = (fill, os.environ.get(NVML_CUDA_CHECK))
        torch.utils.deterministic.fill_uninitialized_memory = False
        if pl_module.device.type == "cpu":
            os.environ.pop(NVML_CUDA_CHECK, None)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.restore()

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self.restore()

    def restore(self) -> None:
        if self.saved is None:
            return
        torch.utils.deterministic.fill_uninitialized_memory, nvml = self.saved
        if nvml is not None:
            os.environ[NVML_CUDA_CHECK] = nvml
        self.saved = None


class Classifier(pl.LightningModule):
    """Trains ``net`` with its own ``loss(scores, target)`` if it has one, else cross-entropy.

    Logs ``train/loss``, ``train/acc`` (per epoch), ``val/loss``, ``val/acc``, ``val/acc_best``,
    ``test/loss``, ``test/acc`` (accumulated on the device; no per-step host sync) and the
    trainable parameter count ``model/params``. When a fit ends its facts join
    ``trainer.callback_metrics``: ``fit/epochs``, ``fit/best_epoch``, ``fit/sec_per_epoch`` and
    ``fit/early_stopped``.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        num_classes: int = 10,
        compile_net: bool = False,
        channels_last: bool = False,
    ):
        super().__init__()
        self.num_params = count_trainable_parameters(net)
        self.channels_last = channels_last
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.net = torch.compile(net) if compile_net else net
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # saved in checkpoints: a resumed run keeps its best
        # this epoch's [sum of loss x batch size, correct predictions] on the device, and samples
        self._train_sums: torch.Tensor | None = None
        self._train_samples = 0
        self.best_epoch = 0  # 1-based epoch of the best val/acc so far (kept in checkpoints)
        self._fit_started: tuple[float, int] | None = None  # (clock, epoch) when this fit began

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)

    def loss(self, scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        net_loss = getattr(self.net, "loss", None)
        return net_loss(scores, target) if net_loss else F.cross_entropy(scores, target)

    def setup(self, stage: str) -> None:
        if torch.distributed.is_initialized():
            _destroy_process_group_at_exit()

    def configure_callbacks(self) -> list[pl.Callback]:
        return [FastCpuFit()]

    def on_train_start(self) -> None:
        self._fit_started = (time.perf_counter(), self.current_epoch)
        if self.global_step > 0:  # resumed: logged by the run that started it
            return
        for logger in self.loggers:
            logger.log_metrics({"model/params": self.num_params}, step=0)

    def on_train_epoch_start(self) -> None:
        self._train_sums, self._train_samples = None, 0

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        scores = self(x)
        loss = self.loss(scores, y)
        check = loss.device.type == "cpu" or batch_idx % self.trainer.log_every_n_steps == 0
        if check and not torch.isfinite(loss):
            # every step on the CPU (free); every log_every_n_steps on GPU (a check is a sync)
            raise NonFiniteLossError(
                f"non-finite loss at step {self.global_step}",
                "lower optimizer.lr or change the model (e.g. model.activation, "
                "model.batchnorm=true)",
            )
        # Per step only accumulate on the device; train/loss and train/acc are logged once per
        # epoch. By hand, not with torchmetrics: its update() costs 0.1-0.3 ms per step on the
        # CPU (~3% of a LeNet-5 step), and a `self.log` per step ~1 ms (docs/performance.md).
        if self._train_sums is None:
            self._train_sums = torch.zeros(2, device=loss.device)
        self._train_sums[0].add_(loss.detach() * len(y))
        self._train_sums[1].add_((scores.detach().argmax(1) == y).sum())
        self._train_samples += len(y)
        return loss

    def on_train_epoch_end(self) -> None:
        # batch-size-weighted mean loss and accuracy over the epoch, summed over all ranks
        if not self._train_samples:
            return
        samples = torch.tensor(float(self._train_samples), device=self._train_sums.device)
        sums = self.trainer.strategy.reduce(
            torch.cat([self._train_sums, samples[None]]), reduce_op="sum"
        )
        self.log("train/loss", sums[0] / sums[2], prog_bar=True)
        self.log("train/acc", sums[1] / sums[2])

    def validation_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch, "val", self.val_acc)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        accuracy = self.val_acc.compute()
        if accuracy > self.val_acc_best.max_value:  # strictly better, as ModelCheckpoint keeps
            self.best_epoch = self.current_epoch + 1
        self.val_acc_best(accuracy)
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True, sync_dist=True)

    def on_train_end(self) -> None:
        # Into callback_metrics, not attributes: under ddp_spawn the fit runs in worker processes
        # and Lightning carries only callback_metrics back to the main one (its launcher updates
        # the same dict), so the main process's trainer.current_epoch would read 0 there.
        started_at, first_epoch = self._fit_started or (time.perf_counter(), self.current_epoch)
        epochs_this_fit = self.current_epoch - first_epoch
        seconds = time.perf_counter() - started_at
        stopped = any(
            isinstance(c, EarlyStopping) and c.stopped_epoch > 0 for c in self.trainer.callbacks
        )
        facts = {
            "fit/epochs": self.current_epoch,
            "fit/best_epoch": self.best_epoch,
            "fit/sec_per_epoch": seconds / epochs_this_fit if epochs_this_fit else math.nan,
            "fit/early_stopped": float(stopped),
        }
        self.trainer.callback_metrics.update(
            {key: torch.tensor(float(value)) for key, value in facts.items()}
        )

    def test_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch, "test", self.test_acc)

    def _eval_step(self, batch, stage: str, accuracy: MulticlassAccuracy) -> None:
        x, y = batch
        scores = self(x)
        accuracy.update(scores, y)  # logged per epoch: no batch value needed
        self.log(f"{stage}/loss", self.loss(scores, y), batch_size=len(y), sync_dist=True)
        self.log(f"{stage}/acc", accuracy, prog_bar=True, batch_size=len(y))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # torch's RNG states (dropout and augmentation draw only from torch): a run resumed from
        # this checkpoint draws the same numbers as one that never stopped. Lightning restores
        # model, optimizer and loops, not RNGs.
        checkpoint["rng_states"] = {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }
        checkpoint["best_epoch"] = self.best_epoch

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.best_epoch = checkpoint.get("best_epoch", 0)
        states = checkpoint.get("rng_states")
        if states is None:
            return
        torch.set_rng_state(states["torch"])
        if states["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(states["cuda"])

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
        }


def piecewise_constant_lr(
    optimizer: torch.optim.Optimizer, milestones: Sequence[int], factors: Sequence[float]
) -> torch.optim.lr_scheduler.LambdaLR:
    """lr = base_lr * factors[k] from epoch milestones[k-1] on (factors[0] before the first).

    torch's MultiStepLR multiplies by one constant gamma; LeCun's schedule needs several.
    """
    if len(factors) != len(milestones) + 1:
        raise ValueError("piecewise_constant_lr needs one more factor than milestones")

    def factor(epoch: int) -> float:
        return factors[sum(epoch >= m for m in milestones)]

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
