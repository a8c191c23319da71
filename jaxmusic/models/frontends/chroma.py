"""The chroma frontend: `BxT` samples -> the in-graph STFT chromagram, 12
pitch classes a frame (librosa's `chroma_stft` at tuning 0, each frame
scaled to a peak of 1), on the collection's grid.

The input of the composer-embedding study beside MFCC and mel: harmony
with timbre and octave folded away. `embed="none"` gives the 12 bins to a
2-D CNN, the ALI encoder, the feed-forward network or the LSTM;
`embed="frame"` a linear embedding a frame for the transformer.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxmusic.audio import augment
from jaxmusic.audio import frontend as audio_frontend
from jaxmusic.models.frontends.base import Frontend


class Chroma(Frontend):
  """`BxT` samples -> `BxFxn_chroma` chroma in [0, 1], or their
  per-frame embedding."""
  FEATURE = "waveform"
  EMBEDS = {"frame": "frames", "none": "bands"}
  AUGMENTATIONS = augment.TRANSFORMS

  embed: str = "frame"
  dim: int = 512
  sample_rate: int = 22050
  n_fft: int = 2048
  hop: int = 512
  n_chroma: int = 12
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, wav_BxT, train: bool = False):
    del train
    n_frames = wav_BxT.shape[-1] // self.hop
    x = jnp.swapaxes(audio_frontend.chroma(
        wav_BxT.astype(jnp.float32), sr=self.sample_rate, n_fft=self.n_fft,
        hop_length=self.hop, n_chroma=self.n_chroma)[..., :n_frames], 1, 2)
    # What an autoencoder reconstructs, whatever the embedding.
    self.sow("intermediates", "raw", x)
    if self.embed == "none":
      return x
    return nn.Dense(self.dim, dtype=self.dtype, name="embed")(x)

  @classmethod
  def width(cls, cfg) -> int:
    if cfg.get("embed") == "none":
      return cfg.get("n_chroma", 12)
    return cfg.get("dim", 512)

  @classmethod
  def frame_hop(cls, cfg, collection_hop: int) -> int | None:
    del collection_hop
    return cfg.get("hop", 512)

  @classmethod
  def validate(cls, cfg, hop: int, fail) -> None:
    cls.check_hop(cfg, hop, fail, "model.frontend.hop")
    if cfg.get("n_chroma", 12) < 1:
      fail("model.frontend.n_chroma", "must be positive")

  @classmethod
  def reconstruction(cls, cfg) -> str | None:
    del cfg
    return "mse"
