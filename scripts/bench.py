"""Seconds per epoch of this project's training next to a plain loop and a PIL DataLoader.

``make bench [ARGS="--quick"]`` (= ``.venv/bin/python scripts/bench.py``). In one process, on the
same network (LeNet-5, modern defaults, from ``conf/model/lenet5.yaml``), data, batch size,
optimizer (Adam, ``conf/optimizer/adam.yaml``), torch threads and epochs, it times:

a  ``plain``    a hand-written PyTorch loop over pre-normalised float tensors (index slicing,
                Adam, cross-entropy), summing train loss/accuracy on the fly and running the
                same validation pass as (b) after every epoch: the floor.
l  ``lightning`` a reference for what Lightning itself costs: the least LightningModule (the same
                net, cross-entropy, Adam, the same validation pass) fed (a)'s tensors, under a
                ``pl.Trainer`` with no logger, callbacks or metrics (torch defaults, as (a)).
b  ``project``  what ``python -m cnn_ablations.train`` runs, made by the same ``build()`` (the
                core's: ``cnn_ablations.build``) from the composed ``conf/train.yaml``:
                ``Classifier`` + ``ImageDataModule`` + ``pl.Trainer`` from
                ``conf/trainer/cpu.yaml`` (deterministic, 32-bit, log_every_n_steps 10,
                validation every epoch), its scheduler, the CSV logger of ``conf/logger/csv.yaml``
                and the default callbacks (ModelCheckpoint best + last, LR monitor) without
                progress bar and model summary. What the harness adds to a job is left out: its
                record and W&B run (outside the epochs) and its fit_record callbacks (inside
                them: a few host-side operations per epoch).
c  ``pil``      the usual torchvision pipeline: a Dataset returning one PIL image per sample ->
                ``ToTensor`` -> ``Normalize``, ``DataLoader(shuffle=True, num_workers=0|2)``,
                under the same ``build()``'s Trainer, callbacks, logger and ``Classifier``.

Every fit runs one warm-up epoch (not timed) and then ``--epochs`` timed epochs; each pipeline is
fitted ``--repeats`` times, and the median epoch is reported. An epoch is everything from one
``on_train_epoch_start`` to the end of that epoch (training, validation, logging,
checkpointing). (a) runs inside (l)'s and (b)'s fits, one epoch before each of theirs, so they
alternate epoch by epoch: this machine's speed drifts by +-15% within seconds, and b/a and l/a
are medians of these paired ratios; b/l = (b/a) / (l/a) is what this project adds to Lightning.
c/b is a ratio of medians (c is 2x slower; drift does not matter there). Results go to a rich
table and a JSON file (``--out``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from cnn_ablations.fast_cpu import NVML_CUDA_CHECK

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"
PIPELINES = ("a_plain", "l_lightning", "b_project", "c_pil_w0", "c_pil_w2")
LABELS = {
    "a_plain": "a plain loop",
    "l_lightning": "l bare LightningModule",
    "b_project": "b project (Lightning)",
    "c_pil_w0": "c PIL DataLoader, 0 workers",
    "c_pil_w2": "c PIL DataLoader, 2 workers",
}


# -- datasets ----------------------------------------------------------------------------------
@dataclass
class BenchData:
    name: str
    splits: object  # cnn_ablations.data.datasets.Splits
    channels: int
    image_size: int


def synthetic_splits(n_train: int, n_val: int, channels: int, size: int, seed: int = 0):
    """Random uint8 images and labels of a given shape (timing does not depend on the values)."""
    from cnn_ablations.data.datasets import Split, Splits

    g = torch.Generator().manual_seed(seed)

    def split(n: int) -> Split:
        images = torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=g)
        return Split(images, torch.randint(0, 10, (n,), generator=g))

    return Splits(split(n_train), split(n_val), split(min(n_val, 1000)), 10)


def _head(split, n: int | None):
    from cnn_ablations.data.datasets import Split

    return split if n is None else Split(split.images[:n].clone(), split.labels[:n].clone())


def load_bench_data(name: str, quick: bool) -> BenchData:
    from cnn_ablations.data.datasets import Splits, load_dataset

    n_train, n_val = (512, 128) if quick else (None, None)
    if name == "mnist5k":
        full = load_dataset("mnist5k", REPO / "data")
        splits = Splits(_head(full.train, n_train), _head(full.val, n_val), full.test, 10)
        return BenchData(name, splits, 1, 28)
    if name == "mnist60k":  # MNIST size: 60k train, 10k validation, 1x28x28
        return BenchData(name, synthetic_splits(n_train or 60000, n_val or 10000, 1, 28), 1, 28)
    if name == "cifar50k":  # CIFAR-10 size: 50k train, 10k validation, 3x32x32
        return BenchData(name, synthetic_splits(n_train or 50000, n_val or 10000, 3, 32), 3, 32)
    raise SystemExit(f"unknown dataset {name!r}; choose from mnist5k, mnist60k, cifar50k")


# -- configuration: the project's own Hydra config ---------------------------------------------
def compose_config(data: BenchData, output_dir: Path, max_epochs: int):
    from hydra import compose, initialize_config_dir

    overrides = [
        "logger=csv",
        "callbacks=default",
        f"paths.output_dir={output_dir}",
        f"data.channels={data.channels}",
        f"data.image_size={data.image_size}",
        f"trainer.max_epochs={max_epochs}",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "~callbacks.progress_bar",
        "~callbacks.model_summary",
    ]
    from cnn_ablations import CONFIG_NAME, resolvers

    resolvers.register()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose(CONFIG_NAME, overrides=overrides)


def make_net(cfg):
    import hydra

    return hydra.utils.instantiate(cfg.model)


def make_optimizer_factory(cfg):
    import hydra

    return hydra.utils.instantiate(cfg.optimizer)


class EpochTimer(pl.Callback):
    """Wall time of every epoch, from one ``on_train_epoch_start`` to the next (or the end)."""

    def __init__(self):
        self.stamps: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module):
        self.stamps.append(time.perf_counter())

    def on_train_end(self, trainer, pl_module):
        self.stamps.append(time.perf_counter())

    @property
    def epochs(self) -> list[float]:
        return [b - a for a, b in zip(self.stamps, self.stamps[1:], strict=False)]


@contextlib.contextmanager
def _restore_torch_state():
    """Lightning's ``deterministic=True`` flips process-wide switches: restore them afterwards."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    fill = torch.utils.deterministic.fill_uninitialized_memory
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.utils.deterministic.fill_uninitialized_memory = fill
        torch.set_num_threads(threads)


