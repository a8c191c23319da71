"""Jittable, batched audio frontends: STFT, mel, log-mel, MFCC, CQT, chroma.

Every function takes a waveform `wav_...xT` with any leading batch axes and
returns librosa's layout (`...xFxN`: features by frames). Filterbanks are
constants built once on the host by librosa's own filter functions, so the
graph reproduces librosa's numbers while the per-example work (framing, FFT,
projections) runs on the accelerator.
"""

import functools
import math

import jax
import jax.numpy as jnp
import librosa
import numpy as np
import scipy.fft

CQT_FMIN = float(librosa.note_to_hz("C1"))


def frame(wav_xT: jax.Array, frame_length: int, hop_length: int) -> jax.Array:
  """Slices `...xT` into `...xNxframe_length` frames (no padding)."""
  n_frames = 1 + (wav_xT.shape[-1] - frame_length) // hop_length
  if frame_length % hop_length == 0:
    # Reshape-and-shift instead of a gather: stacking the shifted chunk
    # views on a new axis is one plain copy in XLA, 2x faster on CPU than
    # concatenating them along the last axis.
    per_frame = frame_length // hop_length
    n_chunks = n_frames + per_frame - 1
    chunks = wav_xT[..., : n_chunks * hop_length].reshape(
        *wav_xT.shape[:-1], n_chunks, hop_length)
    return jnp.stack(
        [chunks[..., i:i + n_frames, :] for i in range(per_frame)],
        axis=-2).reshape(*wav_xT.shape[:-1], n_frames, frame_length)
  idx = (hop_length * np.arange(n_frames)[:, None]
         + np.arange(frame_length)[None, :])
  return wav_xT[..., idx]


