"""`prepare` throughput and the `views` loader against what the step eats.

  python -m experiments.benchmarks.bench_pipeline [--workers 2]

1. prepare: hours of audio prepared per minute (waveform + log-mel) on a
   generated collection, with the local runner and with Apache Beam's
   DirectRunner (`--runner beam`), both with --workers processes.
2. loader: `views` batches/s at batch 256 x 59,049 samples, from Grain
   (in-process, and with --workers processes).
3. consumer: the SampleCNN CLMR step (with in-graph augmentation) on this
   machine, in batches of 256 per second; on a CPU it is timed at --step_batch
   and scaled linearly to 256.
Target: the loader delivers >= 3x what the step consumes; printed last.
"""

import os
import tempfile
import time

from absl import app
from absl import flags

from experiments.benchmarks._timing import best_of, machine
from experiments.benchmarks.clmr_step import make_step

from experiments.benchmarks import hugepages  # pylint: disable=wrong-import-position
from jaxmusic.data import build  # pylint: disable=wrong-import-position
from jaxmusic.data import pipeline  # pylint: disable=wrong-import-position
from jaxmusic.data import synthetic  # pylint: disable=wrong-import-position

_WORKERS = flags.DEFINE_integer("workers", 2, "Grain worker processes.")
_TRACKS = flags.DEFINE_integer("tracks", 48, "Tracks to prepare.")
_SECONDS = flags.DEFINE_float("seconds", 30.0, "Seconds per track.")
_STEP_BATCH = flags.DEFINE_integer("step_batch", 16, "Batch the step is timed"
                                   " at (scaled to 256).")
_BATCHES = flags.DEFINE_integer("batches", 6, "Loader batches to time.")


def loader_rate(data_dir, workers):
  ds = pipeline.make_dataset(data_dir, "train", "views", batch_size=256,
                             crop_samples=59049, workers=workers)
  it = iter(ds)
  next(it)
  t0 = time.perf_counter()
  for _ in range(_BATCHES.value):
    next(it)
  return _BATCHES.value / (time.perf_counter() - t0)


def main(argv):
  del argv
  print(f"machine: {machine()}")
  with tempfile.TemporaryDirectory() as tmp:
    csv_path = synthetic.generate(os.path.join(tmp, "raw"),
                                  synthetic.SyntheticConfig(
                                      num_tracks=_TRACKS.value,
                                      seconds=_SECONDS.value))
    hours = _TRACKS.value * _SECONDS.value / 3600
    for runner in ("local", "beam"):
      t0 = time.perf_counter()
      manifest = build.prepare(
          "csv", csv_path, os.path.join(tmp, f"prep_{runner}"),
          features=("waveform", "logmel"), segment_seconds=10.0,
          workers=_WORKERS.value, progress=False, runner=runner)
      minutes = (time.perf_counter() - t0) / 60
      print(f"prepare ({runner} runner): {hours:.2f} h of audio in "
            f"{minutes * 60:.1f} s with {_WORKERS.value} workers = "
            f"{hours / minutes:.2f} h of audio per minute "
            f"({manifest['splits']['train']['num_tracks']} train tracks)")
    data_dir = os.path.join(tmp, "prep_local")
    rates = {0: loader_rate(data_dir, 0)}
    if _WORKERS.value:
      rates[_WORKERS.value] = loader_rate(data_dir, _WORKERS.value)
    for w, r in rates.items():
      print(f"views loader, batch 256 x 59049, {w} workers: {r:.2f} "
            "batches/s")
  b = _STEP_BATCH.value
  t_step = best_of(make_step(b, augment=True), repeats=2) * 256 / b
  step_rate = 1 / t_step
  print(f"CLMR SampleCNN step (augment in-graph): {step_rate:.4f} batches of "
        f"256 per second (timed at batch {b}, scaled)")
  best = max(rates.values())
  print(f"ratio loader/step: {best / step_rate:.1f}x (target >= 3x)")


if __name__ == "__main__":
  hugepages.reexec_with_hugepages()
  app.run(main)
