"""SampleCNN (Lee et al. 2017) as CLMR uses it, on raw waveform."""

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

# stem, 9 blocks, final conv: 59,049 = 3**10 samples reduce to one frame.
CLMR_CHANNELS = (128, 128, 128, 256, 256, 256, 256, 256, 256, 512, 512)


def max_pool3(x_BxTxC):
  """Max-pool 3, stride 3 over time, as the max of three strided slices.

  Same values as `nn.max_pool(x, (3,), strides=(3,))`, but its gradient is
  an elementwise select instead of XLA's select-and-scatter, which on CPU
  costs more than the conv beside it (7x slower at the first block)."""
  t = x_BxTxC.shape[1] // 3 * 3
  return functools.reduce(jnp.maximum, [x_BxTxC[:, i:t:3] for i in range(3)])


@jax.custom_vjp
def materialized(x):
  """The identity, as a value XLA cannot recompute inside its consumers.

  For the first block's weight gradient XLA:CPU transposes the stem's output
  from BxTxC to CxTxB, and fuses the stem's bias, BatchNorm and ReLU into
  that transpose, recomputing them in an order that reads memory with a
  stride of T·C. That one fusion took 520 ms of a 2.7 s step. Behind this
  boundary it reads the stored output instead: 136 ms. `optimization_barrier`
  does not help, because XLA:CPU removes it before fusion, and a loop with a
  known trip count or an unchanged carry is simplified away; so this is a
  while loop whose trip count XLA cannot know (1, or 0 when x's first
  element is NaN) and whose body multiplies by that same 1. Either way the
  value is x, bit for bit.
  """
  first = x[(0,) * x.ndim]  # no reshape: a sharded batch stays as it is
  runs = first == first
  return jax.lax.while_loop(lambda c: c[0] < runs.astype(jnp.int32),
                            lambda c: (c[0] + 1, c[1] * runs.astype(x.dtype)),
                            (0, x))[1]


materialized.defvjp(lambda x: (materialized(x), None), lambda _, g: (g,))


def receptive_field(channels: Sequence[int]) -> int:
  """Input samples that reduce to one frame: 3 ** (1 + number of blocks)."""
  return 3 ** (len(channels) - 1)


class SampleCNN(nn.Module):
  """Stem conv k3 s3 + BN + ReLU; blocks of conv k3 + BN + ReLU + maxpool 3;
  a final conv k3 + BN + ReLU. Returns the `BxD` embedding, averaged over
  any frames left when the input is longer than the receptive field, and
  sows each layer's `BxFxC` output for export's per-layer embeddings."""
  channels: Sequence[int] = CLMR_CHANNELS
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, wav_BxT, train: bool = False):
    # PyTorch's BN momentum 0.1 is Flax's 0.9; BN statistics are means over
    # the global batch because the step is one jit over sharded arrays.
    norm = functools.partial(nn.BatchNorm, use_running_average=not train,
                             momentum=0.9, epsilon=1e-5, dtype=self.dtype)
    conv = functools.partial(nn.Conv, kernel_size=(3,), dtype=self.dtype)
    x = wav_BxT[..., None].astype(self.dtype)
    x = nn.relu(norm()(conv(self.channels[0], strides=(3,),
                            padding="VALID")(x)))
    if train and jax.default_backend() == "cpu":  # see `materialized`
      x = materialized(x)
    self.sow("intermediates", "layers", x)
    for ch in self.channels[1:-1]:
      x = nn.relu(norm()(conv(ch, padding=((1, 1),))(x)))
      x = max_pool3(x)
      self.sow("intermediates", "layers", x)
    x = nn.relu(norm()(conv(self.channels[-1], padding=((1, 1),))(x)))
    self.sow("intermediates", "layers", x)
    return jnp.mean(x, axis=1).astype(jnp.float32)
