"""k-means over a stream of frames: a bounded reservoir of the fit's
sample, MiniBatchKMeans, chunked nearest-centroid assignment, codebook
usage."""

import math

import numpy as np
from tqdm import tqdm

from jaxmusic.data.targets.names import KMeansSpec

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
