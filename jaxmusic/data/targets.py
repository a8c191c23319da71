"""Frame targets for masked prediction, stored beside a prepared collection.

A target set holds, for every segment record of every split, `C x N` int16
codes on the features' frame grid (N = frames_per_segment, frame k at
sample k * hop): C codebooks, each an id below K. It lives in
`PREPARED/targets/NAME/SPLIT.npy` (records x C x N, memory-mapped), and the
manifest names it under "targets" with K, C, the source and the run. The
`frames` pipeline reads a target crop with the same `span` as the input
crop, so targets and inputs cannot drift out of alignment.

Three ways to make one:

  k-means     MiniBatchKMeans on an acoustic feature (`mfcc`: 13 MFCC
              with delta and delta-delta, 39-d, as HuBERT's first
              iteration; `logmel`, `cqt` in dB, `chroma`, `key_chroma`:
              chroma relative to the track's estimated key), or for MIDI
              collections on the piano roll itself (`pianoroll`: 128
              velocities; `roll_chroma`: 12 pitch classes; `roll_texture`:
              what stays when the music is transposed: polyphony, onsets,
              pitch span, loudness and the chord's interval classes;
              `roll_key_chroma`: pitch classes relative to the track's
              estimated key). The fit reads a `fit_fraction` of train
              frames through a fixed-size reservoir (memory bounded by
              `max_fit_frames`, whatever the collection size), then every
              frame of every split is assigned. With `standardize`, each
              dimension is z-scored over the fit's sample first (its
              scale kept beside the centroids): raw MFCC clusters mostly
              c0, the loudness.
  from a run  the same k-means on a trained run's layer-L frame outputs
              (HuBERT's second iteration), streamed segment by segment.
  import      codes computed elsewhere (EnCodec's 8 x 1024 at 75 Hz, ...):
              one `.npy` per track id, resampled to the frame grid.

Assignment is resumable: progress is recorded per split and track, and a
finished fit (`centroids.npy`) is reused.
"""

import dataclasses
import functools
import json
import logging
import math
import os
import shutil
from typing import Callable

import numpy as np
from tqdm import tqdm

from jaxmusic.data import beam_map
from jaxmusic.data import features as feats
from jaxmusic.data import records

ACOUSTIC = ("mfcc", "logmel", "cqt", "chroma", "key_chroma")
SYMBOLIC = ("pianoroll", "roll_chroma", "roll_texture", "roll_key_chroma")
SOURCES = ACOUSTIC + SYMBOLIC
TARGETS_DIR = "targets"


def default_name(feature: str, k: int, standardize: bool = False) -> str:
  """The name a k-means target set gets by default, e.g. `mfcc_k100`, or
  `mfcc_z_k100` when the frames are z-scored first; the embedded corpus
  computes a set so named on first use."""
  return f"{feature}{'_z' if standardize else ''}_k{k}"


def parse_default_name(name: str):
  """`(feature, k, standardize)` for a name of the default form, else
  None."""
  feature, _, k = name.rpartition("_k")
  standardize = feature.endswith("_z") and feature[:-2] in SOURCES
  feature = feature[:-2] if standardize else feature
  if feature in SOURCES and k.isdigit():
    return feature, int(k), standardize
  return None


@dataclasses.dataclass(frozen=True)
class KMeansSpec:
  k: int = 100
  fit_fraction: float = 0.1
  max_fit_frames: int = 1_000_000
  batch_frames: int = 10_000
  seed: int = 0
  # z-score each dimension over the fit's sample before clustering.
  standardize: bool = False


def store_dir(directory: str, name: str) -> str:
  return os.path.join(directory, TARGETS_DIR, name)


def _whole_track(data, split, track, feature):
  """A track's whole `feature`, through the same `span` that cuts training
  crops (so dequantised and scaled as the encoder reads it)."""
  return data.span(split, track, feature, 0,
                   track["num_segments"] * data.segment_samples)


