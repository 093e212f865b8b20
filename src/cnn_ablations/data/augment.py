"""Batched augmentation of image tensors (N, C, H, W) on any device, without per-sample loops.

Randomness comes only from the optional `generator` (a torch.Generator on the CPU or on the
batch's device); without one, torch's global generator for the batch's device is used.
"""

import torch
import torch.nn.functional as F

from cnn_ablations.errors import ConfigError, check_int, check_number


def _rand_device(batch: torch.Tensor, generator: torch.Generator | None) -> torch.device:
    """Device to draw random numbers on: the generator's, else the batch's."""
    return generator.device if generator is not None else batch.device


def rgb_pca(images: torch.Tensor, chunk_size: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """PCA of the RGB values of all pixels of `images` (N, 3, H, W), AlexNet-style.

    Returns (eigenvalues (3,), eigenvectors (3, 3), one per column), float64 on the images'
    device, sorted by decreasing eigenvalue. The covariance (unbiased, over all N*H*W pixels) is
    accumulated in float64, `chunk_size` images at a time, so a 50k-image set is never copied
    whole. Values are in the images' own scale (e.g. [0, 1] floats).
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ConfigError(f"images shape {tuple(images.shape)} is not valid; use (N, 3, H, W)")
    total = torch.zeros(3, dtype=torch.float64, device=images.device)
    outer = torch.zeros(3, 3, dtype=torch.float64, device=images.device)
    count = 0
    for chunk in images.split(chunk_size):
        pixels = chunk.transpose(0, 1).reshape(3, -1).double()
        total += pixels.sum(dim=1)
        outer += pixels @ pixels.T
        count += pixels.shape[1]
    mean = total / count
    cov = (outer - count * torch.outer(mean, mean)) / (count - 1)
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)
    return eigenvalues.flip(0), eigenvectors.flip(1)


def pca_color_jitter(
    batch: torch.Tensor,
    eigenvalues: torch.Tensor,
    eigenvectors: torch.Tensor,
    sigma: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """AlexNet's "fancy PCA": add P·(α ⊙ λ) to every pixel of each image, α ~ N(0, sigma²).

    α holds 3 values per image, drawn afresh on each call. P = `eigenvectors` (columns) and
    λ = `eigenvalues` come from `rgb_pca` of the training set. No clamping, as in the paper.
    sigma == 0 returns `batch` itself.
    """
    check_number("sigma", sigma, minimum=0)
    if sigma == 0:
        return batch
    device = _rand_device(batch, generator)
    alpha = torch.randn(batch.shape[0], 3, generator=generator, device=device) * sigma
    alpha = alpha.to(batch.device, batch.dtype)
    eigenvalues = eigenvalues.to(batch.device, batch.dtype)
    eigenvectors = eigenvectors.to(batch.device, batch.dtype)
    offset = (alpha * eigenvalues) @ eigenvectors.T  # row n is P·(α_n ⊙ λ)
    return batch + offset[:, :, None, None]


def random_crop(
    batch: torch.Tensor,
    padding: int,
    generator: torch.Generator | None = None,
    fill: float = 0.0,
) -> torch.Tensor:
    """Pad each side by `padding` with `fill`, then crop back to H x W at a random offset per image.

    Same shape and dtype as `batch`; padding == 0 returns `batch` itself.
    """
    check_int("padding", padding, minimum=0)
    if padding == 0:
        return batch
    n, c, h, w = batch.shape
    padded = F.pad(batch, (padding, padding, padding, padding), value=fill)
    device = _rand_device(batch, generator)
    dy, dx = torch.randint(0, 2 * padding + 1, (2, n), generator=generator, device=device)
    rows = dy.to(batch.device)[:, None] + torch.arange(h, device=batch.device)  # (N, H)
    cols = dx.to(batch.device)[:, None] + torch.arange(w, device=batch.device)  # (N, W)
    images = torch.arange(n, device=batch.device)[:, None, None, None]
    chans = torch.arange(c, device=batch.device)[None, :, None, None]
    return padded[images, chans, rows[:, None, :, None], cols[:, None, None, :]]


def hflip(batch: torch.Tensor) -> torch.Tensor:
    """Mirror every image left-right (deterministic; hflip(hflip(x)) == x)."""
    return batch.flip(-1)


def random_hflip(
    batch: torch.Tensor, generator: torch.Generator | None = None, p: float = 0.5
) -> torch.Tensor:
    """Mirror each image left-right with probability `p`, independently per image."""
    check_number("p", p, minimum=0, maximum=1)
    device = _rand_device(batch, generator)
    flip = torch.rand(batch.shape[0], generator=generator, device=device) < p
    return torch.where(flip.to(batch.device)[:, None, None, None], hflip(batch), batch)
