"""AlexNet (Krizhevsky et al. 2012) scaled down for 32x32 RGB images.

``features`` and ``classifier`` read like the paper's layer table (Sec. 3.5, Fig. 2), as
torchvision's ``alexnet.py`` does. For the defaults (input 3x32x32, channels=(24, 64, 96, 96, 64),
fc_width=256, pool=max, overlap_pool=False):

| layer | operation                                     | output   |
|-------|-----------------------------------------------|----------|
| conv1 | 5x5 conv, pad 2 → [BN] → act → [LRN]          | 24x32x32 |
| pool1 | 2x2 stride 2 (overlap_pool: 3x3 stride 2 pad 1) | 24x16x16 |
| conv2 | 3x3 conv, pad 1 → [BN] → act → [LRN]          | 64x16x16 |
| pool2 | as pool1                                      | 64x8x8   |
| conv3 | 3x3 conv, pad 1 → [BN] → act                  | 96x8x8   |
| conv4 | 3x3 conv, pad 1 → [BN] → act                  | 96x8x8   |
| conv5 | 3x3 conv, pad 1 → [BN] → act                  | 64x8x8   |
| pool5 | as pool1                                      | 64x4x4   |
| fc6   | flatten (1024) → linear → act → dropout       | 256      |
| fc7   | linear → act → dropout                        | 256      |
| fc8   | linear (logits)                               | 10       |

[BN] is present when batchnorm=True (convs then have no bias), [LRN] when lrn=True. The pool
kind is ``model.pool`` (max in the paper). The conv widths are AlexNet's 96, 256, 384, 384, 256
divided by 4 and the FC width is 4096 / 16: 0.54M parameters, small enough for a CPU.
"""

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from cnn_ablations.errors import ConfigError, check_bool, check_choice, check_fraction, check_int
from cnn_ablations.models.layers import ACTIVATIONS, make_activation, make_pool

# AlexNet's LRN constants (paper section 3.3).
LRN_K = 2.0
LRN_SIZE = 5
LRN_ALPHA = 1e-4
LRN_BETA = 0.75


