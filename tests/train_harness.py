"""Runs `jaxmusic.main` in this process, then kills or SIGTERMs it at an
exact step (the tests' stand-in for a preemption at a known moment).

  python tests/train_harness.py {kill,term} STEP -- <jaxmusic.main flags>
"""
import os
import signal
import sys

from absl import app

from jaxmusic import checkpoint
from jaxmusic import main as jm_main

mode, at = sys.argv[1], int(sys.argv[2])
real_save = checkpoint.Checkpointer.save


def save(self, step, *args, **kwargs):
  out = real_save(self, step, *args, **kwargs)
  if step == at:
    if mode == "kill":
      self.wait()  # every earlier checkpoint is on disk, then: SIGKILL
      os.kill(os.getpid(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGTERM)
  return out


checkpoint.Checkpointer.save = save
sys.argv = [sys.argv[0]] + sys.argv[sys.argv.index("--") + 1:]
app.run(jm_main.main)
