"""Frontends: the encoder's input (a waveform crop, or a piano-roll or
multitrack-roll crop) to a `BxFxC` frame sequence.

The frame grid belongs to the prepared collection (its manifest's
`sample_rate` and `hop_length`, the run's `data.sample_rate` and
`data.hop_length`) and to the encoder (`frame_hop`): an encoder's hop is a
whole multiple of the collection's, so frame targets made on the
collection's frames are read at the encoder's (fairseq's `label_rate`:
HuBERT's 100 Hz MFCC codes at its 50 Hz frames). With the centred layouts
frame k of every frontend stands at sample k * hop, so the same seconds
of waveform, mel or piano roll give the same number of frames, and one set
of frame targets serves all three: a crop of T samples gives T / hop
frames, the mel frontend's AST-style patches T / hop / patch_frames.
fairseq's valid conv extractor gives floor((T - 400) / 320) + 1 frames,
frame k reading samples [320k, 320k + 400).
The text frontend embeds a title's or caption's bytes, one frame a byte,
off the audio grid. `embed="none"` leaves the raw frames for backbones that read them as they
are: samples for SampleCNN, mel bands or pitches for the 2-D CNN.
"""

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxmusic.audio import augment
from jaxmusic.audio import frontend as audio_frontend
from jaxmusic.data.features import PITCHES
from jaxmusic.data.features import TEXT_VOCAB

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
SPECTRA = ("librosa", "kaldi")
CONV_NORMS = ("group", "layer")


def receptive_field(kernels: Sequence[int], strides: Sequence[int]) -> int:
  """Samples one output frame of a conv stack reads (400 for fairseq's)."""
  field, jump = 1, 1
  for k, s in zip(kernels, strides):
    field += (k - 1) * jump
    jump *= s
  return field


class Waveform(nn.Module):
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


