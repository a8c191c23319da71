r"""Melody <-> title on real tunes, and rhythm type from the melody alone.

On a prepared tune-book collection (`prepare --source abc --features
tokens,pianoroll`; experiments/data/folk_tunes.sh builds the development
set), per seed:

  melody_mlm        masked token prediction on the tunes' melodies
                    (masked_tokens.py), the melody model (first seed);
  towers_scratch    the two towers, event tokens <-> title bytes, from
                    random init (two_tower.py:towers=tokens+text);
  towers_transfer   the same, the melody tower started from melody_mlm
                    (`config.model_init`; every seed from the same one,
                    the seeds varying the towers' training), as the
                    tune-retrieval users found best;
  pianoroll_clmr    CLMR's transformer on the piano roll (first seed),
                    the piano-roll run of the rhythm probe.

Melody <-> title: the test tunes' track embeddings of both towers, ranked
both ways (`probe --task crossmodal`): MRR, R@1/5/10, DCG and nDCG@10
with graded relevance (1 the tune itself, 0.5 a tune of its rhythm type),
median rank; each towers row beside its random init, mean ± std over
seeds. Rhythm type: the first seed's 10-fold linear probe over all typed
tunes (on each tune's mean embedding) on the melody tower's, the melody
model's and the piano-roll run's embeddings, against the piano roll's
statistics (export's `roll_stats`). Writes `report.md`,
`results.json` and `melody_embeddings.png` (PCA and t-SNE of the
transferred melody tower's tune embeddings, coloured by rhythm type).

  python -m experiments.melody_title --data ~/prepared/folk_tunes
"""

import json
import logging
import os
import time

import numpy as np

from experiments import common
from jaxmusic.data import records
from jaxmusic.eval import report as report_lib

# 8 s crops inside the 8 s segments the collection is prepared in; 128
# tokens hold about 4 bars of a reel.
CROP = (("data.crop_samples", 344 * 512),)
TOKENS = 128
CROSSMODAL = (("mrr", "MRR"), ("r@1", "R@1"), ("r@5", "R@5"),
              ("r@10", "R@10"), ("dcg", "DCG"), ("ndcg@10", "nDCG@10"),
              ("median_rank", "median rank"))


def arms(steps: int):
  del steps  # every arm gets --steps (common.make_config)
  same = CROP
  return {
      "melody_mlm": common.Arm(
          "melody_mlm", "masked_tokens", f"runlocal,tokens={TOKENS}", same),
      "towers_scratch": common.Arm(
          "towers_scratch", "two_tower",
          f"towers=tokens+text,runlocal,tokens={TOKENS}", same),
      "pianoroll_clmr": common.Arm(
          "pianoroll_clmr", "clmr", "model=transformer,input=pianoroll,"
          "runlocal"),
  }


def rhythm_probe(emb, folds):
  """{rep: (accuracy, std over folds)} of the 10-fold linear rhythm
  probe, on each tune's mean embedding (a tune is about 5 crops; the
  crop-level probe costs 5 times as much for the same folds)."""
  report = report_lib.run(emb, task="multiclass", target="label",
                          level="track", kinds=("linear",), folds=folds,
                          out=os.path.join(emb, "probe_rhythm"))
  return {r["representation"]: (r["metrics"]["accuracy"],
                                r["metrics"].get("accuracy_std", 0.0))
          for r in report["rows"] if r["layer"] == "last"}


def crossmodal(workdir, data_dir, seed, roll_stats=False):
  melody = common.export(workdir, data_dir, seed, baselines=(
      ("random_init", "roll_stats") if roll_stats else ("random_init",)))
  title = common.export(workdir, data_dir, seed, tower="text")
  report = report_lib.run_crossmodal(melody, title, split="test",
                                     out=os.path.join(workdir, "crossmodal"))
  return melody, {f"{r['representation']} {r['probe']}": r["metrics"]
                  for r in report["rows"]}


def _fmt(values, digits=3):
  if not values:
    return ""
  if len(values) == 1:
    return f"{values[0]:.{digits}f}"
  return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"


def plot_melodies(emb, rep, names, path, seed=0):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  xys, c = report_lib.projections(emb, rep, seed=seed)
  fig, axes = plt.subplots(1, 2, figsize=(13, 6))
  cmap = plt.get_cmap("tab20")
  for ax, (method, xy) in zip(axes, xys):
    for i, name in enumerate(names):
      pick = c == i
      if pick.any():
        ax.scatter(xy[pick, 0], xy[pick, 1], s=6, color=cmap(i % 20),
                   label=f"{name} ({pick.sum()})")
    ax.set_title(f"melody tower (transferred), {method.upper()}, by rhythm")
    ax.set_xticks([])
    ax.set_yticks([])
  axes[1].legend(fontsize=7, markerscale=2, loc="best")
  fig.savefig(path, dpi=100, bbox_inches="tight")
  plt.close(fig)


