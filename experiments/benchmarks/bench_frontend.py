"""Batched in-graph log-mel against librosa per example.

  python -m experiments.benchmarks.bench_frontend [--batch 64]

Target: >= 5x librosa's throughput. The ratio is printed last.
"""

import argparse

import jax
import jax.numpy as jnp
import librosa
import numpy as np

from experiments.benchmarks._timing import best_of, machine

from experiments.benchmarks import hugepages  # pylint: disable=wrong-import-position
from jaxmusic.audio import frontend  # pylint: disable=wrong-import-position


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--samples", type=int, default=59049)
  args = parser.parse_args()
  sr = 22050
  wav = np.random.default_rng(0).standard_normal(
      (args.batch, args.samples)).astype(np.float32) * 0.1
  print(f"machine: {machine()}")
  print(f"log-mel (n_fft 2048, hop 512, 128 mels) of {args.batch} x "
        f"{args.samples} samples")
  librosa.power_to_db(librosa.feature.melspectrogram(y=wav[0], sr=sr))

  def run_librosa():
    for x in wav:
      librosa.power_to_db(librosa.feature.melspectrogram(y=x, sr=sr),
                          top_db=80.0)

  fn = jax.jit(lambda x: frontend.logmel(x, sr))
  device_wav = jnp.asarray(wav)
  t_lib = best_of(run_librosa, repeats=5)
  t_jax = best_of(lambda: fn(device_wav).block_until_ready(), repeats=20)
  print(f"librosa per example: {args.batch / t_lib:9.1f} examples/s")
  print(f"jaxmusic batched   : {args.batch / t_jax:9.1f} examples/s")
  print(f"ratio jaxmusic/librosa: {t_lib / t_jax:.2f}x (target >= 5x)")


if __name__ == "__main__":
  hugepages.reexec_with_hugepages()
  main()
