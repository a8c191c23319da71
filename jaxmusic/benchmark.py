r"""The benchmark tables papers report, in one command: every dataset of a
suite found under ROOT is prepared in its official layout and split
(cached), exported from RUN's encoder beside the baselines (cached), and
probed under the suite's protocol; one table, a row a representation.

  python -m jaxmusic.benchmark --suite marble --workdir RUN --data-root ROOT
  python -m jaxmusic.benchmark --suite dcase2018t5 --workdir RUN \
      --data-root ROOT --channel mean

Suites (a dataset is found at ROOT/FOLDER, under any of the folder names
listed; see docs/evaluation.md for each layout):

  marble       MTT tagging (ROC-AUC, AP), GTZAN genre on the fault-
               filtered split, GTZAN beat tracking (F-measure, on
               GTZAN-Rhythm's JAMS), GiantSteps key (MIREX-weighted), EMOMusic
               arousal and valence (R²), NSynth instrument and pitch,
               VocalSet technique and singer, MTG-Jamendo genre,
               instrument, mood/theme and top-50 tags (ROC-AUC, AP);
               probed with MARBLE's MLP protocol
  dcase2018t5  DCASE 2018 task 5 (domestic activities): macro F1, mean
               over its four official folds, with `--channel` first, mean
               or each (every microphone a track)

A dataset whose layout is broken is reported in one line and the others
carry on. Writes OUT/SUITE.md and OUT/SUITE.json (OUT: --out, default
RUN/benchmark).
"""

import argparse
import dataclasses
import json
import logging
import os
import sys

from jaxmusic.data import build
from jaxmusic.data import features as feats
from jaxmusic.eval import beats
from jaxmusic.eval import embeddings
from jaxmusic.eval import frozen
from jaxmusic.eval import report as report_lib


@dataclasses.dataclass(frozen=True)
class Task:
  """One column group of a suite's table."""
  name: str                 # the table's column prefix (MARBLE's name)
  source: str               # the layout's source name
  folders: tuple[str, ...]  # where under ROOT the dataset is looked for
  task: str                 # the probe task
  target: str | None        # the probe target (None: the task's default)
  metrics: tuple[tuple[str, str], ...]  # (metric, column suffix)
  segment_seconds: float = 10.0
  folds: str | int = 0


_TAGS = (("roc_auc", "ROC"), ("pr_auc", "AP"))
_ACC = (("accuracy", "Acc"),)
_MTG = ("MTG", "mtg-jamendo", "mtg_jamendo")

SUITES = {
    "marble": (
        Task("MTT", "magnatagatune", ("MTT", "magnatagatune", "mtat"),
             "multilabel", None, _TAGS),
        Task("GTZAN", "gtzan_filtered", ("GTZAN", "gtzan"), "multiclass",
             None, _ACC),
        # GTZAN-Rhythm's beats on the same clips: a frame-level probe
        # (jaxmusic.eval.beats) on the audio itself.
        Task("GTZANBT", "gtzan_filtered", ("GTZAN", "gtzan"), "beats", None,
             (("beat_f_measure", "F1^beat"),)),
        # MARBLE cuts GiantSteps into 30 s clips.
        Task("GS", "giantsteps_key", ("GS", "giantsteps"), "multiclass",
             None, (("mirex_key", "Acc^Refined"),), segment_seconds=30.0),
        Task("EMO arousal", "emomusic", ("EMO", "emomusic"), "regression",
             "arousal", (("r2", "R2"),)),
        Task("EMO valence", "emomusic", ("EMO", "emomusic"), "regression",
             "valence", (("r2", "R2"),)),
        # A note is 4 s.
        Task("NSynthI", "nsynth", ("NSynth", "nsynth"), "multiclass", None,
             _ACC, segment_seconds=4.0),
        Task("NSynthP", "nsynth", ("NSynth", "nsynth"), "multiclass",
             "pitch", _ACC, segment_seconds=4.0),
        # MARBLE's VocalSet chunks are 3 s.
        Task("VocalSetT", "vocalset_technique", ("VocalSet", "vocalset"),
             "multiclass", None, _ACC, segment_seconds=3.0),
        Task("VocalSetS", "vocalset_singer", ("VocalSet", "vocalset"),
             "multiclass", None, _ACC, segment_seconds=3.0),
        Task("MTGGenre", "mtg_jamendo_genre", _MTG, "multilabel", None,
             _TAGS),
        Task("MTGInstrument", "mtg_jamendo_instrument", _MTG, "multilabel",
             None, _TAGS),
        Task("MTGMood", "mtg_jamendo_moodtheme", _MTG, "multilabel", None,
             _TAGS),
        Task("MTGTop50", "mtg_jamendo_top50", _MTG, "multilabel", None,
             _TAGS),
    ),
    "dcase2018t5": (
        Task("DCASE2018T5", "dcase2018_task5",
             ("DCASE2018-task5-dev", "dcase2018_task5", "DCASE2018T5"),
             "multiclass", None, (("macro_f1", "F1"),), folds="fold"),
    ),
}
# The suite's probe protocol (`probe --protocol`).
PROTOCOLS = {"marble": "marble", "dcase2018t5": "default"}
CHANNELS = ("first", "mean", "each")


