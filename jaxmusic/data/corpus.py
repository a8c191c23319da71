"""Where a run's data is: `config.data.dir`, or the embedded synthetic
corpus, generated and prepared on first use in a cache directory."""

import hashlib
import json
import os

from jaxmusic.data import build
from jaxmusic.data import synthetic


def default_cache_dir() -> str:
  return os.environ.get("JAXMUSIC_CACHE", os.path.join(
      os.path.expanduser("~"), ".cache", "jaxmusic"))


def ensure_prepared(cfg: synthetic.SyntheticConfig, features,
                    segment_seconds: float, cache_dir: str | None = None,
                    workers: int = 1) -> str:
  """The synthetic corpus generated and prepared on first use; returns the
  prepared directory (reused when it already exists)."""
  cache_dir = cache_dir or default_cache_dir()
  raw = os.path.join(cache_dir, f"synthetic-{cfg.key()}")
  csv_path = synthetic.generate(os.path.join(raw, "raw"), cfg)
  tag = hashlib.sha1(json.dumps([sorted(features), segment_seconds])
                     .encode()).hexdigest()[:8]
  out = os.path.join(raw, f"prepared-{tag}")
  build.prepare("csv", csv_path, out, features=tuple(features),
                segment_seconds=segment_seconds, workers=workers,
                progress=False)
  return out


def resolve_data_dir(config) -> str:
  """The prepared directory: config.data.dir, or the embedded synthetic
  corpus prepared on first use (process 0 builds it, the others wait)."""
  if config.data.dir:
    return config.data.dir
  import jax  # pylint: disable=g-import-not-at-top
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  syn = config.data.synthetic
  cfg = synthetic.SyntheticConfig(num_tracks=syn.num_tracks,
                                  seconds=syn.seconds, seed=syn.seed,
                                  sample_rate=config.data.sample_rate)
  make = lambda: ensure_prepared(
      cfg, tuple(config.data.features), config.data.segment_seconds,
      config.data.get("cache_dir") or None, workers=syn.workers)
  if jax.process_index() == 0:
    path = make()
  multihost_utils.sync_global_devices("synthetic data ready")
  return path if jax.process_index() == 0 else make()