def _center_pad(wav_xT: jax.Array, n_fft: int) -> jax.Array:
  # librosa >= 0.10 pads centred frames with zeros ("constant").
  pad = [(0, 0)] * (wav_xT.ndim - 1) + [(n_fft // 2, n_fft // 2)]
  return jnp.pad(wav_xT, pad)


def stft_NxF(wav_xT, n_fft, hop_length, window="hann", center=True):
  """Time-major complex STFT `...xNx(n_fft//2+1)`: `stft` before its swap."""
  if center:
    wav_xT = _center_pad(wav_xT, n_fft)
  win = librosa.filters.get_window(window, n_fft, fftbins=True).astype(np.float32)
  return jnp.fft.rfft(frame(wav_xT, n_fft, hop_length) * win, axis=-1)


def _power_NxF(wav_xT, n_fft, hop_length, power, center=True):
  spec = stft_NxF(wav_xT, n_fft, hop_length, center=center)
  if power == 2.0:  # re² + im², without abs's square root
    return jnp.square(spec.real) + jnp.square(spec.imag)
  mag = jnp.abs(spec)
  return mag if power == 1.0 else mag**power


def stft(wav_xT, n_fft=2048, hop_length=512, window="hann", center=True):
  """Complex STFT `...x(n_fft//2+1)xN`, as `librosa.stft` with the defaults."""
  return jnp.swapaxes(stft_NxF(wav_xT, n_fft, hop_length, window, center),
                      -1, -2)


def spectrogram(wav_xT, n_fft=2048, hop_length=512, power=2.0, center=True):
  """|STFT|**power: 1 gives magnitude, 2 gives power."""
  return jnp.swapaxes(_power_NxF(wav_xT, n_fft, hop_length, power, center),
                      -1, -2)


# Examples per step when a frontend runs on CPU: a chunk's frames and spectra
# (~1 MB per example at n_fft 2048) stay in cache from the framing through
# the FFT to the filterbank. Log-mel of 64 crops is 1.2x faster at best,
# 1.5x at the median, and its run-to-run spread falls from ~35% to ~2%.
CPU_CHUNK = 8


def cpu_cache_blocked(fn):
  """Runs `fn(wav_...xT)` over CPU_CHUNK examples at a time on CPU.

  Other backends get `fn` unchanged: there one big batched op is fastest.
  """
  @functools.wraps(fn)
  def wrapped(wav_xT, *args, **kwargs):
    lead = wav_xT.shape[:-1]
    if jax.default_backend() != "cpu" or math.prod(lead) <= CPU_CHUNK:
      return fn(wav_xT, *args, **kwargs)
    out = jax.lax.map(lambda wav_T: fn(wav_T, *args, **kwargs),
                      wav_xT.reshape(-1, wav_xT.shape[-1]),
                      batch_size=CPU_CHUNK)
    return out.reshape(*lead, *out.shape[1:])
  return wrapped


def banded_filterbank(spec_xNxF, fb_MxF: np.ndarray, group: int = 16):
  """`fb_MxF @ spec` as `...xMxN`, skipping the filterbank's zero bins.

  A mel filter covers a few bins, so a dense product is ~98% multiplies by
  zero. Each group of `group` adjacent filters is multiplied with only the
  bin range it covers: 13% of the dense work for 128 mels at n_fft 2048,
  which makes log-mel 1.4x faster on CPU. The skipped terms are exact
  zeros, so the result is the dense product's up to summation order.
  """
  outs = []
  for lo in range(0, fb_MxF.shape[0], group):
    rows = fb_MxF[lo:lo + group]
    nonzero = np.flatnonzero(rows.any(axis=0))
    first, last = (nonzero[0], nonzero[-1] + 1) if nonzero.size else (0, 1)
    outs.append(jnp.einsum("...nf,mf->...nm", spec_xNxF[..., first:last],
                           rows[:, first:last],
                           precision=jax.lax.Precision.HIGHEST))
  return jnp.swapaxes(jnp.concatenate(outs, axis=-1), -1, -2)


@functools.lru_cache(maxsize=None)
def mel_filterbank(sr, n_fft, n_mels, fmin=0.0, fmax=None, htk=False,
                   norm="slaney"):
  """`librosa.filters.mel` as a float32 constant (Slaney or HTK scale)."""
  return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
                             fmax=fmax, htk=htk, norm=norm).astype(np.float32)


@cpu_cache_blocked
def melspectrogram(wav_xT, sr=22050, n_fft=2048, hop_length=512, n_mels=128,
                   fmin=0.0, fmax=None, htk=False, norm="slaney", power=2.0):
  """Mel power spectrogram `...xMxN`, as `librosa.feature.melspectrogram`."""
  return banded_filterbank(
      _power_NxF(wav_xT, n_fft, hop_length, power),
      mel_filterbank(sr, n_fft, n_mels, fmin, fmax, htk, norm))


def power_to_db(spec_xFxN, ref=1.0, amin=1e-10, top_db=80.0):
  """`librosa.power_to_db`; `top_db` clips per example, not per batch."""
  db = 10.0 * jnp.log10(jnp.maximum(amin, spec_xFxN))
  db = db - 10.0 * np.log10(max(amin, ref))
  if top_db is not None:
    peak = jnp.max(db, axis=(-2, -1), keepdims=True)
    db = jnp.maximum(db, peak - top_db)
  return db


def logmel(wav_xT, sr=22050, n_fft=2048, hop_length=512, n_mels=128,
           fmin=0.0, fmax=None, htk=False, top_db=80.0):
  """Log-mel in dB: `power_to_db(melspectrogram(...), top_db=top_db)`."""
  return power_to_db(melspectrogram(wav_xT, sr, n_fft, hop_length, n_mels,
                                    fmin, fmax, htk), top_db=top_db)


@functools.lru_cache(maxsize=None)
def kaldi_mel_banks(sr: int, n_fft: int, n_mels: int, low_freq: float = 20.0,
                    high_freq: float = 0.0) -> np.ndarray:
  """Kaldi's mel filters, `n_fft // 2 + 1 x n_mels`: triangles in the mel
  domain (mel = 1127 ln(1 + f / 700)) between `low_freq` and `high_freq`
  (<= 0: that far below Nyquist), unnormalised; the Nyquist bin gets no
  weight, as torchaudio.compliance.kaldi pads it."""
  mel = lambda f: 1127.0 * np.log(1.0 + np.asarray(f, np.float64) / 700.0)
  high = high_freq if high_freq > 0 else sr / 2 + high_freq
  lo, hi = mel(low_freq), mel(high)
  delta = (hi - lo) / (n_mels + 1)
  left = lo + delta * np.arange(n_mels)
  centre, right = left + delta, left + 2 * delta
  bins = mel(np.arange(n_fft // 2) * sr / n_fft)[:, None]
  up = (bins - left) / (centre - left)
  down = (right - bins) / (right - centre)
  weights = np.maximum(0.0, np.minimum(up, down))
  return np.concatenate([weights, np.zeros((1, n_mels))]).astype(np.float32)


def kaldi_fbank(wav_xT, sr=16000, frame_length=400, hop_length=160,
                n_mels=128, preemphasis=0.97, low_freq=20.0, high_freq=0.0):
  """Kaldi's log mel filterbank, `...xNxM` (frames by bands), as
  `torchaudio.compliance.kaldi.fbank` with AST's settings (window_type
  "hanning", no dither, no energy): uncentred frames ("snip edges", 1 +
  (T - frame_length) // hop of them), each with its mean removed,
  pre-emphasised (the first sample against itself), Hann-windowed
  (symmetric), zero-padded to a power of two; the log of the mel energies,
  floored at float32's epsilon."""
  n_fft = 1 << (frame_length - 1).bit_length()
  frames = frame(wav_xT.astype(jnp.float32), frame_length, hop_length)
  frames = frames - jnp.mean(frames, axis=-1, keepdims=True)
  previous = jnp.concatenate([frames[..., :1], frames[..., :-1]], axis=-1)
  frames = frames - preemphasis * previous
  n = np.arange(frame_length)
  window = 0.5 - 0.5 * np.cos(2 * np.pi * n / (frame_length - 1))
  spec = jnp.abs(jnp.fft.rfft(frames * window.astype(np.float32), n=n_fft,
                              axis=-1)) ** 2
  energies = jnp.einsum("...nf,fm->...nm", spec, kaldi_mel_banks(
      sr, n_fft, n_mels, low_freq, high_freq),
                        precision=jax.lax.Precision.HIGHEST)
  return jnp.log(jnp.maximum(energies, np.finfo(np.float32).eps))


@functools.lru_cache(maxsize=None)
def dct_matrix(n_in: int, n_out: int) -> np.ndarray:
  return scipy.fft.dct(np.eye(n_in), type=2, norm="ortho",
                       axis=0)[:n_out].astype(np.float32)


def mfcc(wav_xT, sr=22050, n_mfcc=20, n_fft=2048, hop_length=512, n_mels=128,
         fmin=0.0, fmax=None, htk=False, top_db=80.0):
  """MFCC with an orthonormal DCT-II, as `librosa.feature.mfcc`."""
  db_xMxN = logmel(wav_xT, sr, n_fft, hop_length, n_mels, fmin, fmax, htk,
                   top_db)
  return jnp.einsum("cm,...mn->...cn", dct_matrix(n_mels, n_mfcc), db_xMxN,
                    precision=jax.lax.Precision.HIGHEST)


@functools.lru_cache(maxsize=None)
def _chroma_filterbank(sr, n_fft, n_chroma):
  return librosa.filters.chroma(sr=sr, n_fft=n_fft, n_chroma=n_chroma,
                                tuning=0.0).astype(np.float32)


def chroma(wav_xT, sr=22050, n_fft=2048, hop_length=512, n_chroma=12):
  """STFT chroma, as `librosa.feature.chroma_stft(..., tuning=0.0)`.

  Tuning is fixed at 0: librosa's per-file tuning estimate is data dependent
  and would make the same note land in different bins across files.
  """
  fb_CxF = _chroma_filterbank(sr, n_fft, n_chroma)
  raw_xCxN = jnp.einsum("cf,...nf->...cn", fb_CxF,
                        _power_NxF(wav_xT, n_fft, hop_length, 2.0),
                        precision=jax.lax.Precision.HIGHEST)
  peak = jnp.max(jnp.abs(raw_xCxN), axis=-2, keepdims=True)
  # librosa.util.normalize leaves near-silent frames unscaled.
  peak = jnp.where(peak < np.finfo(np.float32).tiny, 1.0, peak)
  return raw_xCxN / peak


@functools.lru_cache(maxsize=None)
def cqt_kernel(sr, fmin, n_bins, bins_per_octave, filter_scale=1.0):
  """Time-domain CQT basis `WxK` (conjugated, sqrt-length scaled).

  librosa's wavelets are L1-normalised and its `scale=True` response divides
  by sqrt(filter length); folding that factor into the kernel makes one dense
  matmul per frame give librosa's magnitudes at full rate, with no early
  downsampling: a single big matmul is what accelerators are fast at.
  """
  freqs = librosa.cqt_frequencies(n_bins=n_bins, fmin=fmin,
                                  bins_per_octave=bins_per_octave)
  basis_KxW, lengths_K = librosa.filters.wavelet(
      freqs=freqs, sr=sr, filter_scale=filter_scale, norm=1, pad_fft=True)
  kernel = np.conj(basis_KxW) * np.sqrt(lengths_K)[:, None]
  return kernel.T.astype(np.complex64)


def _cqt_time(wav_xT, kernel_WxK, hop_length):
  width = kernel_WxK.shape[0]
  frames_xNxW = frame(_center_pad(wav_xT, width), width, hop_length)
  hp = jax.lax.Precision.HIGHEST
  re = jnp.einsum("...nw,wk->...kn", frames_xNxW, kernel_WxK.real, precision=hp)
  im = jnp.einsum("...nw,wk->...kn", frames_xNxW, kernel_WxK.imag, precision=hp)
  return jnp.sqrt(re**2 + im**2)


@functools.lru_cache(maxsize=None)
def cqt_spectral_kernel(sr, fmin, n_bins, bins_per_octave, filter_scale,
                        hop_length, n_samples, threshold):
  """The CQT basis in the frequency domain, banded, for `_cqt_spectral`.

  Returns (W, L, M, groups): the time-domain kernel's width W (the
  signal's centre padding), the FFT length L = M * hop, and per group of
  bins whose bands span up to the same power of two of M-bin blocks, the bins' indices,
  each band's first block and the kernel over those blocks `KgxSxM`
  (complex, zero outside the band). A band keeps every FFT bin where the
  wavelet's spectrum is above `threshold` times its peak.
  """
  kernel_WxK = cqt_kernel(sr, fmin, n_bins, bins_per_octave, filter_scale)
  width = kernel_WxK.shape[0]
  m = -(-(n_samples + width) // hop_length)  # no circular wrap-around
  length = m * hop_length
  # Correlating the padded signal with kernel column k is multiplying its
  # spectrum by conj(FFT(conj(column k))).
  spec_LxK = np.conj(np.fft.fft(np.conj(kernel_WxK), n=length, axis=0))
  n_pos = length // 2 + 1
  by_blocks = {}
  for k in range(n_bins):
    mag = np.abs(spec_LxK[:n_pos, k])
    keep = np.flatnonzero(mag >= threshold * mag.max())
    first, last = keep[0] // m, keep[-1] // m + 1
    # Block counts rounded up to powers of two: a few groups, a small graph.
    blocks = 1 << int(np.ceil(np.log2(last - first)))
    by_blocks.setdefault(blocks, []).append((k, first))
  groups = []
  for blocks, items in sorted(by_blocks.items()):
    bins = np.array([k for k, _ in items])
    starts = np.array([f for _, f in items])
    idx_KgxSM = starts[:, None] * m + np.arange(blocks * m)[None, :]
    vals = np.where(idx_KgxSM < n_pos,
                    spec_LxK[np.minimum(idx_KgxSM, length - 1), bins[:, None]],
                    0.0)
    mag = np.abs(vals)
    peak = mag.max(axis=1, keepdims=True)
    vals = np.where(mag >= threshold * peak, vals, 0.0)
    groups.append((bins, np.minimum(idx_KgxSM, n_pos - 1).astype(np.int32),
                   vals.reshape(len(bins), blocks, m).astype(np.complex64)))
  return width, length, m, tuple(groups)


def _cqt_spectral(wav_xT, sr, hop_length, fmin, n_bins, bins_per_octave,
                  filter_scale, threshold):
  """The time-domain CQT's numbers from one FFT per example (Brown and
  Puckette's spectral kernel): the signal's spectrum times each bin's
  banded kernel spectrum, folded modulo M = L / hop and inverse-FFT'd at
  M points, gives the correlation sampled at every hop directly. The work
  is one length-L FFT plus the bands, instead of frames x width x bins
  multiply-adds (65,536-sample kernels for MERT's 32.7 Hz bins)."""
  n = wav_xT.shape[-1]
  width, length, m, groups = cqt_spectral_kernel(
      sr, fmin, n_bins, bins_per_octave, filter_scale, hop_length, n,
      threshold)
  padded = _center_pad(wav_xT.astype(jnp.float32), width)
  spec_xP = jnp.fft.rfft(padded, n=length, axis=-1)
  folded = jnp.zeros((*wav_xT.shape[:-1], n_bins, m), jnp.complex64)
  for bins, idx_KgxSM, vals_KgxSxM in groups:
    band_xKgxSM = spec_xP[..., idx_KgxSM]
    z = jnp.sum(band_xKgxSM.reshape(*band_xKgxSM.shape[:-1], *vals_KgxSxM
                                    .shape[1:]) * vals_KgxSxM, axis=-2)
    folded = folded.at[..., bins, :].set(z)
  n_frames = 1 + n // hop_length
  out = jnp.fft.ifft(folded, axis=-1)[..., :n_frames] * (m / length)
  return jnp.abs(out)


def cqt(wav_xT, sr=22050, hop_length=512, fmin=CQT_FMIN, n_bins=84,
        bins_per_octave=12, filter_scale=1.0, method="spectral",
        threshold=1e-4):
  """CQT magnitude `...xKxN`, as `np.abs(librosa.cqt(...))`.

  `spectral` (default) computes the full-rate time-domain CQT through one
  FFT per example (see `_cqt_spectral`); `time` correlates every frame with
  the dense kernel, the reference it is tested against. MERT's
  reconstruction target uses n_bins=336, bins_per_octave=48.
  """
  if method == "time":
    return _cqt_time(wav_xT, cqt_kernel(sr, float(fmin), n_bins,
                                        bins_per_octave, float(filter_scale)),
                     hop_length)
  if method != "spectral":
    raise ValueError(f"cqt method {method!r}: use 'spectral' or 'time'")
  return _cqt_spectral(wav_xT, sr, hop_length, float(fmin), n_bins,
                       bins_per_octave, float(filter_scale), float(threshold))


FRONTENDS = {
    "stft": spectrogram,
    "melspectrogram": melspectrogram,
    "logmel": logmel,
    "mfcc": mfcc,
    "cqt": cqt,
    "chroma": chroma,
}


def make_frontend(name: str, **kwargs):
  """A frontend by name with its parameters bound: `fn(wav_xT) -> ...xFxN`."""
  if name not in FRONTENDS:
    raise ValueError(f"unknown frontend {name!r}; known: {sorted(FRONTENDS)}")
  return functools.partial(FRONTENDS[name], **kwargs)
