"""Whole-process timings as users run things: start-up, a default run's epoch, a sweep's per-job
overhead, AlexNet-lite's LRN and its precision. ``make bench-sweep [ARGS="--sections sweep"]``.

Sections (each paired: A and B alternate, so this machine's +-15% drift cancels in the ratio):

startup  ``python -m cnn_ablations.train trainer.max_epochs=1`` (the defaults: W&B offline, the
         rich bar, checkpoints) against ``scripts/hand_lenet.py --epochs 1`` (torch alone: the
         same digits, net, optimizer and batch size, one epoch, validation and test). Wall time of
         each whole process; the ratio A/B per pair, and its median.
epoch    the same two for ``--epochs`` epochs, in a terminal (a pty: the bar draws as it does for a
         user): ``sec_per_epoch`` of ``results.json`` against the script's own.
sweep    a sweep (``--sweep``, default ``-m sweep=lenet_ablation_digits seed=0
         trainer.max_epochs=1``, the bundled digits, so it runs offline anywhere):
         wall time, and per job (from ``results.json``) the overhead finished_at - started_at -
         sec_per_epoch x epochs. With ``--compare-src DIR`` the same sweep runs, in turns, with
         the checkout at DIR (another commit: ``git worktree add DIR <commit>``) and its
         metrics must be identical.
lrn      AlexNet-lite on mnist5k_color with ``model.lrn=true`` and ``false``: sec_per_epoch, and
         the LRN layer alone (forward + backward, a (64, 24, 32, 32) batch) against torch's
         ``nn.LocalResponseNorm``.
precision AlexNet-lite on mnist5k_color (4,000 images), batch 128, with the colour studies'
         ``trainer.precision=bf16-mixed channels_last=true`` against float32:
         sec_per_epoch, for the default network and for the 2012 choices (LRN and overlapping
         pooling on). bf16 pays on CPUs with AMX or AVX-512 bf16 (and GPUs); elsewhere A is slower.
         A's first batches of each shape (the partial last batch, the 1000-image evaluation
         batch) set up oneDNN's bf16 kernels, seconds that short epochs do not amortise: A's
         ratio here understates a 55k-image epoch's, and ``--quick`` shows A slower.
levers   the converged LeNet-5 study's speed settings, each against the setting before them,
         on ``--levers-data`` (default Fashion-MNIST, 55k images), batch 128:
         parallel: a 4-job sweep (2 epochs each) with joblib's parallel jobs of one thread each
         (A) against one job at a time with torch's default threads (B): wall time (each joblib
         worker pays its own start-up, ~10 s: a short sweep can lose);
         channels_last: a 1-thread epoch with channels-last tensors (A) or not (B);
         bf16: a 1-thread epoch in bf16-mixed (A) or float32 (B), both channels-last (A is
         what ``${cpu_precision:}`` would choose on a CPU with native bf16).

Results: rich tables, and ``--out`` (JSON).
"""

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HAND = [sys.executable, str(REPO / "scripts" / "hand_lenet.py")]
TRAIN = [sys.executable, "-m", "cnn_ablations.train"]
DEFAULT_SWEEP = "-m sweep=lenet_ablation_digits seed=0 trainer.max_epochs=1"
PRECISION_NETWORKS = {"default": [], "lrn_overlap": ["model.lrn=true", "model.overlap_pool=true"]}


