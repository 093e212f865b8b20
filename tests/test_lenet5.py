"""LeNet-5: the paper's numbers, the special layers and every ablation switch."""

import functools
import math

import pytest
import torch
import torch.nn.functional as F

from cnn_ablations.data.datasets import load_dataset
from cnn_ablations.errors import ConfigError
from cnn_ablations.models.layers import (
    ACTIVATIONS,
    POOLING,
    MaskedConv2d,
    RBFOutput,
    ScaledTanh,
    Subsample2d,
    count_trainable_parameters,
)
from cnn_ablations.models.lenet5 import (
    C3_CONNECTIONS,
    C3_TABLE,
    DIGIT_BITMAPS,
    HEADS,
    INITS,
    RBF_CODES,
    RBF_LOSSES,
    LeNet5,
    digit_codes,
    map_loss,
    random_codes,
)

PAPER = dict(
    activation="scaled_tanh", pool="subsample", c3="lecun", head="rbf", input_size=32, init="lecun"
)

# Table I as printed in the paper: row = S2 map, column = C3 map 0..15, X = connected.
TABLE_I = (
    "X...XXX..XXXX.XX",
    "XX...XXX..XXXX.X",
    "XXX...XXX..X.XXX",
    ".XXX..XXXX..X.XX",
    "..XXX..XXXX.XX.X",
    "...XXX..XXXX.XXX",
)

# Every value of every switch, read from the registries: a new choice is tested without edits.
NAMED = {
    "activation": tuple(ACTIVATIONS),
    "pool": tuple(POOLING),
    "head": HEADS,
    "rbf_loss": RBF_LOSSES,
    "rbf_codes": tuple(RBF_CODES),
    "c3": tuple(C3_CONNECTIONS),
    "init": tuple(INITS),
}
SWITCHES = {
    **NAMED,
    "batchnorm": (False, True),
    "dropout": (0.0, 0.5),
    "input_size": (28, 32),
    "in_channels": (1, 3),
}


def c3_conv(model: LeNet5) -> MaskedConv2d:
    return model.c3[0]


def test_paper_parameter_counts():
    model = LeNet5(**PAPER)
    assert model.param_counts() == {
        "c1": 156,
        "s2": 12,
        "c3": 1516,
        "s4": 32,
        "c5": 48120,
        "f6": 10164,
        "output": 0,
    }
    assert count_trainable_parameters(model) == 60000


def test_batchnorm_parameters_counted_in_their_layer():
    counts = LeNet5(batchnorm=True).param_counts()
    assert counts["c1"] == 156 + 2 * 6
    assert counts["c3"] == 2416 + 2 * 16
    assert counts["f6"] == 10164 + 2 * 84
    assert counts["output"] == 850


def test_c3_mask_is_table_i():
    mask = c3_conv(LeNet5(c3="lecun")).weight_mask
    assert mask.shape == (16, 6, 5, 5)
    expected = torch.tensor([[c == "X" for c in row] for row in TABLE_I], dtype=torch.float32)
    assert torch.equal(mask[:, :, 0, 0].T, expected)
    assert torch.equal(mask, mask[:, :, :1, :1].expand_as(mask))  # whole 5x5 kernels
    assert [tuple(torch.nonzero(row).flatten().tolist()) for row in expected.T] == list(C3_TABLE)


@pytest.mark.parametrize("init", ["default", "lecun", "xavier"])
def test_masked_weights_are_zero_at_init(init):
    conv = c3_conv(LeNet5(c3="lecun", init=init))
    assert torch.all(conv.weight[conv.weight_mask == 0] == 0)
    assert torch.all(conv.weight[conv.weight_mask == 1] != 0)


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3),
        lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-3),
    ],
    ids=["sgd", "adam"],
)
def test_masked_weights_get_no_gradient_and_stay_zero(make_optimizer):
    torch.manual_seed(0)
    model = LeNet5(**PAPER)
    conv = c3_conv(model)
    masked = conv.weight_mask == 0
    before = conv.weight.detach().clone()
    optimizer = make_optimizer(model.parameters())
    x, y = torch.randn(8, 1, 32, 32), torch.randint(0, 10, (8,))
    for _ in range(3):
        optimizer.zero_grad()
        model.loss(model(x), y).backward()
        assert torch.all(conv.weight.grad[masked] == 0)
        assert conv.weight.grad[~masked].abs().sum() > 0
        optimizer.step()
    assert torch.all(conv.weight[masked] == 0)
    assert not torch.equal(conv.weight[~masked], before[~masked])


