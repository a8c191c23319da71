"""Per-track views of per-chunk arrays: one owner for the averaging that
the kNN monitor, export and the probes all do."""

import numpy as np


def average_by_track(pred_N: np.ndarray, track_N: np.ndarray):
  """Chunk predictions (N or NxC) averaged per track: (tracks, T[xC])."""
  tracks, inverse = np.unique(track_N, return_inverse=True)
  sums = np.zeros((len(tracks), *pred_N.shape[1:]), np.float64)
  np.add.at(sums, inverse, pred_N)
  counts = np.bincount(inverse).reshape(-1, *[1] * (pred_N.ndim - 1))
  return tracks, sums / counts


def first_per_track(values_N, track_N):
  _, first = np.unique(track_N, return_index=True)
  return values_N[first]
