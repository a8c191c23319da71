r"""Zero-shot tag retrieval over every tag: `--folds K` audio+tags runs
(`two_tower.py:towers=audio+tags,runlocal`), run f holding out every K-th
tag of the collection's sorted vocabulary from the f-th on, so that each
tag is held out by exactly one run; each run is queried by `probe --task
zeroshot` (eval/zeroshot.py).

The report gives, for each representation, the zero-shot scores of every
tag read from the run that held it out, and the seen-tag scores averaged
over the runs; and a row per tag: its test prevalence, and its average
precision zero-shot, at random init, by the supervised tagger (from the
runs that saw it) and by chance. Writes `results.json` and `report.md`
to `--out`. Runs already trained in `--workdir` are reused.

  python -m experiments.zeroshot_tags --workdir /tmp/zeroshot_tags \
      --out experiments/results/zeroshot_tags
"""

import argparse
import os
import time

import numpy as np

from experiments import common
from jaxmusic import config as config_lib
from jaxmusic import train
from jaxmusic.data import corpus
from jaxmusic.data import pipeline
from jaxmusic.eval import report as report_lib
from jaxmusic.eval import zeroshot

ROWS = ("encoder", "random_init", "supervised", "supervised_mfcc", "chance")


def fold_config(data: str, holdout: list[str], steps: int):
  """The runlocal recipe holding `holdout` out, on `data` ("": the
  embedded corpus)."""
  arg = "towers=audio+tags,runlocal,holdout=" + "+".join(holdout)
  config = config_lib.load_config("two_tower", arg)
  config.data.dir = data
  if steps:
    common.set_steps(config, steps)
  return config


def run(workdir: str, data: str, folds: int, steps: int = 0) -> dict:
  """Trains (or reuses) each fold's run on `data` ("": the embedded
  corpus) and queries it; the per-fold reports."""
  data_dir = data or corpus.resolve_data_dir(
      config_lib.load_config("two_tower", "towers=audio+tags,runlocal"))
  vocab = pipeline.PreparedData(data_dir).manifest["vocab"]["tags"]
  reports = []
  for f in range(folds):
    config = fold_config(data, vocab[f::folds], steps)
    run_dir = os.path.join(workdir, f"fold{f}")
    common.clear_if_other_config(run_dir, config)
    train.train_and_evaluate(config, run_dir)
    reports.append(zeroshot.run(run_dir, data_dir))
  return {"vocab": vocab, "folds": reports}


def summary(results: dict) -> dict:
  """{row: {"zero_shot": means over every tag, "seen": mean of the folds'
  seen means}} and {tag: {row: AP}}."""
  vocab, reports = results["vocab"], results["folds"]
  rows, per_tag = {}, {v: {} for v in vocab}
  for name in ROWS:
    unseen = []
    for r in reports:
      held = {vocab.index(v) for v in r["held_out"]}
      tags = r["rows"][name].get("per_tag", {})
      unseen += [m for v, m in tags.items() if int(v) in held]
      for v, m in tags.items():
        key = "zero_shot" if int(v) in held else "seen"
        per_tag[vocab[int(v)]].setdefault(name, {}).setdefault(
            key, []).append(m["ap"])
    seen = [r["rows"][name]["seen"] for r in reports
            if r["rows"][name].get("seen")]
    rows[name] = {
        "zero_shot": {m: float(np.nanmean([t[m] for t in unseen]))
                      for m in zeroshot.METRICS} if unseen else None,
        "seen": {m: float(np.mean([s[m] for s in seen]))
                 for m in zeroshot.METRICS} if seen else None}
    if name == "chance":
      # The chance row keeps no per-tag scores: its zero-shot side is the
      # mean of the folds' zero-shot means.
      rows[name]["zero_shot"] = {m: float(np.mean(
          [r["rows"][name]["zero_shot"][m] for r in reports]))
          for m in zeroshot.METRICS}
  return {"rows": rows, "per_tag": per_tag}


def markdown(results: dict, summ: dict) -> str:
  lines = [zeroshot.markdown({"rows": summ["rows"]}), "",
           "| tag | test tracks with it | AP zero-shot | AP random init "
           "(held out) | AP supervised (seen) |", "|---|---|---|---|---|"]
  # Every fold tests on the same tracks.
  first = results["folds"][0]
  rel = zeroshot.relevance(pipeline.PreparedData(first["data"]),
                           first["split"])
  prevalence = dict(zip(results["vocab"], rel.sum(0)))
  fmt = lambda xs: f"{np.mean(xs):.3f}" if xs else "–"
  for tag, rows in summ["per_tag"].items():
    lines.append(
        f"| {tag} | {prevalence.get(tag, 0)} | "
        f"{fmt(rows.get('encoder', {}).get('zero_shot'))} | "
        f"{fmt(rows.get('random_init', {}).get('zero_shot'))} | "
        f"{fmt(rows.get('supervised', {}).get('seen'))} |")
  return "\n".join(lines)


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--workdir", required=True, help="One run a fold under it.")
  p.add_argument("--data", default="", help="A prepared collection with "
                 "tags (default: the embedded corpus).")
  p.add_argument("--folds", type=int, default=4)
  p.add_argument("--steps", type=int, default=0, help="Train steps (default: "
                 "the runlocal's).")
  p.add_argument("--out", required=True)
  args = p.parse_args()
  t0 = time.time()
  results = run(args.workdir, args.data, args.folds, args.steps)
  summ = summary(results)
  text = [f"# Zero-shot tags: {args.folds} folds over "
          f"{len(results['vocab'])} tags", "", markdown(results, summ), "",
          f"`{common.command_line()}`", "",
          common.provenance(time.time() - t0)]
  os.makedirs(args.out, exist_ok=True)
  report_path = os.path.join(args.out, "report.md")
  with open(report_path, "w") as f:
    f.write("\n".join(text) + "\n")
  report_lib.save_json({**results, "summary": summ}, args.out,
                       "results.json")
  print("\n".join(text))


if __name__ == "__main__":
  main()
