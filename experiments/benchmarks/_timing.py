"""Shared timing helpers for the benchmarks.

Every benchmark re-executes itself with huge pages first, as jaxmusic's own
README tells users to launch theirs (hugepages.py here), so both peers of a ratio run in one
process under the same memory settings; `machine()` names the setting.
"""

import os
import platform
import time

from experiments.benchmarks import hugepages


def machine() -> str:
  import jax  # pylint: disable=g-import-not-at-top
  dev = jax.devices()[0]
  return (f"{platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, jax {jax.__version__} on "
          f"{dev.platform}:{getattr(dev, 'device_kind', '')}, "
          f"{hugepages.status()}")


def best_of(fn, repeats: int = 3, warmup: int = 1) -> float:
  """Best wall time of `repeats` calls after `warmup` calls (seconds)."""
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return min(times)