def _found(root: str, task: Task) -> str | None:
  for name in task.folders:
    path = os.path.join(root, name)
    if os.path.isdir(path):
      return path
  return None


def _source(task: Task, channel: str) -> str:
  if task.source.startswith("dcase") and channel != "first":
    return f"{task.source}_{channel}"
  return task.source


def _export(workdir, prepared, out, step, seed):
  """The export of `workdir`'s checkpoint `step` on `prepared`, reused
  when it is already there."""
  if not embeddings.is_current(out, step, workdir):
    embeddings.run(workdir, out, step=step, data_dir=prepared, layers="all",
                   seed=seed, progress=False)


def _task(task, root, encoder, workdir, out, protocol, channel,
          segment_seconds, workers, seed) -> dict:
  """{representation: {metric: value}} of one task on the data at
  `root`: prepared, exported and probed (beats: framed and fitted)."""
  if task.task == "beats":
    got = beats.run(encoder, root, seed=seed,
                    hidden=512 if protocol == "marble" else 0)
    return {rep: r["metrics"] for rep, r in got.items()}
  source = _source(task, channel)
  seconds = segment_seconds or task.segment_seconds
  tag = f"{source}-{seconds:g}s"
  prepared = os.path.join(out, "prepared", tag)
  emb = os.path.join(out, "embeddings", tag)
  logging.info("benchmark: %s from %s", task.name, root)
  build.prepare(source, root, prepared,
                features=tuple(dict.fromkeys((feats.WAVEFORM,
                                              encoder.feature))),
                segment_seconds=seconds, workers=workers,
                cfg=embeddings.feature_config(encoder), progress=False)
  _export(workdir, prepared, emb, encoder.step, seed)
  got = report_lib.run(
      emb, task=task.task, target=task.target, kinds=("linear",),
      out=os.path.join(out, "probes", task.name.replace(" ", "_")),
      seed=seed, folds=task.folds, protocol=protocol)
  return {r["representation"]: {m: r["metrics"].get(m)
                                for m, _ in task.metrics}
          for r in got["rows"] if _row_of_record(r, protocol)}


def run(suite: str, workdir: str, data_root: str, out: str = "",
        protocol: str | None = None, channel: str = "first",
        step: int | None = None, workers: int = 1, seed: int = 0,
        segment_seconds: float | None = None) -> dict:
  """Prepares, exports and probes every dataset of `suite` under
  `data_root`; returns the report (also written to OUT/SUITE.json and
  OUT/SUITE.md). `segment_seconds` replaces every task's own clip
  length."""
  if suite not in SUITES:
    raise ValueError(f"--suite={suite}: use {', '.join(SUITES)}")
  if channel not in CHANNELS:
    raise ValueError(f"--channel={channel}: use {', '.join(CHANNELS)}")
  if not os.path.isdir(data_root):
    raise FileNotFoundError(f"--data-root={data_root}: not a directory")
  protocol = protocol or PROTOCOLS[suite]
  out = out or os.path.join(workdir, "benchmark")
  encoder = frozen.load(workdir, step)
  results, errors, absent = {}, {}, []
  for task in SUITES[suite]:
    root = _found(data_root, task)
    if root is None or (task.task == "beats" and
                        not beats.annotations(root)):
      absent.append(task.name)
      continue
    try:
      results[task.name] = _task(task, root, encoder, workdir, out, protocol,
                                 channel, segment_seconds, workers, seed)
    except (ValueError, FileNotFoundError, OSError) as e:
      errors[task.name] = f"{root}: {e}"
      logging.error("benchmark: %s: %s", task.name, errors[task.name])
  report = {"suite": suite, "protocol": protocol, "channel": channel,
            "workdir": os.path.abspath(workdir), "step": encoder.step,
            "data_root": os.path.abspath(data_root), "results": results,
            "errors": errors, "absent": absent}
  os.makedirs(out, exist_ok=True)
  with open(os.path.join(out, f"{suite}.json"), "w") as f:
    json.dump(report, f, indent=2)
  with open(os.path.join(out, f"{suite}.md"), "w") as f:
    f.write(markdown(report))
  return report


