r"""Which objective gives the best music embeddings with one encoder?
Symphony2vec's comparison (AE, VAE, PCA against a supervised network) with
this codebase's objectives.

Trains one encoder, the same tiny transformer on the log-mel, with every
objective: CLMR, masked prediction (HuBERT), Tile2Vec triplets (temporal
and by label), AE, VAE and the supervised reference; then exports and
probes each beside MFCC, log-mel statistics, log-mel PCA and the random
init, over 3 seeds. Writes the same report as `representation.py`.

  python -m experiments.objectives
  python -m experiments.objectives --input pianoroll --seeds 2
  python -m experiments.objectives --data PREPARED --size base

Each objective keeps its own recipe (batch, learning rate, augmentations:
`ml_collections_configs/NAME.py`); the encoder, steps, seeds and data are
shared. The AE and VAE reconstruct the frontend's frames before the
transformer's embedding, and their embedding is their 128-d code.
"""

import logging
import os
import time


from experiments import common

SAME = (("model.dropout", 0.0), ("model.attention_dropout", 0.0))


def arms(inp: str, size: str):
  enc = f"model=transformer,input={inp},size={size}"
  local = ",runlocal" if size == "tiny" else ""
  return [
      common.Arm("clmr", "clmr", enc + local, SAME),
      common.Arm("masked", "hubert", f"input={inp},size={size}" + local,
                 SAME),
      common.Arm("triplet_temporal", "triplet", enc + ",by=temporal" + local,
                 SAME),
      common.Arm("triplet_label", "triplet", enc + ",by=label" + local, SAME),
      common.Arm("ae", "autoencoder", enc + ",variant=ae" + local, SAME),
      common.Arm("vae", "autoencoder", enc + ",variant=vae" + local, SAME),
      common.Arm("supervised", "supervised", enc + local, SAME),
  ]


def main():
  p = common.parser(__doc__.splitlines()[0],
                    os.path.join(common.ROOT, "experiments", "results",
                                 "objectives"))
  p.add_argument("--input", default="mel", choices=("mel", "pianoroll"))
  # Its arms share names (clmr, supervised) with runlocals.py's under other
  # configs: in one directory each script's runs would clear the other's.
  p.set_defaults(workdir=os.path.join(p.get_default("workdir"),
                                      "objectives"))
  args = p.parse_args()
  logging.basicConfig(level=logging.INFO)
  t0 = time.time()
  chosen = arms(args.input, args.size)
  data_dir = common.prepared_data(args.data, ("waveform", "pianoroll"),
                                  common.target_sets(chosen))
  common.run_and_report(
      chosen, args, data_dir,
      f"Objectives, one encoder (transformer on {args.input})",
      "With one encoder, steps, seeds and data, which objective gives the "
      "best embeddings?", t0)


if __name__ == "__main__":
  main()