def test_lecun_init_bounds_use_real_fan_in():
    model = LeNet5(**PAPER)
    conv = c3_conv(model)
    for out_map, in_maps in enumerate(C3_TABLE):
        bound = 2.4 / (25 * len(in_maps))
        weights = conv.weight[out_map][conv.weight_mask[out_map] == 1]
        assert weights.abs().max() <= bound
        assert weights.abs().max() > 0.8 * bound
        assert conv.bias[out_map].abs() <= bound
    assert model.c1[0].weight.abs().max() <= 2.4 / 25
    assert model.c5[0].weight.abs().max() <= 2.4 / 400
    assert model.f6[0].weight.abs().max() <= 2.4 / 120
    for sub in (model.s2[0], model.s4[0]):
        assert sub.weight.abs().max() <= 0.6 and sub.bias.abs().max() <= 0.6


def test_scaled_tanh_maps_one_to_one():
    out = ScaledTanh()(torch.tensor([-1.0, 0.0, 1.0]))
    assert torch.allclose(out, torch.tensor([-1.0, 0.0, 1.0]), atol=1e-3)


def test_subsample_matches_hand_computation():
    sub = Subsample2d(2)
    with torch.no_grad():
        sub.weight.copy_(torch.tensor([2.0, -1.0]))
        sub.bias.copy_(torch.tensor([0.5, 1.0]))
    x = torch.arange(16.0).view(1, 2, 2, 4)  # map 0: [[0,1,2,3],[4,5,6,7]], map 1: 8..15
    # map 0 windows sum to 0+1+4+5 = 10 and 2+3+6+7 = 18; map 1 to 42 and 50.
    expected = torch.tensor([[[[2 * 10 + 0.5, 2 * 18 + 0.5]], [[-42 + 1.0, -50 + 1.0]]]])
    assert torch.equal(sub(x), expected)
    assert count_trainable_parameters(sub) == 4


def test_rbf_output_is_squared_distance():
    torch.manual_seed(0)
    codes, x = random_codes(5, dim=7), torch.randn(3, 7)
    rbf = RBFOutput(codes)
    expected = torch.tensor(
        [[sum((x[n, j] - codes[i, j]) ** 2 for j in range(7)) for i in range(5)] for n in range(3)]
    )
    assert torch.allclose(rbf(x), expected)
    assert "codes" in dict(rbf.named_buffers()) and count_trainable_parameters(rbf) == 0


def test_rbf_forward_returns_negative_distances():
    torch.manual_seed(0)
    model = LeNet5(**PAPER).eval()
    x = torch.randn(4, 1, 32, 32)
    features = model.f6(model.c5(model.s4(model.c3(model.s2(model.c1(x))))).flatten(1))
    distances = ((features[:, None, :] - digit_codes()) ** 2).sum(-1)
    scores = model(x)
    assert torch.allclose(scores, -distances)
    assert torch.equal(scores.argmax(1), distances.argmin(1))


def test_map_loss_is_eq_9():
    torch.manual_seed(0)
    y = torch.rand(5, 10, dtype=torch.float64) * 20  # distances
    target, j = torch.randint(0, 10, (5,)), 1.5
    per_sample = [
        y[n, target[n]].item()
        + math.log(math.exp(-j) + sum(math.exp(-y[n, i].item()) for i in range(10)))
        for n in range(5)
    ]
    expected = sum(per_sample) / 5
    assert map_loss(-y, target, j).item() == pytest.approx(expected, rel=1e-12)
    model = LeNet5(head="rbf", map_j=j)
    assert model.loss(-y, target).item() == pytest.approx(expected, rel=1e-12)


def test_losses_of_the_other_heads_are_cross_entropy():
    scores, target = torch.randn(6, 10), torch.randint(0, 10, (6,))
    expected = F.cross_entropy(scores, target)
    assert torch.equal(LeNet5().loss(scores, target), expected)
    assert torch.equal(LeNet5(head="rbf", rbf_loss="ce").loss(scores, target), expected)


def test_digit_codes():
    assert len(DIGIT_BITMAPS) == 10
    for bitmap in DIGIT_BITMAPS:
        assert len(bitmap) == 12 and all(len(row) == 7 and set(row) <= {"#", "."} for row in bitmap)
    codes = digit_codes()
    assert codes.shape == (10, 84)
    assert set(codes.unique().tolist()) == {-1.0, 1.0}
    assert len(codes.unique(dim=0)) == 10


@pytest.mark.parametrize("num_classes", [10, 100])
def test_random_codes(num_classes):
    codes = random_codes(num_classes)
    assert codes.shape == (num_classes, 84)
    assert set(codes.unique().tolist()) == {-1.0, 1.0}
    assert len(codes.unique(dim=0)) == num_classes
    torch.manual_seed(123)  # the run seed does not change the codes
    assert torch.equal(random_codes(num_classes), codes)


@pytest.mark.parametrize("input_size", [28, 32])
def test_both_input_sizes_give_28x28_c1_maps(input_size):
    model = LeNet5(input_size=input_size)
    assert model.c1(torch.zeros(1, 1, input_size, input_size)).shape == (1, 6, 28, 28)


@functools.cache
def digits_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """64 real training digits, standardised, and their labels."""
    splits = load_dataset("mnist5k", "data")
    images = splits.train.images[:64].float() / 255
    return (images - images.mean()) / images.std(), splits.train.labels[:64]