def _row_of_record(row, protocol) -> bool:
  """The row a representation's cell is taken from: MARBLE's probe (on the
  weighted layers where there are layers), or the linear probe on the last
  layer."""
  if protocol == "marble":
    return row["probe"] == "marble_mlp"
  return row["probe"] == "linear" and row["layer"] == "last"


def markdown(report) -> str:
  tasks = [t for t in SUITES[report["suite"]] if t.name in report["results"]]
  cols = [(t, m, f"{t.name} {suffix}") for t in tasks
          for m, suffix in t.metrics]
  found = [r for t in tasks for r in report["results"][t.name]]
  reps = [r for r in report_lib.ORDER if r in found] + [
      r for r in dict.fromkeys(found) if r not in report_lib.ORDER]
  lines = [f"# {report['suite']}: step {report['step']} of "
           f"`{report['workdir']}`", "",
           f"Protocol `{report['protocol']}`; data `{report['data_root']}`"
           + (f"; channel `{report['channel']}`"
              if report["suite"] == "dcase2018t5" else "") + ".", ""]
  if cols:
    lines += ["| representation | " + " | ".join(c for _, _, c in cols)
              + " |", "|---|" + "---|" * len(cols)]
    for rep in reps:
      cells = []
      for t, m, _ in cols:
        v = report["results"][t.name].get(rep, {}).get(m)
        cells.append("" if v is None else f"{v:.4f}")
      lines.append(f"| {rep} | " + " | ".join(cells) + " |")
  else:
    lines.append("No dataset of the suite was scored.")
  if report["absent"]:
    lines += ["", "Not found under the data root: "
              + ", ".join(report["absent"]) + "."]
  for name, err in report["errors"].items():
    lines += ["", f"{name} failed: {err}"]
  return "\n".join(lines) + "\n"


def main(argv=None):
  p = argparse.ArgumentParser(
      prog="python -m jaxmusic.benchmark",
      description=__doc__.split("\n")[0])
  p.add_argument("--suite", default="marble", choices=list(SUITES))
  p.add_argument("--workdir", required=True, help="A training run's workdir.")
  p.add_argument("--data-root", "--data_root", dest="data_root",
                 required=True, help="Where the datasets are, each in its "
                 "own folder (see the suite's folder names).")
  p.add_argument("--out", default="", help="Report and cache directory "
                 "(default: WORKDIR/benchmark).")
  p.add_argument("--protocol", choices=list(report_lib.PROTOCOLS),
                 help="Override the suite's probe protocol.")
  p.add_argument("--channel", default="first", choices=list(CHANNELS),
                 help="DCASE's microphones: the first, their mean, or each "
                 "as a track.")
  p.add_argument("--step", type=int, help="Checkpoint step (default: the "
                 "last).")
  p.add_argument("--workers", type=int, default=1,
                 help="prepare's worker processes.")
  p.add_argument("--seed", type=int, default=0,
                 help="Probe and random-init seed.")
  p.add_argument("--segment-seconds", "--segment_seconds", type=float,
                 dest="segment_seconds", help="One clip length for every "
                 "task instead of each task's own (MARBLE's).")
  args = p.parse_args(argv)
  logging.basicConfig(level=logging.INFO)
  try:
    report = run(args.suite, args.workdir, args.data_root, out=args.out,
                 protocol=args.protocol, channel=args.channel,
                 step=args.step, workers=args.workers, seed=args.seed,
                 segment_seconds=args.segment_seconds)
  except (ValueError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
  print(markdown(report))


if __name__ == "__main__":
  main()
