"""labelled: a crop plus its track's class id, multi-hot tags and artist
id."""

from jaxmusic.data.samplers.crops import Sampler


class Labelled(Sampler):

  def __call__(self, index, rng):
    track = self.crops.tracks[index]
    start = self.crops.random_start(track, rng)
    return {"inputs": self.crops.crop_at(track, start),
            **self.crops.labels(track)}
