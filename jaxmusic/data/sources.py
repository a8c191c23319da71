"""Readers for real collections in their standard layouts.

Each source turns a path into a `Listing`: the `Track`s (where the audio
and/or MIDI lives, and whatever labels, tags, artist and split the layout
provides) and, for folder layouts, every other file under the input with the
rule it was ignored by, so that no file goes unaccounted for.
"""

import collections
import csv
import os
from typing import Callable

import numpy as np

from jaxmusic.data import decode
from jaxmusic.data import scores

from jaxmusic.data.listing import Listing  # pylint: disable=unused-import
from jaxmusic.data.listing import Track  # pylint: disable=unused-import
from jaxmusic.data.listing import normalize_split
from jaxmusic.data.listing import walk_files


def _rel_id(path: str, root: str) -> str:
  return os.path.splitext(os.path.relpath(path, root))[0]


def _unique_id(path: str, root: str, taken) -> str:
  """The path stem, or the whole relative path where two files share a stem
  (`song.wav` beside `song.opus`)."""
  stem = _rel_id(path, root)
  return os.path.relpath(path, root) if stem in taken else stem


def folder_labels(root: str) -> Listing:
  """GTZAN layout: `root/<label>/**/<audio>` (or `root/genres/<label>/`).
  Any file a decoder might read is a track; the decoder decides. A MIDI
  file beside a recording of the same stem (a rendered score) is that
  track's MIDI; any other MIDI file is ignored."""
  if os.path.isdir(os.path.join(root, "genres")):
    root = os.path.join(root, "genres")
  listing = Listing([])
  taken = set()
  midis, by_stem = [], {}
  for path in walk_files(root):
    rel = os.path.relpath(path, root)
    rule = decode.ignore_rule(path)
    if rule is None and decode.is_midi(path):
      midis.append(path)
      continue
    if rule is None and os.sep not in rel:
      rule = "outside a label folder"
    if rule:
      listing.ignored.append((path, rule))
      continue
    track_id = _unique_id(path, root, taken)
    taken.add(track_id)
    track = Track(track_id, audio=path, label=rel.split(os.sep)[0])
    listing.tracks.append(track)
    by_stem[os.path.splitext(path)[0]] = track
  for path in midis:
    track = by_stem.get(os.path.splitext(path)[0])
    if track is None or track.midi is not None:
      listing.ignored.append((path, "MIDI in an audio layout"))
    else:
      track.midi = path
  return listing


def _split_list(value: str) -> tuple[str, ...]:
  for sep in (";", "|", ","):
    if sep in value:
      return tuple(v.strip() for v in value.split(sep) if v.strip())
  return (value.strip(),) if value.strip() else ()


_CSV_COLUMNS = {"path", "audio", "midi", "label", "tags", "artist", "split",
                "id", "text", "title"}


def _is_number(text: str) -> bool:
  try:
    return np.isfinite(float(text))
  except ValueError:
    return False


def csv_manifest(path: str) -> Listing:
  """A CSV/TSV with a `path` (or `audio`) column and optional `midi`,
  `label`, `tags` (separated by ; or |), `artist`, `split` and `id` columns,
  and a `text` (caption) or else `title` column for text towers.
  Any other column whose every non-empty cell is a number (tempo, year, ...)
  becomes a numeric track value, a regression probe target. Relative paths
  are taken from the manifest's folder.
  """
  root = os.path.dirname(os.path.abspath(path))
  with open(path, newline="") as f:
    sample = f.read(4096)
    f.seek(0)
    delimiter = "\t" if path.endswith(".tsv") or "\t" in sample else ","
    rows = list(csv.DictReader(f, delimiter=delimiter))
  if not rows:
    raise ValueError(f"{path}: no rows")
  cols = set(rows[0])
  if not cols & {"path", "audio", "midi"}:
    raise ValueError(f"{path}: needs a 'path', 'audio' or 'midi' column; has "
                     f"{sorted(cols)}")

  def resolve(p):
    return os.path.join(root, p) if p else None

  numeric = [c for c in rows[0] if c not in _CSV_COLUMNS
             and all(_is_number(r[c]) for r in rows if r[c])]

  tracks = []
  for i, row in enumerate(rows):
    audio = resolve(row.get("path") or row.get("audio"))
    midi = resolve(row.get("midi"))
    track_id = row.get("id") or _rel_id(audio or midi, root)
    tracks.append(Track(
        track_id, audio=audio, midi=midi, label=row.get("label") or None,
        tags=_split_list(row.get("tags") or ""),
        artist=row.get("artist") or None,
        split=normalize_split(row.get("split"), f"{path} row {i + 2}"),
        text=(row.get("text") or row.get("title") or "").strip() or None,
        values={c: float(row[c]) for c in numeric if row[c]}))
  return Listing(tracks)


def magnatagatune(root: str, top_k: int = 50) -> Listing:
  """MagnaTagATune: `annotations_final.csv` (tab-separated, one 0/1 column
  per tag, `clip_id` and `mp3_path`), keeping the top-50 tags.

  The split is the usual one by the first folder of `mp3_path` (0-b train,
  c valid, d-f test); all clips of one album share a folder, so no track
  crosses splits.
  """
  path = os.path.join(root, "annotations_final.csv")
  with open(path, newline="") as f:
    rows = list(csv.DictReader(f, delimiter="\t"))
  tag_cols = [c for c in rows[0] if c not in ("clip_id", "mp3_path")]
  counts = collections.Counter(
      {t: sum(r[t] == "1" for r in rows) for t in tag_cols})
  top = {t for t, _ in counts.most_common(top_k)}
  tracks = []
  for row in rows:
    rel = row["mp3_path"]
    folder = rel.split("/")[0].lower()
    split = ("train" if folder in "0123456789ab" else
             "valid" if folder == "c" else "test")
    tags = tuple(t for t in tag_cols if t in top and row[t] == "1")
    tracks.append(Track(row["clip_id"], audio=os.path.join(root, rel),
                        tags=tags, split=split))
  return Listing(tracks)


