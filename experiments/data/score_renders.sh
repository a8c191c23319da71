#!/usr/bin/env bash
# A real audio <-> sheet-music development set: music21's corpus of scores
# (Bach's chorales first, then other composers' works), engraved by
# verovio and rendered from verovio's own MIDI by FluidSynth with two
# General MIDI soundfonts (the second is the "different samples"
# augmentation), prepared for `two_tower.py:towers=audio+sheet`:
#
#   bash experiments/data/score_renders.sh OUT [N] [WORKERS]
#   python -m jaxmusic.main \
#       --config ml_collections_configs/two_tower.py:towers=audio+sheet \
#       --config.data.dir OUT/prepared --workdir /tmp/audio_sheet
#   python -m jaxmusic.probe --task sheets --run /tmp/audio_sheet \
#       --data OUT/prepared
#
# OUT/scores holds copies of the corpus files (at most N, default 300:
# Bach's chorales, then Haydn, Mozart and Beethoven); OUT/prepared is
# `prepare --features waveform,sheet` of them, with every score that
# music21 or verovio cannot read listed in OUT/prepared/rejected.jsonl;
# OUT/matching is the same scores' MIDI and one rendering (waveform,
# pianoroll, multitrack) for experiments/midi_audio_matching.py.
# Needs fluidsynth, fluid-soundfont-gm and musescore-general-soundfont
# (apt-get install fluidsynth fluid-soundfont-gm
# musescore-general-soundfont). Re-running skips what is already done.
# The tests never run it.
set -euo pipefail
OUT="${1:?usage: $0 OUT [N] [WORKERS]}"
N="${2:-300}"
WORKERS="${3:-$(nproc)}"
SF_A="${SF_A:-/usr/share/sounds/sf2/FluidR3_GM.sf2}"
SF_B="${SF_B:-/usr/share/sounds/sf3/MuseScore_General.sf3}"
command -v fluidsynth >/dev/null || {
  echo "$0: needs fluidsynth (apt-get install fluidsynth)" >&2; exit 2; }
for sf in "$SF_A" "$SF_B"; do
  [[ -f "$sf" ]] || {
    echo "$0: no soundfont at $sf (apt-get install fluid-soundfont-gm musescore-general-soundfont, or set SF_A / SF_B)" >&2
    exit 2; }
done
mkdir -p "$OUT/scores"

python - "$OUT/scores" "$N" <<'PY'
import os
import shutil
import sys

from music21 import corpus

out, n = sys.argv[1], int(sys.argv[2])
EXTS = (".mxl", ".xml", ".musicxml", ".krn")
picked = []
for composer in ("bach", "haydn", "mozart", "beethoven"):
  paths = sorted(str(p) for p in corpus.getComposer(composer)
                 if str(p).endswith(EXTS))
  picked += [(composer, p) for p in paths]
for composer, path in picked[:n]:
  os.makedirs(os.path.join(out, composer), exist_ok=True)
  dest = os.path.join(out, composer, os.path.basename(path))
  if not os.path.exists(dest):
    shutil.copyfile(path, dest)
print(f"{min(n, len(picked))} scores in {out}")
PY

python -m jaxmusic.prepare --source score --input "$OUT/scores" \
    --output "$OUT/prepared" --features waveform,sheet \
    --segment_seconds 5 --workers "$WORKERS" \
    --soundfonts "$SF_A,$SF_B"

# The same scores as MIDI and one rendering, for MIDI <-> audio matching
# (experiments/midi_audio_matching.py).
python -m jaxmusic.prepare --source score --input "$OUT/scores" \
    --output "$OUT/matching" --features waveform,pianoroll,multitrack \
    --segment_seconds 5 --workers "$WORKERS" --soundfonts "$SF_A"
