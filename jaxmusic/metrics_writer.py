"""Metrics to JSON lines and TensorBoard (tensorboardX), on process 0 only."""

import json
import os

import jax


class MetricsWriter:

  def __init__(self, workdir: str):
    self.active = jax.process_index() == 0
    if not self.active:
      return
    from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
    os.makedirs(workdir, exist_ok=True)
    self.jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a")
    self.tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def write(self, step: int, metrics: dict):
    if not self.active:
      return
    clean = {k: float(v) for k, v in metrics.items()}
    self.jsonl.write(json.dumps({"step": int(step), **clean}) + "\n")
    self.jsonl.flush()
    for k, v in clean.items():
      self.tb.add_scalar(k, v, step)

  def close(self):
    if self.active:
      self.jsonl.close()
      self.tb.close()
