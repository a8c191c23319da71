"""Hand-made representations every learned embedding is reported beside:
MFCC mean+std, log-mel mean+std per band, and PCA of the whole log-mel
chunk (fitted on the train split), computed from the same waveform chunks
the encoder sees with the jitted frontends; and, for symbolic music, the
piano roll's statistics over the same seconds.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.decomposition import IncrementalPCA

from jaxmusic.audio import frontend

NAMES = ("mfcc", "logmel_stats", "logmel_pca")
ROLL_NAMES = ("roll_stats",)
PCA_COMPONENTS = 64
INTERVALS = 12  # melodic intervals -12..12 semitones, wider ones clipped


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


def roll_stats(roll_BxPxF, frame_rate: float) -> np.ndarray:
  """Per piano-roll crop (`PxF` velocities): note density (notes sounding
  per frame), onset rate (notes started per second), pitch range, mean and
  std of the sounding pitches, and the histogram of melodic intervals
  between successive onsets of the top voice (-12..12 semitones, wider
  ones clipped, normalised): `B x 30`."""
  on_BxPxF = np.asarray(roll_BxPxF)[:, :128] > 0
  b, p, f = on_BxPxF.shape
  starts = on_BxPxF & ~np.concatenate(
      [np.zeros((b, p, 1), bool), on_BxPxF[..., :-1]], axis=-1)
  out = np.zeros((b, 5 + 2 * INTERVALS + 1), np.float32)
  pitch_P = np.arange(p)
  for i in range(b):
    sounding = on_BxPxF[i].sum(0)
    out[i, 0] = sounding.mean()
    out[i, 1] = starts[i].sum() * frame_rate / max(f, 1)
    rows = np.flatnonzero(on_BxPxF[i].any(1))
    if rows.size:
      weights = on_BxPxF[i].sum(1)
      mean = np.average(pitch_P, weights=weights)
      out[i, 2:5] = (rows[-1] - rows[0], mean / 127, np.sqrt(np.average(
          (pitch_P - mean) ** 2, weights=weights)) / 12)
    onset_frames = np.flatnonzero(starts[i].any(0))
    top = np.array([np.flatnonzero(starts[i][:, t])[-1]
                    for t in onset_frames])
    if top.size > 1:
      steps = np.clip(np.diff(top), -INTERVALS, INTERVALS) + INTERVALS
      hist = np.bincount(steps, minlength=2 * INTERVALS + 1)
      out[i, 5:] = hist / hist.sum()
  out[:, 2] /= 127
  return out
