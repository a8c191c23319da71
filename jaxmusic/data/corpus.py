"""Where a run's data is: `config.data.dir`, or the embedded synthetic
corpus, generated and prepared on first use in a cache directory."""

import hashlib
import json
import logging
import os

from jaxmusic import storage
from jaxmusic.data import build
from jaxmusic.data import features as features_lib
from jaxmusic.data import pipeline
from jaxmusic.data import synthetic
from jaxmusic.data import targets


def default_cache_dir() -> str:
  return os.environ.get("JAXMUSIC_CACHE", os.path.join(
      os.path.expanduser("~"), ".cache", "jaxmusic"))


def ensure_prepared(cfg: synthetic.SyntheticConfig, features,
                    segment_seconds: float, cache_dir: str | None = None,
                    workers: int = 1, target_sets=(),
                    hop_length: int = 512, n_fft: int = 2048) -> str:
  """The synthetic corpus generated and prepared on first use, with the
  k-means target sets named in their default form (`mfcc_k100`, ...)
  computed on first use too; returns the prepared directory (reused when
  it already exists)."""
  recipes = [(name, targets.parse_default_name(name)) for name in target_sets]
  for name, recipe in recipes:
    if recipe is None:
      raise ValueError(
          f"config.data.targets: {name!r} is not a default k-means name "
          "(FEATURE_kK or FEATURE_z_kK, e.g. mfcc_k100) that the embedded "
          "corpus can make; set config.data.dir to a collection that has it")
  needs = {"pianoroll" if f in targets.SYMBOLIC else "waveform"
           for _, (f, *_) in recipes}
  features = tuple(features) + tuple(sorted(needs - set(features)))
  cache_dir = cache_dir or default_cache_dir()
  raw = os.path.join(cache_dir, f"synthetic-{cfg.key()}")
  csv_path = synthetic.generate(os.path.join(raw, "raw"), cfg)
  # The default grid adds nothing to the tag, so a corpus prepared at
  # 22,050 Hz / 512 keeps one directory whatever jaxmusic version made it.
  grid = [hop_length, n_fft] if (hop_length, n_fft) != (512, 2048) else []
  tag = hashlib.sha1(json.dumps([sorted(features), segment_seconds] + grid)
                     .encode()).hexdigest()[:8]
  out = os.path.join(raw, f"prepared-{tag}")
  build.prepare("csv", csv_path, out, features=tuple(features),
                segment_seconds=segment_seconds, workers=workers,
                cfg=features_lib.FeatureConfig(sample_rate=cfg.sample_rate,
                                               hop_length=hop_length,
                                               n_fft=n_fft),
                progress=False)
  ensure_targets(out, target_sets)
  return out


def ensure_targets(directory: str, target_sets) -> None:
  """Computes each default-named k-means target set (`mfcc_k100`, ...)
  that the prepared `directory` lacks."""
  data = pipeline.PreparedData(directory)
  for name in target_sets:
    if data.is_target(name):
      continue
    recipe = targets.parse_default_name(name)
    if recipe is None:
      raise ValueError(f"{directory}: no target set {name!r}, and it is not "
                       "a default k-means name (FEATURE_kK, FEATURE_z_kK) to "
                       "make")
    feature, k, standardize = recipe
    entry = targets.acoustic_targets(
        data, name, feature, targets.KMeansSpec(k=k, standardize=standardize),
        progress=False)
    logging.info("%s", targets.usage_line(name, entry))
    data = pipeline.PreparedData(directory)


def resolve_data_dir(config) -> str:
  """The local prepared directory: config.data.dir (a bucket URI is staged
  to the cache directory first, storage.stage), or the embedded synthetic
  corpus prepared on first use (on several processes, run it with
  parallel.first_process_first so that one builds it)."""
  if config.data.dir:
    return storage.stage(config.data.dir,
                         config.data.get("cache_dir") or default_cache_dir())
  syn = config.data.synthetic
  cfg = synthetic.SyntheticConfig(num_tracks=syn.num_tracks,
                                  seconds=syn.seconds, seed=syn.seed,
                                  sample_rate=config.data.sample_rate)
  # Text and tags are track metadata, not prepared arrays.
  return ensure_prepared(
      cfg, tuple(f for f in config.data.features
                 if f not in features_lib.METADATA_FEATURES),
      config.data.segment_seconds,
      config.data.get("cache_dir") or None, workers=syn.workers,
      target_sets=tuple(config.data.get("targets", ())),
      hop_length=config.data.get("hop_length", 512),
      n_fft=config.data.get("n_fft", 2048))
