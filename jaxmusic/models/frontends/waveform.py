"""The waveform frontend: `BxT` samples, raw (`embed="none"`, `BxTx1` for
SampleCNN) or through a conv feature extractor (`embed="conv"`), HuBERT's
and wav2vec 2.0's, `BxFxchannels`.

fairseq's valid extractor gives floor((T - 400) / 320) + 1 frames, frame k
reading samples [320k, 320k + 400); the centred layout gives T / hop
frames, frame k centred on sample k * hop as the prepared log-mel's and
piano roll's frames are.
"""

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxmusic.audio import augment
from jaxmusic.models.frontends import mel
from jaxmusic.models.frontends.base import Frontend

# fairseq's extractor (HuBERT, wav2vec 2.0, MERT): 7 valid convs, kernels
# 10,3,3,3,3,2,2 and strides 5,2,2,2,2,2,2, 320 samples a frame (50 Hz at
# 16 kHz, 75 Hz at 24 kHz), floor((T - 400) / 320) + 1 frames.
FAIRSEQ_KERNELS = (10, 3, 3, 3, 3, 2, 2)
FAIRSEQ_STRIDES = (5, 2, 2, 2, 2, 2, 2)
# The centred layout: the same shape of stack reaching a 512-sample hop
# (22,050 Hz, 43 Hz), T / 512 frames, frame k centred on sample k * 512.
CENTRED_KERNELS = (8, 3, 3, 3, 3, 3, 2, 2)
CENTRED_STRIDES = (4, 2, 2, 2, 2, 2, 2, 2)
PADDINGS = ("same", "valid")
CONV_NORMS = ("group", "layer")


def receptive_field(kernels: Sequence[int], strides: Sequence[int]) -> int:
  """Samples one output frame of a conv stack reads (400 for fairseq's)."""
  field, jump = 1, 1
  for k, s in zip(kernels, strides):
    field += (k - 1) * jump
    jump *= s
  return field


class Waveform(Frontend):
  """`BxT` samples. `none`: `BxTx1` for SampleCNN. `conv`: HuBERT's conv
  feature extractor, `BxFxchannels`.

  `padding="valid"` is fairseq's and `transformers`': every conv unpadded,
  floor((T - R) / hop) + 1 frames for a receptive field of R samples, frame
  k reading samples [k * hop, k * hop + R). `padding="same"` pads each conv
  so that the stack gives T / hop frames, frame k centred on sample
  k * hop as the prepared log-mel's and piano roll's frames are.
  `norm="group"` is fairseq's default mode (a group norm, one group per
  channel, after the first conv only); `norm="layer"` its layer_norm mode
  (a LayerNorm over channels after every conv). `normalize` scales each
  crop to zero mean and unit variance first (`transformers`'
  Wav2Vec2FeatureExtractor with do_normalize, fairseq's `normalize`).
  `grad_scale` scales the gradient that reaches the extractor (fairseq's
  feature_grad_mult; the forward pass is unchanged)."""
  FEATURE = "waveform"
  EMBEDS = {"conv": "frames", "none": "samples"}
  AUGMENTATIONS = augment.TRANSFORMS

  embed: str = "none"
  channels: int = 512
  kernels: Sequence[int] = CENTRED_KERNELS
  strides: Sequence[int] = CENTRED_STRIDES
  padding: str = "same"
  norm: str = "group"
  conv_bias: bool = False
  normalize: bool = False
  grad_scale: float = 1.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, wav_BxT, train: bool = False):
    x = wav_BxT.astype(jnp.float32)[..., None]
    if self.normalize:
      mean = jnp.mean(x, axis=1, keepdims=True)
      x = (x - mean) / jnp.sqrt(jnp.var(x, axis=1, keepdims=True) + 1e-7)
    if self.embed == "none":
      return x
    if self.padding == "same":
      # Shifted by half a hop, so that frame k is centred on sample k * hop.
      half = math.prod(self.strides) // 2
      x = jnp.pad(x, ((0, 0), (half, 0), (0, 0)))[:, :x.shape[1]]
    x = x.astype(self.dtype)
    for i, (k, s) in enumerate(zip(self.kernels, self.strides)):
      pad = ((0, 0),) if self.padding == "valid" else (
          ((k - s) // 2, k - s - (k - s) // 2),)
      x = nn.Conv(self.channels, (k,), strides=(s,), padding=pad,
                  use_bias=self.conv_bias, dtype=self.dtype,
                  name=f"conv_{i}")(x)
      if self.norm == "layer":
        x = nn.LayerNorm(epsilon=1e-5, dtype=jnp.float32,
                         use_fast_variance=False, name=f"layer_norm_{i}")(x)
      elif i == 0:
        x = nn.GroupNorm(num_groups=self.channels, epsilon=1e-5,
                         dtype=jnp.float32, use_fast_variance=False,
                         name="group_norm")(x)
      x = nn.gelu(x.astype(self.dtype), approximate=False)
    if self.grad_scale != 1.0:
      # x - sg(x) is exactly 0 forward: the output is bit-identical.
      frozen = jax.lax.stop_gradient(x)
      x = frozen + self.grad_scale * (x - frozen)
    return x

  @classmethod
  def width(cls, cfg) -> int:
    return cfg.get("channels", 512) if cfg.get("embed") == "conv" else 1

  @classmethod
  def frame_hop(cls, cfg, collection_hop: int) -> int | None:
    del collection_hop
    return (math.prod(cfg.get("strides", CENTRED_STRIDES))
            if cfg.get("embed") == "conv" else 1)

  @classmethod
  def centred(cls, cfg) -> bool:
    return cfg.get("embed") != "conv" or cfg.get("padding", "same") != "valid"

  @classmethod
  def frames_per_crop(cls, cfg, crop_samples: int, hop: int) -> int:
    if cls.centred(cfg):
      return super().frames_per_crop(cfg, crop_samples, hop)
    field = receptive_field(cfg.get("kernels", CENTRED_KERNELS),
                            cfg.get("strides", CENTRED_STRIDES))
    return max(0, (crop_samples - field) // cls.frame_hop(cfg, hop) + 1)

  @classmethod
  def validate(cls, cfg, hop: int, fail) -> None:
    if cfg.get("embed") != "conv":
      return
    strides = cfg.get("strides", CENTRED_STRIDES)
    kernels = cfg.get("kernels", CENTRED_KERNELS)
    if len(strides) != len(kernels) or any(k < s for k, s in zip(kernels,
                                                                 strides)):
      fail("model.frontend.kernels", "needs one kernel >= its stride per "
           "stride")
    if cfg.get("padding", "same") not in PADDINGS:
      fail("model.frontend.padding", f"use one of {PADDINGS}")
    if cfg.get("norm", "group") not in CONV_NORMS:
      fail("model.frontend.norm", f"use one of {CONV_NORMS}")
    cls.check_hop(cfg, hop, fail, "model.frontend.strides")

  @classmethod
  def reconstruction(cls, cfg) -> str | None:
    del cfg
    return "mse"

  @classmethod
  def reconstruction_target(cls, cfg, data_cfg):
    """A waveform encoder reconstructs the crop's log-mel."""
    del cfg
    return mel.Mel(embed="none", sample_rate=data_cfg.get("sample_rate", 22050))
