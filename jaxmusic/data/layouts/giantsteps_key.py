"""GiantSteps key, as MARBLE (after JukeMIR) takes it: the GiantSteps MTG
key dataset for train and valid, the GiantSteps key dataset for test, both
as their repositories are cloned, with the audio fetched beside them:

  ROOT/giantsteps-mtg-key-dataset*/annotations/annotations.txt
                                   annotations/beatport_metadata.txt
                                   md5/ID.LOFI.mp3.md5, audio/ID.LOFI.mp3
  ROOT/giantsteps-key-dataset*/annotations/key/ID.LOFI.key
                               md5/ID.LOFI.mp3.md5, audio/ID.LOFI.mp3

The md5 folders list the tracks. Train keeps the tracks whose annotator
confidence `C` is 2 and whose `MANUAL KEY` is one key (no `/`), as
Korzeniowski and Widmer (2018). It is cut by artist: the SHA-1 of each
lower-cased artist name modulo 116 sends 100 in 116 artists to train and
the rest to valid, then, twice over, every collaborator of a valid artist
to valid. The label is the key with flats for sharps (`Db major`): the 24
classes MARBLE scores, by the MIREX-weighted key score.
"""

import csv
import glob
import hashlib
import os

from jaxmusic.data import listing

# JukeMIR's artist split: 100 train, 16 valid of every 116 hash values.
ARTIST_SPLITS = ("train",) * 100 + ("valid",) * 16
FLATS = {"C#": "Db", "D#": "Eb", "F#": "Gb", "G#": "Ab", "A#": "Bb"}
TRAIN_DIR, TEST_DIR = "giantsteps-mtg-key-dataset", "giantsteps-key-dataset"


def key_label(text: str, where: str) -> str:
  parts = text.split()
  if len(parts) != 2 or parts[1].lower() not in ("major", "minor"):
    raise ValueError(f"{where}: {text.strip()!r} is not a tonic and "
                     "major/minor")
  tonic = parts[0][0].upper() + parts[0][1:]
  return f"{FLATS.get(tonic, tonic)} {parts[1].lower()}"


def _artists(row) -> list[str]:
  return [a.strip() for a in row["ARTIST"].strip().split(",")]


def artist_splits(metadata: dict[int, dict[str, str]]) -> dict[str, str]:
  """{artist: train or valid}, collaborators of valid artists made valid
  (two hops)."""
  split = {}
  for row in metadata.values():
    for a in _artists(row):
      digest = int(hashlib.sha1(a.lower().encode("utf-8")).hexdigest(), 16)
      split[a] = ARTIST_SPLITS[digest % len(ARTIST_SPLITS)]
  for _ in range(2):
    for row in metadata.values():
      artists = _artists(row)
      if any(split[a] == "valid" for a in artists):
        for a in artists:
          split[a] = "valid"
  return split


def _tsv(path: str, columns) -> dict[int, dict[str, str]]:
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path}: missing from the GiantSteps layout")
  with open(path, newline="", encoding="utf-8") as f:
    reader = csv.DictReader(f, delimiter="\t")
    missing = [c for c in columns if c not in (reader.fieldnames or ())]
    if missing:
      raise ValueError(f"{path}: no column {missing[0]!r}")
    return {int(r["ID"]): r for r in reader}


def _track_ids(code: str) -> list[int]:
  paths = glob.glob(os.path.join(code, "md5", "*.md5"))
  if not paths:
    raise FileNotFoundError(f"{code}/md5: no track list (*.md5)")
  return sorted(int(os.path.basename(p).split(".")[0]) for p in paths)


def _find(root: str, prefix: str) -> str:
  found = sorted(d for d in os.listdir(root) if d.startswith(prefix)
                 and os.path.isdir(os.path.join(root, d)))
  if not found:
    raise FileNotFoundError(f"{root}: no {prefix}* folder")
  return os.path.join(root, found[0])


def read(root: str) -> listing.Listing:
  out = listing.Listing([])
  code = _find(root, TRAIN_DIR)
  metadata = _tsv(os.path.join(code, "annotations", "beatport_metadata.txt"),
                  ("ID", "ARTIST"))
  notes_path = os.path.join(code, "annotations", "annotations.txt")
  notes = _tsv(notes_path, ("ID", "MANUAL KEY", "C"))
  split = artist_splits(metadata)
  for did in _track_ids(code):
    audio = os.path.join(code, "audio", f"{did}.LOFI.mp3")
    if did not in notes or did not in metadata:
      raise ValueError(f"{notes_path}: no annotation or metadata for {did}")
    key = notes[did]["MANUAL KEY"].strip()
    rule = ("giantsteps: annotator confidence below 2"
            if notes[did]["C"].strip() != "2" else
            "giantsteps: more than one key" if "/" in key else None)
    if rule:
      if os.path.exists(audio):
        out.ignored.append((audio, rule))
      continue
    artists = _artists(metadata[did])
    out.tracks.append(listing.Track(
        f"mtg-{did}", audio=audio, label=key_label(key, f"{notes_path} {did}"),
        artist=artists[0], split=split[artists[0]]))
  code = _find(root, TEST_DIR)
  for did in _track_ids(code):
    path = os.path.join(code, "annotations", "key", f"{did}.LOFI.key")
    if not os.path.exists(path):
      raise FileNotFoundError(f"{path}: missing from the GiantSteps layout")
    with open(path, encoding="utf-8") as f:
      label = key_label(f.read(), path)
    out.tracks.append(listing.Track(
        f"gs-{did}", audio=os.path.join(code, "audio", f"{did}.LOFI.mp3"),
        label=label, split="test"))
  return out
