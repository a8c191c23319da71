"""Each augmentation checked by a measured property of its output."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from jaxmusic.audio import augment
from jaxmusic.models.frontends import pianoroll

SR = 22050
N = 59049
T_SEC = np.arange(N) / SR


def sine(freq, amp=0.5):
  return jnp.asarray(amp * np.sin(2 * np.pi * freq * T_SEC), jnp.float32)


def white(seed=0, n=N):
  return jnp.asarray(np.random.default_rng(seed).standard_normal(n) * 0.1,
                     jnp.float32)


def rms(x):
  return float(jnp.sqrt(jnp.mean(jnp.square(x))))


def peak_freq(x):
  pad = 8 * x.shape[-1]
  spec = np.abs(np.fft.rfft(np.asarray(x) * np.hanning(x.shape[-1]), pad))
  return np.argmax(spec) * SR / pad


def key_with(predicate, limit=500):
  for i in range(limit):
    if predicate(jax.random.key(i)):
      return jax.random.key(i)
  raise AssertionError("no key satisfies the predicate")


def test_polarity_flips_sign():
  x = white()
  np.testing.assert_array_equal(augment.polarity_inversion(jax.random.key(0), x), -x)


def test_gain_gives_expected_rms_ratio():
  x = white()
  key = jax.random.key(4)
  db = float(jax.random.uniform(key, (), minval=-20.0, maxval=-1.0))
  y = augment.gain(key, x)
  assert -20 <= db <= -1
  np.testing.assert_allclose(20 * np.log10(rms(y) / rms(x)), db, atol=1e-3)


def test_noise_gives_expected_snr():
  x = sine(440)
  key = jax.random.key(7)
  k_std, _ = jax.random.split(key)
  ratio = float(jax.random.uniform(k_std, (), minval=1e-4, maxval=1e-2))
  y = augment.noise(key, x)
  snr_db = 20 * np.log10(rms(x) / rms(y - x))
  np.testing.assert_allclose(snr_db, -20 * np.log10(ratio), atol=0.3)


@pytest.mark.parametrize("highpass", [True, False])
def test_filter_moves_energy_across_cutoff(highpass):
  key = key_with(lambda k: bool(jax.random.bernoulli(jax.random.split(k)[0]))
                 == highpass)
  low, high = sine(80), sine(8000)
  y_low = augment.high_low_pass(key, low, SR)
  y_high = augment.high_low_pass(key, high, SR)
  if highpass:  # HP cutoff 200..1200 Hz: 80 Hz cut, 8 kHz kept.
    assert rms(y_low) < 0.2 * rms(low) and rms(y_high) > 0.95 * rms(high)
  else:  # LP cutoff 2.2..4 kHz: 8 kHz cut, 80 Hz kept.
    assert rms(y_high) < 0.3 * rms(high) and rms(y_low) > 0.95 * rms(low)


def test_delay_gives_autocorrelation_peak_at_delay():
  x = white(1)
  key = jax.random.key(11)
  delay_ms = int(jax.random.choice(key, np.arange(200, 451, 50)))
  y = np.asarray(augment.delay(key, x, SR))
  spec = np.fft.rfft(y, 2 * N)
  acf = np.fft.irfft(np.abs(spec) ** 2)[: N // 2]
  lag = np.argmax(acf[int(0.1 * SR):]) + int(0.1 * SR)
  assert lag == delay_ms * SR // 1000


@pytest.mark.slow
@pytest.mark.parametrize("steps", [-7, -2, 4, 7])
def test_pitch_shift_moves_f0_and_keeps_length(steps):
  key = key_with(lambda k: int(jax.random.randint(k, (), -7, 8)) == steps)
  x = sine(440)
  y = augment.pitch_shift(key, x)
  assert y.shape == x.shape and y.dtype == x.dtype
  ratio = peak_freq(y) / 440
  np.testing.assert_allclose(ratio, 2 ** (steps / 12), rtol=0.01)


@pytest.mark.parametrize("rate", [2 ** (-7 / 12), 2 ** (5 / 12)])
def test_phase_vocoder_matches_librosa(rate):
  # Reference: librosa.phase_vocoder(D, rate=rate, hop_length=512) on the
  # complex128 STFT, so its accumulated phase keeps full precision. librosa
  # pads D with two zero frames and we repeat the last one, so only output
  # frames that read two real input frames are compared.
  import librosa
  x = np.asarray(sine(440) + white(3), np.float64)
  d_FxM = librosa.stft(x, n_fft=2048, hop_length=512).astype(np.complex128)
  want_FxK = librosa.phase_vocoder(d_FxM, rate=rate, hop_length=512)
  n_ok = int(np.ceil((d_FxM.shape[1] - 1) / rate))
  got_KxF = augment._phase_vocoder(
      jnp.asarray(d_FxM.T, jnp.complex64), rate, want_FxK.shape[1])
  want, got = want_FxK[:, :n_ok], np.asarray(got_KxF).T[:, :n_ok]
  # The float32 phasor form is within 6e-7; the float32 angle form it
  # replaced was within 2e-3, its accumulated phase losing precision.
  assert np.linalg.norm(got - want) / np.linalg.norm(want) < 1e-5


def test_reverb_gives_decaying_tail():
  ir = augment.reverb_impulse_response(jax.random.key(0), SR, 80.0, 30.0, 70.0)
  impulse = jnp.zeros(N).at[0].set(1.0)
  y = np.asarray(augment.reverb(jax.random.key(5), impulse, SR))
  energy = np.asarray(ir) ** 2
  windows = energy[: 5 * 2205].reshape(5, 2205).sum(axis=1)
  assert np.all(np.diff(windows) < 0) and windows[-1] > 0
  tail = y[1:SR] ** 2
  assert tail.sum() > 0 and tail[: SR // 4].sum() > tail[SR // 2:].sum()


def test_different_keys_give_different_parameters():
  x = white()
  outs = [augment.gain(jax.random.key(i), x) for i in range(4)]
  assert len({round(rms(o), 6) for o in outs}) == 4
  chain = augment.make_chain(probs={n: 1.0 for n in augment.CLMR_CHAIN})
  a, b = chain(jax.random.key(0), x), chain(jax.random.key(1), x)
  assert not np.allclose(a, b)


def test_probability_zero_is_identity():
  chain = augment.make_chain(probs={n: 0.0 for n in augment.CLMR_CHAIN})
  x = white()
  np.testing.assert_array_equal(chain(jax.random.key(0), x), x)


@pytest.mark.parametrize("name", sorted(augment.TRANSFORMS))
def test_shapes_and_dtypes_kept_under_jit(name):
  fn = jax.jit(augment.make_chain([name], probs={name: 1.0}))
  x = white(3, 22050)
  y = fn(jax.random.key(0), x)
  assert y.shape == x.shape and y.dtype == x.dtype
  assert bool(jnp.all(jnp.isfinite(y)))


def test_sharded_batch_equals_unsharded():
  mesh = jax.make_mesh((8,), ("data",), (jax.sharding.AxisType.Auto,))
  x_BxT = jnp.stack([white(i, 8192) for i in range(16)])
  chain = augment.make_chain(probs={n: 0.5 for n in augment.CLMR_CHAIN})
  step = jax.jit(functools.partial(augment.apply_batch, chain))
  want = step(jax.random.key(3), x_BxT)
  sharded = jax.device_put(x_BxT, NamedSharding(mesh, P("data")))
  got = step(jax.random.key(3), sharded)
  assert len(got.sharding.device_set) == 8
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)


def test_spec_augment_masks_bands():
  spec = jnp.ones((128, 200))
  out = augment.spec_augment(jax.random.key(2), spec, max_freq_width=20,
                             max_time_width=30, fill="zero")
  masked = np.asarray(out) == 0
  rows, cols = masked.all(axis=1).sum(), masked.all(axis=0).sum()
  assert 0 < rows <= 40 and 0 < cols <= 60
  assert masked.sum() == rows * 200 + cols * 128 - rows * cols


@pytest.mark.slow
def test_inbatch_noise_mix_reads_the_pool_of_the_other_clips():
  """MERT's mixing: each added segment is a run of consecutive samples of
  the other clips laid end to end (it may run from one into the next,
  skipping the example's own), at a random offset and position."""
  b, n = 8, 48000
  # Each sample holds its own flat index: what was added says where from.
  batch = jnp.arange(b * n, dtype=jnp.float32).reshape(b, n)
  straddled = 0
  for seed in range(4):
    out = np.asarray(augment.inbatch_noise_mix(
        jax.random.key(seed), batch, p=1.0, max_segments=1))
    for i in range(b):
      added = (out[i] - np.asarray(batch[i])).astype(np.int64)
      changed = np.flatnonzero(added)
      assert 12000 <= len(changed) <= 24000
      assert np.all(np.diff(changed) == 1)  # one contiguous segment
      src = added[changed]
      assert not np.any((src >= i * n) & (src < (i + 1) * n))
      steps = np.diff(src)
      assert set(np.unique(steps)) <= {1, n + 1}
      straddled += int(len(np.unique(src // n)) > 1)
  assert straddled > 0  # segments do run from one clip into the next
  untouched = augment.inbatch_noise_mix(jax.random.key(1), batch, p=0.0)
  np.testing.assert_array_equal(untouched, batch)
  mixed = np.asarray(augment.inbatch_noise_mix(
      jax.random.key(2), jnp.ones((512, 2 * 24000)), p=0.3))
  assert abs(np.mean((mixed != 1).any(axis=1)) - 0.3) < 0.07


def test_unknown_augmentation_is_named():
  with pytest.raises(ValueError, match="pitchshift"):
    augment.make_chain(["pitchshift"])


def test_piano_roll_transforms():
  rng = np.random.default_rng(0)
  roll = np.zeros((128, 40), np.float32)
  roll[60:72, ::3] = rng.integers(1, 128, (12, 14))
  out = pianoroll.roll_transpose(jax.random.key(3), jnp.asarray(roll), 6)
  shifts = [s for s in range(-6, 7)
            if np.array_equal(np.asarray(out), np.roll(roll, s, axis=0))]
  assert len(shifts) == 1  # a whole-roll move by one draw
  edge = np.zeros((128, 4), np.float32)
  edge[127] = 90.0
  moved = np.asarray(pianoroll.roll_transpose(jax.random.key(0),
                                            jnp.asarray(edge), 6))
  # A note pushed off the keyboard is dropped, never wrapped to the bottom.
  assert not moved[:6].any()
  # A multitrack roll's instrument and drum lanes stay: they are no pitch.
  multi = np.zeros((191, 40), np.float32)
  multi[:128], multi[128:] = roll, rng.integers(0, 128, (63, 40))
  out = np.asarray(pianoroll.roll_transpose(jax.random.key(3),
                                          jnp.asarray(multi), 6))
  np.testing.assert_array_equal(out[128:], multi[128:])
  assert np.array_equal(out[:128], np.roll(roll, shifts[0], axis=0))
  loud = np.asarray(pianoroll.roll_velocity(jax.random.key(1),
                                          jnp.asarray(roll), 1.5, 1.5))
  np.testing.assert_allclose(loud, np.clip(roll * 1.5, 0, 127))
  masked = np.asarray(pianoroll.roll_time_mask(jax.random.key(2),
                                             jnp.asarray(roll), 2, 10))
  cols = ~masked.any(axis=0) & roll.any(axis=0)
  assert cols.any()  # some frames silenced, whole columns at a time
  np.testing.assert_array_equal(masked[:, ~cols], roll[:, ~cols])