def acoustic_frames(feature: str, data, split, track) -> np.ndarray:
  """`N x D` frames of `feature` over one track, on the frame grid."""
  n = track["num_segments"] * data.frames_per_segment
  if feature in SYMBOLIC:
    # Velocities 0..127 to [0, 1], the scale the frontend gives encoders.
    roll = _whole_track(data, split, track, "pianoroll")[:, :n] / 127.0
    if feature == "roll_texture":
      return roll_texture(roll)
    if feature == "roll_key_chroma":
      return key_relative(pitch_classes(roll)).T
    if feature == "roll_chroma":
      roll = pitch_classes(roll)
    return roll.T
  cfg = feats.FeatureConfig(**data.manifest["feature_config"])
  wav = _whole_track(data, split, track, "waveform")
  if feature == "mfcc":
    import librosa  # pylint: disable=g-import-not-at-top
    m = librosa.feature.mfcc(y=wav, sr=cfg.sample_rate, n_mfcc=13,
                             n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                             n_mels=cfg.n_mels)[:, :n]
    # librosa's 9-frame regression needs 9 frames; a segment has more.
    out = np.concatenate([m, librosa.feature.delta(m),
                          librosa.feature.delta(m, order=2)])
  elif feature == "key_chroma":
    out = key_relative(feats.audio_feature("chroma", wav, cfg)[:, :n])
  else:
    out = feats.audio_feature(feature, wav, cfg)[:, :n]
    if feature == "cqt":
      import librosa  # pylint: disable=g-import-not-at-top
      out = librosa.amplitude_to_db(out, ref=1.0, top_db=80.0)
  return out.T.astype(np.float32)


def roll_texture(roll_PxN: np.ndarray) -> np.ndarray:
  """`N x 10` transposition-invariant frames of a `128 x N` piano roll in
  [0, 1]: sounding notes, note onsets, pitch span in octaves, mean
  velocity and the interval-class vector (how many pairs of sounding
  pitch classes lie 1..6 semitones apart). Absolute-pitch codes
  (`pianoroll`, `roll_chroma`) cluster chord shapes at their root; when
  roots vary from piece to piece, predicting them teaches key, not style,
  while these codes carry rhythm, density and chord quality."""
  on_PxN = roll_PxN > 0
  before_PxN = np.pad(on_PxN[:, :-1], ((0, 0), (1, 0)))
  sounding_N = on_PxN.sum(0)
  onsets_N = (on_PxN & ~before_PxN).sum(0)
  pitch_P = np.arange(len(on_PxN))[:, None]
  top_N = np.where(on_PxN, pitch_P, -1).max(0)
  bottom_N = np.where(on_PxN, pitch_P, len(on_PxN)).min(0)
  span_N = np.maximum(top_N - bottom_N, 0) / 12.0
  velocity_N = roll_PxN.sum(0) / np.maximum(sounding_N, 1)
  classes_12xN = np.zeros((12, on_PxN.shape[1]), np.float32)
  for p in range(12):
    classes_12xN[p] = on_PxN[p::12].any(0)
  # Pairs of sounding pitch classes at each interval class 1..6.
  intervals_6xN = np.stack([
      (classes_12xN * np.roll(classes_12xN, -d, axis=0)).sum(0)
      / (2.0 if d == 6 else 1.0) for d in range(1, 7)])
  return np.concatenate(
      [np.stack([sounding_N, onsets_N, span_N, velocity_N]),
       intervals_6xN]).T.astype(np.float32)


def pitch_classes(roll_PxN: np.ndarray) -> np.ndarray:
  """`12 x N`: the loudest note of each pitch class (C first)."""
  return np.stack([roll_PxN[p::12].max(axis=0) for p in range(12)])


# Krumhansl & Kessler's (1982) probe-tone ratings, tonic first.
KK_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29,
            2.88)
KK_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34,
            3.17)