class _LRNFunction(torch.autograd.Function):
    """y = x * d^-β with d = k + α·band(x²), and its exact gradient
    dx = dy·d^-β − 2αβ·x·band(dy·x·d^(−β−1)) (the band is symmetric, so one conv serves both)."""

    @staticmethod
    def forward(ctx, x, band, alpha: float, beta: float, k: float):
        # a normalisation: its sums in float32 (or wider) even under autocast. In place where a
        # tensor is new: each fresh (N, C, H, W) tensor costs page faults on the CPU.
        dtype = torch.promote_types(x.dtype, torch.float32)
        with torch.autocast(x.device.type, enabled=False):
            xw, band = x.to(dtype), band.to(dtype)
            d = F.conv2d(xw * xw, band).mul_(alpha).add_(k)
            scale = d.sqrt().mul_(d).rsqrt_() if beta == 0.75 else d.pow(-beta)
            ctx.save_for_backward(xw, band, scale, d)
            ctx.coefficient = 2 * alpha * beta
            return (xw * scale).to(x.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        x, band, scale, d = ctx.saved_tensors
        with torch.autocast(dy.device.type, enabled=False):
            dyw = dy.to(x.dtype)
            window = F.conv2d((dyw * x).mul_(scale).div_(d), band)
            dx = torch.mul(dyw, scale).addcmul_(x, window, value=-ctx.coefficient)
        return dx.to(dy.dtype), None, None, None, None


class LocalResponseNorm(nn.Module):
    """The paper's LRN (Sec. 3.3): b_i = a_i / (k + α·Σ_j a_j²)^β over the channels
    j = max(0, i − n/2) .. min(N − 1, i + n/2).

    Not torch's ``nn.LocalResponseNorm`` (which with alpha·n computes the same values): its 3-D
    average pool over squared channels and ``pow(β)`` cost ~50 ms forward + backward on a
    (64, 24, 32, 32) batch on this CPU, more than all of AlexNet-lite's convolutions, which made
    an LRN-on epoch 2.6x an LRN-off one. Here the window sum is a banded 1x1 convolution,
    d^-0.75 is ``rsqrt(d·sqrt(d))``, and the gradient is written out: ~12 ms for the same batch
    (``make bench-sweep ARGS="--sections lrn"``). ``tests/test_alexnet_lite.py`` checks values
    and gradients against the formula and torch's layer.
    """

    def __init__(
        self,
        channels: int,
        size: int = LRN_SIZE,
        alpha: float = LRN_ALPHA,
        beta: float = LRN_BETA,
        k: float = LRN_K,
    ):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k
        i = torch.arange(channels)
        band = ((i[:, None] - i[None, :]).abs() <= size // 2).float()  # 1 where j is in i's window
        self.register_buffer("band", band[:, :, None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _LRNFunction.apply(x, self.band, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        channels = self.band.shape[0]
        return f"{channels}, size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class AlexNetLite(nn.Module):
    """AlexNet's five-conv / three-FC shape for small images; arguments are `model.<arg>` keys."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        input_size: int = 32,
        channels: tuple[int, ...] = (24, 64, 96, 96, 64),
        fc_width: int = 256,
        activation: str = "relu",
        pool: str = "max",
        lrn: bool = False,
        overlap_pool: bool = False,
        dropout: float = 0.5,
        batchnorm: bool = False,
    ):
        super().__init__()
        for key, value in (("num_classes", num_classes), ("in_channels", in_channels)):
            check_int(f"model.{key}", value)
        check_int("model.input_size", input_size, minimum=8)
        check_int("model.fc_width", fc_width)
        channels = tuple(channels) if isinstance(channels, Iterable) else (channels,)
        if len(channels) != 5:
            raise ConfigError(f"model.channels={channels!r} is not valid; give 5 positive integers")
        for c in channels:
            check_int("model.channels", c)
        for key, value in (("lrn", lrn), ("overlap_pool", overlap_pool), ("batchnorm", batchnorm)):
            check_bool(f"model.{key}", value)
        check_fraction("model.dropout", dropout)
        check_choice("model.activation", activation, ACTIVATIONS)  # before any layer is built

        def conv(c_in: int, c_out: int, kernel: int, normalise: bool = False) -> list[nn.Module]:
            """conv → [BN] → activation → [LRN]"""
            layers = [nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=not batchnorm)]
            layers += [nn.BatchNorm2d(c_out)] if batchnorm else []
            layers += [make_activation(activation)]
            return layers + ([LocalResponseNorm(c_out)] if lrn and normalise else [])

        # Overlapping: 3x3 windows, stride 2, pad 1 (ceil(s/2)); plain: 2x2, stride 2 (s/2).
        kernel, padding = (3, 1) if overlap_pool else (2, 0)

        def pooling(c: int) -> nn.Module:
            return make_pool(pool, c, kernel, 2, padding, activation)

        c1, c2, c3, c4, c5 = channels
        self.features = nn.Sequential(
            *conv(in_channels, c1, 5, normalise=True),  # conv1 (+ LRN)
            pooling(c1),  # pool1
            *conv(c1, c2, 3, normalise=True),  # conv2 (+ LRN)
            pooling(c2),  # pool2
            *conv(c2, c3, 3),  # conv3
            *conv(c3, c4, 3),  # conv4
            *conv(c4, c5, 3),  # conv5
            pooling(c5),  # pool5
        )
        size = input_size
        for _ in range(3):  # three pools, each (s + 2p - k) // 2 + 1
            size = (size + 2 * padding - kernel) // 2 + 1
        # dropout on the outputs of fc6 and fc7, as in the paper's reference (Caffe) model
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c5 * size * size, fc_width),  # fc6
            make_activation(activation),
            nn.Dropout(dropout),
            nn.Linear(fc_width, fc_width),  # fc7
            make_activation(activation),
            nn.Dropout(dropout),
            nn.Linear(fc_width, num_classes),  # fc8
        )
        # He init for ReLU, LeCun init (gain 1) for the saturating activations; zero biases.
        # With torch's default init the net stays at chance under SGD (the 2012 preset).
        gain = "relu" if activation == "relu" else "linear"
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity=gain)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes) for images (N, in_channels, input_size, input_size)."""
        return self.classifier(self.features(x))
