"""Every config group option composes, and what it describes instantiates."""

from pathlib import Path

import hydra
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict
from tests.conftest import CONF_DIR

GROUPS = ["data", "model", "optimizer", "scheduler", "trainer", "logger", "callbacks"]
OFFLINE_DATA = {"mnist5k", "mnist5k_color"}


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def compose_cfg(overrides: list[str], tmp_path: Path):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(tmp_path)
    HydraConfig.instance().set_config(cfg)
    return cfg


@pytest.mark.parametrize(("group", "option"), [(g, o) for g in GROUPS for o in options(g)])
def test_group_option_composes_and_instantiates(group, option, tmp_path):
    cfg = compose_cfg([f"{group}={option}"], tmp_path)
    node = cfg[group]
    if group == "data":
        datamodule = hydra.utils.instantiate(node)
        if option in OFFLINE_DATA:
            datamodule.setup()
            assert len(datamodule.splits.train) > 0
    elif group == "model":
        net = hydra.utils.instantiate(node)
        assert sum(p.numel() for p in net.parameters()) > 0
    elif group in ("optimizer", "scheduler"):
        if node:  # scheduler=none is empty
            assert callable(hydra.utils.instantiate(node))
    elif group == "trainer":
        if node.accelerator == "gpu" and not torch.cuda.is_available():
            pytest.skip("needs a GPU")
        assert hydra.utils.instantiate(node, logger=False).max_epochs == cfg.trainer.max_epochs
    else:  # logger, callbacks: a dict of components
        for key, component in node.items():
            assert hydra.utils.instantiate(component) is not None, key


@pytest.mark.parametrize("option", options("experiment"))
def test_experiment_presets_compose(option, tmp_path):
    cfg = compose_cfg([f"experiment={option}"], tmp_path)
    assert hydra.utils.instantiate(cfg.model) is not None


def test_run_dir_layout(tmp_path):
    cfg = compose_cfg([], tmp_path)
    assert cfg.hydra.run.dir.startswith("outputs/runs/lenet5-mnist5k/")
    assert cfg.hydra.sweep.dir.startswith("outputs/sweeps/lenet5-mnist5k/")
