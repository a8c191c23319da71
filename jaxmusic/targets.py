r"""Frame targets for masked prediction (HuBERT/MERT), stored beside a
prepared collection and named in its manifest.

  # Iteration 1: k-means (K=100) on 39-d MFCC of 10% of the train frames,
  # as fairseq's HuBERT (mfcc_k100), or z-scored first (mfcc_z_k100: raw,
  # c0, the loudness, spreads widest and decides the clusters).
  python -m jaxmusic.targets --data ~/prepared/gtzan --feature mfcc --k 100
  python -m jaxmusic.targets --data ~/prepared/gtzan --feature mfcc --k 100 \
      --standardize
  # MIDI-only collections: k-means on the piano roll's transposition-
  # invariant frames (roll_texture), its key-relative pitch classes
  # (roll_key_chroma), or on the roll itself (pianoroll, roll_chroma).
  python -m jaxmusic.targets --data ~/prepared/maestro --feature roll_texture
  # Iteration 2: k-means (K=500) on layer 6 of a trained run.
  python -m jaxmusic.targets --data ~/prepared/gtzan --from-run ~/runs/it1 \
      --layer 6 --k 500 --name it2_l6_k500
  # Codes made elsewhere (e.g. EnCodec, 8 x 1024 at 75 Hz): TRACK_ID.npy.
  python -m jaxmusic.targets --data ~/prepared/gtzan --import-npy codes/ \
      --k 1024 --rate 75 --name encodec
  # Iteration 1's assignment pass on Apache Beam (`jaxmusic[beam]`): the
  # DirectRunner with 2 processes, or any runner's options after `--`
  # (workers must mount the prepared directory).
  python -m jaxmusic.targets --data ~/prepared/gtzan --runner beam -- \
      --runner=FlinkRunner --flink_master=HOST:8081

Train on them with `--config.data.targets=NAME` (the configs `hubert.py`
and `mert.py`). Re-running resumes; the last line reports cluster usage.
"""

import logging
import sys

from absl import app
from absl import flags

from jaxmusic.data import pipeline
from jaxmusic.data import targets
from jaxmusic.eval import frozen
from jaxmusic.eval import layer_targets

_DATA = flags.DEFINE_string("data", None, "Prepared directory.",
                            required=True)
_NAME = flags.DEFINE_string(
    "name", None, "Target set name (default FEATURE_kK, e.g. mfcc_k100, "
    "or layerL_kK with --from-run; FEATURE_z_kK, layerL_z_kK with "
    "--standardize).")
_FEATURE = flags.DEFINE_enum("feature", "mfcc", targets.SOURCES,
                             "Feature to cluster (iteration 1).")
_K = flags.DEFINE_integer("k", 100, "Clusters.")
_FRACTION = flags.DEFINE_float("fit_fraction", 0.1,
                               "Fraction of train frames the fit samples.")
_MAX_FIT = flags.DEFINE_integer(
    "max_fit_frames", 1_000_000,
    "Reservoir size: the most frames the fit holds in memory.")
_SEED = flags.DEFINE_integer("seed", 0, "Sampling and k-means seed.")
_STANDARDIZE = flags.DEFINE_bool(
    "standardize", False, "z-score each dimension over the fit's sample "
    "before k-means (default name FEATURE_z_kK or layerL_z_kK).")
_FROM_RUN = flags.DEFINE_string(
    "from_run", None, "Run directory: cluster its layer-L frames instead.")
_LAYER = flags.DEFINE_integer(
    "layer", 6, "With --from-run: the layer, as export --layers all counts "
    "them (transformer: 0 the input embedding, L the L-th layer's output).")
_STEP = flags.DEFINE_integer("step", None, "With --from-run: checkpoint.")
_IMPORT = flags.DEFINE_string(
    "import_npy", None, "Directory of TRACK_ID.npy codes (C x M) to import.")
_RUNNER = flags.DEFINE_enum(
    "runner", "local", ["local", "beam"],
    "Where iteration 1's assignment pass runs (the fit stays here).")
_WORKERS = flags.DEFINE_integer(
    "workers", 2, "--runner=beam without options: DirectRunner processes.")
_RATE = flags.DEFINE_float("rate", None, "With --import-npy: code rate (Hz); "
                           "default the data's frame rate.")


def main(argv):
  beam_args = argv[1:]
  if beam_args and _RUNNER.value != "beam":
    sys.exit(f"error: unexpected arguments {beam_args} (Beam options after "
             "-- need --runner=beam)")
  if _RUNNER.value == "beam" and (_IMPORT.value or _FROM_RUN.value):
    sys.exit("error: --runner=beam runs iteration 1 (k-means on a feature); "
             "--from-run and --import-npy run here")
  data = pipeline.PreparedData(_DATA.value)
  spec = targets.KMeansSpec(k=_K.value, fit_fraction=_FRACTION.value,
                            max_fit_frames=_MAX_FIT.value, seed=_SEED.value,
                            standardize=_STANDARDIZE.value)
  if _IMPORT.value:
    name = _NAME.value or "imported"
    entry = targets.import_targets(data, name, _IMPORT.value, _K.value,
                                   _RATE.value)
  elif _FROM_RUN.value:
    name = _NAME.value or targets.default_name(
        f"layer{_LAYER.value}", _K.value, _STANDARDIZE.value)
    entry = layer_targets.run_targets(data, name,
                                frozen.load(_FROM_RUN.value, _STEP.value),
                                _LAYER.value, spec)
  else:
    name = _NAME.value or targets.default_name(_FEATURE.value, _K.value,
                                                _STANDARDIZE.value)
    entry = targets.acoustic_targets(
        data, name, _FEATURE.value, spec, runner=_RUNNER.value,
        workers=_WORKERS.value, beam_args=tuple(beam_args))
  print(targets.usage_line(name, entry))


def underscored(arg: str) -> str:
  """`--from-run=x-y` -> `--from_run=x-y`: the docs spell flags with
  hyphens; absl's names use underscores."""
  if not arg.startswith("--"):
    return arg
  key, eq, value = arg[2:].partition("=")
  return "--" + key.replace("-", "_") + eq + value


def run():
  logging.basicConfig(level=logging.INFO)
  app.run(main, argv=[underscored(a) for a in sys.argv])


if __name__ == "__main__":
  run()
