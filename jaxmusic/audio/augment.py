"""Per-example audio augmentations that run inside the jitted train step.

Each transform is a pure function `(key, wav_T) -> wav_T` of one example.
`random_apply` gives it a probability, `make_chain` composes a chain from the
config, and `apply_batch` vmaps a chain with one key per example, so every
example draws its own parameters and the work scales with the accelerator
instead of CPU workers. `spec_augment` acts on `FxN` spectrograms and
`inbatch_noise_mix` (MERT) on a whole `BxT` batch.

Defaults follow CLMR's chain (torchaudio_augmentations): where CLMR calls sox
or an IIR filter, the op here is the FFT-domain equivalent, which is parallel
over time instead of a sequential recursion.
"""

import functools
from typing import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import scipy.fft

from jaxmusic.audio import frontend

Transform = Callable[[jax.Array, jax.Array], jax.Array]


def polarity_inversion(key, wav_T):
  del key
  return -wav_T


def noise(key, wav_T, min_snr=1e-4, max_snr=1e-2):
  """Gaussian noise with std = signal std x U(min_snr, max_snr)."""
  k_std, k_noise = jax.random.split(key)
  std = jnp.std(wav_T) * jax.random.uniform(k_std, (), minval=min_snr,
                                            maxval=max_snr)
  return wav_T + std * jax.random.normal(k_noise, wav_T.shape, wav_T.dtype)


def gain(key, wav_T, min_db=-20.0, max_db=-1.0):
  db = jax.random.uniform(key, (), minval=min_db, maxval=max_db)
  return wav_T * 10.0 ** (db / 20.0)


def biquad_response(freqs_hz, cutoff_hz, sr, highpass, q=0.707):
  """|H(f)| of the RBJ biquad torchaudio's low/highpass_biquad uses."""
  w0 = 2 * jnp.pi * cutoff_hz / sr
  alpha = jnp.sin(w0) / (2 * q)
  cos = jnp.cos(w0)
  b0 = jnp.where(highpass, (1 + cos) / 2, (1 - cos) / 2)
  b1 = jnp.where(highpass, -(1 + cos), 1 - cos)
  z = jnp.exp(-1j * 2 * jnp.pi * freqs_hz / sr)
  num = b0 + b1 * z + b0 * z**2
  den = (1 + alpha) - 2 * cos * z + (1 - alpha) * z**2
  return jnp.abs(num / den)


def high_low_pass(key, wav_T, sr=22050, lp_range=(2200.0, 4000.0),
                  hp_range=(200.0, 1200.0)):
  """A high- or low-pass (50/50) with CLMR's cutoff ranges.

  The biquad's magnitude is applied in the FFT domain (zero phase): the same
  spectral shaping as torchaudio's IIR, without a T-step sequential scan.
  """
  k_kind, k_cut = jax.random.split(key)
  highpass = jax.random.bernoulli(k_kind)
  lo = jnp.where(highpass, hp_range[0], lp_range[0])
  hi = jnp.where(highpass, hp_range[1], lp_range[1])
  cutoff = jax.random.uniform(k_cut, (), minval=lo, maxval=hi)
  n = wav_T.shape[-1]
  freqs = jnp.fft.rfftfreq(n, 1.0 / sr)
  spec = jnp.fft.rfft(wav_T) * biquad_response(freqs, cutoff, sr, highpass)
  return jnp.fft.irfft(spec, n=n).astype(wav_T.dtype)


def delay(key, wav_T, sr=22050, min_ms=200, max_ms=450, step_ms=50,
          volume=0.5):
  """CLMR's Delay: (x + volume * x delayed by 200..450 ms in 50 ms steps)/2."""
  choices_ms = np.arange(min_ms, max_ms + 1, step_ms)
  offset = (jax.random.choice(key, choices_ms) * sr) // 1000
  idx = jnp.arange(wav_T.shape[-1])
  delayed = jnp.where(idx >= offset, jnp.roll(wav_T, offset), 0.0)
  return (wav_T + volume * delayed) / 2


def _unit(z):
  """z / |z|, with 1 where z is 0. Only there does the phasor form differ
  from librosa's angles: a bin that is exactly 0 in one of two frames (digital
  silence) adds no phase step here, and the other frame's phase there."""
  mag = jnp.abs(z)
  return jnp.where(mag > 0, z / jnp.where(mag > 0, mag, 1.0), 1.0)


