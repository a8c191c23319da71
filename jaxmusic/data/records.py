"""The on-disk format: ArrayRecord shards of segment records plus a manifest.

A record is one fixed-length segment of one track: a dict of numpy arrays
(features laid out `FxN`, waveform `T`) and scalars (track, segment, offset).
It is serialised as a small JSON header followed by the raw buffers, so a
reader gets zero-copy `np.frombuffer` views and no pickle is ever loaded.
"""

import json
import os
import struct
from typing import Any, Mapping

import numpy as np

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
REJECTED = "rejected.jsonl"
SPLITS = ("train", "valid", "test")


def encode(record: Mapping[str, Any]) -> bytes:
  header, buffers, offset = {}, [], 0
  for name, value in record.items():
    arr = np.asarray(value)  # tobytes() is C-order; 0-d stays 0-d
    header[name] = [arr.dtype.str, list(arr.shape), offset]
    buffers.append(arr.tobytes())
    offset += arr.nbytes
  head = json.dumps(header).encode()
  return struct.pack("<I", len(head)) + head + b"".join(buffers)


def decode(blob: bytes) -> dict[str, np.ndarray]:
  (n_head,) = struct.unpack_from("<I", blob)
  header = json.loads(blob[4:4 + n_head])
  base = 4 + n_head
  out = {}
  for name, (dtype, shape, offset) in header.items():
    dt = np.dtype(dtype)
    count = int(np.prod(shape, dtype=np.int64))
    arr = np.frombuffer(blob, dt, count, base + offset).reshape(shape)
    out[name] = arr if arr.ndim else arr[()]
  return out


def shard_paths(directory: str, split: str, num_shards: int) -> list[str]:
  return [os.path.join(directory, f"{split}-{i:05d}-of-{num_shards:05d}"
                       ".array_record") for i in range(num_shards)]


def write_shards(directory: str, split: str, blobs: list[bytes],
                 num_shards: int) -> list[str]:
  """Writes blobs in order over `num_shards` contiguous shards."""
  from array_record.python import array_record_module  # pylint: disable=g-import-not-at-top
  paths = shard_paths(directory, split, num_shards)
  bounds = np.linspace(0, len(blobs), num_shards + 1).astype(int)
  for path, lo, hi in zip(paths, bounds[:-1], bounds[1:]):
    tmp = path + ".tmp"
    # group_size:1 keeps random access to one record at one chunk read.
    writer = array_record_module.ArrayRecordWriter(tmp, "group_size:1")
    for blob in blobs[lo:hi]:
      writer.write(blob)
    writer.close()
    os.replace(tmp, path)
  return [os.path.basename(p) for p in paths]


def count_records(path: str) -> int:
  from array_record.python import array_record_module  # pylint: disable=g-import-not-at-top
  reader = array_record_module.ArrayRecordReader(path)
  try:
    return reader.num_records()
  finally:
    reader.close()


def load_manifest(directory: str) -> dict:
  path = os.path.join(directory, MANIFEST)
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"{path}: no prepared dataset here; run `python -m jaxmusic.prepare`")
  with open(path) as f:
    manifest = json.load(f)
  if manifest.get("format_version") != FORMAT_VERSION:
    raise ValueError(f"{path}: format_version {manifest.get('format_version')}"
                     f" is not {FORMAT_VERSION}; re-run prepare")
  return manifest


def check_grid(data_cfg, manifest: dict, directory: str,
               hop: bool = True) -> None:
  """Raises ValueError, in one line, where the run's frame grid
  (`data.sample_rate`, `data.hop_length`) is not the prepared collection's,
  naming both and the `prepare` command that makes the run's. `hop=False`
  compares the sample rate only (export of an audio encoder, which cuts
  its crops from the waveform and reads no frame feature)."""
  want = (data_cfg.sample_rate, data_cfg.get("hop_length", 512))
  have = (manifest["sample_rate"], manifest["hop_length"])
  if want != have and (hop or want[0] != have[0]):
    raise ValueError(
        f"{directory}: prepared at {have[0]} Hz with a {have[1]}-sample hop, "
        f"but the run reads {want[0]} Hz with a {want[1]}-sample hop "
        f"(config.data.sample_rate, config.data.hop_length); prepare it "
        f"again with `python -m jaxmusic.prepare --sample_rate {want[0]} "
        f"--hop_length {want[1]} ...`, or set the config to the collection's")


def verify(directory: str, manifest: dict) -> bool:
  """True when every shard the manifest names exists with its record count."""
  for info in manifest["splits"].values():
    total = 0
    for name in info["shards"]:
      path = os.path.join(directory, name)
      if not os.path.exists(path):
        return False
      total += count_records(path)
    if total != info["num_records"]:
      return False
  return True
