"""Metrics to JSON lines and TensorBoard (tensorboardX), on process 0 only.

A bucket workdir (`gs://...`) has no append and tensorboardX's own `gs://`
writer needs a different client, so both files are written to a local
staging directory and copied whole to `workdir`: the files that changed,
at most every `upload_every_s` seconds (a copy per logged step would
stall the loop on a bucket round trip and copy the growing files again
and again), at every `sync()` (the loop calls it when it checkpoints) and
at `close()`. A resumed run first fetches the bucket's `metrics.jsonl` so
the series continues.
"""

import json
import math
import os
import tempfile
import time

import jax

from jaxmusic import storage

JSONL = "metrics.jsonl"
UPLOAD_EVERY_S = 60.0


class MetricsWriter:

  def __init__(self, workdir: str, upload_every_s: float = UPLOAD_EVERY_S,
               clock=time.monotonic):
    self.active = jax.process_index() == 0
    if not self.active:
      return
    from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
    self.remote = storage.path(workdir) if storage.is_remote(workdir) \
        else None
    if self.remote:
      local = tempfile.mkdtemp(prefix="jaxmusic-metrics-")
      if (self.remote / JSONL).exists():
        storage.copy_file(self.remote / JSONL,
                          storage.path(os.path.join(local, JSONL)))
    else:
      local = workdir
      os.makedirs(local, exist_ok=True)
    self.local = local
    self.jsonl = open(os.path.join(local, JSONL), "a")
    self.tb = SummaryWriter(os.path.join(local, "tensorboard"))
    self._every, self._clock = upload_every_s, clock
    self._last_upload = -math.inf
    self._sent = {}  # local path -> (size, mtime) at its last copy

  def write(self, step: int, metrics: dict):
    if not self.active:
      return
    clean = {k: float(v) for k, v in metrics.items()}
    self.jsonl.write(json.dumps({"step": int(step), **clean}) + "\n")
    self.jsonl.flush()
    for k, v in clean.items():
      self.tb.add_scalar(k, v, step)
    if self.remote and self._clock() - self._last_upload >= self._every:
      self.sync()

  def sync(self):
    """Copies the staged files that changed since their last copy to a
    bucket workdir (nothing to do for a local one)."""
    if self.active and self.remote:
      self.tb.flush()
      self._copy_changed()

  def _copy_changed(self):
    for root, _, files in os.walk(self.local):
      for name in files:
        src = os.path.join(root, name)
        stat = os.stat(src)
        if self._sent.get(src) == (stat.st_size, stat.st_mtime_ns):
          continue
        dst = self.remote / os.path.relpath(src, self.local)
        dst.parent.mkdir(parents=True, exist_ok=True)
        storage.copy_file(storage.path(src), dst)
        self._sent[src] = (stat.st_size, stat.st_mtime_ns)
    self._last_upload = self._clock()

  def close(self):
    if self.active:
      self.jsonl.close()
      self.tb.close()
      if self.remote:
        self._copy_changed()
