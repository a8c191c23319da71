"""Writing a target set: every split's codes, resumable per track, locally
or with Beam; k-means sets from any frame source; sets imported from
`.npy` files."""

import dataclasses
import functools
import json
import logging
import os
import shutil
from typing import Callable

import numpy as np
from tqdm import tqdm

from jaxmusic.data import beam_map
from jaxmusic.data import records
from jaxmusic.data.targets.frames import acoustic_frames
from jaxmusic.data.targets.kmeans import assign
from jaxmusic.data.targets.kmeans import fit_kmeans
from jaxmusic.data.targets.kmeans import standardize
from jaxmusic.data.targets.kmeans import usage
from jaxmusic.data.targets.names import KMeansSpec
from jaxmusic.data.targets.names import SOURCES
from jaxmusic.data.targets.names import store_dir
from jaxmusic.data.targets.names import SYMBOLIC

def _write_manifest_entry(directory: str, name: str, info: dict):
  manifest = records.load_manifest(directory)
  manifest.setdefault("targets", {})[name] = info
  tmp = os.path.join(directory, records.MANIFEST + ".tmp")
  with open(tmp, "w") as f:
    json.dump(manifest, f)
  os.replace(tmp, os.path.join(directory, records.MANIFEST))


def _work_path(work: str, split: str, track: dict) -> str:
  return os.path.join(work, f"{split}-{track['first_record']:010d}.npy")


def _work_codes(codes_fn, work, item):
  """Beam worker: one track's codes to its work file (atomic)."""
  split, track = item
  path = _work_path(work, split, track)
  if not os.path.exists(path):
    np.save(path + ".tmp.npy", np.asarray(codes_fn(split, track)))
    os.replace(path + ".tmp.npy", path)


def write_codes(data, name: str, codes_fn: Callable, codebooks: int,
                k: int, info: dict, progress: bool = True,
                flush_every: int = 64, runner: str = "local",
                workers: int = 2, beam_args=()) -> dict:
  """Fills `targets/NAME/SPLIT.npy` with `codes_fn(split, track) -> C x N`
  per track (N = the track's frames), resuming where a previous call
  stopped (progress is saved every `flush_every` tracks), then names the
  set in the manifest. Returns its entry.

  `runner="beam"` computes the codes as a Beam pipeline first
  (`beam_map`; by default the DirectRunner with `workers` processes), one
  work file per track, which this process then writes in order: the same
  bytes as the local runner."""
  if runner not in ("local", "beam"):
    raise ValueError(f"--runner={runner}: use local or beam")
  out = store_dir(data.directory, name)
  os.makedirs(out, exist_ok=True)
  progress_path = os.path.join(out, "progress.json")
  fps = data.frames_per_segment
  done = {}
  if os.path.exists(progress_path):
    with open(progress_path) as f:
      saved = json.load(f)
    if saved.get("fingerprint") == data.manifest["fingerprint"] and \
        saved.get("info") == info:
      done = saved["done"]
  dtype = np.int16 if k <= np.iinfo(np.int16).max else np.int32
  if runner == "beam":
    work = os.path.join(out, "work")
    os.makedirs(work, exist_ok=True)
    # The tracks the loop below will write (a split whose store is gone
    # restarts from its first track).
    start = {split: done.get(split, 0) if os.path.exists(
        os.path.join(out, f"{split}.npy")) else 0 for split in records.SPLITS}
    todo = [(split, t) for split in records.SPLITS
            for t in data.manifest["splits"][split]["tracks"][start[split]:]]
    # Elements are plain data; the closure travels with the function,
    # which Beam pickles with its own (closure-aware) pickler.
    beam_map.beam_map(todo, functools.partial(_work_codes, codes_fn, work),
                      workers, beam_args)
    codes_fn = lambda split, t: np.load(_work_path(work, split, t))
  counts = np.zeros(k, np.int64)
  for split in records.SPLITS:
    info_s = data.manifest["splits"][split]
    path = os.path.join(out, f"{split}.npy")
    shape = (info_s["num_records"], codebooks, fps)
    if split not in done or not os.path.exists(path):
      done[split] = 0
      np.lib.format.open_memmap(path, "w+", dtype, shape).flush()
    store = np.lib.format.open_memmap(path, "r+")
    tracks = info_s["tracks"]
    for i in tqdm(range(done[split], len(tracks)), desc=f"targets: {split}",
                  unit="track", disable=not progress):
      t = tracks[i]
      codes_CxN = np.asarray(codes_fn(split, t))
      want = t["num_segments"] * fps
      if codes_CxN.shape != (codebooks, want):
        raise ValueError(f"targets {name}: track {t['id']} gave codes of "
                         f"shape {codes_CxN.shape}, not {(codebooks, want)}")
      if codes_CxN.min() < 0 or codes_CxN.max() >= k:
        raise ValueError(f"targets {name}: track {t['id']} has codes "
                         f"outside 0..{k - 1}")
      store[t["first_record"]:t["first_record"] + t["num_segments"]] = (
          codes_CxN.reshape(codebooks, t["num_segments"], fps)
          .transpose(1, 0, 2))
      if (i + 1) % flush_every == 0 or i + 1 == len(tracks):
        store.flush()
        done[split] = i + 1
        with open(progress_path + ".tmp", "w") as f:
          json.dump({"fingerprint": data.manifest["fingerprint"],
                     "info": info, "done": done}, f)
        os.replace(progress_path + ".tmp", progress_path)
    if split == "train":
      for lo in range(0, len(store), 4096):
        counts += np.bincount(store[lo:lo + 4096].reshape(-1).astype(
            np.int64), minlength=k)
    del store
  if runner == "beam":
    shutil.rmtree(os.path.join(out, "work"), ignore_errors=True)
  entry = {**info, "k": int(k), "codebooks": int(codebooks),
           "dtype": np.dtype(dtype).name,
           "fingerprint": data.manifest["fingerprint"],
           "usage": usage(counts)}
  _write_manifest_entry(data.directory, name, entry)
  return entry


