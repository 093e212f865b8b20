"""Read an offline W&B run for tests: its run record (id, group, job type, tags, name), the
metric keys of its history, its config and its exit code.

wandb >= 0.30 has no public reader for offline runs (ECOSYSTEM.md). Its ``run-<id>.wandb`` file
is a LevelDB-style log of protobuf ``Record``s: a 7-byte header, then 32 KiB blocks of chunks,
each with a 7-byte header (crc32, little-endian length, type 1 full / 2 first / 3 middle / 4 last).
"""

import json
import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2 as pb

FILE_HEADER, BLOCK, CHUNK_HEADER = 7, 32768, 7


def records(path: Path):
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", "not a W&B run file"
    pos, pending = FILE_HEADER, b""
    while pos + CHUNK_HEADER <= len(data):
        if BLOCK - pos % BLOCK < CHUNK_HEADER:  # block trailer too short for a header: skip
            pos += BLOCK - pos % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + CHUNK_HEADER])
        chunk = data[pos + CHUNK_HEADER : pos + CHUNK_HEADER + length]
        pos += CHUNK_HEADER + length
        if kind == 0 and length == 0:
            continue
        pending += chunk
        if kind in (1, 4):  # full or last: one complete record
            record = pb.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def run_record(run_dir: Path) -> pb.RunRecord:
    """The RunRecord of the offline run in ``run_dir`` (an ``offline-run-*`` directory)."""
    return next(r.run for r in records(_run_file(run_dir)) if r.WhichOneof("record_type") == "run")


def _run_file(run_dir: Path) -> Path:
    (path,) = Path(run_dir).glob("run-*.wandb")
    return path


def history_keys(run_dir: Path) -> set[str]:
    """Every metric key the run logged to its history (``val/acc``, ``epoch``, ...)."""
    return {
        item.key or ".".join(item.nested_key)
        for record in records(_run_file(run_dir))
        if record.WhichOneof("record_type") == "history"
        for item in record.history.item
    }


def config(run_dir: Path) -> dict:
    """The run's config as W&B holds it (top-level key -> value, nested dicts as logged): the
    run record's (``wandb.init(config=...)``) updated by each config record (Lightning's
    ``log_hyperparams``)."""
    updates = [
        record.run.config if record.WhichOneof("record_type") == "run" else record.config
        for record in records(_run_file(run_dir))
        if record.WhichOneof("record_type") in ("run", "config")
    ]
    return {
        item.key or ".".join(item.nested_key): json.loads(item.value_json)
        for update in updates
        for item in update.update
    }


def exit_code(run_dir: Path) -> int | None:
    """The exit code the run was finished with (W&B marks a non-zero one failed), or None if
    it was never finished."""
    codes = [
        record.exit.exit_code
        for record in records(_run_file(run_dir))
        if record.WhichOneof("record_type") == "exit"
    ]
    return codes[-1] if codes else None