def check_learns(**kwargs) -> None:
    """A LeNet5(**kwargs) from seed 0, 40 Adam steps on 64 real digits: every parameter gets a
    gradient and moves, the loss falls and the net fits most of the batch (chance: 1 in 10)."""
    in_channels, input_size = kwargs.get("in_channels", 1), kwargs.get("input_size", 28)
    num_classes = kwargs.get("num_classes", 10)
    torch.manual_seed(0)
    model = LeNet5(**kwargs)
    x, y = digits_batch()
    pad = (input_size - 28) // 2
    x = F.pad(x, (pad, pad, pad, pad), value=x.min().item()).expand(-1, in_channels, -1, -1)
    y = y % num_classes
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        optimizer.zero_grad()
        loss = model.loss(model(x), y)
        loss.backward()
        assert all(p.grad is not None for p in model.parameters())
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses[::10]
    assert all(not torch.equal(p, before[name]) for name, p in model.named_parameters())
    accuracy = (model.eval()(x).argmax(1) == y).float().mean().item()
    assert accuracy >= 0.5, accuracy


def switch_kwargs(key, value) -> dict:
    kwargs = {key: value}
    if key in ("rbf_loss", "rbf_codes"):
        kwargs["head"] = "rbf"
    if key == "in_channels" and value == 3:
        kwargs["input_size"] = 32
    return kwargs


@pytest.mark.parametrize(
    "key, value", [(key, value) for key, values in SWITCHES.items() for value in values]
)
def test_every_switch_value_builds_and_learns(key, value):
    check_learns(**switch_kwargs(key, value))


@pytest.mark.parametrize("key", ["activation", "pool", "head", "c3", "init", "rbf_codes"])
def test_each_choice_of_an_axis_computes_a_different_function(key):
    """Built from the same seed, the values of an axis give different outputs on one input: a
    choice that were ignored (e.g. every pool giving max pooling) would fail here. (tanh units:
    under ReLU, trainable subsampling starts out exactly as average pooling.)"""
    x = torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    outputs = {}
    for value in NAMED[key]:
        torch.manual_seed(0)
        kwargs = {"activation": "tanh", **switch_kwargs(key, value)}
        outputs[value] = LeNet5(**kwargs).eval()(x)
    for a in outputs:
        for b in outputs:
            if a < b:
                assert not torch.allclose(outputs[a], outputs[b]), (a, b)


@pytest.mark.parametrize(
    "kwargs",
    [
        PAPER,
        dict(PAPER, batchnorm=True, dropout=0.3, rbf_loss="ce"),
        dict(num_classes=100, in_channels=3, input_size=32, head="rbf", rbf_codes="random"),
        dict(num_classes=2, activation="tanh", pool="avg", c3="lecun", batchnorm=True),
    ],
)
def test_combinations_build_and_learn(kwargs):
    check_learns(**kwargs)


@pytest.mark.parametrize("key", [*NAMED, "batchnorm", "input_size"])
def test_unknown_value_lists_valid_choices(key):
    valid = ", ".join(str(v) for v in SWITCHES[key])
    value = 64 if key == "input_size" else "no_such_choice"
    with pytest.raises(ConfigError) as info:
        LeNet5(**{key: value})
    assert str(info.value) == f"model.{key}={value!r} is not valid; choose one of: {valid}"


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(dropout=1.0),
        dict(dropout=-0.1),
        dict(dropout="0.5"),
        dict(map_j=0.0),
        dict(num_classes=1),
        dict(in_channels=0),
        dict(head="rbf", num_classes=5),  # digit codes need 10 classes
    ],
)
def test_invalid_numbers_raise_config_error(kwargs):
    with pytest.raises(ConfigError) as info:
        LeNet5(**kwargs)
    assert "\n" not in str(info.value) and "model." in str(info.value)


def test_the_1998_preset_learns_real_digits(tmp_path):
    """experiment=lenet5_1998 as composed from conf/, 4 epochs: > 90% held-out validation."""
    import pytorch_lightning as pl
    from tests.conftest import bare_trainer, compose_cfg

    from cnn_ablations.build import instantiate
    from cnn_ablations.module import Classifier

    cfg = compose_cfg(["experiment=lenet5_1998", f"paths.output_dir={tmp_path}"])
    pl.seed_everything(0)
    data = instantiate(cfg.data, "data", [])
    data.setup()
    net = instantiate(cfg.model, "model", [])
    assert net.head == "rbf" and count_trainable_parameters(net) == 60_000
    optimizer, scheduler = (instantiate(cfg[k], k, []) for k in ("optimizer", "scheduler"))
    model = Classifier(net, optimizer, scheduler)
    trainer = bare_trainer(tmp_path, max_epochs=4, deterministic=True)
    trainer.fit(model, datamodule=data)
    (result,) = trainer.validate(model, datamodule=data, verbose=False)
    assert result["val/acc"] > 0.90
