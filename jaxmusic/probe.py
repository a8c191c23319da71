r"""Probes exported embeddings and reports them beside the baselines.

  python -m jaxmusic.probe --embeddings EMB --task multiclass          # genre
  python -m jaxmusic.probe --embeddings EMB --folds 10   # 10-fold, mean ± std
  python -m jaxmusic.probe --embeddings EMB --task multilabel          # tags
  python -m jaxmusic.probe --embeddings EMB --task regression --target tempo
  python -m jaxmusic.probe --embeddings EMB --task retrieval --target artist
  python -m jaxmusic.probe --embeddings EMB_A --pair EMB_B --task crossmodal
  python -m jaxmusic.probe --task sheets --run RUN --data PREPARED
  python -m jaxmusic.probe --task zeroshot --run RUN [--data PREPARED]

EMB is `python -m jaxmusic.export`'s output. Every representation in it
(the encoder, random init, MFCC, log-mel statistics, log-mel PCA) is probed
the same way: fit on train, hyperparameters chosen on valid, reported on
test, with chunk predictions averaged per track (`--level chunk`, as CLMR
and MARBLE score) or probes fitted on track means (`--level track`). Where
export wrote per-layer arrays, each layer is probed too, and so is a
learned weighted sum of layers. `crossmodal` takes the exports of a
two-tower run's two towers (`export --tower`) and ranks each test track's
embedding in one against every test track's in the other, both ways, for
the trained towers and their random init. `--folds K` replaces the
splits with stratified group K-fold cross-validation over all tracks
(tracks never straddle folds; each fold is test once, the next one valid)
and reports mean ± std, for collections too small for one test split to
tell representations apart (per-layer arrays: a linear probe per layer
on the same folds); `--folds fold` takes the collection's own folds
from its `fold` label instead (DCASE 2018 task 5's, macro F1 over them).
`--protocol marble` probes as MARBLE does instead: one MLP (512 units,
dropout 0.2) on the softmax-weighted sum of layers, its learning rate
chosen on valid from MARBLE's grid, early-stopped on valid. A key
vocabulary (GiantSteps) adds the MIREX-weighted key score. Writes
`results.json` and `results.md` (to `--out`, default EMB), and with
`--plot` PCA and t-SNE scatter plots. `sheets` runs the audio <-> sheet
tasks (snippet retrieval, piece identification, score alignment beside
chroma-DTW; eval/sheets.py) on an audio+sheet two-tower run and its
prepared score collection, writing `sheets.json` (to `--out`, default
RUN). `zeroshot` queries an audio+tags run's towers with the tags held out
of its training, beside its seen tags, a supervised tagger and random
init (eval/zeroshot.py; P@10, MRR, AP, ROC-AUC), on its collection (the
run's, or `--data`), writing `zeroshot.json`.
"""

import logging

from absl import app
from absl import flags

from jaxmusic.eval import probes
from jaxmusic.eval import report as report_lib
from jaxmusic.eval import sheets
from jaxmusic.eval import zeroshot

FLAGS = flags.FLAGS


def _define_flags():
  """CLI flags, defined only when run as a program: export and probe are
  also imported side by side (tests, notebooks)."""
  flags.DEFINE_string("embeddings", None, "An export directory.")
  flags.DEFINE_enum("task", "multiclass", probes.TASKS + ("sheets", "zeroshot"),
                    "Probe task.")
  flags.DEFINE_string(
      "target", None, "label or artist (multiclass, retrieval), tags "
      "(multilabel), or a numeric track value (regression). Default: label, "
      "tags, or the first value.")
  flags.DEFINE_enum("level", "chunk", ["chunk", "track"],
                    "Fit on chunks (scores averaged per track) or on track "
                    "means.")
  flags.DEFINE_list("probes", ["linear", "mlp"], "linear and/or mlp.")
  flags.DEFINE_integer("k", 10, "Cut-off of retrieval's nDCG and precision.")
  flags.DEFINE_string("out", "", "Report directory (default: EMB).")
  flags.DEFINE_bool("plot", False, "Write PCA and t-SNE PNGs.")
  flags.DEFINE_integer("seed", 0, "Probe seed.")
  flags.DEFINE_string(
      "folds", "0", "K >= 3: stratified group K-fold over all tracks (10 is "
      "how GTZAN results are usually reported), mean ± std, instead of the "
      "train/valid/test splits; or a track label giving the collection's "
      "own folds (`fold`: DCASE 2018 task 5's four).")
  flags.DEFINE_enum("protocol", "default", report_lib.PROTOCOLS,
                    "default: the linear and MLP grids of --probes; marble: "
                    "MARBLE's MLP probe (512 units, dropout 0.2, Adam over "
                    "its learning-rate grid, ReduceLROnPlateau and early "
                    "stopping on valid, the weighted sum of layers).")
  flags.DEFINE_string("pair", None, "crossmodal: the other tower's export "
                      "directory.")
  flags.DEFINE_string("run", None, "sheets, zeroshot: the two-tower run's "
                      "workdir (audio+sheet, audio+tags).")
  flags.DEFINE_string("data", None, "sheets: its prepared score collection; "
                      "zeroshot: its collection (default: the run's).")


def main(argv):
  del argv
  logging.getLogger().setLevel(logging.INFO)
  try:
    if FLAGS.task == "sheets":
      if not FLAGS.run or not FLAGS.data:
        raise ValueError("--task sheets needs --run and --data")
      print(sheets.markdown(sheets.run(FLAGS.run, FLAGS.data,
                                       out=FLAGS.out)))
      return
    if FLAGS.task == "zeroshot":
      if not FLAGS.run:
        raise ValueError("--task zeroshot needs --run")
      print(zeroshot.markdown(zeroshot.run(FLAGS.run, FLAGS.data,
                                           out=FLAGS.out)))
      return
    if not FLAGS.embeddings:
      raise ValueError("--embeddings is required")
    if FLAGS.task == "crossmodal":
      if not FLAGS.pair:
        raise ValueError("--task crossmodal needs --pair, the other tower's "
                         "export")
      report = report_lib.run_crossmodal(FLAGS.embeddings, FLAGS.pair,
                                         k=FLAGS.k, out=FLAGS.out)
    else:
      report = report_lib.run(
          FLAGS.embeddings, task=FLAGS.task, target=FLAGS.target,
          level=FLAGS.level, kinds=tuple(FLAGS.probes), k=FLAGS.k,
          out=FLAGS.out, make_plots=FLAGS.plot, seed=FLAGS.seed,
          folds=int(FLAGS.folds) if FLAGS.folds.isdigit() else FLAGS.folds,
          protocol=FLAGS.protocol)
  except (ValueError, FileNotFoundError) as e:
    raise SystemExit(f"error: {e}") from None
  print(report_lib.markdown(report))


if __name__ == "__main__":
  _define_flags()
  app.run(main)
