"""What every sampler reads: a split's tracks, crops of a feature at a
start frame, the frame-rate features beside a crop, a track's labels."""

import numpy as np

from jaxmusic.data import features as feats
from jaxmusic.data import sheet
from jaxmusic.data import tokens as event_tokens


def pair_samples(feature: str, crop_samples: int, hop: int) -> int:
  """The samples a `feature` read beside a crop of `crop_samples` covers:
  the whole hops over the crop for a frame-rate feature (also when the
  crop is not a whole number of hops, as a SampleCNN's 3**n samples), the
  crop itself for the waveform; text and tags have no time."""
  if feature in (*feats.METADATA_FEATURES, "waveform", *feats.EVENT_FEATURES):
    return crop_samples
  return -(-crop_samples // hop) * hop


class Crops:
  """Crops of `feature`, `crop_samples` long, from one split of a prepared
  collection (pipeline.PreparedData); `sequences` (features.Sequences)
  sizes the off-grid inputs: text bytes and event tokens."""

  def __init__(self, data, split: str, feature: str, crop_samples: int,
               sequences: feats.Sequences | None = None):
    self.data, self.split, self.feature = data, split, feature
    self.crop = crop_samples
    self.sequences = sequences or feats.Sequences()
    self.tracks = data.tracks(split)
    self.n_tags = data.num_classes("tags")

  def max_start(self, track) -> int:
    return (track["num_segments"] * self.data.segment_samples
            - self.crop) // self.data.hop

  def random_start(self, track, rng) -> int:
    return int(rng.integers(self.max_start(track) + 1))

  def crop_at(self, track, start_frame, feature=None):
    """The crop of `feature` (default: the input) at `start_frame`; a
    track's text is the same whatever the crop, and a sheet's crop is the
    snippet at its centre."""
    feature = feature or self.feature
    if feature == feats.SHEET:
      return self.sheet_at(track, start_frame)
    if feature == feats.TEXT:
      return feats.encode_text(track.get("text", ""),
                               self.sequences.text_bytes)
    if feature in feats.EVENT_FEATURES:
      return self.events_at(track, start_frame, feature)
    return self.data.span(self.split, track, feature, start_frame, self.crop)

  def events_at(self, track, start_frame, feature):
    """The event tokens sounding in the crop's seconds (tokens.crop), read
    from the segments it spans."""
    per_seg = self.data.frames_per_segment
    stop = start_frame + -(-self.crop // self.data.hop)
    last = min(track["num_segments"], -(-stop // per_seg)) - 1
    parts = [self.data.segment(self.split, track["first_record"] + seg,
                               feature)
             for seg in range(start_frame // per_seg, last + 1)]
    ids_frames = np.concatenate(parts, axis=1)
    return event_tokens.crop(ids_frames[0], ids_frames[1], start_frame, stop,
                             self.sequences.tokens,
                             self.sequences.token_crop)

  def frames_at(self, track, start_frame, feature):
    """`feature` beside the crop: a frame-rate feature's whole frames
    over it (`pair_samples`), the sheet snippet at its centre."""
    if feature in (feats.TEXT, feats.SHEET, *feats.EVENT_FEATURES):
      return self.crop_at(track, start_frame, feature)
    return self.data.span(self.split, track, feature, start_frame,
                          pair_samples(feature, self.crop, self.data.hop))

  def sheet_at(self, track, start_frame):
    """The `H x W` sheet snippet (uint8 ink) centred where the crop's
    centre frame stands on the page (sheet.py)."""
    per_seg = self.data.frames_per_segment
    centre = start_frame + self.crop // self.data.hop // 2
    seg = min(centre // per_seg, track["num_segments"] - 1)
    rec = self.data.read(self.split, track["first_record"] + seg)
    x = rec[sheet.SHEET_X][min(centre - seg * per_seg, per_seg - 1)]
    width = self.data.manifest["feature_config"]["sheet_width"]
    return sheet.snippet(rec[sheet.SHEET], x, width)

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