def estimate_tonic(chroma_12xN: np.ndarray) -> int:
  """The tonic pitch class of the key whose Krumhansl-Kessler profile
  correlates best with the track's pitch-class weights (Krumhansl and
  Schmuckler's key finding); 0 for a silent track."""
  weights_12 = chroma_12xN.sum(axis=1)
  if not weights_12.any():
    return 0
  best, tonic = -np.inf, 0
  for profile in (KK_MAJOR, KK_MINOR):
    for t in range(12):
      r = np.corrcoef(weights_12, np.roll(profile, t))[0, 1]
      if r > best:
        best, tonic = r, t
  return tonic


def key_relative(chroma_12xN: np.ndarray) -> np.ndarray:
  """`12 x N` pitch classes rotated so the track's estimated tonic is
  class 0: scale degrees, which carry mode and harmony, where the chroma
  itself carries the key the track happens to be in. The key is estimated
  over the whole track, so a frame's codes do not depend on its crop."""
  return np.roll(chroma_12xN, -estimate_tonic(chroma_12xN), axis=0)


def assign(frames_NxD: np.ndarray, centroids_KxD: np.ndarray,
           chunk: int = 65536) -> np.ndarray:
  """Nearest centroid (squared Euclidean) of every frame, in float64 and
  in chunks, as scikit-learn's `KMeans.predict`."""
  c = centroids_KxD.astype(np.float64)
  c_sq = np.sum(c * c, axis=1)
  out = np.empty(len(frames_NxD), np.int64)
  for lo in range(0, len(frames_NxD), chunk):
    x = frames_NxD[lo:lo + chunk].astype(np.float64)
    out[lo:lo + chunk] = np.argmin(c_sq[None] - 2.0 * x @ c.T, axis=1)
  return out


class Reservoir:
  """A uniform sample of at most `size` rows of a stream (Algorithm R, a
  chunk at a time): the k-means fit's memory is fixed by `size`."""

  def __init__(self, size: int, seed: int):
    self.size, self.seen = size, 0
    self.rng = np.random.default_rng(seed)
    self.rows = None
    self.filled = 0

  def add(self, chunk_NxD: np.ndarray):
    if self.rows is None:
      self.rows = np.empty((self.size, chunk_NxD.shape[1]), np.float32)
    take = min(len(chunk_NxD), self.size - self.filled)
    self.rows[self.filled:self.filled + take] = chunk_NxD[:take]
    self.filled += take
    rest = chunk_NxD[take:]
    if len(rest):
      slot = self.rng.integers(0, self.seen + take + np.arange(len(rest)) + 1)
      keep = slot < self.size
      self.rows[slot[keep]] = rest[keep]
    self.seen += len(chunk_NxD)

  def sample(self) -> np.ndarray:
    return self.rows[:self.filled]


def fit_kmeans(frame_stream, spec: KMeansSpec, progress: bool = True):
  """MiniBatchKMeans over a reservoir sample of `fit_fraction` of the
  frames `frame_stream` yields; HuBERT's settings (batch 10,000, k-means++
  init, 20 inits, no reassignment). Returns `(centroids_KxD, scale_2xD,
  fit_frames)`: `scale_2xD` is the sample's mean and standard deviation
  per dimension, which the frames are z-scored by before clustering and
  assignment, with `spec.standardize`, else None."""
  from sklearn.cluster import MiniBatchKMeans  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(spec.seed)
  reservoir = Reservoir(spec.max_fit_frames, spec.seed + 1)
  for frames_NxD in tqdm(frame_stream, desc="targets: sample", unit="track",
                         disable=not progress):
    pick = rng.random(len(frames_NxD)) < spec.fit_fraction
    if pick.any():
      reservoir.add(frames_NxD[pick])
  sample = reservoir.sample()
  if len(sample) < spec.k:
    raise ValueError(f"only {len(sample)} frames sampled for k={spec.k}: "
                     "raise --fit_fraction")
  scale = None
  if spec.standardize:
    std_D = sample.std(0)
    # A constant dimension is divided by 1 (it is 0 once centred).
    scale = np.stack([sample.mean(0), np.where(std_D > 0, std_D, 1.0)])
    sample = standardize(sample, scale)
  km = MiniBatchKMeans(n_clusters=spec.k, init="k-means++",
                       batch_size=min(spec.batch_frames, len(sample)),
                       max_iter=100, n_init=20, max_no_improvement=100,
                       reassignment_ratio=0.0, random_state=spec.seed,
                       compute_labels=False)
  km.fit(sample)
  return km.cluster_centers_.astype(np.float32), scale, len(sample)


