"""Data: the bundled split, the index-slicing loader and per-batch transforms."""

import functools

import pytest
import pytorch_lightning as pl
import torch

from cnn_ablations.data import ImageDataModule
from cnn_ablations.data.datasets import DATASETS, load_dataset
from cnn_ablations.data.loader import EpochSampler, TensorBatchLoader
from cnn_ablations.errors import ConfigError
from cnn_ablations.models.lenet5 import LeNet5
from cnn_ablations.module import Classifier


def test_mnist5k_split_is_stratified_disjoint_and_fixed():
    a = load_dataset("mnist5k", "data")
    torch.manual_seed(123)  # a loader called afresh, under another global seed, splits alike
    b = DATASETS["mnist5k"]("data")
    assert (len(a.train), len(a.val), len(a.test)) == (4000, 500, 500)
    assert torch.equal(a.test.images, b.test.images) and torch.equal(a.train.labels, b.train.labels)
    for split, per_class in ((a.train, 400), (a.val, 50), (a.test, 50)):
        assert torch.bincount(split.labels).tolist() == [per_class] * 10
        assert split.images.dtype == torch.uint8 and split.images.shape[1:] == (1, 28, 28)
    flat = lambda s: {bytes(x.numpy()) for x in s.images}  # noqa: E731
    assert not flat(a.train) & flat(a.test) and not flat(a.val) & flat(a.test)
    assert len(set(a.train.labels[:50].tolist())) > 5  # shuffled, not sorted by class


def _epoch(loader: TensorBatchLoader, epoch: int) -> torch.Tensor:
    loader.sampler.set_epoch(epoch)
    return torch.cat([x for x, _ in loader])


def test_loader_visits_every_sample_once_in_a_new_order_each_epoch():
    images = torch.arange(103)
    make = lambda: TensorBatchLoader(images, images, 10, EpochSampler(103, True, seed=7))  # noqa: E731
    loader = make()
    first, second = _epoch(loader, 0), _epoch(loader, 1)
    assert sorted(first.tolist()) == list(range(103)) == sorted(second.tolist())
    assert not torch.equal(first, second)
    assert torch.equal(first, _epoch(make(), 0))  # reproducible for (seed, epoch)
    assert len(loader) == 11 and [len(x) for x, _ in loader][-1] == 3


def test_loader_drop_last_drops_the_partial_batch():
    images = torch.arange(103)
    loader = TensorBatchLoader(images, images, 10, EpochSampler(103, True), drop_last=True)
    assert len(loader) == 10 and all(len(x) == 10 for x, _ in loader)


@pytest.mark.parametrize("size", [100, 103])
def test_ddp_shards_partition_the_data(size):
    world = 4
    shards = [EpochSampler(size, True, seed=3, rank=r, world_size=world) for r in range(world)]
    for s in shards:
        s.set_epoch(5)
    parts = [s.indices() for s in shards]
    assert len({len(p) for p in parts}) == 1  # equal shares, as DistributedSampler
    union = torch.cat(parts)
    assert set(union.tolist()) == set(range(size))
    assert len(union) - size == (-size) % world  # only the wrap-around padding repeats


def test_training_batches_are_padded_and_normalised():
    dm = ImageDataModule(normalization="lecun", pad_to=32)
    dm.setup()
    x, y = next(iter(dm.train_dataloader()))
    out, labels = dm.on_after_batch_transfer((x, y), 0)
    assert out.shape == (64, 1, 32, 32) and out.dtype == torch.float32
    assert out[:, :, :2].eq(-0.1).all()  # padding is background
    assert out.min() >= -0.1 - 1e-6 and out.max() <= 1.175 + 1e-6
    standard = ImageDataModule()
    standard.setup()
    full = standard.normalize(standard.splits.train.images.float() / 255)
    assert abs(full.mean()) < 1e-3 and abs(full.std() - 1) < 1e-3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": -1}, "data.batch_size=-1 is not valid"),
        ({"normalization": "minmax"}, "data.normalization='minmax' is not valid"),
        ({"augment": {"pca_sigma": -0.1}}, "data.augment.pca_sigma=-0.1 is not valid"),
        ({"augment": {"crop_padding": 1.5}}, "data.augment.crop_padding=1.5 is not valid"),
        ({"drop_last": "yes"}, "data.drop_last=.yes. is not valid"),
    ],
)
def test_bad_data_settings_fail_with_one_line(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ImageDataModule(**kwargs)


def test_a_sweep_loads_each_dataset_once_and_never_writes_into_it(tmp_path):
    """Jobs in one process share the loaded tensors: training leaves them as loaded."""
    splits = load_dataset("mnist5k", "data")
    assert load_dataset("mnist5k", "data") is splits
    before = splits.train.images.clone()
    data = ImageDataModule("mnist5k", augment={"crop_padding": 2, "hflip": True})
    data.setup()
    assert data.splits is splits
    # a real fit: batches are cropped, flipped and normalised in place on their way in
    model = Classifier(net=LeNet5(), optimizer=functools.partial(torch.optim.SGD, lr=0.1))
    quiet = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False}
    trainer = pl.Trainer(
        max_epochs=1, limit_val_batches=1, enable_model_summary=False, default_root_dir=tmp_path,
        **quiet,
    )  # fmt: skip
    trainer.fit(model, datamodule=data)
    assert trainer.global_step == len(data.train_dataloader())
    assert torch.equal(splits.train.images, before)
