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
from torch import nn

from cnn_ablations.errors import ConfigError, check_bool, check_fraction, check_int
from cnn_ablations.models.layers import make_activation, make_pool

# AlexNet's LRN constants (paper section 3.3).
LRN_K = 2.0
LRN_SIZE = 5
LRN_ALPHA = 1e-4
LRN_BETA = 0.75


def alexnet_lrn(
    size: int = LRN_SIZE, alpha: float = LRN_ALPHA, beta: float = LRN_BETA, k: float = LRN_K
) -> nn.LocalResponseNorm:
    """LRN computing the paper's b_i = a_i / (k + alpha * sum_j a_j^2)^beta over n=size channels.

    torch divides its alpha by the window size, so it gets alpha * size. Its window is channels
    [i - size//2, i + (size-1)//2] with zero padding, which for odd size is the paper's window
    [max(0, i - n/2), min(N-1, i + n/2)].
    """
    return nn.LocalResponseNorm(size, alpha=alpha * size, beta=beta, k=k)


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
        make_activation(activation)  # validates the name before any layer is built

        def conv(c_in: int, c_out: int, kernel: int, normalise: bool = False) -> list[nn.Module]:
            """conv → [BN] → activation → [LRN]"""
            layers = [nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=not batchnorm)]
            layers += [nn.BatchNorm2d(c_out)] if batchnorm else []
            layers += [make_activation(activation)]
            return layers + ([alexnet_lrn()] if lrn and normalise else [])

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