def run(command: list[str], cwd: Path, src: Path | None = None, tty: bool = False) -> float:
    """Run a command to its end; return its wall seconds (raise if it fails)."""
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    if src is not None:  # another checkout's package and conf/
        env["PYTHONPATH"] = str(src / "src")
    if tty and shutil.which("script"):  # a pseudo-terminal, as a user's shell gives
        command = ["script", "-qec", shlex.join(command), "/dev/null"]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(
            f"{shlex.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return seconds


def last_results(root: Path) -> dict:
    newest = max(root.glob("outputs/runs/*/*/results.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(newest.read_text())


def hand_epoch(cwd: Path, epochs: int) -> tuple[float, float]:
    """(wall seconds, sec_per_epoch) of the hand-written script."""
    env = {**os.environ}
    start = time.perf_counter()
    out = subprocess.run([*HAND, "--epochs", str(epochs)], cwd=cwd, env=env, capture_output=True)
    wall = time.perf_counter() - start
    return wall, json.loads(out.stdout.decode().strip().splitlines()[-1])["sec_per_epoch"]


def summary(pairs: list[tuple[float, float]]) -> dict:
    ratios = [a / b for a, b in pairs]
    return {
        "a": [a for a, _ in pairs],
        "b": [b for _, b in pairs],
        "ratios": ratios,
        "a_median": statistics.median(a for a, _ in pairs),
        "b_median": statistics.median(b for _, b in pairs),
        "ratio_median": statistics.median(ratios),
    }


def bench_startup(cwd: Path, pairs: int) -> dict:
    results = []
    for _ in range(pairs):
        a = run([*TRAIN, "trainer.max_epochs=1"], cwd)
        b, _ = hand_epoch(cwd, 1)
        results.append((a, b))
    return summary(results)


def bench_epoch(cwd: Path, pairs: int, epochs: int) -> dict:
    results = []
    for _ in range(pairs):
        run([*TRAIN, f"trainer.max_epochs={epochs}", "logger=csv"], cwd, tty=True)
        a = last_results(cwd)["metrics"]["sec_per_epoch"]
        _, b = hand_epoch(cwd, epochs)
        results.append((a, b))
    return {**summary(results), "epochs": epochs}


def sweep_stats(sweep_dir: Path) -> dict:
    jobs = [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/results.json"))]
    fit = [j["metrics"]["sec_per_epoch"] * j["metrics"]["epochs"] for j in jobs]
    spans = [j["finished_at"] - j["started_at"] for j in jobs]
    overhead = [s - f for s, f in zip(spans, fit, strict=True)]
    metrics = {
        p.parent.name: {k: v for k, v in json.loads(p.read_text())["metrics"].items() if "/" in k}
        for p in sweep_dir.glob("*/results.json")
    }
    return {
        "jobs": len(jobs),
        "failed": sum(j["status"] != "ok" for j in jobs),
        "fit_seconds": sum(fit),
        "overhead_median": statistics.median(overhead),
        "overhead_per_job": overhead,
        "metrics": metrics,
    }


def bench_sweep(cwd: Path, sweep: str, repeats: int, compare: Path | None) -> dict:
    sides = {"a": None} if compare is None else {"a": None, "b": compare}
    out: dict = {"command": sweep, "runs": {side: [] for side in sides}}
    for repeat in range(repeats):
        for side, src in sides.items():
            root = cwd / f"sweep-{side}-{repeat}"
            root.mkdir()
            wall = run([*TRAIN, *shlex.split(sweep)], root, src=src)
            (sweep_dir,) = [p.parent for p in root.glob("outputs/sweeps/*/*/multirun.yaml")]
            out["runs"][side].append({"wall": wall, **sweep_stats(sweep_dir)})
    for side, runs in out["runs"].items():
        out[f"{side}_wall_median"] = statistics.median(r["wall"] for r in runs)
        out[f"{side}_overhead_median"] = statistics.median(r["overhead_median"] for r in runs)
        out[f"{side}_fit_share"] = statistics.median(r["fit_seconds"] / r["wall"] for r in runs)
    if compare is not None:
        pairs = list(zip(out["runs"]["a"], out["runs"]["b"], strict=True))
        out["wall_ratio_median"] = statistics.median(a["wall"] / b["wall"] for a, b in pairs)
        out["identical_metrics"] = all(a["metrics"] == b["metrics"] for a, b in pairs)
    return out


def lrn_layer_ms(repeats: int = 15) -> dict:
    import torch

    from cnn_ablations.models.alexnet_lite import (
        LRN_ALPHA,
        LRN_BETA,
        LRN_K,
        LRN_SIZE,
        LocalResponseNorm,
    )

    x = (40 * torch.randn(64, 24, 32, 32)).relu().requires_grad_()
    layers = {
        "torch": torch.nn.LocalResponseNorm(LRN_SIZE, LRN_ALPHA * LRN_SIZE, LRN_BETA, LRN_K),
        "project": LocalResponseNorm(24),
    }
    times: dict = {name: [] for name in layers}
    for _ in range(repeats):
        for name, layer in layers.items():  # alternating
            start = time.perf_counter()
            layer(x).sum().backward()
            times[name].append(1000 * (time.perf_counter() - start))
    return {name: statistics.median(t[2:]) for name, t in times.items()}


def bench_lrn(cwd: Path, pairs: int, epochs: int, extra: list[str]) -> dict:
    command = [*TRAIN, "model=alexnet_lite", "data=mnist5k_color", "logger=csv", *extra]
    command += [f"trainer.max_epochs={epochs}", "trainer.enable_progress_bar=false"]
    results = []
    for _ in range(pairs):
        run([*command, "model.lrn=true"], cwd)
        on = last_results(cwd)["metrics"]["sec_per_epoch"]
        run([*command, "model.lrn=false"], cwd)
        off = last_results(cwd)["metrics"]["sec_per_epoch"]
        results.append((on, off))
    return {**summary(results), "epochs": epochs, "layer_ms": lrn_layer_ms()}


def bench_precision(cwd: Path, pairs: int, epochs: int, extra: list[str]) -> dict:
    command = [*TRAIN, "model=alexnet_lite", "data=mnist5k_color", "data.batch_size=128"]
    command += ["logger=csv", "test=false", "trainer.enable_progress_bar=false", *extra]
    command += [f"trainer.max_epochs={epochs}"]
    bf16 = ["trainer.precision=bf16-mixed", "channels_last=true"]
    out = {"epochs": epochs}
    for name, network in PRECISION_NETWORKS.items():
        results = []
        for _ in range(pairs):
            run([*command, *network, *bf16], cwd)
            a = last_results(cwd)["metrics"]["sec_per_epoch"]
            run([*command, *network, "trainer.precision=32"], cwd)
            b = last_results(cwd)["metrics"]["sec_per_epoch"]
            results.append((a, b))
        out[name] = summary(results)
    return out


def bench_levers(cwd: Path, pairs: int, data: str, extra: list[str]) -> dict:
    settings = [f"data={data}", "data.batch_size=128", "logger=csv", "test=false"]
    settings += ["trainer.enable_progress_bar=false", "trainer.max_epochs=1", *extra]
    one_thread = [*TRAIN, *settings, "torch_threads=1", "trainer.precision=32"]
    out: dict = {"data": data}
    parallel = []
    for repeat in range(pairs):  # 4 jobs of 2 epochs: worker start-up is paid once per sweep
        sweep = [*TRAIN, "-m", *settings, "seed=0,1,2,3", "trainer.max_epochs=2"]
        a = run([*sweep, "launcher=joblib", f"hydra.sweep.dir={cwd}/levers-{repeat}-a"], cwd)
        b = run([*sweep, f"hydra.sweep.dir={cwd}/levers-{repeat}-b"], cwd)
        parallel.append((a, b))
    out["parallel"] = summary(parallel)
    for lever, (with_it, without) in {
        "channels_last": (["channels_last=true"], ["channels_last=false"]),
        "bf16": (
            ["channels_last=true", "trainer.precision=bf16-mixed"],
            ["channels_last=true"],
        ),
    }.items():
        results = []
        for _ in range(pairs):
            run([*one_thread, *with_it], cwd)
            a = last_results(cwd)["metrics"]["sec_per_epoch"]
            run([*one_thread, *without], cwd)
            b = last_results(cwd)["metrics"]["sec_per_epoch"]
            results.append((a, b))
        out[lever] = summary(results)
    return out


def report_rows(report: dict) -> list[tuple[str, ...]]:
    """(section, A, B, A/B, note) per section that ran."""

    def paired(label: str, s: dict, digits: int, note: str) -> tuple[str, ...]:
        a, b = f"{s['a_median']:.{digits}f} s", f"{s['b_median']:.{digits}f} s"
        return label, a, b, f"{s['ratio_median']:.2f}", note

    rows = []
    if "startup" in report:
        note = "B: the hand-written script; whole processes"
        rows.append(paired("startup: a 1-epoch run", report["startup"], 2, note))
    if "epoch" in report:
        note = f"{report['epoch']['epochs']} epochs, in a terminal; B: the hand loop"
        rows.append(paired("epoch: the default run", report["epoch"], 3, note))
    if "sweep" in report:
        s = report["sweep"]
        note = f"per-job overhead {s['a_overhead_median']:.2f} s; fits {s['a_fit_share']:.0%}"
        b, ratio = "", ""
        if "b_wall_median" in s:
            b, ratio = f"{s['b_wall_median']:.1f} s", f"{s['wall_ratio_median']:.2f}"
            note += f" (B: {s['b_overhead_median']:.2f} s; {s['b_fit_share']:.0%})"
            note += "; identical metrics" if s["identical_metrics"] else "; METRICS DIFFER"
        rows.append(("sweep: wall", f"{s['a_wall_median']:.1f} s", b, ratio, note))
    if "lrn" in report:
        layer = report["lrn"]["layer_ms"]
        note = f"A: LRN on, B: off; layer {layer['project']:.1f} ms (torch's {layer['torch']:.1f})"
        rows.append(paired("lrn: AlexNet-lite epoch", report["lrn"], 2, note))
    if "precision" in report:
        note = "A: bf16-mixed + channels_last, B: float32; batch 128"
        for name in PRECISION_NETWORKS:
            label = f"precision: AlexNet-lite ({name}) epoch"
            rows.append(paired(label, report["precision"][name], 2, note))
    if "levers" in report:
        levers, data = report["levers"], report["levers"]["data"]
        notes = {
            "parallel": f"4-job sweep wall, {data}: A joblib 1-thread jobs, B 1 job x default",
            "channels_last": f"1-thread LeNet-5 epoch, {data}: A channels-last, B contiguous",
            "bf16": f"1-thread LeNet-5 epoch, {data}: A bf16-mixed, B float32 (channels-last)",
        }
        for lever, note in notes.items():
            rows.append(paired(f"levers: {lever}", levers[lever], 2, note))
    return rows


def print_report(report: dict) -> None:
    from rich.table import Table

    from cnn_ablations.report.document import report_console

    table = Table(title="make bench-sweep (medians; A/B: the median of paired ratios)")
    for column in ("section", "A", "B", "A/B", "note"):
        table.add_column(column, justify="left" if column in ("section", "note") else "right")
    for row in report_rows(report):
        table.add_row(*row)
    report_console().print(table)  # a log file gets whole rows, not 80 columns


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", default="startup,epoch,sweep,lrn,precision,levers")
    parser.add_argument("--levers-data", default="fashion_mnist", help="the levers' data set")
    parser.add_argument("--pairs", type=int, default=5, help="paired runs per section")
    parser.add_argument(
        "--epochs", type=int, default=5, help="epochs of the epoch and precision sections"
    )
    parser.add_argument("--sweep", default=DEFAULT_SWEEP, help="the sweep's overrides")
    parser.add_argument("--sweep-repeats", type=int, default=2)
    parser.add_argument("--compare-src", type=Path, help="another checkout, for the sweep")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 pair, tiny runs")
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "bench" / "bench_sweep.json")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    if args.quick:
        args.pairs, args.epochs, args.sweep_repeats = 1, 1, 1
        args.sweep = "-m seed=0,1 trainer.max_epochs=1 trainer.limit_train_batches=5"
    report: dict = {"python": sys.version.split()[0], "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="cnn-bench-sweep-") as tmp:
        cwd = Path(tmp)
        for section in sections:
            print(f"bench-sweep: {section} ...", file=sys.stderr, flush=True)
            if section == "startup":
                report["startup"] = bench_startup(cwd, args.pairs)
            elif section == "epoch":
                report["epoch"] = bench_epoch(cwd, args.pairs, args.epochs)
            elif section == "sweep":
                report["sweep"] = bench_sweep(cwd, args.sweep, args.sweep_repeats, args.compare_src)
            elif section == "lrn":
                extra = ["trainer.limit_train_batches=5"] if args.quick else []
                pairs, epochs = max(args.pairs // 2, 1), max(args.epochs // 2, 1)
                report["lrn"] = bench_lrn(cwd, pairs, epochs, extra)
            elif section == "precision":
                extra = ["trainer.limit_train_batches=5"] if args.quick else []
                pairs = max(args.pairs // 2, 1)
                report["precision"] = bench_precision(cwd, pairs, args.epochs, extra)
            elif section == "levers":
                extra = ["trainer.limit_train_batches=5"] if args.quick else []
                pairs = max(args.pairs // 2, 1)
                report["levers"] = bench_levers(cwd, pairs, args.levers_data, extra)
            else:
                choices = "startup, epoch, sweep, lrn, precision, levers"
                parser.error(f"unknown section {section!r}; choose from {choices}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print_report(report)
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
