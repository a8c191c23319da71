r"""Do the `quality` recipes learn embeddings better than handcrafted
features, within a CPU budget?

  python -m experiments.benchmarks.bench_quality --data DEBIAN_PREPARED
  python -m experiments.benchmarks.bench_quality --data '' \
      --recipe clmr.py:runlocal --recipe hubert.py:input=mel,runlocal --folds 10

Trains each recipe (`NAME.py:ARG`; default the `quality` recipes) on a
prepared collection, by default the Debian game soundtracks
(`experiments/data/debian_soundtracks.sh OUT`, then `python -m
jaxmusic.prepare --source gtzan --input OUT/genres --output
OUT/prepared`); `--data ''` is the embedded synthetic corpus. Along
the way it keeps `--curve` checkpoints and probes each one: the 10-fold
linear genre probe (stratified group k-fold over all tracks, on track
means by default) against training minutes, from the random
init (0 minutes) on. MFCC mean+std and log-mel mean+std are probed the
same way on the same folds.

With `--bar POINTS` (the rule for a runlocal short of its bar)
the report also gives each recipe's gain over its random init, its last
segment's rate and the training minutes at which it reaches the bar.

Writes `results.json`, `report.md` and `curve.png` to `--out`, prints
each recipe's curve and, last, the best recipe's probe accuracy (at its
last checkpoint) minus the best handcrafted baseline's, in points. Not a
speed benchmark: no huge pages, no peer; the training minutes are the
steps' own (logged steps/s), without the probes.
"""

import argparse
import json
import logging
import math
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
from jaxmusic import checkpoint
from jaxmusic import config as config_lib
from jaxmusic.eval import embeddings
from jaxmusic.eval import report as report_lib
from jaxmusic import train
from jaxmusic.data import corpus
from jaxmusic.data import synthetic
from experiments import common
# pylint: enable=g-import-not-at-top,wrong-import-position

RECIPES = ("clmr.py:quality", "hubert.py:input=mel,quality")
HANDCRAFTED = ("mfcc", "logmel_stats")
NAMES = {"mfcc": "MFCC mean+std", "logmel_stats": "log-mel mean+std"}
DEFAULT_DATA = os.path.join(corpus.default_cache_dir(),
                            "debian_soundtracks", "prepared")


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--data", default=DEFAULT_DATA,
                 help="A prepared directory; '' for the embedded corpus.")
  p.add_argument("--recipe", action="append", default=None,
                 help=f"NAME.py:ARG, repeatable (default {list(RECIPES)}).")
  p.add_argument("--folds", type=int, default=10)
  p.add_argument("--level", default="track", choices=("track", "chunk"),
                 help="Probe on track means (default: a 15-hour collection "
                 "is ~60k SampleCNN chunks, which makes 10-fold chunk "
                 "probes slower than the training), or on chunks averaged "
                 "per track.")
  p.add_argument("--curve", type=int, default=3,
                 help="Checkpoints probed per recipe, evenly spaced.")
  p.add_argument("--steps", type=int, default=0,
                 help="Override each recipe's steps (0: the recipe's).")
  p.add_argument("--bar", type=float, default=0.0,
                 help="POINTS > 0: the report adds each recipe's gain over "
                 "its random init, the rate of its last segment and the "
                 "training minutes at which it reaches POINTS over the "
                 "random init (extrapolated along that rate where the "
                 "curve ends below).")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--out", default=os.path.join(ROOT, "experiments",
                                               "results", "quality"))
  p.add_argument("--workdir", default="/tmp/jaxmusic_quality")
  return p.parse_args(argv)


