"""Run, track and compare classic CNN ablations (LeNet-5, AlexNet-lite)."""

from pathlib import Path

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"  # the Hydra configs of this checkout
CONFIG_NAME = "train"  # the primary config, conf/train.yaml
