"""frames: an input crop plus frame-aligned crops of `targets` (target
sets from `jaxmusic.targets`, C x F int32 codes, or stored frame features
such as the CQT), cut by the same `span` as the input, for masked
prediction."""

import numpy as np

from jaxmusic.data.samplers.crops import Sampler


class Frames(Sampler):

  def __init__(self, crops, targets=()):
    super().__init__(crops)
    self.targets = tuple(targets)

  def needs(self) -> tuple[str, ...]:
    return self.targets

  def __call__(self, index, rng):
    track = self.crops.tracks[index]
    start = self.crops.random_start(track, rng)
    return {"inputs": self.crops.crop_at(track, start),
            "track": np.int32(index),
            **{name: self.crops.frames_at(track, start, name)
               for name in self.targets}}
