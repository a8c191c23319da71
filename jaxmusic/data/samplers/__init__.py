"""The sampling modes, one file each: a random mode builds one element
from a track index and a numpy Generator (Grain's `random_map`); the
sequential reader walks a split in order. A new mode is a file here and a
line in SAMPLERS; its keyword options come from `config.data`.
"""

import inspect

from jaxmusic.data.samplers.crops import Crops
from jaxmusic.data.samplers.crops import pair_samples
from jaxmusic.data.samplers.frames import Frames
from jaxmusic.data.samplers.labelled import Labelled
from jaxmusic.data.samplers.paired import Paired
from jaxmusic.data.samplers.sequential import SequentialReader
from jaxmusic.data.samplers.triplet import Triplet
from jaxmusic.data.samplers.views import Views

__all__ = ["Crops", "pair_samples", "Frames", "Labelled", "Paired",
           "SequentialReader", "Triplet", "Views"]

SAMPLERS = {"views": Views, "triplet": Triplet, "frames": Frames,
            "paired": Paired, "labelled": Labelled}
MODES = tuple(SAMPLERS) + ("sequential",)


def options(mode: str) -> tuple[str, ...]:
  """The keyword options of a random mode's sampler."""
  params = inspect.signature(SAMPLERS[mode]).parameters
  return tuple(name for name in params if name != "crops")


def make(data, split: str, mode: str, feature: str, crop_samples: int,
         sequences=None, **kwargs):
  """The sampler of random `mode` over `feature` crops of `split`; `kwargs`
  are its options (others are an error)."""
  if mode not in SAMPLERS:
    raise ValueError(f"data.mode={mode!r}: unknown; known: {MODES}")
  return SAMPLERS[mode](Crops(data, split, feature, crop_samples, sequences),
                        **kwargs)
