"""Every config option composes into what it says, and every preset sets the values it lists."""

import inspect

import hydra
import pytest
import torch
from omegaconf import OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint
from tests.conftest import CONF_DIR, compose_cfg

from cnn_ablations.data import ImageDataModule
from cnn_ablations.models.alexnet_lite import AlexNetLite, LocalResponseNorm
from cnn_ablations.models.lenet5 import LeNet5

OFFLINE_DATA = {"mnist5k", "mnist5k_color"}
PRESET_GROUPS = ["experiment", "sweep", "variant", "debug", "launcher"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def leaves(node, path: tuple = ()):
    """(key path, value) for every leaf of a plain dict (keys may hold dots: sweep params)."""
    for key, value in node.items():
        if isinstance(value, dict) and value:
            yield from leaves(value, (*path, key))
        else:
            yield (*path, key), value


@pytest.mark.parametrize("option", options("data"))
def test_data_option_builds_the_dataset_it_declares(option):
    cfg = compose_cfg([f"data={option}"])
    datamodule = hydra.utils.instantiate(cfg.data)
    assert isinstance(datamodule, ImageDataModule) and datamodule.dataset == cfg.data.dataset
    assert datamodule.batch_size == cfg.data.batch_size
    if option in OFFLINE_DATA:
        datamodule.setup()  # checks num_classes, channels and image_size against the data
        size = cfg.data.image_size
        assert datamodule.splits.train.images.shape[1:] == (cfg.data.channels, size, size)


@pytest.mark.parametrize("option", options("model"))
def test_model_option_fits_the_default_data(option):
    cfg = compose_cfg([f"model={option}", "data=mnist5k_color"])
    net = hydra.utils.instantiate(cfg.model)
    size = cfg.data.image_size
    assert net(torch.zeros(2, cfg.data.channels, size, size)).shape == (2, cfg.data.num_classes)


@pytest.mark.parametrize("net_class,option", [(LeNet5, "lenet5"), (AlexNetLite, "alexnet_lite")])
def test_model_yaml_and_constructor_defaults_agree(net_class, option):
    """Each switch has one default: the YAML's literal values equal the constructor's."""
    yaml = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "model" / f"{option}.yaml"))
    defaults = {name: p.default for name, p in inspect.signature(net_class).parameters.items()}
    literal = {k: v for k, v in yaml.items() if k != "_target_" and not str(v).startswith("${")}
    assert set(literal) | {"num_classes", "in_channels", "input_size"} == set(defaults)
    for key, value in literal.items():
        expected = defaults[key]
        value = tuple(value) if isinstance(value, list) else value
        assert value == expected, key


@pytest.mark.parametrize("option", [o for o in options("optimizer")])
def test_optimizer_option_sets_its_hyperparameters(option):
    cfg = compose_cfg([f"optimizer={option}"])
    optimizer = hydra.utils.instantiate(cfg.optimizer)(params=[torch.nn.Parameter(torch.zeros(1))])
    for key in ("lr", "momentum", "weight_decay"):
        if key in cfg.optimizer:
            assert optimizer.defaults[key] == cfg.optimizer[key], key


@pytest.mark.parametrize("option", [o for o in options("scheduler") if o != "none"])
def test_scheduler_option_gives_its_learning_rates(option):
    cfg = compose_cfg([f"scheduler={option}", "trainer.max_epochs=20"])
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = hydra.utils.instantiate(cfg.scheduler)(optimizer=optimizer)
    rates = []
    for _ in range(20):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[0] == 1.0 and min(rates) < 1.0  # it starts at the base lr and lowers it
    if option == "lecun1998":  # factors 1, 0.4, 0.2, 0.1, 0.02 from epochs 0, 2, 5, 8, 12
        expected = [1.0] * 2 + [0.4] * 3 + [0.2] * 3 + [0.1] * 4 + [0.02] * 8
        assert rates == pytest.approx(expected)


def test_no_scheduler_is_empty():
    assert not compose_cfg(["scheduler=none"]).scheduler


@pytest.mark.parametrize("option", options("trainer"))
def test_trainer_option_sets_its_trainer(option):
    cfg = compose_cfg([f"trainer={option}", "paths.output_dir=/tmp/x"])
    if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        pytest.skip("needs a GPU")
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False)
    assert trainer.max_epochs == cfg.trainer.max_epochs
    assert trainer.num_devices == cfg.trainer.devices  # cpu: 1, ddp_cpu: 2 processes


@pytest.mark.parametrize("option", options("callbacks"))
def test_callbacks_option_checkpoints_the_best_val_acc(option):
    cfg = compose_cfg([f"callbacks={option}", "paths.output_dir=/tmp/x"])
    callbacks = [hydra.utils.instantiate(node) for node in cfg.callbacks.values()]
    (checkpoint,) = [c for c in callbacks if isinstance(c, ModelCheckpoint)]
    assert (checkpoint.monitor, checkpoint.mode, checkpoint.save_last) == ("val/acc", "max", True)
    assert len(callbacks) == (1 if option == "minimal" else 4)


@pytest.mark.parametrize("option", options("logger"))
def test_logger_option_always_keeps_the_csv(option):
    cfg = compose_cfg([f"logger={option}", "paths.output_dir=/tmp/x"])
    assert cfg.logger.csv._target_ == "cnn_ablations.tracking.CSVLogger"
    assert ("wandb" in cfg.logger) == (option == "wandb")


@pytest.mark.parametrize(
    "group,option", [(g, o) for g in PRESET_GROUPS for o in options(g) if o != "default"]
)
def test_preset_sets_every_value_it_lists(group, option):
    """A preset's values survive composition (no later group or preset undoes them)."""
    preset = OmegaConf.to_container(OmegaConf.load(CONF_DIR / group / f"{option}.yaml"))
    preset.pop("defaults", None)
    cfg = compose_cfg([f"{group}={option}"], hydra_cfg=True)
    cfg = OmegaConf.to_container(cfg, resolve=False)
    listed = dict(leaves(preset))
    if group == "debug":  # the presets build on debug/default.yaml
        base = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "debug" / "default.yaml"))
        base.pop("defaults")
        listed = {**dict(leaves(base)), **listed}
    assert listed or option == "baseline"
    for path, value in listed.items():
        node = cfg
        for key in path:
            node = node[key]
        assert node == value, path


def test_paper_presets_build_the_paper_networks():
    lenet = hydra.utils.instantiate(compose_cfg(["experiment=lenet5_1998"]).model)
    assert sum(lenet.param_counts().values()) == 60_000  # LeCun et al. 1998, Table I
    alexnet_cfg = compose_cfg(["experiment=alexnet_lite_2012"])
    alexnet = hydra.utils.instantiate(alexnet_cfg.model)
    assert sum(isinstance(m, LocalResponseNorm) for m in alexnet.modules()) == 2
    assert alexnet_cfg.data.augment.pca_sigma == 0.1


def test_run_dirs_are_made_by_the_output_dir_resolver():
    cfg = compose_cfg([], hydra_cfg=True)
    for kind in ("run", "sweep"):
        template = OmegaConf.to_container(cfg.hydra[kind], resolve=False)["dir"]
        assert template == f"${{output_dir:${{paths.output_root}}/{kind}s/${{name}},${{resume}}}}"
