r"""How much genre do the masked-prediction targets carry?

A masked-prediction encoder (HuBERT, MERT) learns to predict its k-means
codes. This probes the codes themselves: each track's histogram of codes
(a bag of codes) through the same 10-fold linear genre probe as the
embeddings (`probe --folds 10`, tracks never straddle folds). A target
set whose bag of codes probes near the encoder's random init cannot teach
it much genre, however long it trains.

  python -m experiments.target_codes          # the embedded corpus's sets
  python -m experiments.target_codes --data DIR --sets mfcc_k100,it2_k500

Prints a markdown table (and writes it to `--out` when given).
"""

import argparse
import os

import numpy as np


from experiments import common
from jaxmusic.data import records  # pylint: disable=g-import-not-at-top,wrong-import-position
from jaxmusic.data import targets  # pylint: disable=g-import-not-at-top,wrong-import-position
from jaxmusic.eval import probes  # pylint: disable=g-import-not-at-top,wrong-import-position

SETS = ("mfcc_k100", "logmel_k300", "chroma_k200", "pianoroll_k100",
        "roll_texture_k100", "roll_chroma_k200", "key_chroma_k200",
        "roll_key_chroma_k200")


def bags(codes_RxCxN: np.ndarray, tracks, k: int) -> np.ndarray:
  """`T x (C * k)`: each track's code frequencies over its segment
  records, one histogram per codebook."""
  out = np.zeros((len(tracks), codes_RxCxN.shape[1] * k), np.float32)
  for i, t in enumerate(tracks):
    rows = np.asarray(codes_RxCxN[t["first_record"]:
                                  t["first_record"] + t["num_segments"]])
    for c in range(rows.shape[1]):
      counts = np.bincount(rows[:, c].ravel(), minlength=k)
      out[i, c * k:(c + 1) * k] = counts / max(counts.sum(), 1)
  return out


def probe_set(data_dir: str, name: str, folds: int, seed: int = 0):
  """The 10-fold linear probe's metrics on the bags of codes of every
  track of every split."""
  manifest = records.load_manifest(data_dir)
  k = manifest["targets"][name]["k"]
  xs, labels = [], []
  for split in records.SPLITS:
    tracks = manifest["splits"][split]["tracks"]
    codes = np.load(os.path.join(targets.store_dir(data_dir, name),
                                 f"{split}.npy"), mmap_mode="r")
    xs.append(bags(codes, tracks, k))
    labels += [t["label"] for t in tracks]
  _, y = np.unique(np.array(labels), return_inverse=True)
  data = probes.Split(np.concatenate(xs), y, np.arange(len(y)))
  test_folds = probes.track_folds(data, folds, True, seed)
  return probes.fit_kfold("multiclass", "linear", data, test_folds,
                          seed)["metrics"]


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--data", default="", help="A prepared directory (default: "
                 "the embedded corpus, its default-named sets made if "
                 "missing).")
  p.add_argument("--sets", default=",".join(SETS),
                 help="Comma-separated target set names.")
  p.add_argument("--folds", type=int, default=10)
  p.add_argument("--out", default="", help="Also write the table here.")
  args = p.parse_args()
  names = [s for s in args.sets.split(",") if s]
  default = [n for n in names if targets.parse_default_name(n)]
  data_dir = common.prepared_data(args.data, ("waveform", "pianoroll"),
                                  tuple(default))
  lines = ["| target set | bag-of-codes probe acc. | macro-F1 |",
           "|---|---|---|"]
  for name in names:
    m = probe_set(data_dir, name, args.folds)
    lines.append(f"| `{name}` | {m['accuracy']:.3f} ± "
                 f"{m['accuracy_std']:.3f} | {m['macro_f1']:.3f} ± "
                 f"{m['macro_f1_std']:.3f} |")
  table = "\n".join(lines)
  if args.out:
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "report.md"), "w") as f:
      f.write(f"# {__doc__.splitlines()[0]}\n\n{table}\n")
  print(table)


if __name__ == "__main__":
  main()
