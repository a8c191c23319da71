r"""CLMR: SampleCNN + NT-Xent on two augmented crops of a track.

Defaults are CLMR's published setup: 59,049-sample crops at 22,050 Hz,
batch 48, temperature 0.5, Adam 3e-4, projection 512 -> 512 -> 64, and the
CLMR augmentation chain.

Args (comma-separated after the colon):
  runlocal      a small SampleCNN on 19,683-sample crops that trains on the
                embedded synthetic music in minutes on a laptop CPU
  large_batch   batch 4096, LARS, warm-up + cosine, for accelerators

  python -m jaxmusic.main --config ml_collections_configs/clmr.py:runlocal \
      --workdir /tmp/clmr
"""

import ml_collections

from jaxmusic.audio import augment
from jaxmusic.config import parse_arg
from jaxmusic.models import samplecnn


def get_config(arg=None):
  arg = parse_arg(arg, runlocal=False, large_batch=False)
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.total_steps = 100_000
  c.batch_size = 48
  c.log_every = 50

  c.data = dict(
      dir="",  # empty: the embedded synthetic corpus, prepared on first use
      split="train", eval_split="valid", sample_rate=22050,
      crop_samples=59049, features=("waveform",), segment_seconds=3.0,
      workers=0, cache_dir="",
      synthetic=dict(num_tracks=320, seconds=6.0, seed=0, workers=2))
  c.model = dict(name="samplecnn", channels=samplecnn.CLMR_CHANNELS,
                 dtype="float32")
  c.objective = dict(name="clmr", temperature=0.5, projection_dims=(512, 64))
  c.augment = dict(chain=augment.CLMR_CHAIN,
                   probs={n: p for n, (_, p) in augment.TRANSFORMS.items()})
  c.optimizer = dict(name="adam", learning_rate=3e-4, schedule="constant",
                     warmup_steps=0, b1=0.9, b2=0.999, weight_decay=0.0,
                     momentum=0.9, grad_clip_norm=0.0, accumulate_steps=1)
  c.mesh = [("data", -1), ("fsdp", 1)]
  c.sharding_rules = [(".*", "fsdp")]
  c.checkpoint = dict(every=1000, keep=3)
  c.monitor = dict(every=5000, k=5, batch_size=64)

  if arg.runlocal:
    c.total_steps = 300
    c.batch_size = 32
    c.log_every = 20
    c.data.crop_samples = 19683
    c.model.channels = (16, 16, 32, 32, 32, 32, 64, 64, 64, 128)
    c.objective.projection_dims = (128, 64)
    c.optimizer.learning_rate = 1e-3
    c.checkpoint.every = 100
    c.monitor.every = 100
  if arg.large_batch:
    c.batch_size = 4096
    c.optimizer.update(name="lars", learning_rate=0.3 * 4096 / 256,
                       schedule="cosine", warmup_steps=2000,
                       weight_decay=1e-6)
    c.model.dtype = "bfloat16"
  return c
