r"""MERT: HuBERT's masked prediction with MERT's numbers, its CQT teacher
and in-batch noise mixing; `hubert.py:recipe=mert` (see its docstring for
every number and its source).

Args: input=waveform|mel|pianoroll, size=tiny|base|95m|330m (default 95m),
runlocal, quality (see hubert.py).

  python -m jaxmusic.main --config ml_collections_configs/mert.py:runlocal \
      --workdir /tmp/mert
"""

from jaxmusic.config import load_config


def get_config(arg=None):
  return load_config("hubert", ",".join(filter(None, [arg, "recipe=mert"])))
