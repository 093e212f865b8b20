"""LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998) with every ablation axis as one constructor arg.

The paper's layer table (Sec. II-B) next to this file's submodules:

    layer   paper                                    submodule  params (1998)
    input   1 @ 32x32 (28x28 digit padded by 2 px)
    C1      conv 5x5 -> 6 @ 28x28                    c1                   156
    S2      subsampling 2x2 -> 6 @ 14x14             s2                    12
    C3      conv 5x5, Table I -> 16 @ 10x10          c3                 1,516
    S4      subsampling 2x2 -> 16 @ 5x5              s4                    32
    C5      conv 5x5 -> 120 @ 1x1                    c5                48,120
    F6      full 120 -> 84                           f6                10,164
    output  Euclidean RBF 84 -> 10, fixed ±1 codes   output                 0
    total                                                              60,000

The paper's network is
``LeNet5(activation="scaled_tanh", pool="subsample", c3="lecun", head="rbf", input_size=32,
init="lecun")``; the defaults are the modern tutorial net (28x28 input with C1 padding 2, ReLU,
max pooling, full C3, linear + softmax output, PyTorch init).

Layer order. Every C layer is ``conv -> BatchNorm (if batchnorm) -> activation``; F6 is
``linear -> BatchNorm (if batchnorm) -> activation``. S2/S4 are ``pool="max"|"avg"``: 2x2 pooling,
stride 2, no activation; ``pool="subsample"``: `Subsample2d` (sum of the 2x2 window x one
coefficient + one bias per map) followed by the activation, as in the paper. With BatchNorm the
convolution/linear layer keeps its (redundant) bias, and the BatchNorm parameters are counted in
their layer (c1, c3, c5, f6). Dropout, when > 0, is applied to the flattened C5 output (before F6)
and to the F6 output (before the output layer).

Output head. ``head="softmax"``: ``Linear(84, num_classes)``, trained with cross-entropy.
``head="rbf"``: y_i = Σ_j (x_j − w_ij)² with fixed ±1 codes w (a buffer); ``forward`` returns the
scores −y, so ``argmax`` of the scores is the class at the smallest distance.
``rbf_codes="digits"``: our own 7x12 bitmaps of 0-9 (`DIGIT_BITMAPS`, needs num_classes=10);
``"random"``: seeded (seed 0, independent of the run seed) random ±1 codes, pairwise distinct,
for datasets whose classes are not digits.

RBF loss. ``rbf_loss="map"`` (default, the paper's Eq. 9): E = mean_n [ y_D + log(e^(−j) +
Σ_i e^(−y_i)) ], i.e. cross-entropy over the classes plus a "rubbish" class at fixed distance j.
While all distances are larger than j the loss is ≈ y_D (pull the output towards its own code);
the competitive term pushes a wrong class away only once it comes closer than ≈ j. The paper does
not give j. The default ``map_j=1.0`` is small next to the distance between two codes (≥ 36 for
`DIGIT_BITMAPS`), so training is mostly the paper's pull towards the correct code. On 4000 real
MNIST digits (1000 held out) j = 0.1, 1 and 10 train alike, while a large j (≥ 50) is plain
cross-entropy on −y and learnt slower (91% vs 96% held out after 6 epochs). The 1998 net trains
with plain SGD (no momentum), lr 0.01 x 0.3 after epochs 5 and 7, batch 32: ≈ 96% held out after
8 epochs; lr 0.02 saturates the units and does not learn.
``rbf_loss="ce"``: plain cross-entropy on the scores −y.

Init. ``init="default"``: PyTorch's init (the masked C3 uses the full 6-map fan-in; subsampling
starts as average pooling). ``init="lecun"``: weights and biases of every conv, linear and
subsampling layer uniform in [−2.4/Fi, 2.4/Fi], Fi = the unit's fan-in (25 x connected maps for
C3 with Table I, 4 for subsampling); BatchNorm keeps its own init. ``init="xavier"``: Xavier
(Glorot) uniform weights of every conv and linear layer, as d2l.ai's LeNet (``init_cnn``); a
sigmoid LeNet-5 with PyTorch's init stays at chance under d2l's SGD recipe.
"""

import torch
import torch.nn.functional as F
from torch import nn

from cnn_ablations.errors import (
    ConfigError,
    check_bool,
    check_choice,
    check_fraction,
    check_int,
    check_number,
)
from cnn_ablations.models.layers import (
    ACTIVATIONS,
    POOLING,
    MaskedConv2d,
    RBFOutput,
    Subsample2d,
    count_trainable_parameters,
    make_activation,
    make_pool,
)

