r"""The composer-embedding comparison: PCA, AE, CAE, VAE and ALI embeddings
on chroma, MFCC and mel, each classified by logistic regression, against
feed-forward, CNN and LSTM classifiers trained on the composer labels.

On a prepared composer collection (experiments/data/music21_composers.sh,
then `prepare --source gtzan --features waveform`), per input (chroma,
MFCC, log-mel):

  ae, cae, vae     the study's feed-forward encoder (1024-512-256-128,
                   runlocal: 256-128-64-32) to a 40-d code
                   (autoencoder.py:variant=...,model=feedforward,latent=40)
  pca              PCA of the same crops' frames to 40 components, fitted on
                   the train split (export's `input_pca`, beside the AE)
  ali_40/128/256   ALI on 32-frame crops (ali.py:latent=...), its
                   posterior mean
  ali_random       the widest ALI run's encoder at its random init
  ff, cnn, lstm    supervised classifiers (supervised.py:model=...)

Embeddings: each track's mean embedding, a logistic regression, 10-fold
stratified over tracks (mean ± std), as the study. Classifiers: their own
linear read-out's protocol would let folds test on tracks they trained
on, so they are trained on the train split and scored on its test split
(a linear probe on their penultimate layer). Writes `report.md`,
`results.json` (rows and ALI's losses), `convergence.png` (ALI's D and G
losses), and the first ALI run's figures. `--merge` keeps the rows of an
earlier `results.json` in `--out` for the arms not run now, so arms can be
added to a finished comparison.

  python -m experiments.composers --data ~/prepared/composers --steps 2000
"""

import json
import logging
import os
import shutil
import time

import numpy as np

from experiments import common
from jaxmusic.data import records
from jaxmusic.eval import report as report_lib

INPUTS = ("chroma", "mfcc", "mel")
LATENTS = (40, 128, 256)
EMBEDDINGS = ("pca", "ae", "cae", "vae") + tuple(f"ali_{d}" for d in LATENTS)
# The random-init ALI encoder (the widest latent run), exported beside the
# trained one: how much of ALI's row the untrained convolutions give.
RANDOM = "ali_random"
CLASSIFIERS = ("ff", "cnn", "lstm")
# The smoke's one input: every arm kind once.
SMOKE_INPUTS = ("mel",)


def arms(smoke: bool):
  """{name: Arm}: per input, the autoencoders, ALI at each latent and the
  classifiers."""
  # The smoke's crops: ALI's 32 frames, within the tests' 1 s segments.
  crop = (("data.crop_samples", 32 * 512),) if smoke else ()
  out = {}
  for inp in SMOKE_INPUTS if smoke else INPUTS:
    for variant in ("ae", "cae", "vae"):
      out[f"{variant}_{inp}"] = common.Arm(
          f"{variant}_{inp}", "autoencoder",
          f"variant={variant},input={inp},model=feedforward,latent=40,"
          "runlocal", crop)
    for d in LATENTS[:1] if smoke else LATENTS:
      out[f"ali_{d}_{inp}"] = common.Arm(
          f"ali_{d}_{inp}", "ali", f"input={inp},latent={d},runlocal", crop)
    for model, name in (("feedforward", "ff"), ("cnn", "cnn"),
                        ("lstm", "lstm")):
      out[f"{name}_{inp}"] = common.Arm(
          f"{name}_{inp}", "supervised", f"model={model},input={inp},"
          "runlocal", crop)
  return out


def merged(out, table):
  """The rows and losses of `out`/results.json, less those of `table`'s
  arms (and the rows an arm of `table` writes beside its own)."""
  path = os.path.join(out, "results.json")
  if not os.path.exists(path):
    return {}, {}, {}
  with open(path) as f:
    old = json.load(f)
  redone = set(table)
  for name in table:
    kind, inp = name.rsplit("_", 1)
    if kind == "ae":
      redone.add(f"pca_{inp}")
    if kind.startswith("ali_"):
      redone.add(f"{RANDOM}_{inp}")
  keep = lambda rows: {k: v for k, v in rows.items() if k not in redone}
  return (keep(old["embeddings"]), keep(old["classifiers"]),
          keep(old.get("ali_losses", {})))


def probe(emb, folds):
  """{representation: (accuracy, std)}: the logistic-regression probe on
  track means, `folds`-fold over tracks (0: the prepared splits)."""
  found = report_lib.run(emb, task="multiclass", target="label",
                         level="track", kinds=("linear",), folds=folds,
                         out=os.path.join(emb, f"probe_{folds}"))
  return {r["representation"]: (r["metrics"]["accuracy"],
                                r["metrics"].get("accuracy_std", 0.0))
          for r in found["rows"] if r["layer"] == "last"}