def main():
  p = common.parser(__doc__.split("\n")[0], "experiments/results/melody_title")
  p.set_defaults(steps=300)
  p.add_argument("--rhythm_folds", type=int, default=10)
  args = p.parse_args()
  logging.basicConfig(level=logging.INFO)
  if not args.data:
    p.error("--data: a prepared tune-book collection (prepare --source abc "
            "--features tokens,pianoroll); see experiments/data/folk_tunes.sh")
  manifest = records.load_manifest(args.data)
  t0 = time.time()
  table = arms(args.steps)
  seeds = [0] if args.smoke else list(range(args.seeds))
  cross, rhythm = {}, {}
  for seed in seeds:
    # The rhythm probes (10 folds x 4 regularisations a representation)
    # cost more than the training: they are the first seed's.
    first_seed = seed == seeds[0]
    # One melody model (the first seed's) starts every seed's transferred
    # towers: the seeds vary the towers' training, as fine-tuning seeds.
    mlm = common.train_arm(table["melody_mlm"], args, seeds[0], args.data)
    if first_seed:
      rhythm["melody model (masked tokens)"] = rhythm_probe(
          common.export(mlm, args.data, seed), args.rhythm_folds)["encoder"]
    for name, extra in (("towers_scratch", ()),
                        ("towers_transfer", (("model_init", mlm),))):
      arm = table["towers_scratch"]
      arm = common.Arm(name, arm.config, arm.arg, arm.overrides + extra)
      workdir = common.train_arm(arm, args, seed, args.data)
      # The roll statistics are the same every seed: computed once.
      first = name == "towers_scratch" and first_seed
      melody, found = crossmodal(workdir, args.data, seed, roll_stats=first)
      for row, metrics in found.items():
        if row.startswith("random_init") and name != "towers_scratch":
          continue
        label = ("random init" if row.startswith("random_init") else name)
        cross.setdefault(f"{label}: {row.split(' ', 1)[1]}", []).append(
            metrics)
      if first_seed:
        probed = rhythm_probe(melody, args.rhythm_folds)
        rhythm[f"melody tower ({name})"] = probed["encoder"]
      if first:
        rhythm["melody tower, random init"] = probed["random_init"]
        rhythm["roll statistics"] = probed["roll_stats"]
      if name == "towers_transfer" and seed == seeds[0]:
        os.makedirs(args.out, exist_ok=True)
        plot_melodies(melody, "encoder", manifest["vocab"]["label"],
                      os.path.join(args.out, "melody_embeddings.png"))
  roll_run = common.train_arm(table["pianoroll_clmr"], args, seeds[0],
                              args.data)
  roll_emb = common.export(roll_run, args.data, seeds[0])
  rhythm["piano-roll run (CLMR transformer)"] = rhythm_probe(
      roll_emb, args.rhythm_folds)["encoder"]
  write(args, manifest, cross, rhythm, seeds, time.time() - t0)


def targets(cross, rhythm) -> list[str]:
  """The issue's bars, each checked on the means over seeds."""
  mean = lambda row, key: float(np.mean([m[key] for m in cross[row]]))
  lines = []
  for way in ("tokens->text", "text->tokens"):
    base = mean(f"random init: {way}", "mrr")
    for arm in ("towers_scratch", "towers_transfer"):
      got = mean(f"{arm}: {way}", "mrr")
      lines.append(f"- {arm} {way}: MRR {got:.3f} = {got / base:.1f} x "
                   f"random init's {base:.3f} (bar: 2 x): "
                   f"{'met' if got >= 2 * base else 'not met'}")
  for way in ("tokens->text", "text->tokens"):
    a, b = (mean(f"towers_transfer: {way}", "mrr"),
            mean(f"towers_scratch: {way}", "mrr"))
    lines.append(f"- transferred vs from scratch, {way}: MRR {a:.3f} vs "
                 f"{b:.3f}: {'met' if a > b else 'not met'}")
  roll = rhythm["roll statistics"][0]
  best = max((v[0], k) for k, v in rhythm.items()
             if k != "roll statistics" and "random init" not in k)
  lines.append(f"- best learned rhythm probe, {best[1]}: {best[0]:.3f} vs "
               f"roll statistics {roll:.3f}: {100 * (best[0] - roll):+.1f} "
               f"points (bar: +5): "
               f"{'met' if best[0] - roll >= 0.05 else 'not met'}")
  return lines


def write(args, manifest, cross, rhythm, seeds, wall_s):
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "results.json"), "w") as f:
    json.dump({"args": vars(args), "crossmodal": cross, "rhythm": rhythm},
              f, indent=1)
  test = manifest["splits"]["test"]["num_tracks"]
  counts = {}
  for split in manifest["splits"].values():
    for t in split["tracks"]:
      counts[t["label"]] = counts.get(t["label"], 0) + 1
  lines = [
      "# Melody <-> title on real tunes, and rhythm type from the melody",
      "", common.provenance(wall_s), "", "Command:", "", "```bash",
      common.command_line(), "```", "",
      f"Data: `{args.data}`, {sum(counts.values())} tunes "
      f"({test} test tunes ranked); seeds {seeds}; every run "
      f"{args.steps} steps of the tiny transformer, {TOKENS}-token crops "
      "of 8 s.", "",
      "## Melody <-> title (test tunes, both ways)", "",
      "| towers: direction | " + " | ".join(h for _, h in CROSSMODAL) + " |",
      "|---|" + "---|" * len(CROSSMODAL)]
  for row in sorted(cross):
    lines.append(f"| {row} | " + " | ".join(
        _fmt([m[k] for m in cross[row]]) for k, _ in CROSSMODAL) + " |")
  lines += ["", f"## Rhythm type ({args.rhythm_folds}-fold linear probe "
            f"on tune means over all typed tunes, seed {seeds[0]}; ± over "
            "folds)", "",
            "| representation | accuracy |", "|---|---|"]
  for row, (acc, std) in rhythm.items():
    lines.append(f"| {row} | {acc:.3f} ± {std:.3f} |")
  lines += ["", "## Targets", ""] + targets(cross, rhythm)
  lines += ["", "![melody embeddings](melody_embeddings.png)", ""]
  with open(os.path.join(args.out, "report.md"), "w") as f:
    f.write("\n".join(lines))
  print("\n".join(lines))


if __name__ == "__main__":
  main()
