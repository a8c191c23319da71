r"""CLMR: two augmented views of a track, an encoder, NT-Xent.

Defaults are CLMR's published setup: SampleCNN on 59,049-sample crops at
22,050 Hz, batch 48, temperature 0.5, Adam 3e-4, projection 512 -> 512 ->
64, and the CLMR augmentation chain.

Args (comma-separated after the colon):
  model=samplecnn|transformer|cnn|shortchunk|crnn   the backbone
                                    (default samplecnn on the waveform,
                                    transformer otherwise)
  input=waveform|mel|pianoroll|multitrack|tokens   the frontend
                                    (default waveform; mel for the 2-D
                                    CNNs; multitrack and tokens: the
                                    transformer)
  size=tiny|base|95m|330m           the transformer's size (default tiny
                                    with runlocal, else base)
  runlocal      small enough to train on the embedded synthetic music in
                minutes on a laptop CPU; the SampleCNN's views differ by
                their crops only and take a forward pass each (see below)
  quality       runlocal's model for a CPU budget on the user's own
                collection (`--config.data.dir`): 6,000 steps of the
                SampleCNN (1,800 of a transformer), cosine decay, no
                augmentation chain and a forward pass per view
                (docs/results.md)
  large_batch   batch 4096, LARS, warm-up + cosine, for accelerators

Waveform augmentations run before the frontend; a mel frontend adds
SpecAugment after the log-mel. Piano rolls take the piano-roll chain:
transposition, velocity gain and time masks; event tokens transposition.
Grid models (transformer, cnn) read crops of 116 frames of 512 samples
(2.69 s), the prepared features' hop.

  python -m jaxmusic.main --config ml_collections_configs/clmr.py:runlocal \
      --workdir /tmp/clmr
  python -m jaxmusic.main \
      --config ml_collections_configs/clmr.py:model=transformer,input=mel,runlocal \
      --workdir /tmp/clmr_mel
"""

from jaxmusic import defaults
from jaxmusic.defaults import parse_arg

CLMR_CHAIN = ("polarity", "noise", "gain", "filter", "delay", "pitch",
              "reverb")
CLMR_PROBS = dict(polarity=0.8, noise=0.01, gain=0.3, filter=0.8, delay=0.3,
                  pitch=0.6, reverb=0.6)
ROLL_CHAIN = ("transpose", "velocity", "time_mask")
ROLL_PROBS = dict(transpose=0.8, velocity=0.5, time_mask=0.5)
TOKEN_CHAIN = ("transpose",)
MODELS = tuple(defaults.BACKBONE_INPUTS)
INPUTS = ("waveform", "mel", "pianoroll", "multitrack", "tokens")
SIZES = ("", "tiny", "base", "95m", "330m")


def get_config(arg=None):
  arg = parse_arg(arg, runlocal=False, quality=False, large_batch=False,
                  model=("",) + MODELS, input=("",) + INPUTS,
                  size=SIZES)
  if arg.large_batch and arg.runlocal:
    raise ValueError("config arg large_batch: for accelerators, not with "
                     "runlocal or quality")
  arg.runlocal = arg.runlocal or arg.quality
  arg.model, arg.input = defaults.encoder_args(arg.model, arg.input)
  size = arg.size or ("tiny" if arg.runlocal else "base")
  c = defaults.base(arg.model, arg.input, size, arg.runlocal)
  grid = arg.model != "samplecnn"
  # joint_views: both views in one forward pass, so BatchNorm normalises
  # over the whole global batch (False: a pass per view, as CLMR's code).
  c.objective = dict(name="clmr", temperature=0.5, projection_dims=(512, 64),
                     joint_views=True)
  if c.data.features[0] == "waveform":
    c.augment = dict(chain=CLMR_CHAIN, probs=dict(CLMR_PROBS))
  elif arg.input == "tokens":
    c.augment = dict(chain=TOKEN_CHAIN, probs=dict(transpose=0.8))
  else:
    c.augment = dict(chain=ROLL_CHAIN, probs=dict(ROLL_PROBS))
  if arg.model == "transformer":
    c.objective.temperature = 0.2  # docs/results.md, CLMR's temperature

  if arg.runlocal:
    defaults.runlocal(c, arg.model)
    c.objective.projection_dims = (128, 64)
    if arg.model == "samplecnn" and c.data.features[0] == "waveform":
      # CLMR's chain is for 100k-step budgets: over 300 steps it keeps the
      # tiny SampleCNN near its random init; views that differ by their
      # crops alone, each normalised by its own BatchNorm statistics, learn.
      c.augment.chain = ()
      c.objective.joint_views = False
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