def _phase_vocoder(stft_MxF, rate, n_out):
  """librosa.phase_vocoder vectorised over output frames (static `n_out`).

  Phases are carried as unit phasors, not angles. librosa adds to the
  accumulated phase the bin's expected advance plus the wrapped deviation
  from it; modulo 2π that sum is the plain phase difference between the two
  input frames, i.e. the phasor of S[right]·conj(S[left]), so the hop
  drops out and the accumulated phase is a cumulative product. That
  replaces atan2, the cumulative sum and exp(i·), 70% of the angle form's
  time on CPU, with multiplies. Output frames past the input's end repeat
  the last frame and are never read by the caller.
  """
  n_frames, n_freq = stft_MxF.shape
  pos_K = jnp.minimum(jnp.arange(n_out) * rate, n_frames - 1)
  left_K = jnp.floor(pos_K).astype(jnp.int32)
  right_K = jnp.minimum(left_K + 1, n_frames - 1)
  frac_Kx1 = (pos_K - left_K)[:, None]
  mag_MxF = jnp.abs(stft_MxF)
  mag_KxF = (1 - frac_Kx1) * mag_MxF[left_K] + frac_Kx1 * mag_MxF[right_K]
  # The step leaving input frame m; 1 at the clamped last frame, where
  # right == left.
  dphase_MxF = jnp.concatenate(
      [_unit(stft_MxF[1:] * jnp.conj(stft_MxF[:-1])),
       jnp.ones((1, n_freq), stft_MxF.dtype)])
  # Frame k carries the steps of the frames before it.
  steps_KxF = jnp.concatenate([_unit(stft_MxF[:1]), dphase_MxF[left_K[:-1]]])
  return mag_KxF * jax.lax.associative_scan(jnp.multiply, steps_KxF)


