"""paired: a crop of the input feature ("inputs") and the time-aligned
crop of a second feature ("pair"; the piano roll by default), the sheet
snippet at the crop's centre, or the track's text as bytes; with
`pair_aligned` False the pair's crop starts anywhere in the same track
(CLMR's positives across two features). Where the collection holds
several renderings of its MIDI (one per soundfont), the input is read
from one drawn at random: different samples, as Dorfer et al. augment."""

import numpy as np

from jaxmusic.data import features as feats
from jaxmusic.data.samplers.crops import Sampler


class Paired(Sampler):

  def __init__(self, crops, pair_feature: str = "pianoroll",
               pair_aligned: bool = True):
    super().__init__(crops)
    self.pair_feature = pair_feature
    self.pair_aligned = pair_aligned

  def needs(self) -> tuple[str, ...]:
    return (self.pair_feature,)

  def __call__(self, index, rng):
    track = self.crops.tracks[index]
    start = self.crops.random_start(track, rng)
    pair_start = start if self.pair_aligned else self.crops.random_start(
        track, rng)
    n = self.crops.data.renderings
    feature = feats.rendering(self.crops.feature,
                              int(rng.integers(n)) if n > 1 else 0)
    return {"inputs": self.crops.crop_at(track, start, feature),
            "pair": self.crops.frames_at(track, pair_start, self.pair_feature),
            "track": np.int32(index)}
