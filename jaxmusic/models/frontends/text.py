"""The text frontend: a title's or caption's UTF-8 bytes, one frame a
byte, off the audio grid: a text tower with no tokenizer or weights to
download.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxmusic.data.features import TEXT_VOCAB
from jaxmusic.models.frontends.base import Padded


class Text(Padded):
  """`BxL` byte ids (features.encode_text: UTF-8 byte + 1, 0 pads) ->
  `BxLxdim` embeddings: a text tower with no tokenizer or weights to
  download. `valid` marks the frames that are not padding; the encoder
  masks attention and pooling with it."""
  FEATURE = "text"
  EMBEDS = {"bytes": "frames"}

  embed: str = "bytes"
  dim: int = 256
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, ids_BxL, train: bool = False):
    return nn.Embed(TEXT_VOCAB, self.dim, dtype=self.dtype, name="embed")(
        ids_BxL.astype(jnp.int32))