def losses(workdir):
  rows = []
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    for line in f:
      row = json.loads(line)
      if "generator_loss" in row:
        rows.append((row["step"], row["discriminator_loss"],
                     row["generator_loss"]))
  return rows


def plot_convergence(curves, path):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, 2, figsize=(12, 4))
  for name, rows in curves.items():
    if not rows:
      continue
    steps, d, g = np.asarray(rows).T
    axes[0].plot(steps, d, label=name)
    axes[1].plot(steps, g, label=name)
  axes[0].set_title("ALI: discriminator loss")
  axes[1].set_title("ALI: encoder + generator loss")
  for ax in axes:
    ax.set_xlabel("step")
  axes[1].legend(fontsize=7)
  fig.savefig(path, dpi=90, bbox_inches="tight")
  plt.close(fig)


def _fmt(cell):
  return "" if cell is None else f"{cell[0]:.3f} ± {cell[1]:.3f}"


def ordering(emb_rows, clf_rows) -> list[str]:
  """The study's ordering, checked on these numbers (a line whose rows were
  not run says so)."""
  def best(rows, kinds):
    got = [(rows[f"{k}_{i}"][0], f"{k} on {i}") for k in kinds
           for i in INPUTS if f"{k}_{i}" in rows]
    return max(got) if got else None

  def line(claim, a, b, holds):
    if a is None or b is None:
      return f"- {claim}: not run"
    ok = holds(a[0], b[0])
    return (f"- {claim}: {a[1]} {a[0]:.3f} vs {b[1]} {b[0]:.3f}: "
            f"{'agrees' if ok else 'disagrees'}")

  vae = ((emb_rows["vae_mfcc"][0], "vae on mfcc") if "vae_mfcc" in emb_rows
         else None)
  others = best({k: v for k, v in emb_rows.items() if k != "vae_mfcc"},
                EMBEDDINGS)
  alis = [e for e in EMBEDDINGS if e.startswith("ali")]
  return [
      line("supervised above every embedding (best of each)",
           best(clf_rows, CLASSIFIERS), best(emb_rows, EMBEDDINGS),
           lambda a, b: a > b),
      line("VAE on MFCC the best embedding (against the best other)", vae,
           others, lambda a, b: a > b),
      line("ALI below its baselines (best ALI against the best PCA, AE, "
           "CAE or VAE)", best(emb_rows, alis),
           best(emb_rows, ("pca", "ae", "cae", "vae")),
           lambda a, b: a < b)]


def main():
  p = common.parser(__doc__.split("\n")[0], "experiments/results/composers")
  common.add_arms_flag(p)
  p.add_argument("--notes", default="", help="A markdown file that report.md "
                 "gives after the ordering: why the numbers agree or "
                 "disagree with the study's.")
  p.add_argument("--merge", action="store_true", help="Keep the rows and "
                 "losses of OUT/results.json for the arms not run now.")
  p.set_defaults(steps=2000, seeds=1)
  args = p.parse_args()
  logging.basicConfig(level=logging.INFO)
  if not args.data:
    p.error("--data: a prepared composer collection; see "
            "experiments/data/music21_composers.sh")
  manifest = records.load_manifest(args.data)
  folds = 3 if args.smoke else 10
  t0 = time.time()
  table = arms(args.smoke)
  if args.arms:
    wanted = args.arms.split(",")
    unknown = sorted(set(wanted) - set(table))
    if unknown:
      p.error(f"--arms: unknown {unknown}; known: {list(table)}")
    table = {k: v for k, v in table.items() if k in wanted}
  seed = 0
  emb_rows, clf_rows, curves = (
      merged(args.out, table) if args.merge else ({}, {}, {}))
  widest = {}
  for name in table:
    kind, inp = name.rsplit("_", 1)
    if kind.startswith("ali_"):
      widest[inp] = name
  for name, arm in table.items():
    workdir = common.train_arm(arm, args, seed, args.data)
    kind, inp = name.rsplit("_", 1)
    if kind in CLASSIFIERS:
      clf_rows[name] = probe(common.export(workdir, args.data, seed),
                             0)["encoder"]
      continue
    extra = (("input_pca",) if kind == "ae" else
             ("random_init",) if widest.get(inp) == name else ())
    got = probe(common.export(workdir, args.data, seed, baselines=extra),
                folds)
    emb_rows[name] = got["encoder"]
    if kind == "ae":
      emb_rows[f"pca_{inp}"] = got["input_pca"]
    if "random_init" in extra:
      emb_rows[f"{RANDOM}_{inp}"] = got["random_init"] + (kind,)
    if kind.startswith("ali"):
      curves[name] = losses(workdir)
  os.makedirs(args.out, exist_ok=True)
  plot_convergence(curves, os.path.join(args.out, "convergence.png"))
  # The figures of the first ALI run (ali_40 on chroma, or the first run).
  for name in (n for n in table if n.startswith("ali_")):
    figures = os.path.join(args.workdir, f"{name}-s{seed}", "figures")
    for png in sorted(os.listdir(figures)):
      shutil.copy(os.path.join(figures, png), os.path.join(args.out, png))
    break
  write(args, manifest, emb_rows, clf_rows, curves, folds,
        time.time() - t0)


