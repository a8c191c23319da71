"""EMOMusic (Emotion in Music, MediaEval 2013): static arousal and valence
of 744 45-second clips, on the split MARBLE takes from JukeMIR.

  ROOT/songs_info.csv          song_id, Artist, ..., Mediaeval 2013 set
  ROOT/static_annotations.csv  song_id, mean_arousal, ..., mean_valence
  ROOT/clips_45seconds/ID.mp3

The MediaEval evaluation set is test. The development set is cut by
artist: the SHA-1 of the artist's name (lower-cased, ASCII letters and
spaces only, runs of spaces as one) modulo 10 puts 8 in 10 artists in
train and the rest in valid. `arousal` and `valence` are the track's
values (`probe --task regression --target arousal`, scored by R²).
"""

import csv
import hashlib
import os

from jaxmusic.data import listing

# JukeMIR's split of the development set, by the artist hash modulo 10.
DEV_SPLITS = ("train",) * 8 + ("valid",) * 2


def artist_split(artist: str) -> str:
  name = "".join(c for c in artist.lower()
                 if ord(c) < 128 and (c.isalpha() or c.isspace()))
  digest = hashlib.sha1(" ".join(name.split()).encode("utf-8")).hexdigest()
  return DEV_SPLITS[int(digest, 16) % len(DEV_SPLITS)]


def _rows(path: str, columns) -> dict[str, dict[str, str]]:
  """{song id: row}, each row checked for `columns`."""
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path}: missing from the EMOMusic layout")
  with open(path, newline="") as f:
    reader = csv.DictReader(f)
    fields = [c.strip() for c in reader.fieldnames or ()]
    missing = [c for c in columns if c not in fields]
    if missing:
      raise ValueError(f"{path}: no column {missing[0]!r}")
    return {str(int(r["song_id"])): r for r in (
        {k.strip(): (v or "").strip() for k, v in row.items()}
        for row in reader)}


def read(root: str) -> listing.Listing:
  info = _rows(os.path.join(root, "songs_info.csv"),
               ("song_id", "Artist", "Mediaeval 2013 set"))
  static = _rows(os.path.join(root, "static_annotations.csv"),
                 ("song_id", "mean_arousal", "mean_valence"))
  out = listing.Listing([])
  for song in sorted(info, key=int):
    row = info[song]
    if song not in static:
      raise ValueError(f"{root}/static_annotations.csv: no row for song "
                       f"{song}")
    split = ("test" if row["Mediaeval 2013 set"] == "evaluation"
             else artist_split(row["Artist"]))
    out.tracks.append(listing.Track(
        song, audio=os.path.join(root, "clips_45seconds", f"{song}.mp3"),
        artist=row["Artist"], split=split, text=row.get("Song title"),
        values={"arousal": float(static[song]["mean_arousal"]),
                "valence": float(static[song]["mean_valence"])}))
  return out
