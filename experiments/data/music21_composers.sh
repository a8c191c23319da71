#!/usr/bin/env bash
# A real composer-classification development set: music21's corpus of
# scores, rendered to audio with FluidSynth and a General MIDI soundfont
# from Debian's packages, one folder per composer (the GTZAN layout), each
# recording beside the MIDI it was rendered from:
#
#   bash experiments/data/music21_composers.sh OUT [piano|ensemble] [PER]
#   python -m jaxmusic.prepare --source gtzan --input OUT \
#       --output OUT_prepared --features waveform,pianoroll \
#       --segment_seconds 10 --workers 8
#
# Composers with at least 9 works in the corpus (the few music21 cannot
# parse are listed in OUT/skipped.tsv): Bach (chorales),
# Palestrina (masses), Monteverdi (madrigals), Haydn, Beethoven and Mozart
# (string quartets). At most PER works each (default 60; a fixed random
# pick, so every composer's share is bounded). Programs:
#   piano     every part on the acoustic grand (GM program 0)
#   ensemble  (default) a part keeps the instrument its score names
#             (violin, viola, cello in the quartets), and an unnamed part
#             (the chorales' and masses' voices) gets a string ensemble:
#             violin, violin, viola, cello by its place in the score
# OUT/programs.tsv says which program each part of each work got.
#
# Needs fluidsynth and fluid-soundfont-gm (apt-get install fluidsynth
# fluid-soundfont-gm) and music21 (a jaxmusic dependency). A work music21
# cannot parse or write, or one over 30 minutes (the corpus's
# whole-quartet scores, which FluidSynth renders for hours), is listed in
# OUT/skipped.tsv with the reason; the rest go on. Re-running skips what
# is already rendered. The tests never run it.
set -euo pipefail
OUT="${1:?usage: $0 OUT [piano|ensemble] [PER]}"
PROGRAMS="${2:-ensemble}"
PER="${3:-60}"
SF2="${SF2:-/usr/share/sounds/sf2/FluidR3_GM.sf2}"
case "$PROGRAMS" in piano|ensemble) ;; *)
  echo "$0: programs '$PROGRAMS': use piano or ensemble" >&2; exit 2 ;;
esac
command -v fluidsynth >/dev/null || {
  echo "$0: needs fluidsynth (apt-get install fluidsynth fluid-soundfont-gm)" >&2; exit 2; }
[[ -f "$SF2" ]] || {
  echo "$0: no soundfont at $SF2 (apt-get install fluid-soundfont-gm, or set SF2)" >&2; exit 2; }
mkdir -p "$OUT"

# Scores -> MIDI, one folder a composer.
python - "$OUT" "$PROGRAMS" "$PER" <<'EOF'
import multiprocessing
import os
import random
import sys

import mido
import music21
from music21 import corpus

from jaxmusic.data import decode

out, programs, per = sys.argv[1], sys.argv[2], int(sys.argv[3])
COMPOSERS = ("bach", "palestrina", "monteverdi", "haydn", "beethoven",
             "mozart")
SCORES = (".mxl", ".xml", ".musicxml", ".krn", ".mei")
# An unnamed part's program by its place: violin, violin, viola, cello.
STRINGS = (40, 40, 41, 42)
MAX_MINUTES = 30


def midi_path(composer, path):
  # The work's place in the corpus names it: the quartets' movements
  # share file names across opus numbers.
  rel = path.split(f"{os.sep}corpus{os.sep}{composer}{os.sep}", 1)[-1]
  stem = os.path.splitext(rel)[0].replace(os.sep, "_")
  return stem, os.path.join(out, composer, f"{stem}.mid")


def too_long(midi):
  """Why a work's MIDI is not rendered, or None: FluidSynth renders the
  corpus's whole-quartet files (all movements in one score) for hours."""
  minutes = mido.MidiFile(midi).length / 60
  if minutes > MAX_MINUTES:
    return f"{minutes:.0f} min long (over {MAX_MINUTES}): not rendered"
  return None


def write_midi(job):
  """(programs, None) once the work's MIDI is written, or (None, reason)."""
  composer, path = job
  try:
    score = corpus.parse(path)
    parts = list(score.parts) or [score]
    got = []
    for i, part in enumerate(parts):
      inst = part.getInstrument(returnDefault=False)
      named = inst is not None and inst.midiProgram is not None
      if programs == "piano":
        program = 0
      elif named:
        program = inst.midiProgram
      else:
        program = STRINGS[min(i, len(STRINGS) - 1)]
      new = music21.instrument.instrumentFromMidiProgram(program)
      for old in part.recurse().getElementsByClass("Instrument"):
        part.remove(old, recurse=True)
      part.insert(0, new)
      got.append(f"{program}{'' if named or programs == 'piano' else '*'}")
    midi = midi_path(composer, path)[1]
    score.write("midi", fp=midi)
    # FluidSynth never finishes rendering some of music21's MIDI files (its
    # fast render runs for hours); rewritten by pretty_midi, a note-on and
    # note-off pair a note and a channel a part, they render at their
    # length. decode.load_midi reads music21's 10,080 ticks a beat.
    decode.load_midi(midi).write(midi)
    long = too_long(midi)
    if long:
      os.remove(midi)
      return None, long
  except Exception as e:  # pylint: disable=broad-except
    reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else \
        type(e).__name__
    return None, reason
  return " ".join(got), None