def _istft(stft_KxF, n_fft, hop):
  """Overlap-add inverse of `frontend.stft` (hann, centred), full length."""
  win = np.hanning(n_fft + 1)[:-1].astype(np.float32)
  frames_KxW = jnp.fft.irfft(stft_KxF, n=n_fft) * win
  n_frames = frames_KxW.shape[0]
  per = n_fft // hop
  parts = frames_KxW.reshape(n_frames, per, hop)
  out = jnp.zeros((n_frames + per - 1, hop), frames_KxW.dtype)
  win_sq = np.zeros((n_frames + per - 1, hop), np.float32)
  for i in range(per):
    out = out.at[i:i + n_frames].add(parts[:, i])
    win_sq[i:i + n_frames] += (win**2).reshape(per, hop)[i]
  out = out / np.maximum(win_sq, 1e-8)
  return out.reshape(-1)[n_fft // 2:]


def pitch_shift(key, wav_T, max_semitones=7, n_fft=2048, hop=512):
  """Shifts pitch by an integer number of semitones in [-max, max], keeping
  the length: phase-vocoder stretch by the pitch ratio r, then resampling by
  1/r, as librosa.effects.pitch_shift does.
  """
  n = wav_T.shape[-1]
  steps = jax.random.randint(key, (), -max_semitones, max_semitones + 1)
  ratio = 2.0 ** (steps / 12.0)
  spec_MxF = frontend.stft_NxF(wav_T, n_fft, hop)
  max_ratio = 2.0 ** (max_semitones / 12.0)
  n_out = int(np.ceil(spec_MxF.shape[0] * max_ratio)) + 2
  stretched = _istft(_phase_vocoder(spec_MxF, 1.0 / ratio, n_out),
                     n_fft, hop)
  # Anti-alias before reading the stretched signal faster than it was made.
  freqs = jnp.fft.rfftfreq(stretched.shape[-1])
  spec = jnp.fft.rfft(stretched)
  spec = jnp.where(freqs <= 0.5 / jnp.maximum(ratio, 1.0), spec, 0.0)
  stretched = jnp.fft.irfft(spec, n=stretched.shape[-1])
  # Uniform read positions: a two-tap gather, not interp's binary search.
  pos_T = jnp.arange(n) * ratio
  left = jnp.minimum(jnp.floor(pos_T).astype(jnp.int32),
                     stretched.shape[-1] - 2)
  frac = pos_T - left
  shifted = (1 - frac) * stretched[left] + frac * stretched[left + 1]
  return shifted.astype(wav_T.dtype)


def reverb_impulse_response(key, sr, reverberance, damping, room_size,
                            length_s=1.0):
  """A synthetic room response: exponentially decaying noise whose decay
  time grows with reverberance and room size, whose high band decays faster
  with damping, after a pre-delay set by the room size (sox's parameters,
  0..100 each). Unit L2 energy.
  """
  n = int(length_s * sr)
  t = np.arange(n) / sr
  rt60 = 0.05 + 1.2 * (reverberance / 100) * (0.3 + 0.7 * room_size / 100)
  rt60_high = rt60 * (1.0 - 0.8 * damping / 100)
  white = jax.random.normal(key, (n,))
  spec = jnp.fft.rfft(white)
  low_band = np.fft.rfftfreq(n, 1.0 / sr) < 2000.0
  low = jnp.fft.irfft(jnp.where(low_band, spec, 0.0), n=n)
  high = white - low  # the complementary band, without a second iFFT
  ir = (low * jnp.exp(-6.9 * t / rt60) + high * jnp.exp(-6.9 * t / rt60_high))
  predelay = jnp.asarray(room_size / 100 * 0.02 * sr).astype(jnp.int32)
  ir = jnp.where(jnp.arange(n) >= predelay, jnp.roll(ir, predelay), 0.0)
  return ir / jnp.linalg.norm(ir)


def reverb(key, wav_T, sr=22050, length_s=1.0, wet=0.5):
  """Convolution with a random synthetic room (FFT convolution), wet/dry
  mixed and cut to the input length. Parameters are drawn uniformly over
  0..100 as CLMR draws sox's reverberance, damping and room size.
  """
  k_params, k_ir = jax.random.split(key)
  reverberance, damping, room = jax.random.uniform(k_params, (3,),
                                                   maxval=100.0)
  ir = reverb_impulse_response(k_ir, sr, reverberance, damping, room, length_s)
  n = wav_T.shape[-1]
  # A 5-smooth length, not the next power of two: 81,920 points instead of
  # 131,072 for CLMR's crops, half the FFT time on CPU.
  n_fft = scipy.fft.next_fast_len(n + ir.shape[0] - 1, real=True)
  wet_T = jnp.fft.irfft(jnp.fft.rfft(wav_T, n_fft) * jnp.fft.rfft(ir, n_fft),
                        n_fft)[:n]
  return ((1 - wet) * wav_T + wet * wet_T).astype(wav_T.dtype)


def random_apply(p: float, fn: Transform) -> Transform:
  """Applies `fn` with probability `p`; p <= 0 is the identity, untraced."""
  if p <= 0:
    return lambda key, x: x
  if p >= 1:
    return fn

  def apply(key, x):
    k_coin, k_fn = jax.random.split(key)
    return jnp.where(jax.random.uniform(k_coin) < p, fn(k_fn, x), x)

  return apply


# name -> (transform, CLMR probability). Keyword args come from the config.
TRANSFORMS: dict[str, tuple[Callable[..., jax.Array], float]] = {
    "polarity": (polarity_inversion, 0.8),
    "noise": (noise, 0.01),
    "gain": (gain, 0.3),
    "filter": (high_low_pass, 0.8),
    "delay": (delay, 0.3),
    "pitch": (pitch_shift, 0.6),
    "reverb": (reverb, 0.6),
}
CLMR_CHAIN = ("polarity", "noise", "gain", "filter", "delay", "pitch", "reverb")
_NEEDS_SR = ("filter", "delay", "reverb")


def make_chain(names: Sequence[str] = CLMR_CHAIN, sample_rate: int = 22050,
               probs: Mapping[str, float] | None = None,
               params: Mapping[str, Mapping] | None = None,
               table=None) -> Transform:
  """Composes named transforms into one `(key, x) -> x`.

  `table` is TRANSFORMS (waveforms, the default) or a frontend's
  AUGMENTATIONS (the piano roll's); `probs` overrides its probabilities,
  `params` each transform's kwargs.
  """
  table = TRANSFORMS if table is None else table
  probs, params = dict(probs or {}), dict(params or {})
  unknown = (set(names) | set(probs) | set(params)) - set(table)
  if unknown:
    raise ValueError(f"unknown augmentation(s) {sorted(unknown)}; "
                     f"known: {sorted(table)}")
  steps = []
  for name in names:
    fn, default_p = table[name]
    kwargs = dict(params.get(name, {}))
    if name in _NEEDS_SR:
      kwargs.setdefault("sr", sample_rate)
    steps.append(random_apply(probs.get(name, default_p),
                              functools.partial(fn, **kwargs)))

  def chain(key, wav_T):
    for step, k in zip(steps, jax.random.split(key, max(len(steps), 1))):
      wav_T = step(k, wav_T)
    return wav_T

  return chain


def apply_batch(transform: Transform, key: jax.Array,
                x_Bx: jax.Array) -> jax.Array:
  """vmaps `transform` over the batch with one independent key per example."""
  return jax.vmap(transform)(jax.random.split(key, x_Bx.shape[0]), x_Bx)


def time_stretch(key, spec_FxN, max_change: float = 0.2):
  """The excerpt played faster or slower about its centre by a rate in
  [1 - max_change, 1 + max_change], resampled (linearly) back onto its
  frames: a tempo change of the crop, the pitch kept. Frames read past
  an edge repeat the edge."""
  n = spec_FxN.shape[-1]
  rate = jax.random.uniform(key, (), minval=1 - max_change,
                            maxval=1 + max_change)
  pos = jnp.clip((jnp.arange(n) - (n - 1) / 2) * rate + (n - 1) / 2,
                 0, n - 1)
  lo = jnp.floor(pos).astype(jnp.int32)
  hi = jnp.minimum(lo + 1, n - 1)
  w = (pos - lo).astype(spec_FxN.dtype)
  return spec_FxN[..., lo] * (1 - w) + spec_FxN[..., hi] * w


def spec_augment(key, spec_FxN, n_freq_masks=2, max_freq_width=27,
                 n_time_masks=2, max_time_width=40, fill="mean"):
  """SpecAugment's frequency and time masks on one `FxN` spectrogram.

  Masked cells take the spectrogram's mean (a silent value for log-mel would
  be its floor, which the mean approximates better after normalisation) or 0.
  """
  n_freq, n_time = spec_FxN.shape[-2:]
  value = jnp.mean(spec_FxN) if fill == "mean" else 0.0

  def masks(k, n_masks, max_width, size):
    k_w, k_s = jax.random.split(k)
    width = jax.random.randint(k_w, (n_masks,), 0, max_width + 1)
    start = jax.random.randint(k_s, (n_masks,), 0, size)
    start = jnp.minimum(start, jnp.maximum(size - width, 0))
    pos = jnp.arange(size)
    hit = (pos[None] >= start[:, None]) & (pos[None] < (start + width)[:, None])
    return jnp.any(hit, axis=0)

  k_f, k_t = jax.random.split(key)
  mask_FxN = (masks(k_f, n_freq_masks, max_freq_width, n_freq)[:, None]
              | masks(k_t, n_time_masks, max_time_width, n_time)[None, :])
  return jnp.where(mask_FxN, value, spec_FxN)


def inbatch_noise_mix(key, wav_BxT, p=0.5, min_len=12000, max_len=24000,
                      max_segments=3, volume=1.0):
  """MERT's in-batch noise mixing on a whole batch.

  Each example is mixed with probability `p` (MERT's `mixture_prob` is the
  probability it stays clean: it mixes when rand > mixture_prob). A mixed
  example gets 1..max_segments segments of min_len..max_len samples, each
  read at a random offset of the pool of the batch's other clips laid end
  to end (so a segment may run from one clip into the next) and added at a
  random position, so the model must pick the main source out of a
  mixture."""
  batch, n = wav_BxT.shape
  if batch < 2:
    return wav_BxT
  k_on, k_num, k_len, k_src, k_pos = jax.random.split(key, 5)
  on_B = jax.random.uniform(k_on, (batch,)) < p
  n_seg_B = jax.random.randint(k_num, (batch,), 1, max_segments + 1)
  shape = (batch, max_segments)
  length = jax.random.randint(k_len, shape, min_len, max_len + 1)
  pool = (batch - 1) * n
  src = jax.random.randint(k_src, shape, 0, pool - max_len + 1)
  pos = jax.random.randint(k_pos, shape, 0, jnp.maximum(n - length, 0) + 1)
  active = on_B[:, None] & (jnp.arange(max_segments)[None] < n_seg_B[:, None])
  t = jnp.arange(n)
  inside_BxSxT = ((t >= pos[..., None]) & (t < (pos + length)[..., None])
                  & active[..., None])
  # Pool sample q of example b is sample q of the flat batch with b's own
  # clip taken out.
  q = jnp.clip(src[..., None] + t - pos[..., None], 0, pool - 1)
  own = jnp.arange(batch)[:, None, None] * n
  flat = jnp.where(q < own, q, q + n)
  noise_BxSxT = wav_BxT.reshape(-1)[flat]
  return wav_BxT + volume * jnp.sum(jnp.where(inside_BxSxT, noise_BxSxT, 0.0),
                                    axis=1).astype(wav_BxT.dtype)
