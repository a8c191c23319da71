"""MTG-Jamendo's auto-tagging subsets on their official split-0, as MARBLE
reports them: genre (87 tags), instrument (40), mood/theme (56) and the
top 50.

  ROOT/data/splits/split-0/autotagging_SUBSET-{train,validation,test}.tsv
        (the dataset repository's `data/`, or ROOT/mtg-jamendo-dataset/data)
  ROOT/audio/NN/ID.mp3, or ROOT/audio-low/NN/ID.low.mp3

Each TSV row is TRACK_ID, ARTIST_ID, ALBUM_ID, PATH, DURATION and then
the track's tags (`genre---rock`), tab-separated; the split keeps each
artist in one split. The tags are the track's tags (multilabel: macro
ROC-AUC and PR-AUC), the artist its artist.
"""

import functools
import os

from jaxmusic.data import listing

SUBSETS = ("genre", "instrument", "moodtheme", "top50tags")
SPLITS = {"train": "train", "validation": "valid", "test": "test"}


def _split_dir(root: str) -> str:
  for base in (root, os.path.join(root, "mtg-jamendo-dataset")):
    path = os.path.join(base, "data", "splits", "split-0")
    if os.path.isdir(path):
      return path
  raise FileNotFoundError(f"{root}: no data/splits/split-0 (the "
                          "mtg-jamendo-dataset repository's data folder)")


def _audio(root: str, rel: str) -> str:
  """The full-quality MP3 where present, else the low-quality one."""
  full = os.path.join(root, "audio", rel)
  low = os.path.join(root, "audio-low", rel[:-len(".mp3")] + ".low.mp3")
  return low if not os.path.exists(full) and os.path.exists(low) else full


def read(root: str, subset: str = "top50tags") -> listing.Listing:
  splits = _split_dir(root)
  out = listing.Listing([])
  for name, split in SPLITS.items():
    path = os.path.join(splits, f"autotagging_{subset}-{name}.tsv")
    if not os.path.exists(path):
      raise FileNotFoundError(f"{path}: missing from MTG-Jamendo's split-0")
    with open(path) as f:
      header = f.readline().rstrip("\n").split("\t")
      if header[:4] != ["TRACK_ID", "ARTIST_ID", "ALBUM_ID", "PATH"]:
        raise ValueError(f"{path}: header {header[:4]}, expected TRACK_ID, "
                         "ARTIST_ID, ALBUM_ID, PATH")
      for i, line in enumerate(f, 2):
        fields = line.rstrip("\n").split("\t")
        if len(fields) < 6:
          raise ValueError(f"{path} line {i}: {len(fields)} fields, need "
                           "at least 6 (the tags from the sixth)")
        track_id, artist, _, rel = fields[:4]
        out.tracks.append(listing.Track(
            track_id, audio=_audio(root, rel), artist=artist, split=split,
            tags=tuple(t.strip() for t in fields[5:] if t.strip())))
  return out


SOURCES = {f"mtg_jamendo_{s.removesuffix('tags')}":
           functools.partial(read, subset=s) for s in SUBSETS}
