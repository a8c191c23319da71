"""Frontends against librosa with the same parameters.

Reference calls (librosa 0.11):
  mel power:  librosa.feature.melspectrogram(y=y, sr=sr, n_fft, hop_length, n_mels, htk, norm)
  log-mel:    librosa.power_to_db(melspectrogram, top_db=80)
  MFCC:       librosa.feature.mfcc(y=y, sr=sr, n_mfcc=20)   (DCT-II, norm="ortho")
  CQT:        np.abs(librosa.cqt(y, sr=sr, hop_length, fmin, n_bins, bins_per_octave))
  chroma:     librosa.feature.chroma_stft(y=y, sr=sr, tuning=0.0)
  STFT:       np.abs(librosa.stft(y, n_fft, hop_length))
"""
import jax
import jax.numpy as jnp
import librosa
import numpy as np
import pytest

from jaxmusic.audio import frontend

SR = 22050


def _signals():
  rng = np.random.default_rng(0)
  t = np.arange(int(SR * 2.0)) / SR
  noise = 0.1 * rng.standard_normal(t.size)
  # A C-major arpeggio of harmonic tones with a decaying envelope.
  music = np.zeros_like(t)
  for i, midi in enumerate([60, 64, 67, 72]):
    f0 = librosa.midi_to_hz(midi)
    seg = (t >= i * 0.5) & (t < (i + 1) * 0.5)
    env = np.exp(-4 * (t - i * 0.5)) * seg
    music += env * sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 6))
  return {"noise": noise.astype(np.float32),
          "music": (0.3 * music).astype(np.float32)}


SIGNALS = _signals()


def rel_l2(a, b):
  return np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b)


@pytest.mark.parametrize("name", sorted(SIGNALS))
@pytest.mark.parametrize("htk,norm", [(False, "slaney"), (True, None)])
def test_melspectrogram_matches_librosa(name, htk, norm):
  y = SIGNALS[name]
  ref = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=1024, hop_length=256,
                                       n_mels=96, htk=htk, norm=norm)
  got = frontend.melspectrogram(jnp.asarray(y), SR, 1024, 256, 96, htk=htk,
                                norm=norm)
  assert got.shape == ref.shape
  assert rel_l2(got, ref) <= 1e-4


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_logmel_matches_librosa_within_001_db(name):
  y = SIGNALS[name]
  ref = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=SR),
                            top_db=80.0)
  got = np.asarray(frontend.logmel(jnp.asarray(y), SR))
  assert np.max(np.abs(got - ref)) <= 0.01


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_mfcc_matches_librosa(name):
  y = SIGNALS[name]
  ref = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=20)
  assert rel_l2(frontend.mfcc(jnp.asarray(y), SR, n_mfcc=20), ref) <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SIGNALS))
@pytest.mark.parametrize("n_bins,bpo", [(84, 12), (336, 48)])
def test_cqt_matches_librosa(name, n_bins, bpo):
  y = SIGNALS[name]
  ref = np.abs(librosa.cqt(y, sr=SR, hop_length=512, n_bins=n_bins,
                           bins_per_octave=bpo))
  got = frontend.cqt(jnp.asarray(y), SR, 512, n_bins=n_bins,
                     bins_per_octave=bpo)
  assert got.shape == ref.shape
  assert rel_l2(got, ref) <= 0.05


@pytest.mark.slow
@pytest.mark.parametrize("n_bins,bpo", [(84, 12), (336, 48)])
def test_cqt_spectral_equals_time_domain(n_bins, bpo):
  """The one-FFT spectral-kernel CQT against the dense correlation of every
  frame with the time-domain kernel (its definition), batched."""
  y_BxT = jnp.stack([SIGNALS["music"], SIGNALS["noise"]])
  dense = frontend.cqt(y_BxT, SR, 512, n_bins=n_bins, bins_per_octave=bpo,
                       method="time")
  fast = jax.jit(lambda y: frontend.cqt(y, SR, 512, n_bins=n_bins,
                                        bins_per_octave=bpo))(y_BxT)
  assert fast.shape == dense.shape
  for b in range(2):
    assert rel_l2(fast[b], dense[b]) <= 1e-3


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_chroma_and_stft_match_librosa(name):
  y = SIGNALS[name]
  ref = librosa.feature.chroma_stft(y=y, sr=SR, tuning=0.0)
  assert rel_l2(frontend.chroma(jnp.asarray(y), SR), ref) <= 1e-4
  ref_mag = np.abs(librosa.stft(y, n_fft=2048, hop_length=512))
  got_mag = frontend.spectrogram(jnp.asarray(y), 2048, 512, power=1.0)
  assert rel_l2(got_mag, ref_mag) <= 1e-5


def test_frontends_batch_and_jit():
  y_BxT = jnp.stack([SIGNALS["noise"], SIGNALS["music"]])
  for name in frontend.FRONTENDS:
    fn = jax.jit(frontend.make_frontend(name))
    batched = fn(y_BxT)
    single = fn(y_BxT[1])
    np.testing.assert_allclose(batched[1], single, rtol=1e-5, atol=1e-4)


def test_cpu_chunks_with_a_remainder_equal_each_example_alone():
  # 2 x 11 = 22 crops: two full chunks of CPU_CHUNK=8 and a remainder of 6.
  y_T = SIGNALS["music"][:8192]
  y_2x11xT = jnp.stack([jnp.stack([y_T * (1 + i + 11 * j) for i in range(11)])
                        for j in range(2)])
  assert y_2x11xT[..., 0].size > 2 * frontend.CPU_CHUNK
  got = jax.jit(frontend.melspectrogram)(y_2x11xT)
  assert got.shape == (2, 11, 128, 17)
  for j, i in [(0, 0), (0, 7), (0, 8), (1, 5), (1, 10)]:
    np.testing.assert_allclose(got[j, i], frontend.melspectrogram(y_2x11xT[j, i]),
                               rtol=1e-5)


@pytest.mark.parametrize("n_fft,n_mels,htk", [(2048, 128, False),
                                              (1024, 96, True), (512, 40, False)])
def test_banded_filterbank_equals_the_dense_product(n_fft, n_mels, htk):
  fb_MxF = frontend.mel_filterbank(SR, n_fft, n_mels, htk=htk)
  spec_NxF = np.random.default_rng(0).random((7, n_fft // 2 + 1), np.float32)
  got_MxN = frontend.banded_filterbank(jnp.asarray(spec_NxF), fb_MxF)
  np.testing.assert_allclose(got_MxN, fb_MxF @ spec_NxF.T, rtol=1e-5)


def test_frame_gather_and_reshape_paths_agree():
  x = jnp.arange(100.0)
  by_reshape = frontend.frame(x, 8, 4)
  by_gather = frontend.frame(x, 8, 3)
  assert by_reshape.shape == (24, 8) and by_gather.shape == (31, 8)
  np.testing.assert_array_equal(by_reshape[5], np.arange(20, 28))
  np.testing.assert_array_equal(by_gather[5], np.arange(15, 23))


def test_unknown_frontend_is_named():
  with pytest.raises(ValueError, match="'melspec'"):
    frontend.make_frontend("melspec")
