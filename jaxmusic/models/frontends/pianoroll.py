"""The piano-roll frontend: `BxPxF` velocities -> `BxFxP` in [0, 1],
embedded per frame; and the piano roll's augmentations (the symbolic
pitch shift, gain and time masks), which CLMR runs on MIDI as its
waveform chain on audio.
"""

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxmusic.audio import augment
from jaxmusic.data.features import PITCHES
from jaxmusic.models.frontends.base import Frontend


def roll_transpose(key, roll_PxF, max_semitones=6):
  """The piano roll moved up or down by up to `max_semitones` pitches (the
  symbolic pitch shift); notes moved off the keyboard are dropped. Rows
  past the 128 pitches (a multitrack roll's instrument and drum lanes)
  stay where they are."""
  shift = jax.random.randint(key, (), -max_semitones, max_semitones + 1)
  pitches, lanes = roll_PxF[:PITCHES], roll_PxF[PITCHES:]
  pitch = jnp.arange(pitches.shape[0]) - shift
  valid = (pitch >= 0) & (pitch < pitches.shape[0])
  moved = jnp.where(valid[:, None], jnp.roll(pitches, shift, axis=0), 0)
  return jnp.concatenate([moved, lanes], axis=0)


def roll_velocity(key, roll_PxF, min_gain=0.5, max_gain=1.5):
  """Every velocity scaled by one gain (the symbolic gain), kept in
  0..127."""
  gain = jax.random.uniform(key, (), minval=min_gain, maxval=max_gain)
  return jnp.clip(roll_PxF * gain, 0, 127).astype(roll_PxF.dtype)


def roll_time_mask(key, roll_PxF, n_masks=2, max_frames=10):
  """SpecAugment's time masks on a piano roll, filled with silence."""
  return augment.spec_augment(key, roll_PxF, n_freq_masks=0, max_freq_width=0,
                      n_time_masks=n_masks, max_time_width=max_frames,
                      fill="zero")


# The piano roll's transforms (`PxF` velocities), for CLMR on MIDI.
ROLL_TRANSFORMS: dict[str, tuple[Callable[..., jax.Array], float]] = {
    "transpose": (roll_transpose, 0.8),
    "velocity": (roll_velocity, 0.5),
    "time_mask": (roll_time_mask, 0.5),
}


class PianoRoll(Frontend):
  """`BxPxF` velocities (the prepared piano roll, P = 128, or the
  multitrack roll, its 128 pitches then instrument and drum lanes) ->
  `BxFxP` in [0, 1]. `linear` embeds each frame; `conv` first runs
  octave-wide filters along pitch (shared over pitch, so a transposition
  moves, not changes, them) and appends the lanes as they are.
  `transpose` > 0 moves each roll's pitches by up to that many semitones
  in training (the symbolic pitch shift), as `spec_augment` masks a mel: a
  partner tower then cannot match this one on absolute pitch."""
  FEATURE = "pianoroll"
  EMBEDS = {"linear": "frames", "conv": "frames", "none": "bands"}
  AUGMENTATIONS = ROLL_TRANSFORMS
  ROWS = PITCHES

  embed: str = "linear"
  dim: int = 512
  filters: int = 16
  transpose: int = 0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, roll_BxPxF, train: bool = False):
    if train and self.transpose:
      roll_BxPxF = augment.apply_batch(
          lambda k, r: roll_transpose(k, r, self.transpose),
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

  @classmethod
  def width(cls, cfg) -> int:
    return cls.ROWS if cfg.get("embed") == "none" else cfg.get("dim", 512)

  @classmethod
  def validate(cls, cfg, hop: int, fail) -> None:
    del hop
    if not 0 <= cfg.get("transpose", 0) < 64:
      fail("model.frontend.transpose", "semitones in 0..63 (0: off)")

  @classmethod
  def reconstruction(cls, cfg) -> str | None:
    del cfg
    return "bce"
