"""What `representation.py` and `objectives.py` share: train one arm of a
comparison per seed, export and probe it beside the baselines, and write
the table (mean ± std over seeds), the convergence and clustering figures
and `report.md`.

An arm is a config (`NAME.py:ARG`) plus overrides; every arm of one
comparison gets the same steps, seeds, data and transformer overrides.
Runs and embeddings go to `--workdir` (large, not committed); the report
goes to `--out`.
"""

import argparse
import dataclasses
import datetime
import json
import logging
import os
import platform
import shlex
import shutil
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# pylint: disable=g-import-not-at-top,wrong-import-position
from jaxmusic import config as config_lib
from jaxmusic.eval import embeddings
from jaxmusic import models
from jaxmusic.eval import report as report_lib
from jaxmusic import train
from jaxmusic.data import corpus
from jaxmusic.data import records
from jaxmusic.data import synthetic
# pylint: enable=g-import-not-at-top,wrong-import-position

BASELINES = ("random_init", "mfcc", "logmel_stats", "logmel_pca")
BASELINE_NAMES = {"random_init": "random init", "mfcc": "MFCC mean+std",
                  "logmel_stats": "log-mel mean+std",
                  "logmel_pca": "log-mel PCA"}
METRICS = (("accuracy", "probe acc."), ("macro_f1", "macro-F1"),
           ("knn_accuracy", "kNN acc."), ("mrr", "retrieval MRR"),
           ("roc_auc", "tag ROC-AUC"))


@dataclasses.dataclass(frozen=True)
class Arm:
  """One row of a comparison: `name`, trained from `config` (`NAME.py`'s
  name) with `arg`, then `overrides` (dotted keys)."""
  name: str
  config: str
  arg: str
  overrides: tuple = ()

  def spec(self) -> str:
    return f"ml_collections_configs/{self.config}.py:{self.arg}"


def command_line() -> str:
  """How this script was run, as `python -m experiments.NAME ...`."""
  main = sys.modules["__main__"]
  name = getattr(getattr(main, "__spec__", None), "name", None)
  script = f"-m {name}" if name else shlex.quote(sys.argv[0])
  return " ".join(["python", script, *map(shlex.quote, sys.argv[1:])])


def parser(description: str, default_out: str) -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(description=description)
  p.add_argument("--data", default="", help="A prepared directory (default: "
                 "the embedded synthetic corpus, prepared on first use).")
  p.add_argument("--size", default="tiny", choices=("tiny", "base"),
                 help="The transformer's size (base is for accelerators).")
  p.add_argument("--seeds", type=int, default=3)
  p.add_argument("--steps", type=int, default=300, help="Every arm's "
                 "steps; 0 keeps each recipe's own.")
  p.add_argument("--out", default=default_out, help="Report directory.")
  p.add_argument("--workdir", default="/tmp/jaxmusic_experiments",
                 help="Runs and embeddings (large; not committed).")
  p.add_argument("--smoke", action="store_true", help="A few steps of a "
                 "small transformer, one seed: checks the whole script.")
  p.add_argument("--tasks", default="multiclass,retrieval,multilabel",
                 help="Probe tasks (multilabel where the data has tags).")
  p.add_argument("--folds", type=int, default=0, help="K >= 3: the genre "
                 "probes use stratified group K-fold over all tracks "
                 "(`probe --folds`) instead of the fixed test split.")
  return p


def add_arms_flag(p: argparse.ArgumentParser):
  p.add_argument("--arms", default="", help="Comma-separated arm names "
                 "(default: all).")


def target_sets(arms) -> tuple[str, ...]:
  """The k-means target sets the arms' configs read, so the data is
  prepared with what the recipes name, not a list kept beside them."""
  return tuple(sorted({t for arm in arms
                       for t in _overridden(config_lib.load_config(
                           arm.config, arm.arg), arm.overrides)
                       .data.get("targets", ())}))


def _overridden(config, overrides):
  """`config` with an arm's `(dotted key, value)` overrides set."""
  for key, value in overrides:
    node = config
    *parents, last = key.split(".")
    for part in parents:
      node = node[part]
    node[last] = value
  return config