def _quiet():
    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    return stack


# -- (a) plain PyTorch -------------------------------------------------------------------------
class PlainLoop:
    """Hand-written loop: pre-normalised float tensors, index slicing, Adam, cross-entropy."""

    def __init__(self, data: BenchData, cfg, seed: int):
        torch.manual_seed(seed)
        self.net = make_net(cfg)
        self.optimizer = make_optimizer_factory(cfg)(params=self.net.parameters())
        self.batch_size, self.eval_batch_size = cfg.data.batch_size, cfg.data.eval_batch_size
        train, val = data.splits.train, data.splits.val
        pixels = train.images.double().div(255).transpose(0, 1).reshape(data.channels, -1)
        mean = pixels.mean(1).float().view(1, -1, 1, 1)
        std = pixels.std(1).float().view(1, -1, 1, 1)
        self.x, self.y = (train.images.float() / 255 - mean) / std, train.labels
        self.xv, self.yv = (val.images.float() / 255 - mean) / std, val.labels
        self.generator = torch.Generator().manual_seed(seed)

    def epoch(self) -> float:
        """Train one epoch and validate; return the wall time in seconds."""
        start = time.perf_counter()
        net, optimizer, x, y = self.net, self.optimizer, self.x, self.y
        net.train()
        loss_sum, correct = torch.zeros(()), torch.zeros((), dtype=torch.long)
        order = torch.randperm(len(y), generator=self.generator)
        for i in range(0, len(y), self.batch_size):
            idx = order[i : i + self.batch_size]
            xb, yb = x.index_select(0, idx), y.index_select(0, idx)
            scores = net(xb)
            loss = F.cross_entropy(scores, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(yb)
            correct += (scores.argmax(1) == yb).sum()
        train_metrics = (loss_sum / len(y)).item(), correct.item() / len(y)
        net.eval()
        with torch.inference_mode():
            val_loss, val_correct = 0.0, 0
            for i in range(0, len(self.yv), self.eval_batch_size):
                scores = net(self.xv[i : i + self.eval_batch_size])
                target = self.yv[i : i + self.eval_batch_size]
                val_loss += F.cross_entropy(scores, target, reduction="sum").item()
                val_correct += (scores.argmax(1) == target).sum().item()
        del train_metrics, val_loss, val_correct  # computed as a real loop would, unused here
        return time.perf_counter() - start


class InterleavedPlainEpochs(EpochTimer):
    """Times (b)'s epochs and runs one epoch of (a) before each, outside (b)'s timing.

    This machine's speed drifts by +-15% over tens of seconds (other tenants), so (a) and (b) are
    timed in alternation, epoch by epoch, and each pair sees the same conditions. (a) runs with
    torch's defaults, as a script that never imported Lightning would: non-deterministic, and
    without Lightning's ``PYTORCH_NVML_BASED_CUDA_CHECK`` (see ``module.FastCpuFit``).
    """

    def __init__(self, plain: PlainLoop):
        super().__init__()
        self.plain, self.plain_epochs = plain, []

    def on_train_epoch_start(self, trainer, pl_module):
        if self.stamps:
            self.stamps.append(time.perf_counter())  # end of (b)'s previous epoch
        self.plain_epochs.append(self._plain_epoch())
        self.stamps.append(time.perf_counter())

    def _plain_epoch(self) -> float:
        deterministic = torch.are_deterministic_algorithms_enabled()
        nvml_check = os.environ.pop(NVML_CUDA_CHECK, None)  # set by importing Lightning
        torch.use_deterministic_algorithms(False)
        try:
            return self.plain.epoch()
        finally:
            torch.use_deterministic_algorithms(deterministic)
            if nvml_check is not None:
                os.environ[NVML_CUDA_CHECK] = nvml_check

    @property
    def epochs(self) -> list[float]:
        return [b - a for a, b in zip(self.stamps[::2], self.stamps[1::2], strict=True)]


# -- (l) the least LightningModule: what Lightning itself costs --------------------------------
class BareLightning(pl.LightningModule):
    """The same net, cross-entropy and optimizer as (a), nothing else (no metrics, no logging)."""

    def __init__(self, net, optimizer_factory):
        super().__init__()
        self.net, self.optimizer_factory = net, optimizer_factory

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        scores = self.net(x)  # the same work as (a)'s validation pass
        return F.cross_entropy(scores, y, reduction="sum"), (scores.argmax(1) == y).sum()

    def configure_optimizers(self):
        return self.optimizer_factory(params=self.parameters())


def run_lightning_and_plain(data: BenchData, cfg, seed: int) -> tuple[list[float], list[float]]:
    """Epoch times of (l) and, interleaved with them, of (a): ``(l_times, a_times)``."""
    from cnn_ablations.data.loader import EpochSampler, TensorBatchLoader

    plain = PlainLoop(data, cfg, seed)
    batch_size, eval_batch_size = cfg.data.batch_size, cfg.data.eval_batch_size
    train = TensorBatchLoader(plain.x, plain.y, batch_size, EpochSampler(len(plain.y), True, seed))
    val = TensorBatchLoader(plain.xv, plain.yv, eval_batch_size, EpochSampler(len(plain.yv), False))
    torch.manual_seed(seed)
    model = BareLightning(make_net(cfg), make_optimizer_factory(cfg))
    timer = InterleavedPlainEpochs(plain)
    with _restore_torch_state(), _quiet():
        trainer = pl.Trainer(
            accelerator="cpu",
            devices=1,
            max_epochs=cfg.trainer.max_epochs,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[timer],
        )
        trainer.fit(model, train_dataloaders=train, val_dataloaders=val)
    return timer.epochs, timer.plain_epochs


# -- (b) the project, as `python -m cnn_ablations.train` runs it -------------------------------
@contextlib.contextmanager
def _project_parts(data: BenchData, cfg, seed: int, timer: pl.Callback):
    """The core's ``build`` of ``cfg`` on the bench's data (registered as a dataset, so setup()
    takes the user's code path), at ``seed``, with ``timer`` among its callbacks."""
    from omegaconf import open_dict

    from cnn_ablations.build import build
    from cnn_ablations.data import datasets

    name = f"bench_{data.name}"
    datasets.DATASETS[name] = lambda root: data.splits
    cfg = cfg.copy()
    with open_dict(cfg):
        cfg.data.dataset, cfg.seed = name, seed
    try:
        with _restore_torch_state(), _quiet():
            yield build(cfg, callbacks=[timer])
    finally:
        datasets.DATASETS.pop(name, None)


def run_project_and_plain(data: BenchData, cfg, seed: int) -> tuple[list[float], list[float]]:
    """Epoch times of (b) and, interleaved with them, of (a): ``(b_times, a_times)``."""
    plain = PlainLoop(data, cfg, seed)
    timer = InterleavedPlainEpochs(plain)
    with _project_parts(data, cfg, seed, timer) as parts:
        parts.trainer.fit(parts.model, datamodule=parts.datamodule)
    return timer.epochs, timer.plain_epochs


# -- (c) the usual per-sample PIL pipeline -----------------------------------------------------
class PILDataset(torch.utils.data.Dataset):
    """torchvision-style: keeps uint8 HxW(xC) arrays, returns ``(transform(PIL image), int)``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Callable):
        array = images.numpy()
        self.data = array[:, 0] if array.shape[1] == 1 else array.transpose(0, 2, 3, 1).copy()
        self.targets = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        from PIL import Image

        image = Image.fromarray(self.data[index])  # "L" for HxW, "RGB" for HxWx3 uint8
        return self.transform(image), self.targets[index]


def run_pil(data: BenchData, cfg, epochs: int, seed: int, workers: int) -> list[float]:
    from torch.utils.data import DataLoader
    from torchvision import transforms

    train, val = data.splits.train, data.splits.val
    pixels = train.images.double().div(255).transpose(0, 1).reshape(data.channels, -1)
    normalize = transforms.Normalize(pixels.mean(1).tolist(), pixels.std(1).tolist())
    transform = transforms.Compose([transforms.ToTensor(), normalize])
    train_loader = DataLoader(
        PILDataset(train.images, train.labels, transform),
        batch_size=cfg.data.batch_size,
        shuffle=True,
        num_workers=workers,
    )
    val_loader = DataLoader(
        PILDataset(val.images, val.labels, transform),
        batch_size=cfg.data.eval_batch_size,
        shuffle=False,
        num_workers=workers,
    )
    timer = EpochTimer()
    with _project_parts(data, cfg, seed, timer) as parts:
        parts.trainer.fit(parts.model, train_dataloaders=train_loader, val_dataloaders=val_loader)
    return timer.epochs


# -- driver ------------------------------------------------------------------------------------
def bench_dataset(data: BenchData, args, workdir: Path, log: Callable[[str], None]) -> dict:
    fits = 1 + args.epochs  # one warm-up epoch per fit
    epochs: dict[str, list[float]] = {p: [] for p in PIPELINES}
    paired: dict[str, list[float]] = {"b/a": [], "l/a": []}
    for repeat in range(args.repeats):
        cfg = compose_config(data, workdir / f"{data.name}-l-{repeat}", fits)
        lightning, plain_l = run_lightning_and_plain(data, cfg, args.seed)
        cfg = compose_config(data, workdir / f"{data.name}-b-{repeat}", fits)
        project, plain_b = run_project_and_plain(data, cfg, args.seed)
        runs = {"a_plain": plain_l[1:] + plain_b[1:], "l_lightning": lightning[1:]}
        runs["b_project"] = project[1:]
        for workers in (0, 2):
            cfg = compose_config(data, workdir / f"{data.name}-c{workers}-{repeat}", fits)
            runs[f"c_pil_w{workers}"] = run_pil(data, cfg, fits, args.seed, workers)[1:]
        paired["l/a"] += [t / a for a, t in zip(plain_l[1:], lightning[1:], strict=True)]
        paired["b/a"] += [t / a for a, t in zip(plain_b[1:], project[1:], strict=True)]
        for pipeline in PIPELINES:
            times = runs[pipeline]
            if len(times) != args.epochs * (2 if pipeline == "a_plain" else 1):
                raise RuntimeError(f"{pipeline}: timed {len(times)} epochs")
            epochs[pipeline] += times
            log(
                f"{data.name} repeat {repeat + 1}/{args.repeats} {pipeline}: "
                + " ".join(f"{t:.3f}" for t in times)
                + " s/epoch (after a warm-up epoch)"
            )
    pipelines = {
        p: {
            "label": LABELS[p],
            "sec_per_epoch": statistics.median(t),
            "epoch_times": t,
            "us_per_sample": 1e6 * statistics.median(t) / len(data.splits.train),
        }
        for p, t in epochs.items()
    }
    sec = {p: v["sec_per_epoch"] for p, v in pipelines.items()}
    b_a, l_a = statistics.median(paired["b/a"]), statistics.median(paired["l/a"])
    return {
        "train_samples": len(data.splits.train),
        "val_samples": len(data.splits.val),
        "image_shape": list(data.splits.train.images.shape[1:]),
        "pipelines": pipelines,
        "ratios": {
            # medians of per-epoch ratios: (a) ran right before each (l) and (b) epoch
            "b/a": b_a,
            "l/a": l_a,
            "b/l": b_a / l_a,
            "c_w0/b": sec["c_pil_w0"] / sec["b_project"],
            "c_w2/b": sec["c_pil_w2"] / sec["b_project"],
        },
        "paired_ratios": paired,
    }


def scaling(results: dict) -> dict | None:
    """How epoch time grows from the bundled 5k set to the 60k MNIST-size set."""
    small, large = results.get("mnist5k"), results.get("mnist60k")
    if not small or not large:
        return None
    samples = large["train_samples"] / small["train_samples"]
    return {
        "from": "mnist5k",
        "to": "mnist60k",
        "sample_factor": samples,
        "time_factor": {
            p: large["pipelines"][p]["sec_per_epoch"] / small["pipelines"][p]["sec_per_epoch"]
            for p in PIPELINES
        },
    }


def print_report(report: dict) -> None:
    from rich.table import Table

    from cnn_ablations.report.document import report_console

    console = report_console()  # a log file gets whole rows, not 80 columns
    config = report["config"]
    times = Table(
        title=f"LeNet-5, batch {config['batch_size']}, {config['torch_threads']} torch threads: "
        "seconds per epoch (median)"
    )
    ratios = Table(title="ratios (b/a, l/a: medians over paired epochs)")
    for column in ("dataset", "train", "a plain", "l Lightning", "b project", "c PIL w0"):
        times.add_column(column, justify="right")
    for column in ("c PIL w2",):
        times.add_column(column, justify="right")
    for column in ("dataset", "b/a", "l/a", "b/l", "c w0/b", "c w2/b"):
        ratios.add_column(column, justify="right", style=None if column == "dataset" else "bold")
    for name, result in report["results"].items():
        sec = {p: result["pipelines"][p]["sec_per_epoch"] for p in PIPELINES}
        times.add_row(name, str(result["train_samples"]), *(f"{sec[p]:.3f}" for p in PIPELINES))
        ratios.add_row(name, *(f"{v:.2f}" for v in result["ratios"].values()))
    console.print(times)
    console.print(ratios)
    growth = report.get("scaling")
    if growth:
        console.print(
            f"{growth['from']} -> {growth['to']}: {growth['sample_factor']:.1f}x the samples, "
            + ", ".join(f"{p} {f:.1f}x" for p, f in growth["time_factor"].items())
            + " the epoch time"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--datasets",
        default="mnist5k,mnist60k,cifar50k",
        help="comma-separated: mnist5k (bundled), mnist60k, cifar50k (synthetic, full size)",
    )
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per fit")
    parser.add_argument("--repeats", type=int, default=3, help="fits per pipeline (interleaved)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (all pipelines)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "bench" / "bench.json")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 512 train / 128 val samples per dataset, 1 timed epoch, 1 repeat",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.repeats = 1, 1
    if args.epochs < 1 or args.repeats < 1:
        parser.error("--epochs and --repeats must be >= 1")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    os.environ.setdefault("WANDB_MODE", "disabled")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    results = {}
    with tempfile.TemporaryDirectory(prefix="cnn-bench-") as tmp:
        for name in names:
            data = load_bench_data(name, args.quick)
            results[name] = bench_dataset(data, args, Path(tmp), log)
    report = {
        "config": {
            "model": "LeNet5() modern defaults (conf/model/lenet5.yaml)",
            "optimizer": "Adam lr 1e-3 (conf/optimizer/adam.yaml)",
            "batch_size": 64,
            "eval_batch_size": 1000,
            "validation": "every epoch, all pipelines",
            "checkpointing": "on in b and c (ModelCheckpoint best + last, as the CLI), off in l",
            "logger": "CSVLogger, log_every_n_steps=10 (conf/trainer/cpu.yaml)",
            "timed_epochs_per_fit": args.epochs,
            "warmup_epochs_per_fit": 1,
            "repeats": args.repeats,
            "quick": args.quick,
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "results": results,
        "scaling": scaling(results),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print_report(report)
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
