"""triplet: an anchor, a crop within `radius_seconds` of it in the same
track, and a crop of another track (Tile2Vec); with `triplet_by` "label"
or "artist" the positive is another track sharing it and the negative one
that does not."""

import numpy as np

from jaxmusic.data.samplers.crops import Sampler


class Triplet(Sampler):

  def __init__(self, crops, radius_seconds: float = 1.0,
               triplet_by: str | None = None):
    super().__init__(crops)
    self.triplet_by = triplet_by
    data = crops.data
    self.radius_frames = int(radius_seconds * data.manifest["sample_rate"]
                             / data.hop)
    if triplet_by:
      values = np.array([t[triplet_by] for t in crops.tracks])
      self.by_value = {v: np.flatnonzero(values == v)
                       for v in set(values.tolist()) if v >= 0}

  def _other(self, index, pool, rng):
    pool = pool[pool != index]
    if pool.size == 0:
      raise ValueError(f"split {self.crops.split!r}: no other track to "
                       "sample a triplet from")
    return int(pool[rng.integers(pool.size)])

  def __call__(self, index, rng):
    """Anchor, positive and negative crops, plus each one's track index and
    start frame (`tracks`, `starts`), which the tests check the sampling
    rules against."""
    track = self.crops.tracks[index]
    start = self.crops.random_start(track, rng)
    everyone = np.arange(len(self.crops.tracks))
    if self.triplet_by is None:
      lo = max(0, start - self.radius_frames)
      hi = min(self.crops.max_start(track), start + self.radius_frames)
      pos_track, pos_start = index, int(rng.integers(lo, hi + 1))
      neg_track = self._other(index, everyone, rng)
    else:
      value = track[self.triplet_by]
      same = self.by_value.get(value, np.array([], int))
      pos_track = self._other(index, same, rng)
      pos_start = self.crops.random_start(self.crops.tracks[pos_track], rng)
      different = everyone[np.array([t[self.triplet_by] != value
                                     for t in self.crops.tracks])]
      neg_track = self._other(index, different, rng)
    tracks = self.crops.tracks
    neg_start = self.crops.random_start(tracks[neg_track], rng)
    return {"anchor": self.crops.crop_at(track, start),
            "positive": self.crops.crop_at(tracks[pos_track], pos_start),
            "negative": self.crops.crop_at(tracks[neg_track], neg_start),
            "tracks": np.array([index, pos_track, neg_track], np.int32),
            "starts": np.array([start, pos_start, neg_start], np.int32)}
