"""The short-chunk CNN of Won et al. (2020), "Evaluation of CNN-based
automatic music tagging models": the plain 2-D CNN that tagged best on
short (3.69 s) mel chunks.

Seven blocks of 3x3 conv + BatchNorm + ReLU + 2x2 max-pool over (time,
bins), channels 128, 128, 256, 256, 256, 256, 512; an axis already down to
one step is not pooled further, so crops shorter than 2^7 frames work.
The bins left are averaged, giving `BxF'xD` frames at 1/2^k of the
frontend's rate; the paper's global max over time is `model.pooling="max"`
(its dense layer after pooling is the objective's head, or
`model.bottleneck`).
"""

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxmusic.models import cnn

WON_CHANNELS = (128, 128, 256, 256, 256, 256, 512)


class ShortChunkCNN(nn.Module):
  """`BxFxK` frames of K bins -> `BxF'xD`; sows each block's bin-averaged
  output."""
  channels: Sequence[int] = WON_CHANNELS
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BxFxK, train: bool = False):
    x = x_BxFxK.astype(self.dtype)[..., None]
    for ch in self.channels:
      x = cnn.conv_bn(x, ch, train, self.dtype)
      window = tuple(2 if n >= 2 else 1 for n in x.shape[1:3])
      x = nn.max_pool(x, window, strides=window)
      self.sow("intermediates", "layers", jnp.mean(x, axis=2))
    return jnp.mean(x, axis=2).astype(jnp.float32), None