# Table I: the S2 maps that feed each of the 16 C3 maps (C3 map -> S2 maps).
C3_TABLE = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)  # fmt: skip

# Output codes for head="rbf", rbf_codes="digits": one 7-wide x 12-high bitmap per digit,
# '#' = +1, '.' = −1, flattened row by row into 84 values.
DIGIT_BITMAPS = (
    (".......", "..###..", ".#...#.", "#.....#", "#.....#", "#.....#",
     "#.....#", "#.....#", "#.....#", ".#...#.", "..###..", "......."),  # 0
    (".......", "...#...", "..##...", ".#.#...", "...#...", "...#...",
     "...#...", "...#...", "...#...", "...#...", ".#####.", "......."),  # 1
    (".......", "..###..", ".#...#.", "#.....#", "......#", ".....#.",
     "....#..", "...#...", "..#....", ".#.....", "#######", "......."),  # 2
    (".......", "#######", ".....#.", "....#..", "...#...", "..####.",
     "......#", "......#", "......#", "#.....#", ".#####.", "......."),  # 3
    (".......", "....##.", "...#.#.", "..#..#.", ".#...#.", "#....#.",
     "#######", ".....#.", ".....#.", ".....#.", ".....#.", "......."),  # 4
    (".......", "#######", "#......", "#......", "#.####.", "##....#",
     "......#", "......#", "......#", "#.....#", ".#####.", "......."),  # 5
    (".......", "..####.", ".#.....", "#......", "#......", "#.####.",
     "##....#", "#.....#", "#.....#", "#.....#", ".#####.", "......."),  # 6
    (".......", "#######", "......#", ".....#.", ".....#.", "....#..",
     "....#..", "...#...", "...#...", "..#....", "..#....", "......."),  # 7
    (".......", ".#####.", "#.....#", "#.....#", "#.....#", ".#####.",
     "#.....#", "#.....#", "#.....#", "#.....#", ".#####.", "......."),  # 8
    (".......", ".#####.", "#.....#", "#.....#", "#.....#", "#....##",
     ".####.#", "......#", "......#", ".....#.", ".####..", "......."),  # 9
)  # fmt: skip

LAYERS = ("c1", "s2", "c3", "s4", "c5", "f6", "output")
F6_UNITS = 84


def digit_codes(num_classes: int = 10) -> torch.Tensor:
    """The ±1 RBF codes of the digits 0-9 from `DIGIT_BITMAPS`, shape (10, 84)."""
    if num_classes != 10:
        raise ConfigError(
            f"model.rbf_codes='digits' needs model.num_classes=10, got {num_classes}; "
            "use model.rbf_codes=random"
        )
    rows = ["".join(bitmap) for bitmap in DIGIT_BITMAPS]
    return torch.tensor([[1.0 if c == "#" else -1.0 for c in row] for row in rows])


def random_codes(num_classes: int, dim: int = F6_UNITS, seed: int = 0) -> torch.Tensor:
    """Pairwise distinct random ±1 codes, shape (num_classes, dim), from a fixed `seed`."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        codes = torch.randint(0, 2, (num_classes, dim), generator=generator).float() * 2 - 1
        if len(torch.unique(codes, dim=0)) == num_classes:
            return codes


def map_loss(scores: torch.Tensor, target: torch.Tensor, j: float) -> torch.Tensor:
    """Eq. 9 with y = −scores: mean_n [ y_D + log(e^(−j) + Σ_i e^(−y_i)) ]."""
    rubbish = torch.full_like(scores[:, :1], -j)
    log_partition = torch.logsumexp(torch.cat([scores, rubbish], dim=1), dim=1)
    return (-scores.gather(1, target[:, None]).squeeze(1) + log_partition).mean()


@torch.no_grad()
def lecun_init_(module: nn.Module) -> None:
    """Uniform in [−2.4/Fi, 2.4/Fi] for the weight and bias of each unit, Fi = its fan-in."""
    if isinstance(module, Subsample2d):
        fan_in = torch.full_like(module.weight, module.kernel_size**2)
    else:
        mask = getattr(module, "weight_mask", torch.ones_like(module.weight))
        fan_in = mask.flatten(1).sum(1)
    bound = (2.4 / fan_in).view(-1, *[1] * (module.weight.dim() - 1))
    module.weight.uniform_(-1, 1).mul_(bound)
    if isinstance(module, MaskedConv2d):
        module.weight.mul_(module.weight_mask)
    if module.bias is not None:
        module.bias.uniform_(-1, 1).mul_(bound.flatten())


@torch.no_grad()
def xavier_init_(module: nn.Module) -> None:
    """Xavier (Glorot) uniform weights of a conv or linear layer, as d2l.ai's ``init_cnn``."""
    if isinstance(module, Subsample2d):
        return
    nn.init.xavier_uniform_(module.weight)
    if isinstance(module, MaskedConv2d):
        module.weight.mul_(module.weight_mask)


