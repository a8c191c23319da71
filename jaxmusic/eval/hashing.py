"""Binary codes and DTW over them: Raffel & Ellis's MIDI <-> audio
matching (ISMIR 2015, "Large-scale content-based matching of MIDI and
audio files"), where a sequence of short windows becomes a sequence of
bit vectors and DTW runs over their Hamming distances.

A code is the sign of a two-tower run's shared-space output (the `hash`
option of objectives/two_tower.py trains the towers for it), packed 64
bits a word, so that a distance of up to 64 bits is one XOR and one
popcount.
"""

import librosa
import numpy as np


def codes(z_NxB: np.ndarray) -> np.ndarray:
  """The signs of `z` as packed bits, `N x ceil(B / 64)` uint64 words
  (the last zero-padded)."""
  packed = np.packbits(np.asarray(z_NxB) > 0, axis=-1)
  pad = -packed.shape[-1] % 8
  packed = np.pad(packed, ((0, 0), (0, pad)))
  return np.ascontiguousarray(packed).view(np.uint64)


def hamming(a_NxW: np.ndarray, b_MxW: np.ndarray) -> np.ndarray:
  """`N x M` Hamming distances between packed codes."""
  if a_NxW.shape[-1] == 1:
    return np.bitwise_count(a_NxW[:, :1] ^ b_MxW[:, 0][None])
  return np.bitwise_count(a_NxW[:, None, :] ^ b_MxW[None, :, :]).sum(
      axis=-1, dtype=np.int32)


def cosine(a_NxD: np.ndarray, b_MxD: np.ndarray) -> np.ndarray:
  """`N x M` cosine distances (1 - cosine similarity)."""
  unit = lambda z: z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True),
                                  1e-12)
  return 1.0 - unit(a_NxD.astype(np.float32)) @ unit(
      b_MxD.astype(np.float32)).T


def dtw_cost(cost_NxM: np.ndarray) -> float:
  """The cost of the best monotonic path through `cost`, over its
  length: subsequence-free DTW (librosa's), comparable between pairs of
  different lengths."""
  acc, path = librosa.sequence.dtw(C=np.asarray(cost_NxM, np.float64))
  return float(acc[-1, -1] / len(path))