def write(args, manifest, emb_rows, clf_rows, curves, folds, wall_s):
  with open(os.path.join(args.out, "results.json"), "w") as f:
    json.dump({"args": vars(args), "embeddings": emb_rows,
               "classifiers": clf_rows, "ali_losses": curves}, f, indent=1)
  counts, names = {}, manifest["vocab"]["label"]
  for split in manifest["splits"].values():
    for t in split["tracks"]:
      name = names[t["label"]] if t["label"] >= 0 else "unlabelled"
      counts[name] = counts.get(name, 0) + 1
  head = "| | " + " | ".join(INPUTS) + " |"
  rule = "|---|" + "---|" * len(INPUTS)
  lines = [
      "# Composer embeddings: PCA, AE, CAE, VAE and ALI against classifiers",
      "", common.provenance(wall_s), "", "Command:", "", "```bash",
      common.command_line(), "```", "",
      f"Data: `{args.data}`, {sum(counts.values())} tracks: "
      + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + f"; "
      f"every run {args.steps} steps.", "",
      f"## Embeddings + logistic regression ({folds}-fold over tracks, "
      "track means; accuracy ± std over folds)", "", head, rule]
  for e in EMBEDDINGS:
    if any(f"{e}_{i}" in emb_rows for i in INPUTS):
      lines.append(f"| {e} | " + " | ".join(
          _fmt(emb_rows.get(f"{e}_{i}")) for i in INPUTS) + " |")
  if any(f"{RANDOM}_{i}" in emb_rows for i in INPUTS):
    lines.append(f"| {RANDOM} | " + " | ".join(
        _fmt(emb_rows.get(f"{RANDOM}_{i}")) + (
            f" ({emb_rows[f'{RANDOM}_{i}'][2]})"
            if f"{RANDOM}_{i}" in emb_rows else "") for i in INPUTS) + " |")
  lines += ["", "## Classifiers trained on the labels (the prepared test "
            "split)", "", head, rule]
  for c in CLASSIFIERS:
    lines.append(f"| {c} | " + " | ".join(
        f"{clf_rows[f'{c}_{i}'][0]:.3f}" if f"{c}_{i}" in clf_rows else ""
        for i in INPUTS) + " |")
  lines += ["", "## Against the study's ordering", "",
            "The study (5 composers, 10 s clips): CNN on mel 0.557, "
            "feed-forward on MFCC 0.579, the best embedding VAE on MFCC "
            "0.455, ALI 0.287-0.299.", ""]
  lines += ordering(emb_rows, clf_rows)
  if args.notes:
    with open(args.notes) as f:
      lines += ["", f.read().strip()]
  unkept = sorted(n for n in emb_rows if n.startswith("ali_")
                  and not n.startswith(RANDOM) and n not in curves)
  lines += ["", "## ALI", "", "D and G losses" + (
      f" (not kept for {', '.join(unkept)})" if unkept else "") + ":", "",
            "![convergence](convergence.png)", "",
            "Real and generated crops, the interpolation from the origin to "
            "the all-ones latent, and reconstructions (the first ALI run "
            f"of the table, {next((n for n in curves), 'none')}):", "",
            "![samples](ali_samples.png)", "",
            "![interpolation](ali_interpolation.png)", "",
            "![reconstructions](ali_reconstructions.png)", ""]
  with open(os.path.join(args.out, "report.md"), "w") as f:
    f.write("\n".join(lines))


if __name__ == "__main__":
  main()
