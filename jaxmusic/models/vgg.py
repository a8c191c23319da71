"""The VGG-style pathway of Dorfer et al.'s audio-sheet retrieval network
(Dorfer, Hajič, Arzt, Frostel & Widmer 2018, "Learning audio-sheet music
correspondences for cross-modal retrieval and piece identification",
TISMIR 1(1), Table 1), the same stack for both modalities: a sheet
snippet and a spectrogram excerpt, each as a one-channel image.

Blocks of two 3x3 convs (BatchNorm, ReLU) and a 2x2 max-pool, with 24,
48, 96 and 96 channels; then a 1x1 conv to 32 channels with BatchNorm and
no activation. The paper's global average pooling is the encoder's mean
pooling over the frames left (after the bins are averaged here), and its
dense 32-unit layer into the shared space is `model.bottleneck`.
"""

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxmusic.models.cnn import conv_bn

CHANNELS = (24, 48, 96, 96)


class VGG(nn.Module):
  """`BxFxK` -> `BxF'xD` (F' = F / 2**blocks, D = `out_channels`); sows
  each block's bin-averaged output."""
  channels: Sequence[int] = CHANNELS
  convs_per_block: int = 2
  out_channels: int = 32
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BxFxK, train: bool = False):
    x = x_BxFxK.astype(self.dtype)[..., None]
    for ch in self.channels:
      for _ in range(self.convs_per_block):
        x = conv_bn(x, ch, train, self.dtype)
      # An axis already down to one position is not pooled further.
      window = tuple(2 if n >= 2 else 1 for n in x.shape[1:3])
      x = nn.max_pool(x, window, strides=window)
      self.sow("intermediates", "layers", jnp.mean(x, axis=2))
    x = nn.Conv(self.out_channels, (1, 1), use_bias=False,
                dtype=self.dtype)(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                     epsilon=1e-5, dtype=self.dtype)(x)
    x = jnp.mean(x, axis=2)
    self.sow("intermediates", "layers", x)
    return x.astype(jnp.float32), None
