"""The event-token frontend: a REMI-like sequence (data/tokens.py: bar,
position, program, pitch, velocity, duration) embedded one frame a token,
off the audio grid, as MusicBERT reads its OctupleMIDI. Its augmentation
is transposition: every pitch token moved by the same interval.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxmusic.audio import augment
from jaxmusic.data import tokens as event_tokens
from jaxmusic.models.frontends.base import Padded


def token_transpose(key, ids_L, max_semitones=6):
  """Every pitch token moved up or down by one interval of up to
  `max_semitones` (drum notes too: the map keeps them apart only by
  program); pitches moved off the keyboard stay at its edge."""
  shift = jax.random.randint(key, (), -max_semitones, max_semitones + 1)
  lo, hi = event_tokens.PITCH0, event_tokens.PITCH0 + event_tokens.PITCHES
  is_pitch = (ids_L >= lo) & (ids_L < hi)
  return jnp.where(is_pitch, jnp.clip(ids_L + shift, lo, hi - 1), ids_L)


class Tokens(Padded):
  """`BxL` token ids (0 pads) -> `BxLxdim` embeddings. `valid` marks the
  tokens that are not padding; the encoder masks attention and pooling
  with it. `transpose` > 0 moves each sequence's pitches by up to that
  many semitones in training, as the piano roll's."""
  FEATURE = event_tokens.FEATURE
  EMBEDS = {"tokens": "frames"}
  AUGMENTATIONS = {"transpose": (token_transpose, 0.8)}

  embed: str = "tokens"
  dim: int = 256
  transpose: int = 0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, ids_BxL, train: bool = False):
    ids_BxL = ids_BxL.astype(jnp.int32)
    if train and self.transpose:
      ids_BxL = augment.apply_batch(
          lambda k, x: token_transpose(k, x, self.transpose),
          self.make_rng("augment"), ids_BxL)
    return nn.Embed(event_tokens.VOCAB, self.dim, dtype=self.dtype,
                    name="embed")(ids_BxL)

  @classmethod
  def validate(cls, cfg, hop: int, fail) -> None:
    del hop
    if not 0 <= cfg.get("transpose", 0) < 64:
      fail("model.frontend.transpose", "semitones in 0..63 (0: off)")
