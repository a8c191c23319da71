"""Grain pipelines over a prepared directory: one sampling mode each
(samplers/: views, triplet, frames, paired, labelled, sequential).

Training modes shuffle the global index stream by seed, repeat (reshuffled
each epoch), give host h every h-th element of that stream (disjoint and
covering) and drop the remainder; crops come from `random_map`, seeded per
element's global position, so a seed fixes every element whatever the host
count, and the iterator state is a few integers that Orbax checkpoints.
"""

import os

import grain
import numpy as np

from jaxmusic.data import features as feats
from jaxmusic.data import records
from jaxmusic.data import samplers
from jaxmusic.data import tags
from jaxmusic.data import targets

MODES = samplers.MODES
pair_samples = samplers.pair_samples


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
    if feature == tags.FEATURE:
      if not self.manifest["vocab"]["tags"]:
        raise ValueError(f"{self.directory}: no track has tags; give the "
                         "CSV source a `tags` column and re-run prepare")
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

  @property
  def renderings(self) -> int:
    """How many renderings of its MIDI the collection's audio features
    have (features.rendering): one per soundfont."""
    return max(1, len(self.manifest.get("feature_config", {}).get(
        "soundfonts", ())))

  def unit(self, feature: str) -> int:
    """Samples per step of `feature` along its last axis."""
    return feats.unit(feature, self.hop)

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
    if feats.base(feature) == feats.WAVEFORM:
      return feats.dequantize_waveform(out)
    if self.is_target(feature):
      return out.astype(np.int32)
    return out.astype(np.float32)


def make_dataset(data: PreparedData | str, split: str, mode: str, *,
                 batch_size: int, feature: str = "waveform",
                 crop_samples: int = 59049, seed: int = 0,
                 shard_index: int = 0, shard_count: int = 1,
                 num_epochs: int | None = None, workers: int = 0,
                 sequences: feats.Sequences | None = None,
                 **options) -> grain.IterDataset:
  """A Grain dataset of per-host numpy batches of `mode`; `sequences` sizes
  text and token crops (features.Sequences); `options` are the mode's own
  (samplers/: `radius_seconds`, `triplet_by`, `targets`, `pair_feature`,
  `pair_aligned`, `zeroshot_holdout`, `zeroshot_every`). See the module
  docstring."""
  if isinstance(data, str):
    data = PreparedData(data)
  if mode not in MODES:
    raise ValueError(f"data.mode={mode!r}: unknown; known: {MODES}")
  data.has(feature)
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
    reader = samplers.SequentialReader(data, split, feature, crop_samples,
                                       sequences)
    n = len(reader)
    lo = n * shard_index // shard_count
    hi = n * (shard_index + 1) // shard_count
    ds = grain.MapDataset.range(lo, hi).map(reader)
    ds = ds.batch(batch_size, drop_remainder=False)
  else:
    sampler = samplers.make(data, split, mode, feature, crop_samples,
                            sequences, **options)
    for name in sampler.needs():
      data.has(name)
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
  `text_bytes`, `tokens`, `token_crop`, `pair_aligned` and the zero-shot
  held-out tags (`zeroshot_holdout`, `zeroshot_every`; tags.py)."""
  features = tuple(data_cfg.features)
  if mode == "paired" and len(features) < 2:
    raise ValueError(f"config.data.features={features}: the paired mode "
                     "needs two features (the input, then its pair)")
  given = dict(radius_seconds=data_cfg.get("radius_seconds", 1.0),
               triplet_by=data_cfg.get("triplet_by") or None,
               targets=tuple(data_cfg.get("targets", ())),
               pair_aligned=data_cfg.get("pair_aligned", True),
               zeroshot_holdout=tuple(data_cfg.get("zeroshot_holdout", ())),
               zeroshot_every=data_cfg.get("zeroshot_every", 4))
  if mode == "paired":
    given["pair_feature"] = features[1]
  return make_dataset(
      data, split, mode, batch_size=batch_size, feature=features[0],
      crop_samples=data_cfg.crop_samples, seed=seed, shard_index=shard_index,
      shard_count=shard_count, workers=data_cfg.get("workers", 0),
      sequences=feats.Sequences.from_config(data_cfg),
      **{k: v for k, v in given.items()
         if mode != "sequential" and k in samplers.options(mode)})
