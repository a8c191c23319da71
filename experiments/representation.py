r"""Which input gives the best music embeddings with the same transformer:
waveform, mel spectrogram, piano roll or event tokens?

Trains the same transformer (size, depth, width, heads, objective, steps,
seed) on the waveform, the log-mel, the piano roll and the REMI-like event
tokens of the same tracks,
then exports and probes each run beside MFCC, log-mel statistics, log-mel
PCA and each input's random init, over 3 seeds. Writes `report.md`, a
table (mean ± std), `convergence.png` (loss and kNN accuracy at
checkpoints, one line per input) and `clusters.png` (PCA and t-SNE per
input, coloured by label).

  python -m experiments.representation                      # masked (HuBERT)
  python -m experiments.representation --objective clmr
  python -m experiments.representation --objective two_tower  # each input <-> titles
  python -m experiments.representation --data PREPARED_MAESTRO --size base

The data must be paired (audio and MIDI of the same tracks, MAESTRO's
layout); the embedded corpus is. The waveform frontend is HuBERT's conv
extractor and the mel and piano-roll frontends are linear frame
embeddings, all into the same transformer. Tokens are their own targets:
their masked arm is MusicBERT's masked token prediction
(masked_tokens.py), the others predict k-means codes (hubert.py).
"""

import logging
import os
import time


from experiments import common

INPUTS = ("waveform", "mel", "pianoroll", "tokens")
# Dropout off for every arm: the recipes' runlocal already train without
# it, and it must not differ between inputs.
SAME = (("model.dropout", 0.0), ("model.attention_dropout", 0.0))


def arms(objective: str, size: str):
  out = []
  for inp in INPUTS:
    if objective == "masked" and inp == "tokens":
      arg = f"size={size}"
      name = "masked_tokens"
    elif objective == "masked":
      arg = f"input={inp},size={size}"
      name = "hubert"
    elif objective == "clmr":
      arg = f"model=transformer,input={inp},size={size}"
      name = "clmr"
    else:  # two_tower: every input against the same partner, the titles
      tower = inp if inp in ("pianoroll", "tokens") else "audio"
      arg = f"towers={tower}+text,size={size}"
      if tower == "audio":
        arg += f",audio={inp},audio_model=transformer"
      name = "two_tower"
    if size == "tiny":
      arg += ",runlocal"
    overrides = SAME if objective != "two_tower" else tuple(
        (k.replace("model.", f"model.{t}."), v) for k, v in SAME
        for t in ((inp if inp in ("pianoroll", "tokens") else "audio"),
                  "text"))
    out.append(common.Arm(inp, name, arg, overrides))
  return out


def main():
  p = common.parser(__doc__.splitlines()[0],
                    os.path.join(common.ROOT, "experiments", "results",
                                 "representation"))
  p.add_argument("--objective", default="masked",
                 choices=("masked", "clmr", "two_tower"))
  common.add_arms_flag(p)
  args = p.parse_args()
  logging.basicConfig(level=logging.INFO)
  t0 = time.time()
  chosen = arms(args.objective, args.size)
  if args.arms:
    unknown = set(args.arms.split(",")) - {a.name for a in chosen}
    if unknown:
      p.error(f"--arms: unknown {sorted(unknown)}; known: "
              f"{[a.name for a in chosen]}")
    chosen = [a for a in chosen if a.name in args.arms.split(",")]
  data_dir = common.prepared_data(args.data, ("waveform", "pianoroll",
                                              "tokens"),
                                  common.target_sets(chosen))
  common.run_and_report(
      chosen, args, data_dir,
      f"Input representation, same transformer ({args.objective})",
      "With the same transformer, objective, steps and seeds, which input "
      "gives the best embeddings: waveform, mel spectrogram, piano roll or "
      "event tokens?",
      t0, audio_arm="waveform" if any(a.name == "waveform" for a in chosen)
      else chosen[0].name)


if __name__ == "__main__":
  main()
