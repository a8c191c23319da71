#!/usr/bin/env bash
# A real development set from the music of Debian's free game-data packages,
# laid out as GTZAN folders (OUT/genres/LABEL/) with label = soundtrack:
#
#   experiments/data/debian_soundtracks.sh OUT
#   python -m jaxmusic.prepare --source gtzan --input OUT --output OUT_prepared
#
# Needs Debian or Ubuntu with apt lists (`apt-get update`), `apt-get` and
# `dpkg-deb`. Packages are downloaded (`apt-get download`) and unpacked
# into OUT/.debs, never installed, so no root is needed. About 1.6 GB is
# downloaded; the music kept is 0.75 GB. Tests never run this script.
#
# Sources (Debian 12 "bookworm", section main, so every file is under a
# DFSG-free licence; each package's copyright file is copied to
# OUT/LICENSES/PACKAGE.copyright, which names the licence per file):
#   label         package              music folder
#   supertux      supertux-data        usr/share/games/supertux2/music
#   naev          naev-data            usr/share/naev/dat/snd/music
#   wesnoth       wesnoth-1.16-music   usr/share/games/wesnoth/1.16/data/core/music
#   widelands     widelands-data       usr/share/games/widelands/data/music
#   warzone2100   warzone2100-music    usr/share/games/warzone2100/music
#   hedgewars     hedgewars-data       usr/share/games/hedgewars/Data/Music
#   colobot       colobot-common-sounds usr/share/games/colobot/music
#   freedroidrpg  freedroidrpg-data    usr/share/freedroidrpg/data/sound/music
# The licences differ per package and per file (GPL-2+, GPL-3+, CC-BY-3.0,
# CC-BY-SA-3.0, public domain and others); OUT/LICENSES/ holds each
# package's machine-readable copyright file, which names them per file.
# Check it before you redistribute anything.
#
# Measured on bookworm (2026-11-22): 8 labels, 251 tracks, 14.9 h (colobot
# 19, freedroidrpg 16, hedgewars 26, naev 51, supertux 44, warzone2100 30,
# wesnoth 34, widelands 31); 1.6 GB downloaded in under 2 minutes.
#
# Only Ogg Vorbis, Ogg Opus and MP3 files of at least 500 kB are kept
# (about 30 s of Vorbis): the music folders also hold jingles and short
# loops. Re-running skips what is already there.
set -euo pipefail

OUT="${1:?usage: $0 OUT}"
MIN_BYTES=500000
SOURCES=(
  "supertux supertux-data usr/share/games/supertux2/music"
  "naev naev-data usr/share/naev/dat/snd/music"
  "wesnoth wesnoth-1.16-music usr/share/games/wesnoth/1.16/data/core/music"
  "widelands widelands-data usr/share/games/widelands/data/music"
  "warzone2100 warzone2100-music usr/share/games/warzone2100/music"
  "hedgewars hedgewars-data usr/share/games/hedgewars/Data/Music"
  "colobot colobot-common-sounds usr/share/games/colobot/music"
  "freedroidrpg freedroidrpg-data usr/share/freedroidrpg/data/sound/music"
)

for tool in apt-get dpkg-deb; do
  command -v "$tool" >/dev/null || { echo "$0: needs $tool (Debian or Ubuntu)" >&2; exit 2; }
done
mkdir -p "$OUT/.debs" "$OUT/LICENSES"
OUT="$(cd "$OUT" && pwd)"

for source in "${SOURCES[@]}"; do
  read -r label package folder <<<"$source"
  if [[ -f "$OUT/.debs/$package.done" ]]; then
    echo "$label: already there"
    continue
  fi
  (cd "$OUT/.debs" && apt-get download "$package") || {
    echo "$0: apt-get download $package failed (run apt-get update?); skipping $label" >&2
    continue
  }
  debs=("$OUT/.debs/${package}"_*.deb)
  deb="${debs[0]}"
  tree="$OUT/.debs/$package"
  rm -rf "$tree" && mkdir -p "$tree"
  dpkg-deb -x "$deb" "$tree"
  mkdir -p "$OUT/genres/$label"
  count=0
  while IFS= read -r -d '' file; do
    # Sub-folders (SuperTux's, Warzone 2100's albums) become name prefixes.
    rel="${file#"$tree/$folder/"}"
    cp "$file" "$OUT/genres/$label/${rel//\//_}"
    count=$((count + 1))
  done < <(find "$tree/$folder" -type f \( -iname '*.ogg' -o -iname '*.opus' \
             -o -iname '*.mp3' \) -size +"${MIN_BYTES}c" -print0 | sort -z)
  cp "$tree/usr/share/doc/$package/copyright" "$OUT/LICENSES/$package.copyright"
  rm -rf "$tree" "$deb"
  touch "$OUT/.debs/$package.done"
  echo "$label: $count tracks from $package"
done
echo "done: $OUT (GTZAN layout; prepare with --source gtzan)"
