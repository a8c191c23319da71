"""GTZAN on its fault-filtered split, the split MARBLE and most genre
results since 2015 report on.

GTZAN as distributed, `genres/<genre>/<genre>.000NN.au` (or the WAV
re-encoding, `genres_original/<genre>/<genre>.000NN.wav`). The split is
Kereliuk, Sturm and Larsen's (2015), shipped beside this file: 443 train,
197 valid and 290 test clips, no artist in two splits; the 70 repeated,
distorted or mislabelled clips it leaves out are listed as ignored.
"""

import logging
import os

from jaxmusic.data import listing
from jaxmusic.data import sources

SPLIT_FILE = os.path.join(os.path.dirname(__file__), "gtzan_filtered.tsv")


def splits() -> dict[str, str]:
  """{clip: split} of the fault-filtered split (`blues.00012`: `test`)."""
  out = {}
  with open(SPLIT_FILE) as f:
    for line in f:
      if line.strip() and not line.startswith("#"):
        clip, split = line.rstrip("\n").split("\t")
        out[clip] = split
  return out


def read(root: str) -> listing.Listing:
  for name in ("genres", "genres_original"):
    if os.path.isdir(os.path.join(root, name)):
      root = os.path.join(root, name)
  found = sources.folder_labels(root)
  wanted = splits()
  out = listing.Listing([], list(found.ignored))
  for track in found.tracks:
    clip = os.path.splitext(os.path.basename(track.audio))[0]
    if clip not in wanted:
      out.ignored.append((track.audio, "not in GTZAN's fault-filtered split"))
      continue
    track.track_id, track.split = clip, wanted.pop(clip)
    out.tracks.append(track)
  if wanted:
    logging.warning("gtzan_filtered: %d of the split's %d clips are not "
                    "under %s (first: %s)", len(wanted),
                    len(wanted) + len(out.tracks), root, sorted(wanted)[0])
  return out
