"""Hand-made representations every learned embedding is reported beside:
MFCC mean+std, log-mel mean+std per band, and PCA of the whole log-mel
chunk (fitted on the train split). All are computed from the same waveform
chunks the encoder sees, with the jitted frontends.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.decomposition import IncrementalPCA

from jaxmusic.audio import frontend

NAMES = ("mfcc", "logmel_stats", "logmel_pca")
PCA_COMPONENTS = 64


def _stats(x_BxFxN):
  return jnp.concatenate([jnp.mean(x_BxFxN, -1), jnp.std(x_BxFxN, -1)], -1)


def stats_fns(feature_config: dict):
  """{"mfcc": wav_BxT -> Bx2C, "logmel_stats": wav_BxT -> Bx2M}, jitted,
  with the prepared data's sample rate, FFT, hop and band counts."""
  fc = feature_config
  common = dict(sr=fc["sample_rate"], n_fft=fc["n_fft"],
                hop_length=fc["hop_length"], n_mels=fc["n_mels"])
  mfcc = functools.partial(frontend.mfcc, n_mfcc=fc["n_mfcc"], **common)
  logmel = functools.partial(frontend.logmel, **common)
  return {"mfcc": jax.jit(lambda w: _stats(mfcc(w))),
          "logmel_stats": jax.jit(lambda w: _stats(logmel(w))),
          "logmel_flat": jax.jit(lambda w: logmel(w).reshape(w.shape[0], -1))}


class LogmelPCA:
  """PCA of flattened log-mel chunks, fitted batch by batch on the train
  split (IncrementalPCA: the train set never has to fit in memory)."""

  def __init__(self, n_rows: int, n_components: int = PCA_COMPONENTS):
    self.pca = IncrementalPCA(min(n_components, n_rows))
    self._buffer = []

  def partial_fit(self, flat_BxK: np.ndarray):
    # Every IncrementalPCA batch needs at least n_components rows: fit all
    # but the newest n rows, which wait for the next batch or `finish`.
    self._buffer.append(np.asarray(flat_BxK, np.float64))
    n = self.pca.n_components
    block = np.concatenate(self._buffer)
    if len(block) >= 2 * n:
      self.pca.partial_fit(block[:-n])
      block = block[-n:]
    self._buffer = [block]

  def finish(self):
    block = np.concatenate(self._buffer)
    if len(block):
      self.pca.partial_fit(block)
    self._buffer = []
    return self

  def transform(self, flat_BxK: np.ndarray) -> np.ndarray:
    return self.pca.transform(np.asarray(flat_BxK, np.float64)).astype(
        np.float32)