class Mel(nn.Module):
  """`BxT` samples -> the in-graph log-mel (librosa's, as `prepare`
  stores it), its frames `BxFxn_mels` scaled to about unit range;
  SpecAugment in training when `spec_augment` names its masks. `frame`
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


class PianoRoll(nn.Module):
  """`BxPxF` velocities (the prepared piano roll, P = 128, or the
  multitrack roll, its 128 pitches then instrument and drum lanes) ->
  `BxFxP` in [0, 1]. `linear` embeds each frame; `conv` first runs
  octave-wide filters along pitch (shared over pitch, so a transposition
  moves, not changes, them) and appends the lanes as they are.
  `transpose` > 0 moves each roll's pitches by up to that many semitones
  in training (the symbolic pitch shift), as `spec_augment` masks a mel: a
  partner tower then cannot match this one on absolute pitch."""
  embed: str = "linear"
  dim: int = 512
  filters: int = 16
  transpose: int = 0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, roll_BxPxF, train: bool = False):
    if train and self.transpose:
      roll_BxPxF = augment.apply_batch(
          lambda k, r: augment.roll_transpose(k, r, self.transpose),
          self.make_rng("augment"), roll_BxPxF)
    x = jnp.swapaxes(roll_BxPxF.astype(jnp.float32), 1, 2) / 127.0
    self.sow("intermediates", "raw", x)
    if self.embed == "none":
      return x
    if self.embed == "conv":
      b, f, _ = x.shape
      pitch, lanes = x[..., :PITCHES], x[..., PITCHES:]
      x = nn.Conv(self.filters, (12,), strides=(4,), padding=((4, 4),),
                  dtype=self.dtype, name="octave")(
                      pitch.reshape(b * f, PITCHES, 1))
      x = nn.gelu(x, approximate=False).reshape(b, f, -1)
      x = jnp.concatenate([x, lanes.astype(x.dtype)], axis=-1)
    return nn.Dense(self.dim, dtype=self.dtype, name="embed")(x)


class Text(nn.Module):
  """`BxL` byte ids (features.encode_text: UTF-8 byte + 1, 0 pads) ->
  `BxLxdim` embeddings: a text tower with no tokenizer or weights to
  download. `valid` marks the frames that are not padding; the encoder
  masks attention and pooling with it."""
  embed: str = "bytes"
  dim: int = 256
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, ids_BxL, train: bool = False):
    return nn.Embed(TEXT_VOCAB, self.dim, dtype=self.dtype, name="embed")(
        ids_BxL.astype(jnp.int32))

  @staticmethod
  def valid(ids_BxL):
    return ids_BxL > 0


# `multitrack` is the piano-roll frontend on the multitrack roll
# (features.multitrack): the same module, 63 more rows.
FRONTENDS = {"waveform": Waveform, "mel": Mel, "pianoroll": PianoRoll,
             "multitrack": PianoRoll, "text": Text}
# The prepared feature each frontend reads.
INPUT_FEATURE = {"waveform": "waveform", "mel": "waveform",
                 "pianoroll": "pianoroll", "multitrack": "multitrack",
                 "text": "text"}


def frame_hop(name: str, cfg, collection_hop: int) -> int | None:
  """Samples between the encoder's frames: the waveform conv stack's
  stride product, the mel frontend's hop (times its patch frames), the
  collection's hop for the rolls (their frames are the prepared ones); 1
  for raw samples, None for text (no time grid)."""
  embed = cfg.get("embed")
  if name == "waveform":
    return math.prod(cfg.get("strides", CENTRED_STRIDES)) if \
        embed == "conv" else 1
  if name == "mel":
    if embed == "ast":  # a 2-D grid of patches
      return None
    patch = cfg.get("patch_frames", 1) if embed == "patch" else 1
    return cfg.get("hop", 512) * patch
  if name == "text":
    return None
  return collection_hop


def frames_per_crop(name: str, cfg, crop_samples: int, hop: int) -> int:
  """Frames a crop of `crop_samples` gives, on a collection whose hop is
  `hop`."""
  step = frame_hop(name, cfg, hop)
  if name == "waveform" and cfg.get("embed") == "conv" and \
      cfg.get("padding", "same") == "valid":
    field = receptive_field(cfg.get("kernels", CENTRED_KERNELS),
                            cfg.get("strides", CENTRED_STRIDES))
    return max(0, (crop_samples - field) // step + 1)
  if name == "mel" and cfg.get("spectrum", "librosa") == "kaldi":
    frames = cfg.get("fbank_frames", 0) or max(
        0, (crop_samples - cfg.get("n_fft", 2048)) // cfg.get("hop", 512) + 1)
    if cfg.get("embed") != "ast":
      return frames // (cfg.get("patch_frames", 1)
                        if cfg.get("embed") == "patch" else 1)
    bands_stride, frames_stride = cfg.get("patch_stride", (10, 10))
    return (((cfg.get("n_mels", 128) - cfg.get("patch_bands", 16))
             // bands_stride + 1)
            * ((frames - cfg.get("patch_frames", 1)) // frames_stride + 1))
  return crop_samples // (step or hop)


def validate(name: str, cfg, hop: int, fail):
  """`hop` is the collection's: a frame-rate frontend's frames must fall
  on whole multiples of it, so frame targets line up."""
  embed = cfg.get("embed")
  if name == "waveform" and embed == "conv":
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
  step = frame_hop(name, cfg, hop)
  if name in ("waveform", "mel") and step and step > 1 and step % hop:
    fail("model.frontend.strides" if name == "waveform" else
         "model.frontend.hop", f"the encoder's hop of {step} samples is not "
         f"a multiple of the collection's hop {hop} (data.hop_length)")
  if name == "mel" and cfg.get("spectrum", "librosa") not in SPECTRA:
    fail("model.frontend.spectrum", f"use one of {SPECTRA}")
  if name == "mel" and embed == "ast" and cfg.get("spectrum") != "kaldi":
    fail("model.frontend.embed", "ast patches read spectrum='kaldi'")
  if name == "mel" and cfg.get("n_mfcc", 0) > cfg.get("n_mels", 128):
    fail("model.frontend.n_mfcc", "must not exceed n_mels")
  if name == "mel" and embed == "patch":
    if cfg.get("n_mels", 128) % cfg.get("patch_bands", 16):
      fail("model.frontend.patch_bands", "must divide n_mels")
  transpose = cfg.get("transpose", 0)
  if FRONTENDS.get(name) is PianoRoll and not 0 <= transpose < 64:
    fail("model.frontend.transpose", "semitones in 0..63 (0: off)")
  if name == "mel" and cfg.get("spec_augment"):
    known = {"n_freq_masks", "max_freq_width", "n_time_masks",
             "max_time_width", "fill"}
    bad = set(cfg["spec_augment"]) - known
    if bad:
      fail("model.frontend.spec_augment", f"unknown keys {sorted(bad)}; "
           f"known: {sorted(known)}")
