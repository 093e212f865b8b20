"""Layers the models share, and the registries of their named choices.

``ACTIVATIONS`` and ``POOLING`` map a config value (``model.activation``, ``model.pool``) to the
module it builds; both networks and the tests read them, so a new choice is one entry here.
"""

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cnn_ablations.errors import check_choice


class ScaledTanh(nn.Module):
    """LeCun 1998 squashing function f(a) = A·tanh(S·a), A = 1.7159, S = 2/3, so f(±1) = ±1."""

    def __init__(self, amplitude: float = 1.7159, slope: float = 2.0 / 3.0):
        super().__init__()
        self.amplitude = amplitude
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.amplitude * torch.tanh(self.slope * x)


ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "sigmoid": nn.Sigmoid,  # logistic, as d2l.ai's LeNet
    "tanh": nn.Tanh,
    "scaled_tanh": ScaledTanh,  # LeCun 1998
    "relu": nn.ReLU,  # AlexNet 2012
}


def make_activation(name: str, key: str = "model.activation") -> nn.Module:
    """A fresh activation module by name (one of ``ACTIVATIONS``)."""
    check_choice(key, name, ACTIVATIONS)
    return ACTIVATIONS[name]()


class Subsample2d(nn.Module):
    """LeCun's trainable subsampling (S2, S4): the sum of each k x k window (stride ``stride``,
    zero ``padding``), multiplied by one trainable coefficient per map, plus one trainable bias
    per map.

    Two parameters per map. The activation is not included (``POOLING`` puts it after).
    Default init: coefficient 1/k² (i.e. average pooling), bias 0.
    """

    def __init__(self, channels: int, kernel_size: int = 2, stride: int | None = None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride or kernel_size, padding
        self.weight = nn.Parameter(torch.full((channels,), 1.0 / kernel_size**2))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, count_include_pad=True)
        window_sum = mean * self.kernel_size**2
        return window_sum * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


def _subsample(channels, kernel_size, stride, padding, activation) -> nn.Module:
    return nn.Sequential(
        Subsample2d(channels, kernel_size, stride, padding), make_activation(activation)
    )


# name -> (channels, kernel_size, stride, padding, activation) -> module
POOLING: dict[str, Callable[..., nn.Module]] = {
    "max": lambda channels, k, s, p, activation: nn.MaxPool2d(k, s, p),
    "avg": lambda channels, k, s, p, activation: nn.AvgPool2d(k, s, p),
    "subsample": _subsample,  # LeCun 1998: trainable, followed by the activation
}


def make_pool(
    name: str,
    channels: int,
    kernel_size: int = 2,
    stride: int = 2,
    padding: int = 0,
    activation: str = "relu",
) -> nn.Module:
    """A pooling layer by name (one of ``POOLING``) for ``channels`` maps."""
    check_choice("model.pool", name, POOLING)
    return POOLING[name](channels, kernel_size, stride, padding, activation)


class MaskedConv2d(nn.Conv2d):
    """Convolution where output map ``o`` sees only the input maps ``connections[o]``.

    ``weight_mask`` (a buffer shaped like ``weight``) is 1 for connected weights, 0 otherwise.
    Masked weights are zeroed at construction and the forward uses ``weight * weight_mask``, so
    their gradient is exactly zero and they stay zero under SGD (momentum, weight decay) and Adam.
    """

    def __init__(
        self,
        in_channels: int,
        connections: Sequence[Sequence[int]],
        kernel_size: int,
        **kwargs,
    ):
        super().__init__(in_channels, len(connections), kernel_size, **kwargs)
        mask = torch.zeros_like(self.weight)
        for out_map, in_maps in enumerate(connections):
            mask[out_map, list(in_maps)] = 1.0
        self.register_buffer("weight_mask", mask)
        with torch.no_grad():
            self.weight.mul_(mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.weight_mask, self.bias)


class RBFOutput(nn.Module):
    """Euclidean RBF units y_i = Σ_j (x_j − w_ij)² with fixed centres ``codes`` (a buffer).

    Returns the distances y (N, num_classes): smaller = more likely. No trainable parameters.
    """

    def __init__(self, codes: torch.Tensor):
        super().__init__()
        self.register_buffer("codes", codes.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.unsqueeze(1) - self.codes).pow(2).sum(-1)


def count_trainable_parameters(module: nn.Module) -> int:
    """Number of trainable weights; of a `MaskedConv2d` weight only the connected entries count."""
    total = 0
    for layer in module.modules():
        for name, param in layer.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            if isinstance(layer, MaskedConv2d) and name == "weight":
                total += int(layer.weight_mask.sum())
            else:
                total += param.numel()
    return total
