r"""Tile2Vec triplets on music: an anchor, a positive and a negative crop.

Args (comma-separated after the colon):
  model=samplecnn|transformer|cnn|shortchunk|crnn   the encoder, as in
  input=waveform|mel|pianoroll|multitrack           clmr.py (the same
  size=tiny|base|95m|330m                           defaults)
  by=temporal|label|artist          the sampler (default temporal): a
                                    neighbour within radius_seconds of the
                                    same track against another track, or
                                    a track sharing the label (artist)
                                    against one that does not
  runlocal      small enough to train on the embedded synthetic music in
                minutes on a laptop CPU (1,200 steps)

Defaults from Tile2Vec's "Example 2 - Train Tile2Vec from scratch" notebook
(ermongroup/tile2vec, examples/): margin 10, l2 0.01, Adam lr 1e-3 with
betas (0.5, 0.999), batch 50. The encoder and crops are CLMR's
(`clmr.py`), so its rows differ from CLMR's only in the objective; no
augmentation by default (`augment.chain` takes CLMR's names).

  python -m jaxmusic.main --config ml_collections_configs/triplet.py:runlocal \
      --workdir /tmp/triplet
"""

import ml_collections

from jaxmusic import defaults
from jaxmusic.defaults import parse_arg


def get_config(arg=None):
  arg = parse_arg(arg, runlocal=False,
                  model=("",) + tuple(defaults.BACKBONE_INPUTS),
                  input=("", "waveform", "mel", "pianoroll", "multitrack"),
                  size=("", "tiny", "base", "95m", "330m"),
                  by=("temporal", "label", "artist"))
  arg.model, arg.input = defaults.encoder_args(arg.model, arg.input)
  size = arg.size or ("tiny" if arg.runlocal else "base")
  c = defaults.base(arg.model, arg.input, size, arg.runlocal)
  c.augment = ml_collections.ConfigDict(dict(chain=(), probs={}))
  c.data.triplet_by = "" if arg.by == "temporal" else arg.by
  c.data.radius_seconds = 1.0
  c.objective = dict(name="triplet", margin=10.0, l2=0.01)
  c.batch_size = 48  # Tile2Vec's 50, over 8 and 16
  c.optimizer.update(name="adam", learning_rate=1e-3, b1=0.5, b2=0.999)

  if arg.runlocal:
    defaults.runlocal(c, arg.model)
    # One negative per anchor, against CLMR's 62: a step teaches less.
    c.total_steps = 1200
    c.checkpoint.every = c.monitor.every = 400
    c.optimizer.learning_rate = 1e-3
  return c
