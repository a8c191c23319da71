"""paired: a crop of the input feature ("inputs") and the time-aligned
crop of a second feature ("pair"; the piano roll by default), the sheet
snippet at the crop's centre, the track's text as bytes, or the name of
one of the track's tags drawn at random as bytes (tags.py; never one of
the held-out tags, and a track with no other tag gives its turn to a
random track that has one; `pair_tag` and `pair_tags` carry the tag's id
and the track's tags, multi-hot); with `pair_aligned` False the pair's crop
starts anywhere in the same track (CLMR's positives across two
features). Where the collection holds several renderings of its MIDI (one
per soundfont), the input is read from one drawn at random: different
samples, as Dorfer et al. augment."""

import numpy as np

from jaxmusic.data import features as feats
from jaxmusic.data import tags
from jaxmusic.data.samplers.crops import Sampler


class Paired(Sampler):

  def __init__(self, crops, pair_feature: str = "pianoroll",
               pair_aligned: bool = True, zeroshot_holdout: tuple = (),
               zeroshot_every: int = 4):
    super().__init__(crops)
    self.pair_feature = pair_feature
    self.pair_aligned = pair_aligned
    if pair_feature == tags.FEATURE:
      self.vocab = crops.data.manifest["vocab"]["tags"]
      seen = set(tags.split(self.vocab, zeroshot_holdout, zeroshot_every)[0])
      self.seen = [[i for i in t["tags"] if i in seen] for t in crops.tracks]
      self.tagged = np.flatnonzero([len(s) > 0 for s in self.seen])
      if not self.tagged.size:
        raise ValueError(f"{crops.data.directory}: no {crops.split} track "
                         "has a tag left to train on after the zero-shot "
                         "hold-out (data.zeroshot_holdout/zeroshot_every)")

  def needs(self) -> tuple[str, ...]:
    return (self.pair_feature,)

  def __call__(self, index, rng):
    if self.pair_feature == tags.FEATURE and not self.seen[index]:
      index = int(self.tagged[rng.integers(self.tagged.size)])
    track = self.crops.tracks[index]
    start = self.crops.random_start(track, rng)
    pair_start = start if self.pair_aligned else self.crops.random_start(
        track, rng)
    n = self.crops.data.renderings
    feature = feats.rendering(self.crops.feature,
                              int(rng.integers(n)) if n > 1 else 0)
    out = {"inputs": self.crops.crop_at(track, start, feature),
           "track": np.int32(index)}
    if self.pair_feature == tags.FEATURE:
      tag = self.seen[index][rng.integers(len(self.seen[index]))]
      out["pair"] = feats.encode_text(tags.text(self.vocab[tag]),
                                      self.crops.sequences.text_bytes)
      # The objective keeps the batch's other pairs of the track's tags
      # out of its negatives.
      out["pair_tag"] = np.int32(tag)
      out["pair_tags"] = self.crops.labels(track)["tags"]
    else:
      out["pair"] = self.crops.frames_at(track, pair_start, self.pair_feature)
    return out
