"""Read the run record (id, group, job type, tags, name) of an offline W&B run, for tests.

wandb >= 0.30 has no public reader for offline runs (ECOSYSTEM.md). Its ``run-<id>.wandb`` file
is a LevelDB-style log of protobuf ``Record``s: a 7-byte header, then 32 KiB blocks of chunks,
each with a 7-byte header (crc32, little-endian length, type 1 full / 2 first / 3 middle / 4 last).
"""

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
    (path,) = Path(run_dir).glob("run-*.wandb")
    return next(r.run for r in records(path) if r.WhichOneof("record_type") == "run")
