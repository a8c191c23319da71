"""SampleCNN (Lee et al. 2017) as CLMR (Spijkervet & Burgoyne 2021) uses
it, on raw waveform samples.

A stem conv (kernel 3, stride 3) and BatchNorm + ReLU; blocks of conv
(kernel 3) + BatchNorm + ReLU + max-pool 3; a final conv + BatchNorm + ReLU.
3 ** (number of blocks + 1) samples reduce to one frame: 59,049 samples
(2.7 s at 22,050 Hz) for CLMR's 11 layers. A faster implementation of the
same network for CPUs, with the same parameters, is `jaxmusic/ops/
samplecnn_cpu.py`, chosen by `config.model.impl`.
"""

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxmusic.defaults import CLMR_CHANNELS

# stem, 9 blocks, final conv: 59,049 = 3**10 samples reduce to one frame.


def receptive_field(channels: Sequence[int]) -> int:
  """Input samples that reduce to one frame: 3 ** (1 + number of blocks)."""
  return 3 ** (len(channels) - 1)


class SampleCNN(nn.Module):
  """`BxTx1` samples -> `BxFxD` frames (F = T / receptive field); sows each
  layer's `BxFxC` output."""
  channels: Sequence[int] = CLMR_CHANNELS
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BxTx1, train: bool = False):
    # BatchNorm's statistics are over the global batch: the step is one jit
    # over sharded arrays. Momentum 0.9 is PyTorch's 0.1.
    norm = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.9,
                                epsilon=1e-5, dtype=self.dtype)
    conv = lambda ch, **kw: nn.Conv(ch, (3,), dtype=self.dtype, **kw)
    x = x_BxTx1.astype(self.dtype)
    x = nn.relu(norm()(conv(self.channels[0], strides=(3,),
                            padding="VALID")(x)))
    self.sow("intermediates", "layers", x)
    for ch in self.channels[1:-1]:
      x = nn.relu(norm()(conv(ch, padding=((1, 1),))(x)))
      x = nn.max_pool(x, (3,), strides=(3,))
      self.sow("intermediates", "layers", x)
    x = nn.relu(norm()(conv(self.channels[-1], padding=((1, 1),))(x)))
    self.sow("intermediates", "layers", x)
    return x.astype(jnp.float32), None