def standardize(frames_NxD: np.ndarray, scale_2xD) -> np.ndarray:
  """Frames z-scored by a fit's `scale_2xD` (mean, std); unchanged when
  the fit did not standardize (None)."""
  if scale_2xD is None:
    return frames_NxD
  return ((frames_NxD - scale_2xD[0]) / scale_2xD[1]).astype(np.float32)


def usage(counts_K: np.ndarray) -> dict:
  """How many of the K codes are used, and the codes' entropy (bits)."""
  k = len(counts_K)
  p = counts_K[counts_K > 0] / max(counts_K.sum(), 1)
  return {"used": int((counts_K > 0).sum()), "k": int(k),
          "entropy_bits": float(-(p * np.log2(p)).sum()),
          "max_entropy_bits": float(math.log2(k))}


def usage_line(name: str, info: dict) -> str:
  u = info["usage"]
  return (f"targets {name}: {info['codebooks']} x K={info['k']} from "
          f"{info['source']}; train uses {u['used']} of {u['k']} codes, "
          f"entropy {u['entropy_bits']:.2f} of {u['max_entropy_bits']:.2f} "
          "bits")


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


def run_layer_frames(encoder, data, layer: int, batch: int = 8):
  """`(split, track) -> N x D`: a frozen run's layer-`layer` frames, one
  segment record per encoder call. Layers count as `export --layers all`
  and `transformers`' hidden_states do: for the transformer 0 is its input
  embedding and L its L-th layer's output (fairseq's `output_layer`)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from jaxmusic import models  # pylint: disable=g-import-not-at-top
  feature = encoder.feature
  data.has(feature)

  @jax.jit
  def layer_frames(x):
    _, _, layers = models.apply(encoder.module, encoder.params, encoder.state,
                                x, intermediates=True)
    if not 0 <= layer < len(layers):
      raise ValueError(f"--layer={layer}: the encoder has layers "
                       f"0..{len(layers) - 1}")
    return layers[layer].astype(jnp.float32)

  def frames(split, track):
    # Each segment as the training pipeline cuts it (the same `span`), so
    # the encoder sees inputs scaled as it was trained on.
    xs = [data.span(split, track, feature, s * data.frames_per_segment,
                    data.segment_samples)
          for s in range(track["num_segments"])]
    outs = []
    for lo in range(0, len(xs), batch):
      chunk = np.stack(xs[lo:lo + batch])
      n = len(chunk)
      if n < batch:  # one compiled shape
        chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - n, 0)])
      out = np.asarray(layer_frames(jnp.asarray(chunk)))[:n]
      if out.shape[1] != data.frames_per_segment:
        raise ValueError(f"the run's encoder gives {out.shape[1]} frames per "
                         f"segment, not the data's {data.frames_per_segment}"
                         ": iteration-2 targets need a frame-grid encoder")
      outs.append(out.reshape(-1, out.shape[-1]))
    return np.concatenate(outs)

  return frames


def run_targets(data, name: str, encoder, layer: int, spec: KMeansSpec,
                progress: bool = True) -> dict:
  """Iteration 2: k-means on a trained run's layer-`layer` frames."""
  return kmeans_targets(
      data, name, run_layer_frames(encoder, data, layer), spec,
      {"source": f"layer {layer}", "run": encoder.workdir,
       "step": encoder.step, "layer": layer}, progress)


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
