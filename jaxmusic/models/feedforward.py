"""A feed-forward network on the whole crop, flattened: the composer
study's feed-forward classifier and encoder (1024-512-256-128 ReLU units;
its 40-d code is the encoder's `model.bottleneck`).

The crop's `BxFxK` frames (MFCC, chroma or mel bins) are one vector, so
the output is one frame, `Bx1xD`; the input's frame count is fixed by the
crop.
"""

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp


class FeedForward(nn.Module):
  """`BxFxK` -> `Bx1xD`, D the last hidden width; sows each layer."""
  hidden: Sequence[int] = (1024, 512, 256, 128)
  dropout: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BxFxK, train: bool = False):
    h = x_BxFxK.reshape(x_BxFxK.shape[0], -1).astype(self.dtype)
    for width in self.hidden:
      h = nn.relu(nn.Dense(width, dtype=self.dtype)(h))
      h = nn.Dropout(self.dropout, deterministic=not train)(h)
      self.sow("intermediates", "layers", h[:, None])
    return h[:, None].astype(jnp.float32), None