def load_recipe(spec: str, data_dir: str, args):
  """(name, config) for `NAME.py:ARG` on `data_dir`, with `--curve`
  checkpoints kept."""
  name, _, arg = spec.partition(":")
  name = name.removesuffix(".py")
  config = config_lib.load_config(name, arg)
  config.seed = args.seed
  if args.steps:
    common.set_steps(config, args.steps)
  config.data.dir = data_dir
  every = max(1, config.total_steps // args.curve)
  config.checkpoint.every = every
  config.checkpoint.keep = args.curve + 1
  config.monitor.every = every
  config.log_every = min(config.log_every, every)
  return name, config


def train_minutes(workdir):
  """{step: training minutes at that step}, from the logged steps/s."""
  minutes, last, total = {0: 0.0}, 0, 0.0
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    for line in f:
      row = json.loads(line)
      if "steps_per_sec" in row:
        total += (row["step"] - last) / row["steps_per_sec"] / 60
        last = row["step"]
        minutes[last] = total
  return minutes


def _accuracy(report, rep):
  row = next(r for r in report["rows"] if r["representation"] == rep and
             r["probe"] == "linear")
  m = row["metrics"]
  return m["accuracy"], m.get("accuracy_std", 0.0)


def run_recipe(spec, data_dir, args, with_baselines):
  """Trains one recipe and probes its checkpoints; returns its record."""
  name, config = load_recipe(spec, data_dir, args)
  if config.data.get("targets"):
    corpus.ensure_targets(data_dir, tuple(config.data.targets))
  workdir = os.path.join(args.workdir, spec.replace("/", "_"))
  # A recipe changed since its last run here must not resume that run.
  common.clear_if_other_config(workdir, config)
  t0 = time.time()
  train.train_and_evaluate(config, workdir)
  wall = time.time() - t0
  minutes = train_minutes(workdir)
  # Orbax also keeps the first step it is given; the curve's points are
  # the evenly spaced ones.
  every = config.checkpoint.every
  steps = sorted(s for s in checkpoint.latest_steps(workdir)
                 if s % every == 0 or s == config.total_steps)
  curve, baselines = [], {}
  for step in steps:
    first, last = step == steps[0], step == steps[-1]
    names = (["random_init"] if first else []) + (
        list(HANDCRAFTED) if last and with_baselines else [])
    emb = os.path.join(workdir, f"embeddings_{step}")
    embeddings.run(workdir, emb, step=step, data_dir=data_dir,
                   baseline_names=names, seed=args.seed, progress=False)
    report = report_lib.run(emb, kinds=("linear",), folds=args.folds,
                            level=args.level, seed=args.seed)
    if first:
      curve.append((0, 0.0, *_accuracy(report, "random_init")))
    curve.append((step, minutes.get(step, minutes[max(minutes)]),
                  *_accuracy(report, "encoder")))
    for b in set(names) & set(HANDCRAFTED):
      baselines[b] = _accuracy(report, b)
  logging.info("%s: %s", spec, curve)
  record = {"recipe": spec, "config": name, "workdir": workdir,
            "total_steps": config.total_steps, "wall_seconds": wall,
            "train_minutes": minutes.get(steps[-1]),
            "curve": [dict(zip(("step", "minutes", "accuracy", "std"), c))
                      for c in curve],
            "baselines": baselines}
  if args.bar:
    gain, rate, at, measured = crossing(record["curve"], args.bar)
    record["crossing"] = {"gain": gain, "rate": rate, "measured": measured,
                          "minutes": None if math.isinf(at) else at}
  return record


def crossing(curve, bar):
  """(gain, rate, minutes, measured) of a learning curve against a bar of
  `bar` points over its random init (`curve[0]`): the last checkpoint's
  gain in points, its last segment's rate in points a training minute,
  and the training minutes at which the gain reaches `bar`: the first
  checkpoint that does (`measured`), else extrapolated along that rate
  (inf where the curve does not rise)."""
  gains = [100 * (p["accuracy"] - curve[0]["accuracy"]) for p in curve]
  (a, gain_a), (b, gain_b) = zip(curve[-2:], gains[-2:])
  rate = (gain_b - gain_a) / max(b["minutes"] - a["minutes"], 1e-9)
  for p, gain in zip(curve[1:], gains[1:]):
    if gain >= bar:
      return gain_b, rate, p["minutes"], True
  return gain_b, rate, (b["minutes"] + (bar - gain_b) / rate if rate > 0
                        else math.inf), False


def plot(records, baselines, path, folds, level):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for r in records:
    c = r["curve"]
    ax.errorbar([p["minutes"] for p in c], [p["accuracy"] for p in c],
                yerr=[p["std"] for p in c], marker="o", capsize=3,
                label=r["recipe"])
  for (name, (acc, _)), style in zip(baselines.items(), ("--", ":")):
    ax.axhline(acc, color="k", linestyle=style, label=NAMES[name])
  ax.set(xlabel="training minutes (2 CPU cores)",
         ylabel=f"{folds}-fold linear probe accuracy ({level} level)",
         title="probe accuracy against training time")
  ax.legend(fontsize=8)
  fig.savefig(path, dpi=100, bbox_inches="tight")
  plt.close(fig)


def main(argv=None):
  args = parse_args(argv)
  logging.basicConfig(level=logging.INFO)
  recipes = args.recipe or list(RECIPES)
  if args.data:
    if not os.path.exists(os.path.join(args.data, "manifest.json")):
      sys.exit(f"bench_quality: {args.data}: no prepared collection "
               "(manifest.json); make the Debian set with "
               "experiments/data/debian_soundtracks.sh OUT and python -m "
               "jaxmusic.prepare --source gtzan --input OUT/genres --output "
               f"{args.data}, or pass --data PREPARED ('' for the embedded "
               "corpus)")
    data_dir = args.data
  else:
    # Every feature the recipes read (the piano-roll recipes read theirs).
    read = {f for spec in recipes
            for f in load_recipe(spec, "", args)[1].data.features}
    data_dir = corpus.ensure_prepared(
        synthetic.SyntheticConfig(),
        ("waveform",) + tuple(sorted(read - {"waveform"})), 3.0, workers=2)
  t0 = time.time()
  records = [run_recipe(spec, data_dir, args, with_baselines=i == 0)
             for i, spec in enumerate(recipes)]
  report(records, records[0]["baselines"], args, data_dir,
         time.time() - t0, common.command_line())


def report(records, baselines, args, data_dir, wall_s, command):
  """Writes the figure, `results.json` and `report.md`; prints the table
  and, last, the difference in points."""
  os.makedirs(args.out, exist_ok=True)
  plot(records, baselines, os.path.join(args.out, "curve.png"), args.folds,
       args.level)

  # Each recipe is scored by its last checkpoint: picking the best point
  # of the curve would choose on the test folds.
  lines = [f"| recipe | steps | train min | {args.folds}-fold linear probe "
           f"acc., {args.level} level (random init → checkpoints) | final − "
           "best handcrafted (points) |",
           "|---|---|---|---|---|"]
  best_base = max(baselines.items(), key=lambda kv: kv[1][0])
  for r in records:
    c = r["curve"]
    lines.append(
        f"| `{r['recipe']}` | {r['total_steps']} | "
        f"{r['train_minutes']:.1f} | " + " → ".join(
            f"{p['accuracy']:.3f} ± {p['std']:.3f}" for p in c) +
        f" | {100 * (c[-1]['accuracy'] - best_base[1][0]):+.1f} |")
  for name, (acc, std) in baselines.items():
    lines.append(f"| {NAMES[name]} | | | {acc:.3f} ± {std:.3f} | |")
  if args.bar:
    lines += ["", f"| recipe | final − random init (points) | last segment "
              f"(points/min) | reaches +{args.bar:g} at (train min) |",
              "|---|---|---|---|"]
    for r in records:
      c = r["crossing"]
      lines.append(
          f"| `{r['recipe']}` | {c['gain']:+.1f} | {c['rate']:+.2f} | " + (
              "never at this rate" if c["minutes"] is None else
              f"{c['minutes']:.1f}" +
              ("" if c["measured"] else " (extrapolated)")) + " |")
  table = "\n".join(lines)
  with open(os.path.join(args.out, "results.json"), "w") as f:
    json.dump({"args": vars(args), "data": data_dir, "records": records,
               "baselines": baselines, "wall_seconds": wall_s,
               "command": command}, f, indent=1)
  with open(os.path.join(args.out, "report.md"), "w") as f:
    f.write("\n".join([
        "# Quality recipes against handcrafted features", "",
        f"{common.provenance(wall_s)} Data: `{data_dir}`.", "",
        "```bash", command, "```", "", table, "",
        "![curve](curve.png)", ""]))
  print(table)
  learned = max((r["curve"][-1]["accuracy"], r["recipe"]) for r in records)
  print(f"best learned ({learned[1]}, final) {learned[0]:.3f} minus best "
        f"handcrafted ({NAMES[best_base[0]]}) {best_base[1][0]:.3f}: "
        f"{100 * (learned[0] - best_base[1][0]):+.1f} points")


if __name__ == "__main__":
  main()
