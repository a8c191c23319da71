"""Target sets' names (`mfcc_z_k100`: the source, z-scoring, K) and where
they are stored beside a prepared collection."""

import dataclasses
import os

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
