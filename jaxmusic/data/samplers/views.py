"""views: two independent random crops of one track (CLMR's positives)."""

import numpy as np

from jaxmusic.data.samplers.crops import Sampler


class Views(Sampler):

  def __call__(self, index, rng):
    track = self.crops.tracks[index]
    return {"views": np.stack([self.crops.random_crop(track, rng),
                               self.crops.random_crop(track, rng)]),
            "track": np.int32(index)}
