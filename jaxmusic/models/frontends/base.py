"""What every frontend declares, so that the encoder, the objectives and
export ask a frontend instead of knowing it by name.

A frontend is a Flax module `(x, train=False) -> BxFxC` plus these class
attributes and class methods over its config (`cfg`: the
`model.frontend` dict, with its `embed` resolved):

  FEATURE          the prepared feature it reads (the first of
                   `data.features`)
  EMBEDS           embed -> what it gives: "frames" (vectors on the time
                   grid), "bands" (frames over a frequency or pitch axis,
                   which a 2-D CNN reads as an image) or "samples" (the raw
                   waveform, SampleCNN's input); the first one a backbone
                   reads is its default
  AUGMENTATIONS    name -> (transform, default probability): the in-graph
                   chain an objective may run on its input (CLMR's views)
  width            the channels of its output
  frame_hop        samples between its frames on the collection's grid
                   (None: no time grid)
  frames_per_crop  frames a crop of so many samples gives
  centred          whether frame k stands at sample k * hop, so crops must
                   be whole multiples of the hop
  validate         its own keys' checks
  reconstruction   an autoencoder's default loss on its frames ("mse" or
                   "bce"), or None where it has no frames to reconstruct
  reconstruction_target  a module making the frames an autoencoder
                   reconstructs, or None for the frames it sows as "raw"
  valid            which input frames are real (padded inputs), or None
"""

from typing import Callable, ClassVar

import flax.linen as nn


class Frontend(nn.Module):
  """The frontend contract (see the module docstring)."""
  FEATURE: ClassVar[str] = ""
  EMBEDS: ClassVar[dict[str, str]] = {}
  AUGMENTATIONS: ClassVar[dict[str, tuple[Callable, float]]] = {}

  @classmethod
  def width(cls, cfg) -> int:
    return cfg.get("dim", 512)

  @classmethod
  def frame_hop(cls, cfg, collection_hop: int) -> int | None:
    del cfg
    return collection_hop

  @classmethod
  def frames_per_crop(cls, cfg, crop_samples: int, hop: int) -> int:
    return crop_samples // (cls.frame_hop(cfg, hop) or hop)

  @classmethod
  def centred(cls, cfg) -> bool:
    del cfg
    return True

  @classmethod
  def validate(cls, cfg, hop: int, fail) -> None:
    del cfg, hop, fail

  @classmethod
  def reconstruction(cls, cfg) -> str | None:
    del cfg
    return None

  @classmethod
  def reconstruction_target(cls, cfg, data_cfg):
    del cfg, data_cfg
    return None

  @staticmethod
  def valid(x):
    del x
    return None

  @classmethod
  def check_hop(cls, cfg, hop: int, fail, key: str) -> None:
    """An encoder hop must be a whole multiple of the collection's, so
    that frame targets made on the collection's frames line up."""
    step = cls.frame_hop(cfg, hop)
    if step and step > 1 and step % hop:
      fail(key, f"the encoder's hop of {step} samples is not a multiple of "
           f"the collection's hop {hop} (data.hop_length)")


class Padded(Frontend):
  """An input off the time grid, one frame an id with 0 as padding (a
  text's bytes, event tokens): `valid` marks the ids that are not
  padding, and the encoder masks attention and pooling with it."""

  @staticmethod
  def valid(ids_BxL):
    return ids_BxL > 0

  @classmethod
  def frame_hop(cls, cfg, collection_hop: int) -> int | None:
    del cfg, collection_hop
    return None
