r"""CLMR: two augmented views of a track, an encoder, NT-Xent.

Defaults are CLMR's published setup: SampleCNN on 59,049-sample crops at
22,050 Hz, batch 48, temperature 0.5, Adam 3e-4, projection 512 -> 512 ->
64, and the CLMR augmentation chain.

Args (comma-separated after the colon):
  model=samplecnn|transformer|cnn   the backbone (default samplecnn)
  input=waveform|mel|pianoroll|multitrack   the frontend (default
                                    waveform; multitrack: the transformer)
  size=tiny|base|95m|330m           the transformer's size
  runlocal      small enough to train on the embedded synthetic music in
                minutes on a laptop CPU; the SampleCNN's views differ by
                their crops only and take a forward pass each (see below)
  quality       runlocal's model for a CPU budget on the user's own
                collection (`--config.data.dir`): 6,000 steps of the
                SampleCNN (12.9 training minutes on 2 cores on the Debian
                soundtracks; 1,800 steps of a transformer), cosine decay, no
                augmentation chain and a forward pass per view;
                chosen on the embedded corpus (experiments/README.md, "CLMR
                runlocal: the diagnosis"); `experiments/benchmarks/
                bench_quality.py`
  large_batch   batch 4096, LARS, warm-up + cosine, for accelerators

Waveform augmentations run before the frontend; a mel frontend adds
SpecAugment after the log-mel. Piano rolls take the piano-roll chain:
transposition, velocity gain and time masks.
Grid models (transformer, cnn) read crops of 116 frames of 512 samples
(2.69 s), the prepared features' hop.

  python -m jaxmusic.main --config ml_collections_configs/clmr.py:runlocal \
      --workdir /tmp/clmr
  python -m jaxmusic.main \
      --config ml_collections_configs/clmr.py:model=transformer,input=mel,runlocal \
      --workdir /tmp/clmr_mel
"""

import ml_collections

from jaxmusic.config import CLMR_CROP_SAMPLES
from jaxmusic.config import model_config
from jaxmusic.config import parse_arg
from jaxmusic.config import ROLL_INPUTS

CLMR_CHAIN = ("polarity", "noise", "gain", "filter", "delay", "pitch",
              "reverb")
CLMR_PROBS = dict(polarity=0.8, noise=0.01, gain=0.3, filter=0.8, delay=0.3,
                  pitch=0.6, reverb=0.6)
ROLL_CHAIN = ("transpose", "velocity", "time_mask")
ROLL_PROBS = dict(transpose=0.8, velocity=0.5, time_mask=0.5)
HOP = 512


def get_config(arg=None):
  arg = parse_arg(arg, runlocal=False, quality=False, large_batch=False,
                  model="samplecnn", input="waveform", size="")
  arg.runlocal = arg.runlocal or arg.quality
  size = arg.size or ("tiny" if arg.runlocal else "base")
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.total_steps = 100_000
  c.batch_size = 48
  c.log_every = 50

  grid = arg.model != "samplecnn"
  feature = arg.input if arg.input in ROLL_INPUTS else "waveform"
  c.data = dict(
      dir="",  # empty: the embedded synthetic corpus, prepared on first use
      split="train", eval_split="valid", sample_rate=22050, hop_length=HOP,
      crop_samples=116 * HOP if grid else CLMR_CROP_SAMPLES,
      features=(feature,),
      segment_seconds=3.0, workers=0, cache_dir="",
      synthetic=dict(num_tracks=320, seconds=6.0, seed=0, workers=2))
  c.model = model_config(arg.model, arg.input, size, arg.runlocal)
  # joint_views: both views in one forward pass, so BatchNorm normalises
  # over the whole global batch (False: a pass per view, as CLMR's code).
  c.objective = dict(name="clmr", temperature=0.5, projection_dims=(512, 64),
                     joint_views=True)
  if feature == "waveform":
    c.augment = dict(chain=CLMR_CHAIN, probs=dict(CLMR_PROBS))
  else:
    c.augment = dict(chain=ROLL_CHAIN, probs=dict(ROLL_PROBS))
  c.optimizer = dict(name="adam", learning_rate=3e-4, schedule="constant",
                     warmup_steps=0, b1=0.9, b2=0.999, weight_decay=0.0,
                     momentum=0.9, grad_clip_norm=0.0, accumulate_steps=1)
  if arg.model == "transformer":
    c.optimizer.update(name="adamw", weight_decay=0.01, grad_clip_norm=1.0,
                       warmup_steps=1000)
    # On the embedded corpus the tiny mel transformer's kNN genre accuracy
    # after 300 steps was 0.60 at (1e-3, 0.5), 0.68 at (3e-4, 0.5) and 0.72
    # at (3e-4, 0.2), against 0.64 at random init.
    c.objective.temperature = 0.2
  c.model_init = ""  # "RUN[:STEP]": start the encoder from that run
  # Tuples: `--config.mesh="(('data', 4), ('fsdp', 2))"` overrides them.
  c.mesh = (("data", -1), ("fsdp", 1))
  c.sharding_rules = ((".*", "fsdp"),)
  c.checkpoint = dict(every=1000, keep=3)
  c.monitor = dict(every=5000, k=5, batch_size=64)

  if arg.runlocal:
    c.total_steps = 300
    c.batch_size = 32
    c.log_every = 20
    if not grid:
      c.data.crop_samples = 19683
    c.objective.projection_dims = (128, 64)
    if arg.model == "transformer":
      c.optimizer.warmup_steps = 30
    else:
      c.optimizer.learning_rate = 1e-3
    if arg.model == "samplecnn" and feature == "waveform":
      # CLMR's chain is for 100k-step budgets: over these 300 steps it kept
      # the tiny SampleCNN near its random init, where views that differ by
      # their crops alone, each normalised by its own BatchNorm statistics,
      # learn (experiments/clmr_diagnosis.py; experiments/README.md).
      c.augment.chain = ()
      c.objective.joint_views = False
    c.checkpoint.every = 100
    c.monitor.every = 100
  if arg.quality:
    c.total_steps = 1800 if grid else 6000
    c.log_every = 50
    # As runlocal's SampleCNN: the views differ by their crops (and a mel
    # frontend's SpecAugment), not by CLMR's chain, over this budget.
    c.augment.chain = ()
    c.objective.joint_views = False
    c.optimizer.update(schedule="cosine", warmup_steps=100)
    c.checkpoint.every = c.total_steps // 3
    c.monitor.every = c.total_steps // 3
  if arg.large_batch:
    c.batch_size = 4096
    c.optimizer.update(name="lars", learning_rate=0.3 * 4096 / 256,
                       schedule="cosine", warmup_steps=2000,
                       weight_decay=1e-6)
    c.model.dtype = "bfloat16"
  return c
