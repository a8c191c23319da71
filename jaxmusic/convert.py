r"""Pretrained weights in and out of jaxmusic run directories.

  # A transformers checkpoint (HubertModel, Wav2Vec2Model, MERT's release)
  # -> a run directory that export, probe, HEAR and model_init read:
  python -m jaxmusic.convert --from ~/MERT-v1-95M --out ~/runs/mert95m
  # A fairseq HuBERT / MERT .pt, with its pre-training heads, so masked
  # prediction continues from it (--config.model_init=~/runs/hubert_base):
  python -m jaxmusic.convert --from ~/hubert_base_ls960.pt --out ~/runs/hubert_base
  # A run's transformer on the waveform conv frontend -> a directory that
  # transformers' HubertModel.from_pretrained loads:
  python -m jaxmusic.convert --to hf ~/runs/mert95m ~/mert95m_hf

Nothing is downloaded: `--from` is a directory on disk.
"""

import os

from absl import app
from absl import flags

from jaxmusic.interop import runs

flags.DEFINE_string("from", None, "A transformers checkpoint directory, "
                    "or a fairseq .pt checkpoint.")
_OUT = flags.DEFINE_string("out", None, "With --from: the run directory.")
_TO = flags.DEFINE_enum("to", None, ["hf"], "Write RUN's encoder as OUT.")
_RECIPE = flags.DEFINE_enum(
    "recipe", None, ["hubert", "mert"],
    "With --from: the recipe the run's config continues under (default: "
    "by model_type).")
_STEP = flags.DEFINE_integer("step", None, "With --to: the run's checkpoint.")


def main(argv):
  source = flags.FLAGS["from"].value
  try:
    if _TO.value:
      if len(argv) != 3 or source:
        raise SystemExit("usage: python -m jaxmusic.convert --to hf RUN OUT")
      print(runs.export_hf(argv[1], argv[2], _STEP.value))
    elif source and _OUT.value and len(argv) == 1:
      convert = (runs.import_fairseq if os.path.isfile(source)
                 else runs.import_hf)
      convert(source, _OUT.value, _RECIPE.value)
      print(_OUT.value)
    else:
      raise SystemExit("usage: python -m jaxmusic.convert --from DIR --out "
                       "RUN, or --to hf RUN OUT")
  except (ValueError, FileNotFoundError) as e:
    raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
  app.run(main)
