"""The LightningModule: trains any classifier network from ``models/``."""

from collections.abc import Callable

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MaxMetric
from torchmetrics.classification import MulticlassAccuracy

from cnn_ablations.errors import JobFailed
from cnn_ablations.models.layers import count_trainable_parameters

# configs saved before 2026-12-06 name it here (scheduler=lecun1998's _target_): re-runs find it
from cnn_ablations.schedules import piecewise_constant_lr  # noqa: F401


class NonFiniteLossError(JobFailed):
    """Training produced a NaN/inf loss; the job stops and is recorded as failed."""


class Classifier(pl.LightningModule):
    """Trains ``net`` with its own ``loss(scores, target)`` if it has one, else cross-entropy.

    Logs ``train/loss``, ``train/acc`` (per epoch), ``val/loss``, ``val/acc``, ``val/acc_best``,
    ``test/loss`` and ``test/acc``, accumulated on the device (no per-step host sync).
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)

    def loss(self, scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        net_loss = getattr(self.net, "loss", None)
        return net_loss(scores, target) if net_loss else F.cross_entropy(scores, target)

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
        if not self.trainer.sanity_checking:
            self.val_acc_best(self.val_acc.compute())
            self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True, sync_dist=True)

    def test_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch, "test", self.test_acc)

    def _eval_step(self, batch, stage: str, accuracy: MulticlassAccuracy) -> None:
        x, y = batch
        scores = self(x)
        accuracy.update(scores, y)  # logged per epoch: no batch value needed
        self.log(f"{stage}/loss", self.loss(scores, y), batch_size=len(y), sync_dist=True)
        self.log(f"{stage}/acc", accuracy, prog_bar=True, batch_size=len(y))

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
        }
