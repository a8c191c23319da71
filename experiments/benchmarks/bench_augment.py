"""The CLMR augmentation chain in-graph against audiomentations per example.

  pip install -e ".[bench]"
  python -m experiments.benchmarks.bench_augment [--batch 64]

Both sides apply the same seven transforms with CLMR's probabilities:
polarity, noise, gain, high/low-pass, delay, pitch shift, reverb. The
audiomentations side uses its own transforms where it has them and
`Lambda` for CLMR's delay; its reverb convolves a synthetic room response
of the same form, as jaxmusic's does. It runs single-process, as
audiomentations is used in a DataLoader worker, so its throughput is per
core; jaxmusic's is divided by the cores XLA used. Target: >= 20x per core.
The ratio is printed last. With --gpu_batch it also times a batch of 1024.
"""

import argparse
import os
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import soundfile

from experiments.benchmarks._timing import best_of, machine

from experiments.benchmarks import hugepages  # pylint: disable=wrong-import-position
from jaxmusic.audio import augment  # pylint: disable=wrong-import-position

SR = 22050


def audiomentations_chain(ir_dir):
  import audiomentations as am  # pylint: disable=g-import-not-at-top

  def clmr_delay(samples, sample_rate):
    offset = int(np.random.choice(np.arange(200, 451, 50)) * sample_rate
                 / 1000)
    delayed = np.concatenate([np.zeros(offset, samples.dtype),
                              samples[:-offset]])
    return (samples + 0.5 * delayed) / 2

  return am.Compose([
      am.PolarityInversion(p=0.8),
      am.AddGaussianSNR(min_snr_db=40.0, max_snr_db=80.0, p=0.01),
      am.Gain(min_gain_db=-20.0, max_gain_db=-1.0, p=0.3),
      am.OneOf([am.HighPassFilter(200.0, 1200.0, p=1.0),
                am.LowPassFilter(2200.0, 4000.0, p=1.0)], p=0.8),
      am.Lambda(transform=clmr_delay, p=0.3),
      am.PitchShift(min_semitones=-7, max_semitones=7, p=0.6),
      am.ApplyImpulseResponse(ir_path=ir_dir, p=0.6, leave_length_unchanged=True),
  ])


def write_impulse_responses(folder, n=8):
  for i in range(n):
    ir = np.asarray(augment.reverb_impulse_response(
        jax.random.key(i), SR, 30.0 + 8 * i, 40.0, 20.0 + 10 * i))
    soundfile.write(os.path.join(folder, f"ir{i}.wav"), ir, SR)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--samples", type=int, default=59049)
  parser.add_argument("--peer_examples", type=int, default=32)
  parser.add_argument("--gpu_batch", type=int, default=0)
  args = parser.parse_args()
  rng = np.random.default_rng(0)
  wav = (rng.standard_normal((args.batch, args.samples)) * 0.1).astype(
      np.float32)
  print(f"machine: {machine()}")
  chain = augment.make_chain(augment.CLMR_CHAIN, SR)
  fn = jax.jit(lambda k, x: augment.apply_batch(chain, k, x))
  x = jnp.asarray(wav)
  keys = iter(jax.random.split(jax.random.key(0), 100))
  t_jax = best_of(lambda: fn(next(keys), x).block_until_ready())
  cores = os.cpu_count()
  jax_rate = args.batch / t_jax
  print(f"jaxmusic chain, batch {args.batch} x {args.samples}: "
        f"{jax_rate:8.1f} examples/s ({jax_rate / cores:.1f} per core, "
        f"{cores} cores)")
  if args.gpu_batch:
    big = jnp.asarray(np.resize(wav, (args.gpu_batch, args.samples)))
    t_big = best_of(lambda: fn(next(keys), big).block_until_ready())
    print(f"jaxmusic chain, batch {args.gpu_batch}: {t_big * 1e3:.1f} ms "
          f"({args.gpu_batch / t_big:.0f} examples/s)")
  with tempfile.TemporaryDirectory() as ir_dir:
    write_impulse_responses(ir_dir)
    peer = audiomentations_chain(ir_dir)
    peer(samples=wav[0], sample_rate=SR)
    n = args.peer_examples
    t_peer = best_of(lambda: [peer(samples=w, sample_rate=SR)
                              for w in wav[:n]], repeats=2)
  peer_rate = n / t_peer
  print(f"audiomentations chain, per example (1 core): {peer_rate:8.1f} "
        "examples/s")
  print(f"ratio jaxmusic/audiomentations per core: "
        f"{(jax_rate / cores) / peer_rate:.2f}x (target >= 20x)")


if __name__ == "__main__":
  hugepages.reexec_with_hugepages()
  main()
