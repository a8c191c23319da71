"""The image frontend: a sheet-music snippet (`prepare --features sheet`,
data/sheet.py) as the image a 2-D CNN reads, with Dorfer et al.'s sheet
augmentations in the graph: a random zoom and a random translation.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxmusic.audio import augment
from jaxmusic.data.features import FeatureConfig
from jaxmusic.data.sheet import SHEET
from jaxmusic.models.frontends.base import Frontend


def scale_translate(key, ink_HxW, max_scale: float, max_shift: int):
  """The snippet zoomed about its centre by a factor in [1 - max_scale,
  1 + max_scale] and moved by up to `max_shift` pixels each way, paper
  (0) where nothing of it lands."""
  k_scale, k_shift = jax.random.split(key)
  s = jax.random.uniform(k_scale, (), minval=1 - max_scale,
                         maxval=1 + max_scale)
  shift = jax.random.randint(k_shift, (2,), -max_shift, max_shift + 1)
  size = jnp.asarray(ink_HxW.shape, jnp.float32)
  return jax.image.scale_and_translate(
      ink_HxW, ink_HxW.shape, (0, 1), jnp.stack([s, s]),
      (1 - s) * size / 2 + shift, method="linear")


class Image(Frontend):
  """`BxHxW` snippets (uint8 ink, 255 full) -> `BxWxH` ink in [0, 1]:
  the columns as frames, the rows as bands, which the 2-D CNNs (`vgg`,
  `cnn`) read as the image; `column` embeds each column for a frame
  backbone. In training, `scale` > 0 zooms each snippet by up to that
  fraction and `shift` > 0 moves it by up to that many pixels."""
  FEATURE = SHEET
  EMBEDS = {"none": "bands", "column": "frames"}

  embed: str = "none"
  dim: int = 512
  scale: float = 0.0
  shift: int = 0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, ink_BxHxW, train: bool = False):
    x = ink_BxHxW.astype(jnp.float32) / 255.0
    if train and (self.scale or self.shift):
      x = augment.apply_batch(
          lambda k, im: scale_translate(k, im, self.scale, self.shift),
          self.make_rng("augment"), x)
    x = jnp.swapaxes(x, 1, 2)
    self.sow("intermediates", "raw", x)
    if self.embed == "none":
      return x
    return nn.Dense(self.dim, dtype=self.dtype, name="embed")(x)

  @classmethod
  def width(cls, cfg) -> int:
    # Unembedded, the bands are the snippet's rows: the strip's height,
    # which the collection sets (prepare's --sheet_height, 180 by default).
    if cfg.get("embed") == "column":
      return cfg.get("dim", 512)
    return FeatureConfig.sheet_height

  @classmethod
  def frame_hop(cls, cfg, collection_hop: int) -> int | None:
    del cfg, collection_hop
    return None

  @classmethod
  def validate(cls, cfg, hop: int, fail) -> None:
    del hop
    if not 0 <= cfg.get("scale", 0.0) < 1:
      fail("model.frontend.scale", "a zoom fraction in [0, 1)")
    if cfg.get("shift", 0) < 0:
      fail("model.frontend.shift", "pixels, >= 0")
