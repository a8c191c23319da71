r"""Checkpoint -> numpy embeddings, with baselines beside them.

  python -m jaxmusic.export --workdir RUN --out EMB          # train/valid/test
  python -m jaxmusic.export --workdir RUN --split test --step 300 --out EMB
  python -m jaxmusic.export --workdir RUN --out EMB --audio a.wav b.mp3 DIR
  python -m jaxmusic.export --workdir PIANOROLL_RUN --out EMB --midi DIR
  python -m jaxmusic.export --workdir TWO_TOWER_RUN --tower text --out EMB_T

Each split (or `audio` for `--audio`, `midi` for `--midi`) is cut into the
encoder's crops, in order, and every representation REP is written as

  EMB/SPLIT/REP/segment/embeddings.npy   N x D float32, one row per crop
  EMB/SPLIT/REP/segment/layers.npy       N x L x D per-layer (--layers all;
                                         narrower layers are zero-padded,
                                         export.json has their widths)
  EMB/SPLIT/REP/segment/{ids,track,segment,chunk,offset,label,artist,tags,
                         values}.npy     what each row is
  EMB/SPLIT/REP/track/...                the same, averaged over each track

REP is `encoder` (the run's checkpoint, loading only the encoder, so any
objective's run works; a two-tower run's first tower, or the one `--tower`
names, whose embeddings lie in the shared space that `probe --task
crossmodal` ranks) and the baselines: `random_init` (the same
architecture untrained), `mfcc` (mean+std), `logmel_stats` (mean+std per
band), `logmel_pca` (PCA of the log-mel crop, fitted on train) and, where
the collection has a piano roll, `roll_stats` (note density, onset rate,
pitch range and spread, the top voice's interval histogram over the same
seconds).
`EMB/export.json` records the run, step, pooling, vocabularies and widths.
"""

import logging

from absl import app
from absl import flags

from jaxmusic.eval import embeddings
from jaxmusic.eval import frozen

FLAGS = flags.FLAGS


def _define_flags():
  """CLI flags, defined only when run as a program: export and probe are
  also imported side by side (tests, notebooks)."""
  flags.DEFINE_string("workdir", None, "Run directory to export.")
  flags.DEFINE_integer("step", None,
                       "Checkpoint step (default: the newest readable one).")
  flags.DEFINE_string("data", "",
                      "Prepared directory (default: the run's own data).")
  flags.DEFINE_list("split", ["train", "valid", "test"], "Splits to export.")
  flags.DEFINE_multi_string(
      "audio", None, "Audio files or folders never prepared; further "
      "positional arguments are taken as more of them.")
  flags.DEFINE_multi_string(
      "midi", None, "MIDI files or folders never prepared, for piano-roll "
      "encoders; further positional arguments are taken as more of them.")
  flags.DEFINE_string("out", None, "Output directory.")
  flags.DEFINE_enum("pooling", "encoder", sorted(frozen.POOLINGS),
                    "`encoder`: the encoder's own pooled output (its "
                    "model.pooling and bottleneck); or a pooling of its "
                    "output frames.")
  flags.DEFINE_string("tower", None, "A two-tower run's tower to export "
                      "(default: the first).")
  flags.DEFINE_enum("layers", "last", ["last", "all"],
                    "`all` also writes N x L x D per-layer arrays.")
  flags.DEFINE_list("baselines", list(embeddings.DEFAULT_BASELINES),
                    "Baselines to write beside the encoder.")
  flags.DEFINE_integer("batch_size", 64, "Crops per jitted call.")
  flags.DEFINE_integer("seed", 0, "Seed of the random-init encoder.")


def main(argv):
  logging.getLogger().setLevel(logging.INFO)
  if FLAGS.audio and FLAGS.midi:
    raise app.UsageError("give --audio or --midi, not both")
  files = FLAGS.audio or FLAGS.midi
  if argv[1:] and not files:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  files = (files or []) + argv[1:]
  try:
    info = embeddings.run(
        FLAGS.workdir, FLAGS.out, step=FLAGS.step, data_dir=FLAGS.data,
        splits=tuple(FLAGS.split), audio=files if FLAGS.audio else None,
        pooling=FLAGS.pooling, layers=FLAGS.layers,
        baseline_names=tuple(FLAGS.baselines), batch_size=FLAGS.batch_size,
        seed=FLAGS.seed, midi=files if FLAGS.midi else None,
        tower=FLAGS.tower)
  except (ValueError, FileNotFoundError) as e:
    raise SystemExit(f"error: {e}") from None
  logging.info("exported step %d of %s to %s (%s)", info["step"],
               info["workdir"], FLAGS.out, ", ".join(info["representations"]))


if __name__ == "__main__":
  _define_flags()
  flags.mark_flags_as_required(["workdir", "out"])
  app.run(main)