# Line-buffered: an interrupted run keeps every line it wrote.
log = open(os.path.join(out, "programs.tsv"), "a", buffering=1)
# A work skipped once (unparsable, too long) is not parsed again.
try:
  with open(os.path.join(out, "skipped.tsv")) as f:
    done_skipping = {line.split("\t")[1] for line in f if "\t" in line}
except FileNotFoundError:
  done_skipping = set()
skipped = open(os.path.join(out, "skipped.tsv"), "a", buffering=1)
for composer in COMPOSERS:
  # A work the corpus holds in two formats (a movement as .krn and .mxl)
  # is one work: its first format in SCORES order.
  by_name = {}
  for p in sorted(corpus.getComposer(composer),
                  key=lambda p: (SCORES.index(p.suffix)
                                 if p.suffix in SCORES else 99, str(p))):
    if p.suffix in SCORES:
      rel = str(p).split(f"{os.sep}corpus{os.sep}{composer}{os.sep}", 1)[-1]
      by_name.setdefault(os.path.splitext(rel)[0], str(p))
  works = sorted(by_name.values())
  random.Random(composer).shuffle(works)
  os.makedirs(os.path.join(out, composer), exist_ok=True)
  works = [w for w in works if w not in done_skipping]
  todo = [w for w in works if not os.path.exists(midi_path(composer, w)[1])]
  kept, taken = 0, set()
  # music21 takes minutes over a quartet: one worker a core parses the
  # works in their shuffled order, taken until PER are kept; leaving the
  # pool stops the workers past PER, and their MIDI is removed.
  with multiprocessing.Pool(os.cpu_count() or 1) as pool:
    results = pool.imap(write_midi, [(composer, w) for w in todo])
    for work in works:
      if kept == per:
        break
      taken.add(work)
      if work not in todo:
        # A MIDI written by an earlier run is held to the same length.
        midi = midi_path(composer, work)[1]
        long = too_long(midi)
        if long:
          for path in (midi, midi[:-4] + ".wav"):
            if os.path.exists(path):
              os.remove(path)
          skipped.write(f"{composer}\t{work}\t{long}\n")
          continue
        kept += 1
        continue
      got, reason = next(results)
      if reason is not None:
        skipped.write(f"{composer}\t{work}\t{reason}\n")
        continue
      log.write(f"{composer}\t{midi_path(composer, work)[0]}\t{got}\n")
      kept += 1
  for work in set(todo) - taken:
    if os.path.exists(midi_path(composer, work)[1]):
      os.remove(midi_path(composer, work)[1])
  print(f"{composer}: {kept} works", flush=True)
EOF

# MIDI -> audio (22,050 Hz WAV), in parallel. FluidSynth renders a work in
# seconds; a render still running after RENDER_S seconds (a MIDI file it
# never finishes) is stopped, its WAV removed and the work listed in
# skipped.tsv, which reruns skip.
export SF2 OUT RENDER_S="${RENDER_S:-60}"
# shellcheck disable=SC2016  # the inner bash expands its own variables
find "$OUT" -name '*.mid' -print0 | sort -z | xargs -0 -P "$(nproc)" -I{} bash -c '
  wav="${1%.mid}.wav"
  [[ -s "$wav" ]] && exit 0
  grep -qF "$1" "$OUT/skipped.tsv" && exit 0
  timeout "$RENDER_S" fluidsynth -ni -q -g 0.6 -r 22050 -F "$wav" "$SF2" "$1" \
    >/dev/null 2>&1 && exit 0
  rc=$?
  rm -f "$wav"
  if [[ $rc == 124 ]]; then why="fluidsynth still rendering after $RENDER_S s"
  else why="fluidsynth failed (exit $rc)"; fi
  printf "%s\t%s\t%s\n" "$(basename "$(dirname "$1")")" "$1" "$why" \
    >> "$OUT/skipped.tsv"
  echo "$1: $why" >&2' _ {}
echo "$(find "$OUT" -name '*.wav' | wc -l) recordings in $OUT; programs in $OUT/programs.tsv (* = an unnamed part's string program); skipped works in $OUT/skipped.tsv"