def prepared_data(data: str, features, target_sets) -> str:
  """`data` (its default-named k-means targets made if missing), or the
  embedded corpus prepared with every feature and target set the arms
  read, so every arm reads the same tracks and splits."""
  if data:
    corpus.ensure_targets(data, target_sets)
    return data
  return corpus.ensure_prepared(synthetic.SyntheticConfig(), features, 3.0,
                                workers=2, target_sets=target_sets)


def set_steps(config, steps: int) -> None:
  """`config` trained for `steps` instead of its recipe's own: its warm-up
  shortened to at most a tenth of them, so a short budget still decays
  (0 under 10 steps, where the optimizer's warm-up must stay below
  `total_steps`)."""
  config.total_steps = steps
  if "warmup_steps" in config.optimizer:
    config.optimizer.warmup_steps = min(config.optimizer.warmup_steps,
                                        steps // 10)


def make_config(arm: Arm, args, seed: int, data_dir: str):
  config = config_lib.load_config(arm.config, arm.arg)
  config.seed = seed
  config.data.dir = data_dir
  # `--steps 0` keeps each recipe's own steps and schedule (the runlocals
  # as a user runs them); otherwise every arm gets the same budget.
  steps = args.steps or config.total_steps
  if args.steps:
    set_steps(config, args.steps)
  config.log_every = max(1, steps // 30)
  config.checkpoint.every = max(1, steps // 4)
  config.checkpoint.keep = 1
  config.monitor.every = max(1, steps // 4)
  # The arm's own overrides come last: an arm may change its steps too.
  _overridden(config, arm.overrides)
  if args.smoke:
    config.checkpoint.every = steps
    config.monitor.every = max(1, steps // 2)
    config.batch_size = 8
    config.monitor.batch_size = 16
    towers = models.tower_names(config.model)
    for model in [config.model[t] for t in towers] or [config.model]:
      if model.name != "transformer":
        continue  # the CNNs' runlocal sizes are small already
      config.data.crop_samples = 32 * 512
      model.update(width=32, heads=2, ffn=64, layers=2)
      if model.get("positions", "conv") == "conv":
        model.update(conv_pos_kernel=8, conv_pos_groups=4)
      if model.frontend.name != "waveform":
        model.frontend.dim = 32
  return config


def _curve(workdir):
  """(steps, losses), (steps, kNN accuracies) from a run's metrics."""
  loss, knn = {}, {}
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    for line in f:
      row = json.loads(line)
      if "loss" in row:
        loss[row["step"]] = row["loss"]
      if "knn_accuracy" in row:
        knn[row["step"]] = row["knn_accuracy"]
  return sorted(loss.items()), sorted(knn.items())


def _probe_metrics(emb, tasks, folds=0):
  """{representation: {metric: value}}: the linear probe's accuracy and
  macro-F1 with the kNN accuracy, retrieval MRR and tag ROC-AUC where the
  data has them. With `folds`, the class and tag probes are K-fold and
  each metric's spread over folds is kept as `NAME_std`."""
  out = {}
  for task, target in tasks:
    report = report_lib.run(emb, task=task, target=target, kinds=("linear",),
                            out=os.path.join(emb, f"probe_{task}"),
                            folds=folds if task != "retrieval" else 0)
    for row in report["rows"]:
      if row["layer"] != "last":
        continue
      m = out.setdefault(row["representation"], {})
      for key, _ in METRICS:
        if key in row["metrics"] and (key != "knn_accuracy" or
                                      task == "multiclass"):
          m[key] = row["metrics"][key]
          if key + "_std" in row["metrics"]:
            m[key + "_std"] = row["metrics"][key + "_std"]
  return out


def clear_if_other_config(workdir: str, config) -> None:
  """Removes `workdir` when a run with another config trained there:
  training resumes whatever checkpoint it finds, so a changed arm would
  otherwise continue (or, finished, keep) the old run under the new name.
  A run cut short under the same config is kept, to resume."""
  path = os.path.join(workdir, config_lib.RUN_CONFIG)
  if not os.path.exists(path):
    return
  with open(path) as f:
    old = json.load(f)
  if old != json.loads(config.to_json_best_effort()):
    logging.info("experiment: %s trained under another config; cleared",
                 workdir)
    shutil.rmtree(workdir)


def train_arm(arm: Arm, args, seed: int, data_dir: str) -> str:
  """Trains one arm at one seed (a finished run resumes at once) without
  the kNN monitor, for comparisons whose own probes measure the same;
  returns its workdir."""
  workdir = os.path.join(args.workdir, f"{arm.name}-s{seed}")
  config = make_config(arm, args, seed, data_dir)
  config.monitor.every = 0
  clear_if_other_config(workdir, config)
  t0 = time.time()
  train.train_and_evaluate(config, workdir)
  logging.info("experiment: %s seed %d trained in %.0f s", arm.name, seed,
               time.time() - t0)
  return workdir


def export(workdir: str, data_dir: str, seed: int, tower=None,
           baselines=()) -> str:
  """`WORKDIR/embeddings_TOWER`: the run's last checkpoint's `tower` (the
  first by default) exported beside `baselines`. An export of the same
  step that holds them is reused, so a rerun resumes."""
  out = os.path.join(workdir, f"embeddings_{tower or 'first'}")
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    last = max(json.loads(line).get("step", 0) for line in f)
  if embeddings.is_current(out, last, representations=baselines):
    return out
  embeddings.run(workdir, out, data_dir=data_dir, tower=tower,
                 baseline_names=list(baselines), seed=seed, progress=False)
  return out


def run_arm(arm: Arm, args, seed: int, data_dir: str, with_audio: bool):
  """Trains, exports and probes one arm at one seed; returns its record,
  kept as `WORKDIR/record.json`: a rerun with the same config, probes and
  baselines reads it instead of probing again (arms can be added to a
  comparison without redoing the others)."""
  workdir = os.path.join(args.workdir, f"{arm.name}-s{seed}")
  config = make_config(arm, args, seed, data_dir)
  key = {"config": config.to_json_best_effort(sort_keys=True),
         "folds": args.folds, "tasks": args.tasks, "with_audio": with_audio}
  cached = os.path.join(workdir, "record.json")
  trained_s = None
  if os.path.exists(cached):
    with open(cached) as f:
      record = json.load(f)
    old_key = record.pop("key", None)
    if old_key == key:
      logging.info("experiment: %s, seed %d: reusing %s", arm.name, seed,
                   cached)
      return record
    if (old_key or {}).get("config") == key["config"]:
      # Only the probes or baselines differ: training below resumes the
      # finished run at once, and its time is the first run's.
      trained_s = record["train_seconds"]
  clear_if_other_config(workdir, config)
  t0 = time.time()
  train.train_and_evaluate(config, workdir)
  train_s = time.time() - t0 if trained_s is None else trained_s
  emb = os.path.join(workdir, "embeddings")
  # The handcrafted baselines do not depend on the arm or the seed: one
  # export computes them.
  names = [b for b in BASELINES if b == "random_init" or with_audio]
  embeddings.run(workdir, emb, data_dir=data_dir, baseline_names=names,
                 seed=seed, progress=False)
  manifest = records.load_manifest(data_dir)
  wanted = args.tasks.split(",")
  tasks = [(t, "label") for t in ("multiclass", "retrieval") if t in wanted]
  if manifest["vocab"].get("tags") and "multilabel" in wanted:
    tasks.append(("multilabel", "tags"))
  loss, knn = _curve(workdir)
  record = {"arm": arm.name, "seed": seed, "config": arm.spec(),
            "overrides": [list(o) for o in arm.overrides],
            "workdir": workdir, "embeddings": emb,
            "train_seconds": train_s, "loss": loss, "knn": knn,
            "metrics": _probe_metrics(emb, tasks, args.folds)}
  with open(cached, "w") as f:
    json.dump(dict(record, key=key), f)
  return record


def run_comparison(arms, args, data_dir: str, audio_arm: str):
  """Every arm at every seed; `audio_arm` is the arm whose export also
  computes the handcrafted baselines (at its first seed)."""
  seeds = [0] if args.smoke else list(range(args.seeds))
  runs = []
  for seed in seeds:
    for arm in arms:
      logging.info("experiment: %s, seed %d", arm.name, seed)
      runs.append(run_arm(arm, args, seed, data_dir,
                          with_audio=arm.name == audio_arm and
                          seed == seeds[0]))
  return runs


def _mean_std(metrics, key):
  """(mean, std, n) of `key` over runs' metric dicts: the spread over
  seeds, or over folds where one run was probed K-fold."""
  found = [m for m in metrics if m.get(key) is not None]
  if not found:
    return None
  values = [m[key] for m in found]
  if len(found) == 1 and key + "_std" in found[0]:
    return float(values[0]), float(found[0][key + "_std"]), 2
  return float(np.mean(values)), float(np.std(values)), len(values)


def table_rows(runs, arms):
  """[(row name, {metric: (mean, std, n)})]: each arm trained and at its
  random init, then the handcrafted baselines."""
  rows = []
  for arm in arms:
    mine = [r for r in runs if r["arm"] == arm.name]
    for rep, label in (("encoder", arm.name),
                       ("random_init", f"{arm.name}, random init")):
      rows.append((label, {k: _mean_std([r["metrics"].get(rep, {})
                                         for r in mine], k)
                           for k, _ in METRICS}))
  for rep in BASELINES[1:]:
    found = [r["metrics"][rep] for r in runs if rep in r["metrics"]]
    if found:
      rows.append((BASELINE_NAMES[rep], {
          k: _mean_std(found, k) for k, _ in METRICS}))
  return rows


def markdown_table(rows) -> str:
  used = [(k, h) for k, h in METRICS
          if any(m.get(k) for _, m in rows)]
  lines = ["| representation | " + " | ".join(h for _, h in used) + " |",
           "|---|" + "---|" * len(used)]
  for name, m in rows:
    cells = []
    for k, _ in used:
      v = m.get(k)
      cells.append("" if v is None else
                   f"{v[0]:.3f} ± {v[1]:.3f}" if v[2] > 1 else f"{v[0]:.3f}")
    lines.append(f"| {name} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def plot_convergence(runs, arms, path):
  """Loss and kNN accuracy against steps, one line per arm (the mean over
  seeds)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, (ax_l, ax_k) = plt.subplots(1, 2, figsize=(11, 4))
  for arm in arms:
    mine = [r for r in runs if r["arm"] == arm.name]
    for ax, key in ((ax_l, "loss"), (ax_k, "knn")):
      # Losses relative to their first logged value: objectives' losses
      # have different scales.
      series = [{s: v / (abs(r[key][0][1]) or 1.0) if key == "loss" else v
                 for s, v in r[key]} for r in mine]
      steps = sorted({s for d in series for s in d})
      mean = [np.mean([d[s] for d in series if s in d]) for s in steps]
      ax.plot(steps, mean, marker="o" if key == "knn" else None,
              label=arm.name)
  ax_l.set(xlabel="step", ylabel="loss / first logged loss",
           title="training loss (mean over seeds)")
  ax_k.set(xlabel="step", ylabel="kNN genre accuracy (valid split)",
           title="kNN probe during training (mean over seeds)")
  ax_k.legend()
  fig.savefig(path, dpi=100, bbox_inches="tight")
  plt.close(fig)


def plot_clusters(runs, arms, path, seed=0):
  """PCA and t-SNE of the test, valid and train track embeddings of each
  arm's first seed (and the MFCC baseline), coloured by label."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  panels = []
  for arm in arms:
    first = next(r for r in runs if r["arm"] == arm.name)
    panels.append((arm.name, first["embeddings"], "encoder"))
  audio = next((r for r in runs if "mfcc" in r["metrics"]), None)
  if audio:
    panels.append(("MFCC mean+std", audio["embeddings"], "mfcc"))
  fig, axes = plt.subplots(2, len(panels), figsize=(3.2 * len(panels), 6.4),
                           squeeze=False)
  for j, (name, emb, rep) in enumerate(panels):
    xys, c = report_lib.projections(emb, rep, seed=seed)
    for i, (_, xy) in enumerate(xys):
      ax = axes[i, j]
      ax.scatter(xy[:, 0], xy[:, 1], c=c, cmap="tab10", s=8)
      ax.set_title(f"{name}: {'PCA' if i == 0 else 't-SNE'} (colour: "
                   "label)", fontsize=9)
      ax.set_xticks([])
      ax.set_yticks([])
  fig.savefig(path, dpi=100, bbox_inches="tight")
  plt.close(fig)


def machine() -> str:
  import jax  # pylint: disable=g-import-not-at-top
  cpu = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo") as f:
      cpu = next(line.split(":", 1)[1].strip() for line in f
                 if line.startswith("model name"))
  except (OSError, StopIteration):
    pass
  return (f"{cpu}, {os.cpu_count()} cores, jax {jax.__version__} on "
          f"{jax.default_backend()}")


def provenance(wall_s: float) -> str:
  """A report's line naming the machine, the date and the wall time."""
  return (f"Machine: {machine()}. Date: {datetime.date.today().isoformat()}. "
          f"Wall time: {wall_s / 60:.1f} min.")


def write_report(out, title, question, arms, runs, args, wall_s, notes=""):
  """`out/results.json`, the PNGs and `out/report.md`; returns the
  markdown table."""
  os.makedirs(out, exist_ok=True)
  rows = table_rows(runs, arms)
  table = markdown_table(rows)
  plot_convergence(runs, arms, os.path.join(out, "convergence.png"))
  plot_clusters(runs, arms, os.path.join(out, "clusters.png"))
  with open(os.path.join(out, "results.json"), "w") as f:
    json.dump({"args": vars(args), "runs": runs,
               "table": [[n, m] for n, m in rows]}, f, indent=1)
  seeds = sorted({r["seed"] for r in runs})
  configs = "\n".join(
      f"- `{a.name}`: `{a.spec()}`" + (
          ", then " + ", ".join(f"`{k}={v}`" for k, v in a.overrides)
          if a.overrides else "") for a in arms)
  train_s = {a.name: np.mean([r["train_seconds"] for r in runs
                              if r["arm"] == a.name]) for a in arms}
  lines = [
      f"# {title}", "", question, "",
      provenance(wall_s), "",
      "Command:", "", "```bash",
      command_line(), "```", "",
      "Every arm: " + (f"{args.steps} steps" if args.steps else
                       "its recipe's own steps and schedule") +
      f", seeds {seeds}, the same data "
      f"({args.data or 'the embedded synthetic corpus'}). " +
      ("Probes: linear on train, hyperparameters on valid, reported on "
       "test with chunk predictions averaged per track; kNN (k=5) and "
       "retrieval (cosine, MRR) on track means; mean ± std over seeds."
       if not args.folds else
       f"Probes: {args.folds}-fold stratified group cross-validation over "
       "all tracks (each fold test once, the next one valid for the "
       "hyperparameters; chunk predictions averaged per track); kNN (k=5) "
       "on track means; retrieval (cosine, MRR) on the test split. "
       + ("Mean ± std over seeds of the fold means." if len(seeds) > 1 else
          "Mean ± std over folds.")), "",
      "Configs:", "", configs, "",
      "## Results", "", table, "",
      "Training seconds per run: " + ", ".join(
          f"{n} {s:.0f}" for n, s in train_s.items()) + ".", "",
      "![convergence](convergence.png)", "",
      "![clusters](clusters.png)", ""]
  if notes:
    lines += ["## Reading", "", notes, ""]
  with open(os.path.join(out, "report.md"), "w") as f:
    f.write("\n".join(lines))
  return table


def run_and_report(arms, args, data_dir, title, question, t0,
                   audio_arm=None):
  """Every arm at every seed, then the report; prints the table and the
  report's path."""
  runs = run_comparison(arms, args, data_dir,
                        audio_arm=audio_arm or arms[0].name)
  table = write_report(args.out, title, question, arms, runs, args,
                       time.time() - t0)
  print(table)
  print(f"report: {os.path.join(args.out, 'report.md')}")
  return runs


def choose_arms(p: argparse.ArgumentParser, args, arms):
  """The arms `--arms` names (all by default; the first two with
  `--smoke`); an unknown name is a parser error listing the known ones."""
  if args.arms:
    wanted = args.arms.split(",")
    unknown = set(wanted) - {a.name for a in arms}
    if unknown:
      p.error(f"--arms: unknown {sorted(unknown)}; known: "
              f"{[a.name for a in arms]}")
    arms = [a for a in arms if a.name in wanted]
  return arms[:2] if args.smoke else arms
