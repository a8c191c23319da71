"""The convolutional recurrent network of Choi et al. (2017), "Convolutional
recurrent neural networks for music classification", the encoder of the
Tile2Vec-for-audio work.

Four blocks of 3x3 conv + BatchNorm + ELU + max-pool over (time, bins),
channels 64, 128, 128, 128; the bins left are averaged; two GRU layers of
32 units run over time. Frames are the last GRU layer's outputs, `BxF'xH`
at the conv stack's time resolution (`pools`' time factors multiplied);
the paper's last hidden state is close to `model.pooling="mean"` over them.
"""

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxmusic.models import cnn

CHOI_CHANNELS = (64, 128, 128, 128)
# (time, bins) per block. Choi's were (2,2),(3,3),(4,4),(4,4) on 96 bands
# of 1366 frames; these keep 2.7 s crops at 1/16 of the frame rate and
# reduce 128 bands to one.
CHOI_POOLS = ((2, 2), (2, 4), (2, 4), (2, 4))


class CRNN(nn.Module):
  """`BxFxK` frames -> `BxF'xH`; sows each block's bin-averaged output and
  each GRU layer's output."""
  channels: Sequence[int] = CHOI_CHANNELS
  pools: Sequence[Sequence[int]] = CHOI_POOLS
  gru: Sequence[int] = (32, 32)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BxFxK, train: bool = False):
    x = x_BxFxK.astype(self.dtype)[..., None]
    for ch, pool in zip(self.channels, self.pools):
      x = cnn.conv_bn(x, ch, train, self.dtype, nn.elu)
      window = tuple(min(p, n) for p, n in zip(pool, x.shape[1:3]))
      x = nn.max_pool(x, window, strides=window)
      self.sow("intermediates", "layers", jnp.mean(x, axis=2))
    h = jnp.mean(x, axis=2).astype(jnp.float32)
    for units in self.gru:
      h = nn.RNN(nn.GRUCell(units))(h)
      self.sow("intermediates", "layers", h)
    return h, None


def validate(cfg, fail):
  if len(cfg.get("pools", CHOI_POOLS)) != len(cfg.get("channels",
                                                      CHOI_CHANNELS)):
    fail("model.pools", "needs one (time, bins) pool per conv block")
