"""Layers shared by the models (activations, LeNet-5's special layers)."""

from collections.abc import Sequence

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


ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "scaled_tanh": ScaledTanh, "relu": nn.ReLU}


def make_activation(name: str, key: str = "model.activation") -> nn.Module:
    """A fresh activation module by name (one of ``ACTIVATIONS``)."""
    check_choice(key, name, ACTIVATIONS)
    return ACTIVATIONS[name]()


class Subsample2d(nn.Module):
    """LeCun's trainable subsampling (S2, S4): each non-overlapping k x k window is summed,
    multiplied by one trainable coefficient per map, and one trainable bias per map is added.

    Two parameters per map. The activation is not included (put it after this layer).
    Default init: coefficient 1/k² (i.e. average pooling), bias 0.
    """

    def __init__(self, channels: int, kernel_size: int = 2):
        super().__init__()
        self.kernel_size = kernel_size
        self.weight = nn.Parameter(torch.full((channels,), 1.0 / kernel_size**2))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        window_sum = F.avg_pool2d(x, self.kernel_size) * self.kernel_size**2
        return window_sum * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


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
