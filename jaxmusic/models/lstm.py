"""A stacked LSTM over the crop's frames (MFCC, chroma or mel bins per
frame): the composer study's recurrent classifier. Frames are the last
layer's outputs, `BxFxH`, on the frontend's grid; `model.pooling="mean"`
averages them (the last hidden state reads the same sequence).
"""

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp


class LSTM(nn.Module):
  """`BxFxK` -> `BxFxH`, H the last layer's units; sows each layer."""
  units: Sequence[int] = (128, 128)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BxFxK, train: bool = False):
    del train
    h = x_BxFxK.astype(jnp.float32)
    for n in self.units:
      h = nn.RNN(nn.OptimizedLSTMCell(n))(h)
      self.sow("intermediates", "layers", h)
    return h, None
