r"""Tile2Vec triplets on music: an anchor, a positive and a negative crop.

Args (comma-separated after the colon):
  model=samplecnn|transformer|cnn   the backbone (default samplecnn)
  input=waveform|mel|pianoroll      the frontend (default waveform)
  size=tiny|base|95m|330m           the transformer's size
  by=temporal|label|artist          the sampler (default temporal): a
                                    neighbour within radius_seconds of the
                                    same track against another track, or
                                    a track sharing the label (artist)
                                    against one that does not
  runlocal      small enough to train on the embedded synthetic music in
                minutes on a laptop CPU (1,200 steps, 4 minutes on 2 cores)

Defaults from Tile2Vec's "Example 2 - Train Tile2Vec from scratch" notebook
(ermongroup/tile2vec, examples/): margin 10, l2 0.01, Adam lr 1e-3 with
betas (0.5, 0.999), batch 50. The encoder and crops are CLMR's
(`clmr.py`), so its rows differ from CLMR's only in the objective; no
augmentation by default (`augment.chain` takes CLMR's names).

  python -m jaxmusic.main --config ml_collections_configs/triplet.py:runlocal \
      --workdir /tmp/triplet
"""

import ml_collections

from jaxmusic.config import load_config
from jaxmusic.config import parse_arg


def get_config(arg=None):
  arg = parse_arg(arg, runlocal=False, model="samplecnn", input="waveform",
                  size="", by="temporal")
  if arg.by not in ("temporal", "label", "artist"):
    raise ValueError(f"config arg by={arg.by!r}: use temporal, label or "
                     "artist")
  clmr_arg = [f"model={arg.model}", f"input={arg.input}"]
  clmr_arg += [f"size={arg.size}"] if arg.size else []
  clmr_arg += ["runlocal"] if arg.runlocal else []
  c = load_config("clmr", ",".join(clmr_arg))
  c.augment = ml_collections.ConfigDict(dict(chain=(), probs={}))
  c.data.triplet_by = "" if arg.by == "temporal" else arg.by
  c.data.radius_seconds = 1.0
  c.objective = dict(name="triplet", margin=10.0, l2=0.01)
  c.batch_size = 32 if arg.runlocal else 48  # Tile2Vec's 50, over 8 and 16
  if arg.runlocal:
    # One negative per anchor, against CLMR's 62: a step teaches less, and
    # CLMR's 300 steps are one minute of this recipe's five.
    c.total_steps = 1200
    c.checkpoint.every = c.monitor.every = 400
  c.optimizer.update(name="adam", learning_rate=1e-3, b1=0.5, b2=0.999)
  return c
