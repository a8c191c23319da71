"""What every sampler reads: a split's tracks, crops of a feature at a
start frame, the frame-rate features beside a crop, a track's labels."""

import numpy as np

from jaxmusic.data import features as feats


def pair_samples(feature: str, crop_samples: int, hop: int) -> int:
  """The samples a `feature` read beside a crop of `crop_samples` covers:
  the whole hops over the crop for a frame-rate feature (also when the
  crop is not a whole number of hops, as a SampleCNN's 3**n samples), the
  crop itself for the waveform; text has no time."""
  if feature in (feats.TEXT, "waveform"):
    return crop_samples
  return -(-crop_samples // hop) * hop


class Crops:
  """Crops of `feature`, `crop_samples` long, from one split of a prepared
  collection (pipeline.PreparedData)."""

  def __init__(self, data, split: str, feature: str, crop_samples: int,
               text_bytes: int = 64):
    self.data, self.split, self.feature = data, split, feature
    self.crop, self.text_bytes = crop_samples, text_bytes
    self.tracks = data.tracks(split)
    self.n_tags = data.num_classes("tags")

  def max_start(self, track) -> int:
    return (track["num_segments"] * self.data.segment_samples
            - self.crop) // self.data.hop

  def random_start(self, track, rng) -> int:
    return int(rng.integers(self.max_start(track) + 1))

  def crop_at(self, track, start_frame, feature=None):
    """The crop of `feature` (default: the input) at `start_frame`; a
    track's text is the same whatever the crop."""
    feature = feature or self.feature
    if feature == feats.TEXT:
      return feats.encode_text(track.get("text", ""), self.text_bytes)
    return self.data.span(self.split, track, feature, start_frame, self.crop)

  def frames_at(self, track, start_frame, feature):
    """`feature` beside the crop: a frame-rate feature's whole frames
    over it (`pair_samples`)."""
    if feature == feats.TEXT:
      return self.crop_at(track, start_frame, feature)
    return self.data.span(self.split, track, feature, start_frame,
                          pair_samples(feature, self.crop, self.data.hop))

  def random_crop(self, track, rng):
    return self.crop_at(track, self.random_start(track, rng))

  def labels(self, track) -> dict[str, np.ndarray]:
    tags = np.zeros(self.n_tags, np.float32)
    tags[track["tags"]] = 1.0
    return {"label": np.int32(track["label"]),
            "artist": np.int32(track["artist"]), "tags": tags}


class Sampler:
  """A random mode: `__call__(index, rng)` builds one element from the
  track `index`; `needs()` names the features or target sets it reads
  beside the input."""

  def __init__(self, crops: Crops):
    self.crops = crops

  def needs(self) -> tuple[str, ...]:
    return ()
