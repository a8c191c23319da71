"""sequential: every segment of a split in order, cut into `crop_samples`
chunks, with ids, for export and evaluation (no randomness)."""

import numpy as np

from jaxmusic.data import features as feats
from jaxmusic.data.samplers.crops import Crops


class SequentialReader:
  """Element i: chunk i % chunks of segment record i // chunks, in order."""

  def __init__(self, data, split: str, feature: str,
               crop_samples: int,
               sequences: feats.Sequences | None = None):
    self.data, self.split, self.feature = data, split, feature
    self.crop = crop_samples or data.segment_samples
    self.chunks = data.segment_samples // self.crop
    self.crops = Crops(data, split, feature, self.crop, sequences)
    self.track_of = np.concatenate(
        [np.full(t["num_segments"], i, np.int32)
         for i, t in enumerate(data.tracks(split))])

  def __len__(self):
    return len(self.track_of) * self.chunks

  def __call__(self, index):
    record, chunk = divmod(index, self.chunks)
    track_idx = int(self.track_of[record])
    track = self.data.tracks(self.split)[track_idx]
    segment = record - track["first_record"]
    start_frame = (segment * self.data.segment_samples
                   + chunk * self.crop) // self.data.hop
    return {"inputs": self.crops.crop_at(track, start_frame),
            "track": np.int32(track_idx), "segment": np.int32(segment),
            "chunk": np.int32(chunk),
            "offset": np.float32(start_frame * self.data.hop
                                 / self.data.manifest["sample_rate"]),
            **self.crops.labels(track)}