def maestro(root: str) -> Listing:
  """MAESTRO: `maestro-v*.csv` with `midi_filename`, `audio_filename`,
  `split` and `canonical_composer` (taken as both label and artist)."""
  names = sorted(n for n in os.listdir(root)
                 if n.startswith("maestro-v") and n.endswith(".csv"))
  if not names:
    raise ValueError(f"{root}: no maestro-v*.csv found")
  path = os.path.join(root, names[-1])
  with open(path, newline="") as f:
    rows = list(csv.DictReader(f))
  tracks = []
  for i, row in enumerate(rows):
    composer = row["canonical_composer"]
    tracks.append(Track(
        os.path.splitext(row["midi_filename"])[0],
        audio=os.path.join(root, row["audio_filename"]),
        midi=os.path.join(root, row["midi_filename"]),
        label=composer, artist=composer,
        split=normalize_split(row["split"], f"{path} row {i + 2}")))
  return Listing(tracks)


def plain_folder(root: str) -> Listing:
  """Every audio and MIDI file under `root`, unlabelled; an audio file and a
  MIDI file with the same path stem are one paired track. Any file a
  decoder might read counts as audio; the decoder decides."""
  by_id: dict[str, Track] = {}
  ignored = []
  for path in walk_files(root):
    rule = decode.ignore_rule(path)
    if rule:
      ignored.append((path, rule))
      continue
    kind = "midi" if decode.is_midi(path) else "audio"
    stem = _rel_id(path, root)
    track = by_id.get(stem)
    if track is not None and getattr(track, kind) is not None:
      stem = os.path.relpath(path, root)
      track = None
    track = track or by_id.setdefault(stem, Track(stem))
    setattr(track, kind, path)
  return Listing([by_id[k] for k in sorted(by_id)], ignored)


def _score_files(root: str, exts, kind: str) -> Listing:
  """Every file under `root` (or `root` itself) ending in `exts`; the rest
  are ignored, each with its rule."""
  if os.path.isfile(root):
    return Listing([]), [root]
  listing, found = Listing([]), []
  for path in walk_files(root):
    # MusicXML's .xml is no media, but a score.
    if path.lower().endswith(exts) and not os.path.basename(
        path).startswith("."):
      found.append(path)
    else:
      listing.ignored.append((path, decode.ignore_rule(path)
                              or f"not {kind}"))
  return listing, found


def abc_books(root: str) -> Listing:
  """ABC tune books: `root` is one `.abc` file or a folder of them. Each
  tune is a track (`BOOK#X`, its index where an `X:` number repeats): its
  title is the track's text, its normalised `R:` the label (or the book's
  name, as the Nottingham database's `reelsa-c.abc`), and rhythm, key,
  mode and meter its extra labels. music21 parses each tune in the
  workers."""
  listing, books = _score_files(root, scores.ABC_EXTS, "an ABC tune book")
  base = root if os.path.isdir(root) else os.path.dirname(root)
  for book in books:
    _, tunes = scores.read_book(book)
    stem = _rel_id(book, base)
    numbers = [t.number for t in tunes]
    for tune in tunes:
      number = (tune.number if numbers.count(tune.number) == 1
                else f"{tune.number}.{tune.index + 1}")
      labels = scores.tune_labels(tune, book)
      listing.tracks.append(Track(
          f"{stem}#{number}", score=book, tune=tune.index,
          label=labels.get("rhythm"), text=tune.title, labels=labels))
  return listing


def score_folder(root: str) -> Listing:
  """MusicXML, `**kern` and MEI scores under `root` (or one score file):
  the label is the composer the score's metadata names (read when music21
  parses it, in the workers), else its parent folder's name (the layout
  `root/<composer>/<score>`)."""
  listing, paths = _score_files(root, scores.SCORE_EXTS,
                                "a MusicXML, **kern or MEI score")
  base = root if os.path.isdir(root) else os.path.dirname(root)
  taken = set()
  for path in paths:
    track_id = _unique_id(path, base, taken)
    taken.add(track_id)
    rel = os.path.relpath(path, base)
    folder = rel.split(os.sep)[-2] if os.sep in rel else None
    listing.tracks.append(Track(track_id, score=path, label=folder))
  return listing


SOURCES: dict[str, Callable[[str], Listing]] = {
    "folder_labels": folder_labels,
    "gtzan": folder_labels,
    "csv": csv_manifest,
    "magnatagatune": magnatagatune,
    "mtat": magnatagatune,
    "maestro": maestro,
    "folder": plain_folder,
    "abc": abc_books,
    "score": score_folder,
}


def registry() -> dict[str, Callable[[str], Listing]]:
  """Every source by name: the generic layouts above and the benchmark
  datasets' official ones (`jaxmusic.data.layouts`, which read through
  the layouts above)."""
  from jaxmusic.data import layouts  # pylint: disable=g-import-not-at-top
  return {**SOURCES, **layouts.SOURCES}


def read_source(kind: str, path: str) -> Listing:
  known = registry()
  if kind not in known:
    raise ValueError(f"--source={kind}: unknown; known: {sorted(known)}")
  if not os.path.exists(path):
    raise FileNotFoundError(f"--input={path}: no such file or directory")
  return known[kind](path)