def _centroids(data, name, info, frames_fn, spec, progress):
  """The fit's centroids and scale (`fit_kmeans`): `centroids.npy` (and
  `scale.npy`) when a finished fit with the same settings is there, else a
  new fit over the train split."""
  out = store_dir(data.directory, name)
  os.makedirs(out, exist_ok=True)
  path = os.path.join(out, "centroids.npy")
  scale_path = os.path.join(out, "scale.npy")
  meta_path = os.path.join(out, "fit.json")
  if os.path.exists(path) and os.path.exists(meta_path):
    with open(meta_path) as f:
      if json.load(f) == info:
        return np.load(path), (np.load(scale_path) if spec.standardize
                               else None)
  stream = (frames_fn("train", t) for t in data.tracks("train"))
  centroids, scale, n_fit = fit_kmeans(stream, spec, progress)
  logging.info("targets %s: k-means fitted on %d frames", name, n_fit)
  if scale is not None:
    np.save(scale_path + ".tmp.npy", scale)
    os.replace(scale_path + ".tmp.npy", scale_path)
  np.save(path + ".tmp.npy", centroids)
  os.replace(path + ".tmp.npy", path)
  with open(meta_path, "w") as f:
    json.dump(info, f)
  return centroids, scale


def kmeans_targets(data, name: str, frames_fn: Callable, spec: KMeansSpec,
                   info: dict, progress: bool = True, **runner) -> dict:
  """k-means over `frames_fn(split, track) -> N x D`, then every frame of
  every split assigned (`runner`: write_codes's runner, workers and
  beam_args); returns the manifest entry."""
  info = {**info, "method": "kmeans", **dataclasses.asdict(spec)}
  if not spec.standardize:
    # An unstandardized fit's info has no `standardize` key: the form its
    # stored fits and codes carry, so they are found and reused.
    del info["standardize"]
  centroids, scale = _centroids(data, name, info, frames_fn, spec, progress)
  return write_codes(
      data, name,
      lambda split, t: assign(standardize(frames_fn(split, t), scale),
                              centroids)[None],
      1, spec.k, info, progress, **runner)


def acoustic_targets(data, name: str, feature: str, spec: KMeansSpec,
                     progress: bool = True, **runner) -> dict:
  """Iteration 1: k-means on an acoustic or piano-roll feature."""
  if feature not in SOURCES:
    raise ValueError(f"--feature={feature}: use one of {', '.join(SOURCES)}")
  data.has("pianoroll" if feature in SYMBOLIC else "waveform")
  return kmeans_targets(
      data, name, lambda split, t: acoustic_frames(feature, data, split, t),
      spec, {"source": feature, "run": None, "layer": None}, progress,
      **runner)


def import_targets(data, name: str, directory: str, k: int,
                   rate: float | None = None, progress: bool = True) -> dict:
  """Codes computed elsewhere: `DIRECTORY/TRACK_ID.npy` holding `C x M`
  ints (or `M` for one codebook) at `rate` frames per second (default: the
  data's frame rate), resampled to the frame grid by nearest frame time."""
  frame_rate = data.manifest["frame_rate"]
  rate = rate or frame_rate
  first = None

  def codes(split, track):
    nonlocal first
    path = os.path.join(directory, f"{track['id']}.npy")
    if not os.path.exists(path):
      raise FileNotFoundError(f"{path}: no codes for track {track['id']}")
    arr = np.load(path)
    arr = arr[None] if arr.ndim == 1 else arr
    if first is None:
      first = arr.shape[0]
    if arr.shape[0] != first:
      raise ValueError(f"{path}: {arr.shape[0]} codebooks, not {first}")
    n = track["num_segments"] * data.frames_per_segment
    # Frame j is centred at j / frame_rate s; code m covers
    # [m / rate, (m + 1) / rate).
    # (The epsilon keeps j * 1.0 from landing a rounding error below j.)
    idx = np.minimum(np.floor(np.arange(n) * (rate / frame_rate) + 1e-6)
                     .astype(np.int64), arr.shape[1] - 1)
    return arr[:, idx]

  tracks = data.tracks("train") or data.tracks("test")
  probe = np.load(os.path.join(directory, f"{tracks[0]['id']}.npy"))
  codebooks = 1 if probe.ndim == 1 else probe.shape[0]
  return write_codes(data, name, codes, codebooks, k,
                     {"source": "import", "run": None, "layer": None,
                      "path": os.path.abspath(directory), "rate": rate},
                     progress)
