"""The training loop's own bookkeeping: epoch metrics and the process settings of a CPU fit."""

import os
from functools import partial

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from tests.conftest import bare_trainer

from cnn_ablations.data.loader import EpochSampler, TensorBatchLoader
from cnn_ablations.fast_cpu import NVML_CUDA_CHECK, FastCpuFit
from cnn_ablations.models.lenet5 import LeNet5
from cnn_ablations.module import Classifier


def _frozen_classifier() -> Classifier:
    """A LeNet-5 whose weights do not move (SGD, lr 0): epoch metrics can be recomputed after."""
    torch.manual_seed(0)
    return Classifier(LeNet5(), optimizer=partial(torch.optim.SGD, lr=0.0))


def _loader(n: int, batch_size: int) -> TensorBatchLoader:
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(n, 1, 28, 28, generator=generator)
    labels = torch.randint(0, 10, (n,), generator=generator)
    return TensorBatchLoader(images, labels, batch_size, EpochSampler(n, shuffle=True, seed=0))


def test_epoch_train_loss_and_accuracy_are_sample_weighted_means(tmp_path):
    # 100 samples in batches of 32: the last batch has 4, so a mean of batch means would differ
    model, loader = _frozen_classifier(), _loader(100, 32)
    trainer = bare_trainer(tmp_path, max_epochs=1, limit_val_batches=0)
    trainer.fit(model, train_dataloaders=loader)
    with torch.no_grad():
        scores = model.net.eval()(loader.images)
    expected_loss = F.cross_entropy(scores, loader.labels).item()
    expected_acc = (scores.argmax(1) == loader.labels).float().mean().item()
    logged = trainer.callback_metrics
    assert abs(logged["train/loss"].item() - expected_loss) < 1e-5
    assert abs(logged["train/acc"].item() - expected_acc) < 1e-6


class _EnvDuringFit(pl.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.seen = os.environ.get(NVML_CUDA_CHECK)


def test_cpu_fit_skips_the_per_step_nvml_probe_and_restores_it(tmp_path, monkeypatch):
    # Lightning sets the variable at import; with it, Adam asks NVML for GPUs on every step
    monkeypatch.setenv(NVML_CUDA_CHECK, "1")
    probe = _EnvDuringFit()
    trainer = bare_trainer(
        tmp_path, max_epochs=1, limit_val_batches=0, callbacks=[FastCpuFit(), probe]
    )
    trainer.fit(_frozen_classifier(), train_dataloaders=_loader(64, 32))
    assert probe.seen is None
    assert os.environ.get(NVML_CUDA_CHECK) == "1"


class _FailMidFit(_EnvDuringFit):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        super().on_train_batch_start(trainer, pl_module, batch, batch_idx)
        self.fill = torch.utils.deterministic.fill_uninitialized_memory
        raise RuntimeError("a failure mid-fit")


def test_a_failed_fit_puts_the_process_settings_back_too(tmp_path, monkeypatch):
    monkeypatch.setenv(NVML_CUDA_CHECK, "1")
    monkeypatch.setattr(torch.utils.deterministic, "fill_uninitialized_memory", True)
    probe = _FailMidFit()
    trainer = bare_trainer(
        tmp_path, max_epochs=1, limit_val_batches=0, callbacks=[FastCpuFit(), probe]
    )
    with pytest.raises(RuntimeError, match="a failure mid-fit"):
        trainer.fit(_frozen_classifier(), train_dataloaders=_loader(64, 32))
    assert (probe.seen, probe.fill) == (None, False)  # changed during the fit
    assert os.environ.get(NVML_CUDA_CHECK) == "1"
    assert torch.utils.deterministic.fill_uninitialized_memory is True
