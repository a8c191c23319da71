"""A 2-D CNN over time x bins (mel bands or pitches), in the VGG-ish style
of the music-tagging CNNs (Choi et al. 2016; Won et al. 2020's short-chunk
CNN), pooling only along the bins so that the output keeps the frame grid.

Blocks of 3x3 conv + BatchNorm + ReLU + 1x2 max-pool over bins; the bins
left are averaged, giving `BxFxD` frames on the frontend's grid.
"""

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp


def conv_bn(x_BxFxKxC, channels: int, train: bool, dtype,
            activation=nn.relu):
  """3x3 conv (no bias) + BatchNorm + activation: the block of every 2-D
  CNN here; call it inside a compact module."""
  x = nn.Conv(channels, (3, 3), padding="SAME", use_bias=False,
              dtype=dtype)(x_BxFxKxC)
  x = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                   epsilon=1e-5, dtype=dtype)(x)
  return activation(x)


class CNN(nn.Module):
  """`BxFxK` frames of K bins -> `BxFxD`, D the last channel count; sows
  each block's bin-averaged `BxFxC` output."""
  channels: Sequence[int] = (64, 128, 128, 256, 256)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BxFxK, train: bool = False):
    x = x_BxFxK.astype(self.dtype)[..., None]
    for ch in self.channels:
      x = conv_bn(x, ch, train, self.dtype)
      if x.shape[2] >= 2:
        x = nn.max_pool(x, (1, 2), strides=(1, 2))
      self.sow("intermediates", "layers", jnp.mean(x, axis=2))
    return jnp.mean(x, axis=2).astype(jnp.float32), None
