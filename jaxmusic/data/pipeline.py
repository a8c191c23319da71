"""Grain pipelines over a prepared directory, one per sampling mode.

  views       two independent random crops of one track (CLMR positives)
  triplet     anchor, a crop within `radius_seconds` of it in the same track,
              and a crop of another track (Tile2Vec); with `triplet_by` set
              to "label" or "artist" the positive is another track sharing
              it and the negative one that does not; with each crop's
              track index and start frame (`tracks`, `starts`)
  frames      an input crop plus frame-aligned crops of `targets`: target
              sets from `jaxmusic.targets` (C x F int32 codes) or stored
              frame features (CQT, ...), cut by the same `span` as the
              input, for masked prediction
  paired      a crop of the input feature ("inputs") and the time-aligned
              crop of a second feature ("pair"; the piano roll by default),
              or the track's text as bytes (feature "text", `text_bytes`
              ids; see features.encode_text), with the track index; with
              `pair_aligned` False the pair's crop starts anywhere in the
              same track (CLMR's positives across the two features)
  labelled    a crop plus class id, multi-hot tags and artist id
  sequential  every segment of a split in order, cut into `crop_samples`
              chunks, with ids, for export and evaluation

Training modes shuffle the global index stream by seed, repeat (reshuffled
each epoch), give host h every h-th element of that stream (disjoint and
covering) and drop the remainder; crops come from `random_map`, seeded per
element's global position, so a seed fixes every element whatever the host
count, and the iterator state is a few integers that Orbax checkpoints.
"""

import os
from typing import Any

import grain
import numpy as np

from jaxmusic.data import features as feats
from jaxmusic.data import records
from jaxmusic.data import targets

MODES = ("views", "triplet", "frames", "paired", "labelled", "sequential")


class PreparedData:
  """Random access to a prepared directory's records and track metadata."""

  def __init__(self, directory: str):
    self.directory = directory
    self.manifest = records.load_manifest(directory)
    self.hop = self.manifest["hop_length"]
    self.segment_samples = self.manifest["segment_samples"]
    self.frames_per_segment = self.manifest["frames_per_segment"]
    self._sources = {}
    self._targets = {}

  def __getstate__(self):
    # Open readers do not cross process boundaries; workers reopen them.
    state = dict(self.__dict__)
    state["_sources"] = {}
    state["_targets"] = {}
    return state

  def split_info(self, split: str) -> dict:
    if split not in self.manifest["splits"]:
      raise ValueError(f"{self.directory}: no split {split!r}")
    return self.manifest["splits"][split]

  def tracks(self, split: str) -> list[dict]:
    return self.split_info(split)["tracks"]

  def num_classes(self, key: str) -> int:
    return len(self.manifest["vocab"][key])

  def read(self, split: str, index: int) -> dict[str, np.ndarray]:
    if split not in self._sources:
      paths = [os.path.join(self.directory, s)
               for s in self.split_info(split)["shards"]]
      self._sources[split] = grain.sources.ArrayRecordDataSource(paths)
    return records.decode(self._sources[split][index])

  def is_target(self, name: str) -> bool:
    return name in self.manifest.get("targets", {})

  def segment(self, split: str, index: int, name: str) -> np.ndarray:
    """Record `index`'s feature or target set `name` (`C x N` codes)."""
    if not self.is_target(name):
      return self.read(split, index)[name]
    key = (name, split)
    if key not in self._targets:
      self._targets[key] = np.load(
          os.path.join(targets.store_dir(self.directory, name),
                       f"{split}.npy"), mmap_mode="r")
    return self._targets[key][index]

  def has(self, feature: str):
    if feature in self.manifest["features"] or self.is_target(feature):
      return
    if feature == feats.TEXT:
      if not any("text" in t for s in self.manifest["splits"].values()
                 for t in s["tracks"]):
        raise ValueError(f"{self.directory}: no track has text; give the "
                         "CSV source a `text` or `title` column and re-run "
                         "prepare")
      return
    recipe = targets.parse_default_name(feature)
    if recipe or feature not in feats.ALL_FEATURES:
      how = (f"--feature {recipe[0]} --k {recipe[1]}" +
             (" --standardize" if recipe[2] else "")) if recipe else \
          f"--name {feature}"
      raise ValueError(
          f"target set {feature!r} is not in {self.directory} (has "
          f"{sorted(self.manifest.get('targets', {})) or 'none'}); make it "
          f"with `python -m jaxmusic.targets --data {self.directory} {how}`")
    raise ValueError(f"feature {feature!r} is not in {self.directory} "
                     f"(has {self.manifest['features']}); re-run prepare "
                     f"with --features including it")

  def unit(self, feature: str) -> int:
    """Samples per step of `feature` along its last axis."""
    return 1 if feature == "waveform" else self.hop

  def span(self, split, track: dict, feature: str, start_frame: int,
           crop_samples: int) -> np.ndarray:
    """The crop of `feature` starting at frame `start_frame` and lasting
    `crop_samples` audio samples, read across segment borders; float32
    (piano rolls keep their 0..127 velocities: the frontend scales them,
    after the velocity augmentations), int32 codes for target sets."""
    unit = self.unit(feature)
    per_seg = self.segment_samples // unit
    start = start_frame * self.hop // unit
    stop = start + crop_samples // unit
    parts = []
    for seg in range(start // per_seg, (stop - 1) // per_seg + 1):
      arr = self.segment(split, track["first_record"] + seg, feature)
      lo = max(start - seg * per_seg, 0)
      hi = min(stop - seg * per_seg, per_seg)
      parts.append(arr[..., lo:hi])
    out = np.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]
    if feature == "waveform":
      return feats.dequantize_waveform(out)
    if self.is_target(feature):
      return out.astype(np.int32)
    return out.astype(np.float32)


