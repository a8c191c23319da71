r"""Prepares a collection into ArrayRecord features.

  python -m jaxmusic.prepare --source gtzan --input ~/data/gtzan \
      --output ~/prepared/gtzan --features waveform,logmel --workers 8

Sources: gtzan|folder_labels, csv, magnatagatune|mtat, maestro, folder,
abc (ABC tune books: a track a tune), score (MusicXML, **kern, MEI),
synthetic (the embedded generated corpus; --input is then unused).

  python -m jaxmusic.prepare --source abc --input ~/data/folk_tunes \
      --output ~/prepared/folk_tunes --features tokens,pianoroll \
      --segment_seconds 8 --workers 8

On Apache Beam (`pip install 'jaxmusic[beam]'`): the per-track work runs as
a Beam pipeline; arguments after `--` are Beam's pipeline options (default:
the DirectRunner with --workers processes). The output is byte-identical to
the local runner's.

  python -m jaxmusic.prepare --source csv --input meta.csv \
      --output /shared/prepared --runner beam -- \
      --runner=FlinkRunner --flink_master=host:8081
"""

import logging
import sys

from absl import app
from absl import flags

from jaxmusic.data import build
from jaxmusic.data import features
from jaxmusic.data import synthetic

_SOURCE = flags.DEFINE_string("source", "folder", "Layout of --input.")
_INPUT = flags.DEFINE_string("input", None, "Collection root or manifest.")
_OUTPUT = flags.DEFINE_string("output", None, "Prepared directory.",
                              required=True)
_FEATURES = flags.DEFINE_list(
    "features", ["waveform", "logmel"],
    f"Features to store: {','.join(features.ALL_FEATURES)}.")
_SR = flags.DEFINE_integer("sample_rate", 22050, "Target sample rate (Hz).")
_HOP = flags.DEFINE_integer("hop_length", 512, "Hop of all frame features.")
_N_MELS = flags.DEFINE_integer("n_mels", 128, "Mel bands.")
_N_FFT = flags.DEFINE_integer(
    "n_fft", 2048, "STFT window of the frame features (400 at 16 kHz: "
    "fairseq's 25 ms MFCC frames).")
_SEGMENT = flags.DEFINE_float(
    "segment_seconds", None,
    "Segment length (s). Default: 10 s, or 3 s for --source=synthetic, whose "
    "tracks are 6 s long.")
_WAV_DTYPE = flags.DEFINE_string("waveform_dtype", "int16",
                                 "int16, float16 or float32.")
_WORKERS = flags.DEFINE_integer("workers", 1, "Parallel worker processes.")
_RUNNER = flags.DEFINE_enum("runner", "local", ["local", "beam"],
                            "Where the per-track work runs.")
_SPLITS = flags.DEFINE_list("split_fractions", ["0.8", "0.1", "0.1"],
                            "train,valid,test fractions without a split "
                            "column.")
_SOUNDFONTS = flags.DEFINE_list(
    "soundfonts", [], "General MIDI soundfonts that render MIDI-only tracks "
    "and scores with FluidSynth (Debian: fluid-soundfont-gm's "
    "/usr/share/sounds/sf2/FluidR3_GM.sf2, musescore-general-soundfont's "
    "/usr/share/sounds/sf3/MuseScore_General.sf3); the second and later are "
    "further renderings for the paired mode. Empty: synthetic timbres.")
_SHEET_HEIGHT = flags.DEFINE_integer("sheet_height", 180,
                                     "--features sheet: the strip's height "
                                     "(px).")
_SHEET_WIDTH = flags.DEFINE_integer("sheet_width", 200,
                                    "--features sheet: a snippet's width "
                                    "(px).")
# Per-source default segment lengths: the synthetic tracks are 6 s long, and
# 3 s is what the CLMR configs prepare them with.
DEFAULT_SEGMENT_SECONDS = {"synthetic": 3.0}

_NUM_TRACKS = flags.DEFINE_integer("synthetic_tracks", 320,
                                   "--source=synthetic: number of tracks.")


def main(argv):
  beam_args = argv[1:]
  if beam_args and _RUNNER.value != "beam":
    print(f"error: unexpected arguments {beam_args} (Beam options after -- "
          "need --runner=beam)", file=sys.stderr)
    sys.exit(2)
  logging.getLogger().setLevel(logging.INFO)
  cfg = features.FeatureConfig(sample_rate=_SR.value, hop_length=_HOP.value,
                               n_fft=_N_FFT.value, n_mels=_N_MELS.value,
                               waveform_dtype=_WAV_DTYPE.value,
                               soundfonts=tuple(_SOUNDFONTS.value),
                               sheet_height=_SHEET_HEIGHT.value,
                               sheet_width=_SHEET_WIDTH.value)
  source, path = _SOURCE.value, _INPUT.value
  segment = _SEGMENT.value or DEFAULT_SEGMENT_SECONDS.get(source, 10.0)
  try:
    if source == "synthetic":
      path = synthetic.generate(
          _OUTPUT.value + "-raw",
          synthetic.SyntheticConfig(num_tracks=_NUM_TRACKS.value,
                                    sample_rate=_SR.value))
      source = "csv"
    elif path is None:
      raise ValueError("--input is required for --source=" + source)
    manifest = build.prepare(
        source, path, _OUTPUT.value, features=tuple(_FEATURES.value),
        segment_seconds=segment, workers=_WORKERS.value, cfg=cfg,
        fractions=tuple(float(x) for x in _SPLITS.value),
        runner=_RUNNER.value, beam_args=tuple(beam_args))
  except (ValueError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
  print(build.summary(manifest))


if __name__ == "__main__":
  app.run(main)
