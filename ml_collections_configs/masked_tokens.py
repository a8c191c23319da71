r"""Masked prediction of event tokens: BERT's masked language model with
MusicBERT's bar-level masking, on REMI-like tokens (data/tokens.py) read
by the transformer.

Args (comma-separated after the colon):
  size=tiny|small|base   the transformer (default base; tiny with runlocal)
  tokens=256             tokens a crop holds (data.tokens; the
                         transformer's learned positions)
  crop=bars|tokens       a crop's tokens: whole bars from the first bar
                         line in its seconds, or its first `tokens` tokens
                         (data.token_crop)
  transpose=6            move input and targets together by up to N
                         semitones (0: off)
  runlocal               small enough to train on the embedded synthetic
                         music in minutes on a CPU

MusicBERT's numbers (Zeng et al. 2021, its fairseq config): a masked
(row, bar, token type) cell with probability 0.15, of which 80% become
`Mask`, 10% a random token and 10% stay; Adam betas (0.9, 0.98), eps 1e-6,
weight decay 0.01, lr 5e-4 after 25,000 warm-up updates, polynomial
decay. A crop is 10 s of the collection's time, cut to its tokens; the
data must be prepared with `--features tokens`.

  python -m jaxmusic.main \
      --config ml_collections_configs/masked_tokens.py:runlocal \
      --workdir /tmp/masked_tokens
"""

from jaxmusic import defaults
from jaxmusic.defaults import parse_arg


def get_config(arg=None):
  arg = parse_arg(arg, runlocal=False, size=("", "tiny", "small", "base"),
                  tokens=256, crop=("bars", "tokens"), transpose=6)
  size = arg.size or ("tiny" if arg.runlocal else "base")
  c = defaults.base("transformer", "tokens", size, arg.runlocal)
  c.data.tokens = arg.tokens
  c.data.token_crop = arg.crop
  c.data.crop_samples = 430 * defaults.HOP  # 10 s at 22,050 Hz
  c.model.max_frames = arg.tokens
  c.objective = dict(name="masked_tokens", mask_prob=0.15,
                     transpose=arg.transpose)
  c.optimizer.update(name="adamw", learning_rate=5e-4, b1=0.9, b2=0.98,
                     eps=1e-6, weight_decay=0.01, schedule="linear",
                     warmup_steps=25_000, grad_clip_norm=0.0)
  c.total_steps = 125_000
  c.batch_size = 256

  if arg.runlocal:
    defaults.runlocal(c, "transformer")
    # The embedded tracks are 6 s long, prepared in 3 s segments.
    c.data.crop_samples = 116 * defaults.HOP
    c.data.tokens = min(arg.tokens, 128)
    c.model.max_frames = c.data.tokens
    c.optimizer.learning_rate = 1e-3
  return c