# The named choices of the other axes (model.<key>: value -> what it selects).
C3_CONNECTIONS = {"full": None, "lecun": C3_TABLE}  # None: every S2 map feeds every C3 map
HEADS = ("softmax", "rbf")  # softmax: Linear(84, classes); rbf: fixed codes, scores = −distance
RBF_CODES = {"digits": digit_codes, "random": random_codes}
RBF_LOSSES = ("map", "ce")  # the paper's Eq. 9, or cross-entropy on the scores
INITS = {"default": None, "lecun": lecun_init_, "xavier": xavier_init_}  # None: PyTorch's


class LeNet5(nn.Module):
    """Configurable LeNet-5; see the module docstring for the layer table and every switch."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        input_size: int = 28,
        activation: str = "relu",
        pool: str = "max",
        batchnorm: bool = False,
        dropout: float = 0.0,
        head: str = "softmax",
        rbf_loss: str = "map",
        map_j: float = 1.0,
        rbf_codes: str = "digits",
        c3: str = "full",
        init: str = "default",
    ):
        super().__init__()
        check_int("model.num_classes", num_classes, minimum=2)
        check_int("model.in_channels", in_channels)
        check_choice("model.input_size", input_size, (28, 32))
        check_choice("model.activation", activation, ACTIVATIONS)
        check_choice("model.pool", pool, POOLING)
        check_bool("model.batchnorm", batchnorm)
        check_fraction("model.dropout", dropout)
        check_choice("model.head", head, HEADS)
        check_choice("model.rbf_loss", rbf_loss, RBF_LOSSES)
        check_number("model.map_j", map_j, above=0)
        check_choice("model.rbf_codes", rbf_codes, RBF_CODES)
        check_choice("model.c3", c3, C3_CONNECTIONS)
        check_choice("model.init", init, INITS)
        self.head, self.rbf_loss, self.map_j = head, rbf_loss, map_j

        def conv_block(conv: nn.Conv2d) -> nn.Sequential:
            norm = [nn.BatchNorm2d(conv.out_channels)] if batchnorm else []
            return nn.Sequential(conv, *norm, make_activation(activation))

        padding = (32 - input_size) // 2  # 28 -> 2 (modern), 32 -> 0 (paper): both 28x28 maps
        connections = C3_CONNECTIONS[c3]
        self.c1 = conv_block(nn.Conv2d(in_channels, 6, 5, padding=padding))  # 6 @ 28x28
        self.s2 = make_pool(pool, 6, activation=activation)  # 6 @ 14x14
        c3_conv = MaskedConv2d(6, connections, 5) if connections else nn.Conv2d(6, 16, 5)
        self.c3 = conv_block(c3_conv)  # 16 @ 10x10
        self.s4 = make_pool(pool, 16, activation=activation)  # 16 @ 5x5
        self.c5 = conv_block(nn.Conv2d(16, 120, 5))  # 120 @ 1x1
        norm = [nn.BatchNorm1d(F6_UNITS)] if batchnorm else []
        self.f6 = nn.Sequential(nn.Linear(120, F6_UNITS), *norm, make_activation(activation))
        if head == "rbf":
            self.output = RBFOutput(RBF_CODES[rbf_codes](num_classes))
        else:
            self.output = nn.Linear(F6_UNITS, num_classes)
        self.drop = nn.Dropout(dropout)

        initialize = INITS[init]
        if initialize is not None:
            for module in self.modules():
                if isinstance(module, nn.Conv2d | nn.Linear | Subsample2d):
                    initialize(module)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores (N, num_classes); for the RBF head the negative distances."""
        x = self.s2(self.c1(x))
        x = self.s4(self.c3(x))
        x = self.c5(x).flatten(1)
        x = self.f6(self.drop(x))
        x = self.output(self.drop(x))
        return -x if self.head == "rbf" else x

    def loss(self, scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy, or for ``head="rbf", rbf_loss="map"`` the paper's MAP loss (Eq. 9)."""
        if self.head == "rbf" and self.rbf_loss == "map":
            return map_loss(scores, target, self.map_j)
        return F.cross_entropy(scores, target)

    def param_counts(self) -> dict[str, int]:
        """Trainable parameters per paper layer (c1 ... output); masked C3 weights excluded."""
        return {name: count_trainable_parameters(getattr(self, name)) for name in LAYERS}
