r"""Supervised training on the data's labels (cross-entropy) or tags
(binary cross-entropy): the reference for every self-supervised row.

Args (comma-separated after the colon):
  target=label|tags   what to predict (default label)
  model=samplecnn|transformer|cnn|shortchunk|crnn|alicnn|feedforward|lstm
                the encoder, as clmr.py's (the same defaults); the
                composer study's classifiers are feedforward (on MFCC),
                cnn (on mel) and lstm
  input=waveform|mel|mfcc|chroma|pianoroll|multitrack   mfcc: the mel
                frontend's 20 MFCCs
  size=tiny|base|95m|330m
  runlocal      small enough to train on the embedded synthetic music in
                minutes on a laptop CPU

The encoder and crops are CLMR's (`clmr.py`), so a supervised row and a
CLMR row differ only in the objective.

  python -m jaxmusic.main \
      --config ml_collections_configs/supervised.py:runlocal \
      --workdir /tmp/supervised
"""

from jaxmusic import defaults
from jaxmusic.defaults import parse_arg


def get_config(arg=None):
  arg = parse_arg(arg, runlocal=False,
                  model=("",) + tuple(defaults.BACKBONE_INPUTS),
                  input=("", "waveform", "mel", "mfcc", "chroma",
                         "pianoroll", "multitrack"),
                  size=("", "tiny", "base", "95m", "330m"),
                  target=("label", "tags"))
  mfcc = arg.input == "mfcc"
  arg.model, frontend = defaults.encoder_args(
      arg.model, "mel" if mfcc else arg.input)
  size = arg.size or ("tiny" if arg.runlocal else "base")
  c = defaults.base(arg.model, frontend, size, arg.runlocal,
                    spec_augment=not mfcc)
  if mfcc:
    c.model.frontend.n_mfcc = 20
  c.objective = dict(name="supervised", target=arg.target)
  if arg.runlocal:
    defaults.runlocal(c, arg.model)
    c.optimizer.learning_rate = 1e-3
  return c
