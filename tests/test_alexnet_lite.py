"""AlexNet-lite: LRN against the paper formula, shapes for every switch, learning colour digits."""

import itertools

import pytest
import pytorch_lightning as pl
import torch
from tests.conftest import bare_trainer
from torch import nn

from cnn_ablations.data import ImageDataModule
from cnn_ablations.errors import ConfigError
from cnn_ablations.models.alexnet_lite import (
    LRN_ALPHA,
    LRN_BETA,
    LRN_K,
    LRN_SIZE,
    AlexNetLite,
    LocalResponseNorm,
)
from cnn_ablations.models.layers import ACTIVATIONS, POOLING
from cnn_ablations.module import Classifier


def paper_lrn(a: torch.Tensor, k=2.0, n=5, alpha=1e-4, beta=0.75):
    """The SPEC formula with an explicit window sum per channel, in float64; the defaults are
    the paper's constants (Krizhevsky et al. 2012, Sec. 3.3), written here, not imported."""
    a = a.double()
    channels = a.shape[1]
    out = torch.empty_like(a)
    for i in range(channels):
        lo, hi = max(0, i - n // 2), min(channels - 1, i + n // 2)
        window = sum(a[:, j] ** 2 for j in range(lo, hi + 1))
        out[:, i] = a[:, i] / (k + alpha * window) ** beta
    return out


def test_lrn_defaults_are_the_papers_constants():
    assert (LRN_K, LRN_SIZE, LRN_ALPHA, LRN_BETA) == (2.0, 5, 1e-4, 0.75)  # AlexNet Sec. 3.3


def model_lrns(model: nn.Module) -> list[LocalResponseNorm]:
    return [m for m in model.modules() if isinstance(m, LocalResponseNorm)]


def lrn_input(channels: int, signed: bool, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(channels)
    # Scale 40 makes alpha * sum(a^2) of order 1, so a wrong alpha or window would show.
    a = 40 * torch.randn(4, channels, 5, 6, generator=g, dtype=dtype)
    return a if signed else a.abs()


@pytest.mark.parametrize("channels", [1, 3, 5, 8, 16])
@pytest.mark.parametrize("signed", [False, True])
def test_lrn_matches_paper_formula(channels, signed):
    a = lrn_input(channels, signed)
    expected = paper_lrn(a)
    lrn = LocalResponseNorm(channels)
    torch.testing.assert_close(lrn(a), expected, rtol=1e-6, atol=0)
    torch.testing.assert_close(lrn(a.float()).double(), expected, rtol=1e-5, atol=0)
    # The test can tell torch's alpha convention apart: alpha without the * n factor fails.
    wrong = nn.LocalResponseNorm(LRN_SIZE, alpha=LRN_ALPHA, beta=LRN_BETA, k=LRN_K)(a)
    assert not torch.allclose(wrong, expected, rtol=1e-3, atol=0)


def test_the_networks_lrns_are_the_paper_formula_over_their_channels():
    lrns = model_lrns(AlexNetLite(lrn=True))
    assert [lrn.band.shape[0] for lrn in lrns] == [24, 64]  # after conv1 and conv2
    for lrn in lrns:
        a = lrn_input(lrn.band.shape[0], signed=False)
        torch.testing.assert_close(lrn(a), paper_lrn(a), rtol=1e-6, atol=0)


@pytest.mark.parametrize("channels", [3, 8])
@pytest.mark.parametrize("beta", [LRN_BETA, 0.5])
def test_lrn_gradient_is_the_formulas_gradient(channels, beta):
    """The hand-written backward equals autograd through the explicit formula (float64)."""
    a = lrn_input(channels, signed=True)
    weights = torch.randn_like(a)
    ours, reference = a.clone().requires_grad_(), a.clone().requires_grad_()
    (LocalResponseNorm(channels, beta=beta)(ours) * weights).sum().backward()
    (paper_lrn(reference, beta=beta) * weights).sum().backward()
    torch.testing.assert_close(ours.grad, reference.grad, rtol=1e-9, atol=1e-12)


def test_lrn_state_dict_is_unchanged():
    """The window band is derived, not saved: checkpoints keep the keys they had."""
    assert not any("band" in key for key in AlexNetLite(lrn=True).state_dict())


def test_lrn_sits_after_activation_of_conv1_and_conv2():
    names = [type(m).__name__ for m in AlexNetLite(batchnorm=True, lrn=True).features]
    block = ["Conv2d", "BatchNorm2d", "ReLU"]
    pool = ["MaxPool2d"]
    lrn = ["LocalResponseNorm"]
    assert names == (block + lrn + pool) * 2 + block * 3 + pool


@pytest.mark.parametrize(
    "lrn,overlap_pool,batchnorm", list(itertools.product([True, False], repeat=3))
)
def test_output_shape_for_every_switch(lrn, overlap_pool, batchnorm):
    model = AlexNetLite(lrn=lrn, overlap_pool=overlap_pool, batchnorm=batchnorm)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert len(model_lrns(model)) == (2 if lrn else 0)
    pools = [m for m in model.modules() if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 3
    assert all(p.kernel_size == (3 if overlap_pool else 2) and p.stride == 2 for p in pools)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == batchnorm


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_output_shape_for_every_activation(activation):
    model = AlexNetLite(activation=activation, num_classes=7)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)


@pytest.mark.parametrize("overlap_pool", [False, True])
def test_every_pool_choice_builds_and_computes_its_own_function(overlap_pool):
    """Each ``POOLING`` entry, plain and overlapping: right shape, and outputs that differ
    between choices from the same init (tanh units: under ReLU, subsampling starts as avg)."""
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    outputs = {}
    for pool in POOLING:
        torch.manual_seed(0)
        model = AlexNetLite(pool=pool, overlap_pool=overlap_pool, activation="tanh").eval()
        outputs[pool] = model(x)
        assert outputs[pool].shape == (4, 10)
    for a in outputs:
        for b in outputs:
            if a < b:
                assert not torch.allclose(outputs[a], outputs[b]), (a, b)


@pytest.mark.parametrize("size,overlap_pool", [(28, True), (28, False), (36, True), (8, False)])
def test_other_input_sizes_and_channels(size, overlap_pool):
    model = AlexNetLite(
        in_channels=1,
        input_size=size,
        overlap_pool=overlap_pool,
        channels=(4, 8, 8, 8, 4),
        fc_width=16,
    )
    assert model(torch.randn(2, 1, size, size)).shape == (2, 10)


def test_dropout_only_in_first_two_fc_layers():
    model = AlexNetLite(dropout=0.3)
    drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert [d.p for d in drops] == [0.3, 0.3]
    assert all(isinstance(m, nn.Dropout) is False for m in model.features)
    assert isinstance(model.classifier[-1], nn.Linear)


@pytest.mark.parametrize(
    "kwargs,key",
    [
        ({"activation": "no_such_activation"}, "model.activation"),
        ({"pool": "median"}, "model.pool"),
        ({"lrn": "yes"}, "model.lrn"),
        ({"overlap_pool": "maybe"}, "model.overlap_pool"),
        ({"batchnorm": None}, "model.batchnorm"),
    ],
)
def test_unknown_choice_raises_config_error_listing_choices(kwargs, key):
    with pytest.raises(ConfigError, match=f"{key}=.*choose one of") as err:
        AlexNetLite(**kwargs)
    assert "\n" not in str(err.value)
    registry = {"model.activation": ACTIVATIONS, "model.pool": POOLING}.get(key, (False, True))
    assert str(err.value).endswith("choose one of: " + ", ".join(str(c) for c in registry))


@pytest.mark.parametrize("dropout", [-0.1, 1, 1.0, 1.5, "half"])
def test_dropout_outside_unit_interval_raises(dropout):
    with pytest.raises(ConfigError, match=r"model.dropout=.* is not valid; .*>= 0 and < 1"):
        AlexNetLite(dropout=dropout)


@pytest.mark.parametrize(
    "kwargs,key",
    [
        ({"channels": (8, 8, 8)}, "model.channels"),
        ({"channels": 8}, "model.channels"),
        ({"channels": (8, 8, 0, 8, 8)}, "model.channels"),
        ({"fc_width": 0}, "model.fc_width"),
        ({"num_classes": 2.5}, "model.num_classes"),
        ({"input_size": 7, "overlap_pool": False}, "model.input_size"),
    ],
)
def test_bad_sizes_raise(kwargs, key):
    with pytest.raises(ConfigError, match=key):
        AlexNetLite(**kwargs)


def test_short_training_learns_colour_digits(tmp_path):
    """conf/model/alexnet_lite.yaml (LRN off, 2x2 pooling) on mnist5k_color: >= 90% val acc."""
    pl.seed_everything(0)
    data = ImageDataModule(
        "mnist5k_color", num_classes=10, channels=3, image_size=32, batch_size=32
    )
    data.setup()
    model = Classifier(AlexNetLite(), optimizer=torch.optim.Adam)
    trainer = bare_trainer(tmp_path, max_epochs=7, deterministic=True)
    trainer.fit(model, datamodule=data)
    (result,) = trainer.validate(model, datamodule=data, verbose=False)
    assert result["val/acc"] >= 0.90
