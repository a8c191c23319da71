r"""Supervised training on the data's labels (cross-entropy) or tags
(binary cross-entropy): the reference for every self-supervised row.

Args (comma-separated after the colon):
  model=samplecnn|transformer|cnn   the backbone (default samplecnn)
  input=waveform|mel|pianoroll      the frontend (default waveform)
  size=tiny|base|95m|330m           the transformer's size
  target=label|tags                 what to predict (default label)
  runlocal      small enough to train on the embedded synthetic music in
                minutes on a laptop CPU

The encoder and crops are CLMR's (`clmr.py`), so a supervised row and a
CLMR row differ only in the objective.

  python -m jaxmusic.main \
      --config ml_collections_configs/supervised.py:runlocal \
      --workdir /tmp/supervised
"""

import ml_collections

from jaxmusic.config import load_config
from jaxmusic.config import parse_arg


def get_config(arg=None):
  arg = parse_arg(arg, runlocal=False, model="samplecnn", input="waveform",
                  size="", target="label")
  clmr_arg = [f"model={arg.model}", f"input={arg.input}"]
  clmr_arg += [f"size={arg.size}"] if arg.size else []
  clmr_arg += ["runlocal"] if arg.runlocal else []
  c = load_config("clmr", ",".join(clmr_arg))
  del c.augment
  c.objective = dict(name="supervised", target=arg.target)
  c.optimizer.update(learning_rate=1e-3 if arg.runlocal else 3e-4)
  return c