def pair_samples(feature: str, crop_samples: int, hop: int) -> int:
  """The samples a `feature` read beside a crop of `crop_samples` covers:
  the whole hops over the crop for a frame-rate feature (also when the
  crop is not a whole number of hops, as a SampleCNN's 3**n samples), the
  crop itself for the waveform; text has no time."""
  if feature in (feats.TEXT, "waveform"):
    return crop_samples
  return -(-crop_samples // hop) * hop


class Sampler:
  """Builds one element of a mode from an index and a numpy Generator."""

  def __init__(self, data: PreparedData, split: str, mode: str, feature: str,
               crop_samples: int, radius_seconds: float = 1.0,
               triplet_by: str | None = None, targets=(),
               pair_feature: str = "pianoroll", text_bytes: int = 64,
               pair_aligned: bool = True):
    self.data, self.split, self.mode = data, split, mode
    self.pair_feature, self.text_bytes = pair_feature, text_bytes
    self.pair_aligned = pair_aligned
    self.feature, self.crop = feature, crop_samples
    self.tracks = data.tracks(split)
    self.radius_frames = int(radius_seconds * data.manifest["sample_rate"]
                             / data.hop)
    self.triplet_by, self.targets = triplet_by, tuple(targets)
    self.n_tags = data.num_classes("tags")
    if triplet_by:
      values = np.array([t[triplet_by] for t in self.tracks])
      self.by_value = {v: np.flatnonzero(values == v)
                       for v in set(values.tolist()) if v >= 0}

  def max_start(self, track) -> int:
    return (track["num_segments"] * self.data.segment_samples
            - self.crop) // self.data.hop

  def crop_at(self, track, start_frame, feature=None):
    """The crop of `feature` (default: the input) at `start_frame`; a
    track's text is the same whatever the crop."""
    feature = feature or self.feature
    if feature == feats.TEXT:
      return feats.encode_text(track.get("text", ""), self.text_bytes)
    return self.data.span(self.split, track, feature, start_frame, self.crop)

  def frames_at(self, track, start_frame, feature):
    """`feature` beside the crop: a frame-rate feature's whole frames
    over it (`pair_samples`)."""
    if feature == feats.TEXT:
      return self.crop_at(track, start_frame, feature)
    return self.data.span(self.split, track, feature, start_frame,
                          pair_samples(feature, self.crop, self.data.hop))

  def random_crop(self, track, rng):
    return self.crop_at(track, int(rng.integers(self.max_start(track) + 1)))

  def __call__(self, index, rng: np.random.Generator) -> dict[str, Any]:
    track = self.tracks[index]
    if self.mode == "views":
      return {"views": np.stack([self.random_crop(track, rng),
                                 self.random_crop(track, rng)]),
              "track": np.int32(index)}
    if self.mode == "triplet":
      return self._triplet(index, track, rng)
    start = int(rng.integers(self.max_start(track) + 1))
    if self.mode == "frames":
      return {"inputs": self.crop_at(track, start), "track": np.int32(index),
              **{name: self.frames_at(track, start, name)
                 for name in self.targets}}
    if self.mode == "paired":
      pair_start = start if self.pair_aligned else int(
          rng.integers(self.max_start(track) + 1))
      return {"inputs": self.crop_at(track, start),
              "pair": self.frames_at(track, pair_start, self.pair_feature),
              "track": np.int32(index)}
    if self.mode == "labelled":
      return {"inputs": self.crop_at(track, start), **self.labels(track)}
    raise ValueError(f"mode {self.mode!r} is not a random mode")

  def labels(self, track) -> dict[str, np.ndarray]:
    tags = np.zeros(self.n_tags, np.float32)
    tags[track["tags"]] = 1.0
    return {"label": np.int32(track["label"]),
            "artist": np.int32(track["artist"]), "tags": tags}

  def _other(self, index, pool, rng):
    pool = pool[pool != index]
    if pool.size == 0:
      raise ValueError(f"split {self.split!r}: no other track to sample a "
                       "triplet from")
    return int(pool[rng.integers(pool.size)])

  def _triplet(self, index, track, rng):
    """Anchor, positive and negative crops, plus each one's track index and
    start frame (`tracks`, `starts`), which the tests check the sampling
    rules against."""
    start = int(rng.integers(self.max_start(track) + 1))
    everyone = np.arange(len(self.tracks))
    if self.triplet_by is None:
      lo = max(0, start - self.radius_frames)
      hi = min(self.max_start(track), start + self.radius_frames)
      pos_track, pos_start = index, int(rng.integers(lo, hi + 1))
      neg_track = self._other(index, everyone, rng)
    else:
      value = track[self.triplet_by]
      same = self.by_value.get(value, np.array([], int))
      pos_track = self._other(index, same, rng)
      pos_start = int(rng.integers(self.max_start(self.tracks[pos_track]) + 1))
      different = everyone[np.array([t[self.triplet_by] != value
                                     for t in self.tracks])]
      neg_track = self._other(index, different, rng)
    neg_start = int(rng.integers(self.max_start(self.tracks[neg_track]) + 1))
    return {"anchor": self.crop_at(track, start),
            "positive": self.crop_at(self.tracks[pos_track], pos_start),
            "negative": self.crop_at(self.tracks[neg_track], neg_start),
            "tracks": np.array([index, pos_track, neg_track], np.int32),
            "starts": np.array([start, pos_start, neg_start], np.int32)}


class SequentialReader:
  """Element i: chunk i % chunks of segment record i // chunks, in order."""

  def __init__(self, data: PreparedData, split: str, feature: str,
               crop_samples: int, text_bytes: int = 64):
    self.data, self.split, self.feature = data, split, feature
    self.crop = crop_samples or data.segment_samples
    self.chunks = data.segment_samples // self.crop
    self.sampler = Sampler(data, split, "labelled", feature, self.crop,
                           text_bytes=text_bytes)
    self.track_of = np.concatenate(
        [np.full(t["num_segments"], i, np.int32)
         for i, t in enumerate(data.tracks(split))])

  def __len__(self):
    return len(self.track_of) * self.chunks

  def __call__(self, index):
    record, chunk = divmod(index, self.chunks)
    track_idx = int(self.track_of[record])
    track = self.data.tracks(self.split)[track_idx]
    segment = record - track["first_record"]
    start_frame = (segment * self.data.segment_samples
                   + chunk * self.crop) // self.data.hop
    return {"inputs": self.sampler.crop_at(track, start_frame),
            "track": np.int32(track_idx), "segment": np.int32(segment),
            "chunk": np.int32(chunk),
            "offset": np.float32(start_frame * self.data.hop
                                 / self.data.manifest["sample_rate"]),
            **self.sampler.labels(track)}


def make_dataset(data: PreparedData | str, split: str, mode: str, *,
                 batch_size: int, feature: str = "waveform",
                 crop_samples: int = 59049, seed: int = 0,
                 shard_index: int = 0, shard_count: int = 1,
                 num_epochs: int | None = None, workers: int = 0,
                 radius_seconds: float = 1.0, triplet_by: str | None = None,
                 targets=(), pair_feature: str = "pianoroll",
                 text_bytes: int = 64,
                 pair_aligned: bool = True) -> grain.IterDataset:
  """A Grain dataset of per-host numpy batches; see the module docstring."""
  if isinstance(data, str):
    data = PreparedData(data)
  if mode not in MODES:
    raise ValueError(f"data.mode={mode!r}: unknown; known: {MODES}")
  data.has(feature)
  for name in (targets if mode == "frames" else ()) + (
      (pair_feature,) if mode == "paired" else ()):
    data.has(name)
  if not 0 <= shard_index < shard_count:
    raise ValueError(f"shard {shard_index} of {shard_count} is out of range")
  tracks = data.tracks(split)
  if not tracks:
    raise ValueError(f"{data.directory}: split {split!r} has no tracks")
  shortest = min(t["num_segments"] for t in tracks) * data.segment_samples
  if crop_samples > shortest:
    raise ValueError(f"crop of {crop_samples} samples is longer than the "
                     f"shortest {split} track ({shortest} samples) in "
                     f"{data.directory}")
  if mode == "sequential":
    if crop_samples and crop_samples > data.segment_samples:
      raise ValueError(f"sequential crop {crop_samples} exceeds the segment "
                       f"({data.segment_samples} samples)")
    reader = SequentialReader(data, split, feature, crop_samples,
                              text_bytes)
    n = len(reader)
    lo, hi = n * shard_index // shard_count, n * (shard_index + 1) // shard_count
    ds = grain.MapDataset.range(lo, hi).map(reader)
    ds = ds.batch(batch_size, drop_remainder=False)
  else:
    sampler = Sampler(data, split, mode, feature, crop_samples,
                      radius_seconds, triplet_by, targets, pair_feature,
                      text_bytes, pair_aligned)
    ds = grain.MapDataset.range(len(tracks)).shuffle(seed=seed)
    # Crops are seeded by the element's global position, before the host
    # slice, so the data does not depend on how many hosts read it.
    ds = ds.repeat(num_epochs).random_map(sampler, seed=seed)
    ds = ds[shard_index::shard_count].batch(batch_size, drop_remainder=True)
  it = ds.to_iter_dataset()
  if workers > 0:
    it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))
  return it


