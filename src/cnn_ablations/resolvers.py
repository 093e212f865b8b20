"""The OmegaConf resolvers ``conf/`` uses; entry points call :func:`register` before Hydra runs.

- ``${module_name:a.b.lenet5.LeNet5}`` -> ``lenet5`` (the default experiment name).
- ``${job_dirname:}`` -> a multirun job's dir name: the overrides its sweep varies.
- ``${output_dir:PARENT,RESUME}`` -> a new run or sweep dir ``PARENT/<time stamp>``, created
  here so that two runs started in the same second never share one (the second gets
  ``<time stamp>_2``); with ``resume=true`` the latest run under PARENT, with ``resume=<dir>``
  that dir, which must hold a run.
- ``${cpu_precision:${trainer.accelerator}}`` -> ``bf16-mixed`` for a CPU fit where the CPU has
  native bf16 (AMX or AVX-512 bf16; elsewhere bf16 is emulated, ~9x slower for LeNet-5 on an
  AVX2 CPU), else ``32``.
- ``${cpu_cores:}`` -> the cores this process may use: parallel jobs of one thread each.
"""

import os
import re
import time
from pathlib import Path

import joblib
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from cnn_ablations.errors import ConfigError
from cnn_ablations.sweepdir import MULTIRUN_FILE, swept_overrides

STAMP = "%Y-%m-%d_%H-%M-%S"
RUN_MARKERS = (".hydra", MULTIRUN_FILE)  # a run dir holds .hydra/, a sweep dir multirun.yaml


NATIVE_BF16_FLAGS = {"amx_bf16", "avx512_bf16"}  # /proc/cpuinfo's flags of an x86 CPU with bf16


def _cpuinfo(field: str) -> str | None:
    """The first ``field`` line of Linux's /proc/cpuinfo (None elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    line = next((ln for ln in text.splitlines() if ln.split(":")[0].strip() == field), None)
    return None if line is None else line.partition(":")[2].strip()


def cpu_flags() -> set[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo does not list them)."""
    return set((_cpuinfo("flags") or "").split())


def cpu_model() -> str | None:
    return _cpuinfo("model name")


def native_bf16() -> bool:
    """The CPU computes bf16 natively."""
    return bool(cpu_flags() & NATIVE_BF16_FLAGS)


def cpu_precision(accelerator: str = "cpu") -> str | int:
    """``trainer.precision`` for a fit on ``accelerator``: on the CPU, bf16 autocast only where
    it computes bf16 natively; elsewhere (a GPU) 32, the trainer's default."""
    return "bf16-mixed" if accelerator == "cpu" and native_bf16() else 32


def cpu_cores() -> int:
    """The cores this process may use: its affinity and a container's CPU quota (joblib's
    count, which reads both)."""
    return joblib.cpu_count()


def module_name(target: str) -> str:
    return target.split(".")[-2]


def job_dirname() -> str:
    return ",".join(swept_overrides(HydraConfig.get())) or "job"


def _stamp_order(path: Path) -> tuple[str, int]:
    """``<stamp>_2`` sorts after ``<stamp>``, and ``<stamp>_10`` after ``<stamp>_9``."""
    base, count = re.fullmatch(r"(.*?)(?:_(\d+))?", path.name).groups()
    return base, int(count or 1)


def holds_run(path: Path) -> bool:
    return any((path / marker).exists() for marker in RUN_MARKERS)


def runs_under(parent: Path) -> list[Path]:
    """Run or sweep dirs directly under ``parent``, oldest first."""
    if not parent.is_dir():
        return []
    return sorted((p for p in parent.iterdir() if p.is_dir() and holds_run(p)), key=_stamp_order)


def claim_new_dir(parent: Path) -> Path:
    """Create ``parent/<now>`` (or ``<now>_2``, ``_3``, ... if taken) atomically and return it."""
    stamp = time.strftime(STAMP)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        for count in range(1, 10_000):
            candidate = parent / (stamp if count == 1 else f"{stamp}_{count}")
            try:
                candidate.mkdir()  # atomic: exactly one process creates it
                return candidate
            except FileExistsError:
                continue
    except OSError as err:
        existing = next(p for p in (parent, *parent.parents) if p.exists())
        reason = "is not a directory" if not existing.is_dir() else "is not writable"
        if existing.is_dir() and os.access(existing, os.W_OK | os.X_OK):
            reason = f"cannot be written ({err.strerror})"
        raise ConfigError(
            f"cannot create the output dir {parent.absolute()}: {existing.absolute()} {reason}; "
            "set paths.output_root to a writable directory"
        ) from None
    raise ConfigError(f"cannot create a new dir under {parent}: 10,000 taken this second")


def output_dir(parent: str, resume) -> str:
    """The run (or sweep) dir for ``resume`` = false | true | a dir (see the module docstring)."""
    parent_path = Path(parent)
    if resume is None or resume is False:
        return str(claim_new_dir(parent_path))
    if resume is True:
        previous = runs_under(parent_path)
        return str(previous[-1]) if previous else str(claim_new_dir(parent_path))
    path = Path(str(resume))
    if not (path.is_dir() and holds_run(path)):
        previous = runs_under(parent_path)
        where = (
            f"runs of this name are in {parent_path} (latest: {previous[-1].name})"
            if previous
            else f"there are no runs of this name in {parent_path} yet"
        )
        raise ConfigError(
            f"resume={resume} holds no run (no .hydra/ or multirun.yaml there); {where}; "
            "pass one of those dirs, or resume=true for the latest"
        )
    return str(path)


def register() -> None:
    """Register every resolver (idempotent). Cached ones resolve once per run or sweep: Hydra
    copies the cache into each job's config, so all jobs of a sweep share its dir."""
    OmegaConf.register_new_resolver("module_name", module_name, replace=True)
    OmegaConf.register_new_resolver("job_dirname", job_dirname, replace=True)
    OmegaConf.register_new_resolver("output_dir", output_dir, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("cpu_precision", cpu_precision, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("cpu_cores", cpu_cores, use_cache=True, replace=True)
