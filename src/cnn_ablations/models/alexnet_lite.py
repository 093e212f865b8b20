"""AlexNet (Krizhevsky et al. 2012) scaled down for 32x32 RGB images.

Layer table for the defaults (input 3x32x32, channels=(24, 64, 96, 96, 64), fc_width=256,
overlap_pool=True; conf/model/alexnet_lite.yaml turns lrn and overlap_pool off, the 2012 preset on):

| layer | operation                                    | output   |
|-------|----------------------------------------------|----------|
| conv1 | 5x5 conv, pad 2 → [BN] → act → [LRN]         | 24x32x32 |
| pool1 | max 3x3 stride 2 pad 1 (or 2x2 stride 2)     | 24x16x16 |
| conv2 | 3x3 conv, pad 1 → [BN] → act → [LRN]         | 64x16x16 |
| pool2 | max pool as pool1                            | 64x8x8   |
| conv3 | 3x3 conv, pad 1 → [BN] → act                 | 96x8x8   |
| conv4 | 3x3 conv, pad 1 → [BN] → act                 | 96x8x8   |
| conv5 | 3x3 conv, pad 1 → [BN] → act                 | 64x8x8   |
| pool5 | max pool as pool1                            | 64x4x4   |
| fc6   | flatten (1024) → linear → act → dropout      | 256      |
| fc7   | linear → act → dropout                       | 256      |
| fc8   | linear (logits)                              | 10       |

[BN] is present when batchnorm=True (convs then have no bias), [LRN] when lrn=True.
The conv widths are AlexNet's 96, 256, 384, 384, 256 divided by 4 and the FC width is 4096 / 16,
small enough for CPU training: 0.54M parameters, ~5 s per epoch of mnist5k_color on 2 cores.
torch's LRN is slow on CPU (it costs more than all the convs here): lrn=True makes an epoch
about 2.6x slower.
"""

from collections.abc import Iterable

import torch
from torch import nn

from cnn_ablations.errors import ConfigError, check_choice
from cnn_ablations.models.layers import make_activation

# AlexNet's LRN constants (paper section 3.3).
LRN_K = 2.0
LRN_SIZE = 5
LRN_ALPHA = 1e-4
LRN_BETA = 0.75

KERNELS = (5, 3, 3, 3, 3)
POOL_AFTER = (0, 1, 4)  # conv1, conv2, conv5
LRN_AFTER = (0, 1)  # conv1, conv2


def alexnet_lrn(
    size: int = LRN_SIZE, alpha: float = LRN_ALPHA, beta: float = LRN_BETA, k: float = LRN_K
) -> nn.LocalResponseNorm:
    """LRN computing the paper's b_i = a_i / (k + alpha * sum_j a_j^2)^beta over n=size channels.

    torch divides its alpha by the window size, so it gets alpha * size. Its window is channels
    [i - size//2, i + (size-1)//2] with zero padding, which for odd size is the paper's window
    [max(0, i - n/2), min(N-1, i + n/2)].
    """
    return nn.LocalResponseNorm(size, alpha=alpha * size, beta=beta, k=k)


def _check_positive_int(key: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key}={value!r} is not valid; use a positive integer")


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
        lrn: bool = True,
        overlap_pool: bool = True,
        dropout: float = 0.5,
        batchnorm: bool = False,
    ):
        super().__init__()
        for key, value in (
            ("num_classes", num_classes),
            ("in_channels", in_channels),
            ("input_size", input_size),
            ("fc_width", fc_width),
        ):
            _check_positive_int(f"model.{key}", value)
        channels = tuple(channels) if isinstance(channels, Iterable) else (channels,)
        if len(channels) != 5:
            raise ConfigError(f"model.channels={channels!r} is not valid; give 5 positive integers")
        for c in channels:
            _check_positive_int("model.channels", c)
        for key, value in (("lrn", lrn), ("overlap_pool", overlap_pool), ("batchnorm", batchnorm)):
            check_choice(f"model.{key}", value, (True, False))
        is_number = isinstance(dropout, int | float) and not isinstance(dropout, bool)
        if not (is_number and 0 <= dropout < 1):
            raise ConfigError(f"model.dropout={dropout!r} is not valid; use a number in [0, 1)")
        make_activation(activation)  # validates the name before any layer is built

        # Overlapping: 3x3 stride 2, pad 1 (ceil(s/2)); plain: 2x2 stride 2 (floor(s/2)).
        pool_kernel, pool_pad = (3, 1) if overlap_pool else (2, 0)
        layers: list[nn.Module] = []
        size, c_in = input_size, in_channels
        for i, (c_out, kernel) in enumerate(zip(channels, KERNELS, strict=True)):
            layers.append(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=not batchnorm))
            if batchnorm:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(make_activation(activation))
            if lrn and i in LRN_AFTER:
                layers.append(alexnet_lrn())
            if i in POOL_AFTER:
                layers.append(nn.MaxPool2d(pool_kernel, stride=2, padding=pool_pad))
                size = (size + 2 * pool_pad - pool_kernel) // 2 + 1
            c_in = c_out
        if size < 1:
            raise ConfigError(f"model.input_size={input_size} is not valid; use at least 8")
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c_in * size * size, fc_width),
            make_activation(activation),
            nn.Dropout(dropout),
            nn.Linear(fc_width, fc_width),
            make_activation(activation),
            nn.Dropout(dropout),
            nn.Linear(fc_width, num_classes),
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
