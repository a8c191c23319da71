#!/usr/bin/env bash
# A real development set of folk dance tunes as their users keep them: the
# ABC tune books in music21's corpus (the Nottingham database's book,
# Ryan's Mammoth Collection and O'Neill's Music of Ireland, 1850), copied
# to OUT/<collection>/ untouched. The tests never run it.
#
#   bash experiments/data/folk_tunes.sh ~/data/folk_tunes
#   python -m jaxmusic.prepare --source abc --input ~/data/folk_tunes \
#       --output ~/prepared/folk_tunes --features tokens,pianoroll \
#       --segment_seconds 8 --workers 8
#
# experiments/README.md records what it holds: tunes per rhythm type.
set -euo pipefail
out=${1:?usage: folk_tunes.sh OUT}
corpus=$(python -c 'import os, music21; print(os.path.dirname(music21.corpus.__file__))')
for collection in nottingham-dataset ryansMammoth oneills1850; do
  mkdir -p "$out/$collection"
  cp "$corpus/$collection/"*.abc "$out/$collection/"
done
echo "$(find "$out" -name '*.abc' | wc -l) tune books, $(cat "$out"/*/*.abc | grep -c '^X:') tunes in $out"