def from_config(data: PreparedData | str, data_cfg, split: str, mode: str,
                *, batch_size: int, seed: int = 0, shard_index: int = 0,
                shard_count: int = 1) -> grain.IterDataset:
  """`make_dataset` with every option taken from `config.data`: the
  features (the first is the input; the paired mode pairs it with the
  second), crop, workers, `radius_seconds`, `triplet_by`, `targets`,
  `text_bytes` and `pair_aligned`."""
  features = tuple(data_cfg.features)
  if mode == "paired" and len(features) < 2:
    raise ValueError(f"config.data.features={features}: the paired mode "
                     "needs two features (the input, then its pair)")
  return make_dataset(
      data, split, mode, batch_size=batch_size, feature=features[0],
      crop_samples=data_cfg.crop_samples, seed=seed, shard_index=shard_index,
      shard_count=shard_count, workers=data_cfg.get("workers", 0),
      radius_seconds=data_cfg.get("radius_seconds", 1.0),
      triplet_by=data_cfg.get("triplet_by") or None,
      targets=tuple(data_cfg.get("targets", ())),
      pair_feature=features[1] if mode == "paired" else "pianoroll",
      text_bytes=data_cfg.get("text_bytes", 64),
      pair_aligned=data_cfg.get("pair_aligned", True))
