"""The multitrack frontend: the piano-roll frontend on the multitrack roll
(features.multitrack), its 128 pitches then instrument and drum lanes.
The lanes are no pitch axis, so its raw frames are vectors, not an image
for a 2-D CNN, and no autoencoder reconstructs them.
"""

from jaxmusic.data.features import MULTITRACK_ROWS
from jaxmusic.models.frontends.pianoroll import PianoRoll


class Multitrack(PianoRoll):
  """`BxRxF` velocities, R = 191 rows (pitches, then lanes)."""
  FEATURE = "multitrack"
  EMBEDS = {"linear": "frames", "conv": "frames", "none": "frames"}
  ROWS = MULTITRACK_ROWS

  @classmethod
  def reconstruction(cls, cfg) -> str | None:
    del cfg
    return None
