r"""Does every `runlocal` recipe beat its random init?

Trains each config's `runlocal` as a user runs it (its own steps, batch,
schedule and augmentations; HuBERT and MERT on each input) on the
embedded corpus, and probes it beside its random init with the 10-fold
linear genre probe over all 320 tracks (one track moves accuracy by 0.3
points) and the kNN probe on track means:

  python -m experiments.runlocals                   # every runlocal, seed 0
  python -m experiments.runlocals --arms hubert_mel,mert_mel --seeds 3

Writes the same report as `representation.py` to
`experiments/results/runlocals/`, with a last table of each recipe's gain
over its random init in points; docs/results.md reads them.
"""

import logging
import os
import time


from experiments import common

# The bar: a runlocal that does not clear its random init by this
# many points of 10-fold probe accuracy has not learned within its budget.
BAR_POINTS = 10.0


def arms():
  out = [common.Arm("clmr", "clmr", "runlocal")]
  for name in ("hubert", "mert"):
    for inp in ("waveform", "mel", "pianoroll"):
      out.append(common.Arm(f"{name}_{inp}", name, f"runlocal,input={inp}"))
  # MERT-330M's runlocal: MERT's, with the large recipe's shared
  # projection, longer mixing and 8 accumulated micro-batches an update.
  out.append(common.Arm("mert_330m_waveform", "mert_330m",
                        "runlocal,input=waveform"))
  out += [common.Arm("masked_tokens", "masked_tokens", "runlocal"),
          common.Arm("triplet", "triplet", "runlocal"),
          common.Arm("two_tower", "two_tower", "runlocal"),
          # The same objective with the titles as partner: which pair, not
          # which loss, decides what the audio tower keeps.
          common.Arm("two_tower_text", "two_tower",
                     "runlocal,towers=audio+text"),
          common.Arm("autoencoder", "autoencoder", "runlocal"),
          # The composer study's contractive AE: its feed-forward encoder
          # on MFCC to 40 dimensions (one vector-Jacobian product a code
          # dimension keeps the penalty cheap at that width).
          common.Arm("autoencoder_cae", "autoencoder",
                     "runlocal,variant=cae,input=mfcc,model=feedforward,"
                     "latent=40"),
          common.Arm("ali", "ali", "runlocal"),
          common.Arm("supervised", "supervised", "runlocal")]
  return out


def gains(runs, chosen):
  """Markdown: each arm's probe and kNN accuracy minus its random init's,
  in points (mean over seeds), and whether it clears `BAR_POINTS`."""
  lines = ["| recipe | probe acc. − random init | kNN acc. − random init "
           f"| ≥ {BAR_POINTS:.0f} points |", "|---|---|---|---|"]
  for arm in chosen:
    mine = [r["metrics"] for r in runs if r["arm"] == arm.name]

    def gain(key, mine=mine):
      return 100 * sum(m["encoder"][key] - m["random_init"][key]
                       for m in mine) / len(mine)
    probe_gain, knn_gain = gain("accuracy"), gain("knn_accuracy")
    lines.append(f"| `{arm.spec().split('/')[-1]}` | {probe_gain:+.1f} | "
                 f"{knn_gain:+.1f} | "
                 f"{'yes' if probe_gain >= BAR_POINTS else 'no'} |")
  return "\n".join(lines)


def main():
  p = common.parser(__doc__.splitlines()[0],
                    os.path.join(common.ROOT, "experiments", "results",
                                 "runlocals"))
  common.add_arms_flag(p)
  p.set_defaults(seeds=1, folds=10, steps=0, tasks="multiclass,retrieval")
  args = p.parse_args()
  logging.basicConfig(level=logging.INFO)
  t0 = time.time()
  chosen = common.choose_arms(p, args, arms())
  data_dir = common.prepared_data(args.data,
                                  ("waveform", "pianoroll", "multitrack",
                                   "tokens"),
                                  common.target_sets(chosen))
  runs = common.run_and_report(
      chosen, args, data_dir, "Every runlocal against its random init",
      "Does each config's `runlocal` recipe, as a user runs it, beat its "
      "random init by at least 10 points of 10-fold probe accuracy?", t0)
  table = gains(runs, chosen)
  with open(os.path.join(args.out, "report.md"), "a") as f:
    f.write("\n## Gain over the random init (points)\n\n" + table + "\n")
  print(table)


if __name__ == "__main__":
  main()
