"""The mel frontend: `BxT` samples -> the in-graph log-mel (librosa's, as
`prepare` stores it) or Kaldi's log fbank (AST's), embedded per frame, per
patch of frames and bands, or AST's overlapping patches.
"""

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxmusic.audio import augment
from jaxmusic.audio import frontend as audio_frontend
from jaxmusic.models.frontends.base import Frontend

SPECTRA = ("librosa", "kaldi")


class Mel(Frontend):
  """`BxT` samples -> the in-graph log-mel (librosa's, as `prepare`
  stores it), its frames `BxFxn_mels` scaled to about unit range;
  SpecAugment in training when `spec_augment` names its masks, and a
  tempo change of up to `tempo` (a fraction) when that is > 0. `frame`
  embeds each frame linearly; `patch` embeds AST-style patches of
  `patch_frames` x `patch_bands`, concatenated over the bands. `n_mfcc`
  > 0 turns the frames into MFCCs: the orthonormal DCT-II of the scaled
  log-mel (librosa's MFCC of it), `BxFxn_mfcc`.

  `spectrum="kaldi"` is AST's input instead: Kaldi's log fbank
  (audio_frontend.kaldi_fbank: `n_fft` the frame length, 400 at 16 kHz,
  uncentred, 1 + (T - n_fft) // hop frames), zero-padded or cut to
  `fbank_frames` frames where that is > 0 (ASTFeatureExtractor's
  max_length), then standardised as AST does, (x - fbank_mean) /
  (2 fbank_std). `embed="ast"` is AST's patch
  embedding: one conv of `patch_bands` x `patch_frames` over the
  bands x frames image with strides `patch_stride` (bands, frames), its
  patches in band-major order, `Bx(F'T')xdim`: tokens, not frames on the
  time grid."""
  FEATURE = "waveform"
  EMBEDS = {"frame": "frames", "patch": "frames", "ast": "frames",
            "none": "bands"}
  AUGMENTATIONS = augment.TRANSFORMS

  embed: str = "frame"
  dim: int = 512
  sample_rate: int = 22050
  n_fft: int = 2048
  hop: int = 512
  n_mels: int = 128
  patch_frames: int = 1
  patch_bands: int = 16
  patch_stride: Sequence[int] = (10, 10)
  n_mfcc: int = 0
  spectrum: str = "librosa"
  fbank_frames: int = 0
  fbank_mean: float = 0.0
  fbank_std: float = 0.5
  spec_augment: Any = None  # e.g. {"n_time_masks": 2, "max_time_width": 10}
  tempo: float = 0.0  # > 0: a random tempo change of up to this fraction
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, wav_BxT, train: bool = False):
    if self.spectrum == "kaldi":
      x = audio_frontend.kaldi_fbank(
          wav_BxT, self.sample_rate, self.n_fft, self.hop, self.n_mels)
      if self.fbank_frames:
        x = jnp.pad(x, ((0, 0), (0, max(0, self.fbank_frames - x.shape[1])),
                        (0, 0)))[:, :self.fbank_frames]
      x = (x - self.fbank_mean) / (2.0 * self.fbank_std)
    else:
      x = self._logmel(wav_BxT, train)
    if self.embed == "ast":
      # Bands x frames as an image, one conv of overlapping patches.
      x = nn.Conv(self.dim, (self.patch_bands, self.patch_frames),
                  strides=tuple(self.patch_stride), padding="VALID",
                  dtype=self.dtype, name="patch")(
                      jnp.swapaxes(x, 1, 2)[..., None].astype(self.dtype))
      return x.reshape(x.shape[0], -1, self.dim)
    return self._embed(x)

  def _logmel(self, wav_BxT, train):
    n_frames = wav_BxT.shape[-1] // self.hop
    db_BxMxN = audio_frontend.logmel(
        wav_BxT.astype(jnp.float32), sr=self.sample_rate, n_fft=self.n_fft,
        hop_length=self.hop, n_mels=self.n_mels)[..., :n_frames]
    if train and self.tempo:
      db_BxMxN = augment.apply_batch(
          lambda k, s: augment.time_stretch(k, s, self.tempo),
          self.make_rng("augment"), db_BxMxN)
    if train and self.spec_augment:
      db_BxMxN = augment.apply_batch(
          lambda k, s: augment.spec_augment(k, s, **dict(self.spec_augment)),
          self.make_rng("augment"), db_BxMxN)
    # dB to about unit range: power_to_db's floor is 80 dB below the peak.
    return (jnp.swapaxes(db_BxMxN, 1, 2) + 40.0) / 20.0

  def _embed(self, x):
    if self.n_mfcc:
      x = jnp.einsum("bfm,cm->bfc", x, audio_frontend.dct_matrix(
          self.n_mels, self.n_mfcc), precision=jax.lax.Precision.HIGHEST)
    # What an autoencoder reconstructs, whatever the embedding.
    self.sow("intermediates", "raw", x)
    if self.embed == "none":
      return x
    if self.embed == "frame":
      return nn.Dense(self.dim, dtype=self.dtype, name="embed")(x)
    b, f, m = x.shape
    p, q = self.patch_frames, self.patch_bands
    x = x[:, :f // p * p].reshape(b, f // p, p, m // q, q)
    x = jnp.swapaxes(x, 2, 3).reshape(b, f // p, m // q, p * q)
    x = nn.Dense(self.dim, dtype=self.dtype, name="patch")(x)
    return nn.Dense(self.dim, dtype=self.dtype, name="embed")(
        x.reshape(b, f // p, -1))

  @classmethod
  def width(cls, cfg) -> int:
    if cfg.get("embed") == "none":
      return cfg.get("n_mfcc", 0) or cfg.get("n_mels", 128)
    return cfg.get("dim", 512)

  @classmethod
  def frame_hop(cls, cfg, collection_hop: int) -> int | None:
    del collection_hop
    if cfg.get("embed") == "ast":  # a 2-D grid of patches
      return None
    patch = cfg.get("patch_frames", 1) if cfg.get("embed") == "patch" else 1
    return cfg.get("hop", 512) * patch

  @classmethod
  def centred(cls, cfg) -> bool:
    return cfg.get("spectrum", "librosa") != "kaldi"

  @classmethod
  def frames_per_crop(cls, cfg, crop_samples: int, hop: int) -> int:
    if cls.centred(cfg):
      return super().frames_per_crop(cfg, crop_samples, hop)
    frames = cfg.get("fbank_frames", 0) or max(
        0, (crop_samples - cfg.get("n_fft", 2048)) // cfg.get("hop", 512) + 1)
    if cfg.get("embed") != "ast":
      return frames // (cfg.get("patch_frames", 1)
                        if cfg.get("embed") == "patch" else 1)
    bands_stride, frames_stride = cfg.get("patch_stride", (10, 10))
    return (((cfg.get("n_mels", 128) - cfg.get("patch_bands", 16))
             // bands_stride + 1)
            * ((frames - cfg.get("patch_frames", 1)) // frames_stride + 1))

  @classmethod
  def validate(cls, cfg, hop: int, fail) -> None:
    cls.check_hop(cfg, hop, fail, "model.frontend.hop")
    if cfg.get("spectrum", "librosa") not in SPECTRA:
      fail("model.frontend.spectrum", f"use one of {SPECTRA}")
    if not 0 <= cfg.get("tempo", 0.0) < 1:
      fail("model.frontend.tempo", "a rate change in [0, 1) (0: off)")
    if cfg.get("embed") == "ast" and cfg.get("spectrum") != "kaldi":
      fail("model.frontend.embed", "ast patches read spectrum='kaldi'")
    if cfg.get("n_mfcc", 0) > cfg.get("n_mels", 128):
      fail("model.frontend.n_mfcc", "must not exceed n_mels")
    if cfg.get("embed") == "patch" and cfg.get("n_mels", 128) % cfg.get(
        "patch_bands", 16):
      fail("model.frontend.patch_bands", "must divide n_mels")
    if cfg.get("spec_augment"):
      known = {"n_freq_masks", "max_freq_width", "n_time_masks",
               "max_time_width", "fill"}
      bad = set(cfg["spec_augment"]) - known
      if bad:
        fail("model.frontend.spec_augment", f"unknown keys {sorted(bad)}; "
             f"known: {sorted(known)}")

  @classmethod
  def reconstruction(cls, cfg) -> str | None:
    # Patches are no frames to reconstruct.
    return None if cfg.get("embed") in ("patch", "ast") else "mse"
