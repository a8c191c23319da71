"""Metrics to JSON lines and TensorBoard (tensorboardX), on process 0 only.

A bucket workdir (`gs://...`) has no append and tensorboardX's own `gs://`
writer needs a different client, so both files are written to a local
staging directory and copied whole to `workdir` at each write; a resumed
run first fetches the bucket's `metrics.jsonl` so the series continues.
"""

import json
import os
import tempfile

import jax

from jaxmusic import storage

JSONL = "metrics.jsonl"


class MetricsWriter:

  def __init__(self, workdir: str):
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

  def write(self, step: int, metrics: dict):
    if not self.active:
      return
    clean = {k: float(v) for k, v in metrics.items()}
    self.jsonl.write(json.dumps({"step": int(step), **clean}) + "\n")
    self.jsonl.flush()
    for k, v in clean.items():
      self.tb.add_scalar(k, v, step)
    if self.remote:
      self.tb.flush()
      self._upload()

  def _upload(self):
    for root, _, files in os.walk(self.local):
      for name in files:
        src = os.path.join(root, name)
        dst = self.remote / os.path.relpath(src, self.local)
        dst.parent.mkdir(parents=True, exist_ok=True)
        storage.copy_file(storage.path(src), dst)

  def close(self):
    if self.active:
      self.jsonl.close()
      self.tb.close()
      if self.remote:
        self._upload()
