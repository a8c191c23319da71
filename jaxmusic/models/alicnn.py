"""The convolutional inference network G_z(x) of ALI (Dumoulin et al.
2017, "Adversarially learned inference", Table 3: the CIFAR-10 model), on
a crop's frames x bins as a one-channel image.

Unpadded 5x5/1, 4x4/2, 4x4/1, 4x4/2, 4x4/1 convs of 32, 64, 128, 256,
512 channels, then a 1x1 conv of 512, each with BatchNorm and a leaky
ReLU, take a 32 x 32 image to one 1 x 1 x 512 vector. The paper's last
1x1 conv to 2 x latent (mu and log sigma, linear) is the encoder's
`model.bottleneck` and the ALI objective's log-sigma map beside it: on a
1 x 1 grid a 1x1 conv is that dense layer. An axis shorter than 32 (12
chroma bins, 20 MFCCs) is zero-padded to 32, the size the stack reduces
to one; a longer one leaves a grid whose bins are averaged, as the mel
CNNs here do, giving `BxF'xD` frames for the encoder's pooling.
"""

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

# (kernel, stride, channels): Table 3's G_z(x) before its output layer.
CONVS = ((5, 1, 32), (4, 2, 64), (4, 1, 128), (4, 2, 256), (4, 1, 512),
         (1, 1, 512))
# The image side the stack reduces to one position.
SIDE = 32


def pad_to(x_BxFxK, side: int = SIDE):
  """Zero-pads the frames and bins axes to at least `side`."""
  return jnp.pad(x_BxFxK, ((0, 0), (0, max(0, side - x_BxFxK.shape[1])),
                           (0, max(0, side - x_BxFxK.shape[2])))
                 + ((0, 0),) * (x_BxFxK.ndim - 3))


class ALICNN(nn.Module):
  """`BxFxK` -> `BxF'xD`, D the last conv's channels (512); sows each
  conv's bin-averaged output."""
  convs: Sequence[Sequence[int]] = CONVS
  leak: float = 0.01
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BxFxK, train: bool = False):
    x = pad_to(x_BxFxK.astype(self.dtype))[..., None]
    for kernel, stride, ch in self.convs:
      x = nn.Conv(ch, (kernel, kernel), strides=(stride, stride),
                  padding="VALID", use_bias=False, dtype=self.dtype)(x)
      x = nn.BatchNorm(use_running_average=not train, momentum=0.95,
                       epsilon=1e-5, dtype=self.dtype)(x)
      x = nn.leaky_relu(x, self.leak)
      self.sow("intermediates", "layers", jnp.mean(x, axis=2))
    return jnp.mean(x, axis=2).astype(jnp.float32), None


def out_side(side: int, convs=CONVS) -> int:
  """Positions an axis of `side` (padded to 32) keeps after the stack."""
  n = max(side, SIDE)
  for kernel, stride, _ in convs:
    n = (n - kernel) // stride + 1
  return n
