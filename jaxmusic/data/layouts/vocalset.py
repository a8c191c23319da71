"""VocalSet (Wilkins et al., 2018) as its archive unpacks,
`ROOT/FULL/SINGER/CONTEXT/TECHNIQUE/NAME.wav`, for MARBLE's two tasks:

  vocalset_technique  the 10 techniques of the paper's Table 2 (belt,
                      breathy, inhaled, lip_trill, spoken, straight,
                      trill, trillo, vibrato, vocal_fry); test is MARBLE's
                      five held-out singers (f2, f8, m3, m5, m10)
  vocalset_singer     the 20 singers over all 17 technique folders; test,
                      valid and train are 20 %, 32 % and 48 % of the
                      recordings

A recording's chunks never straddle splits. MARBLE draws its train/valid
(and the singer task's test) cut with scikit-learn's GroupShuffleSplit
over the chunks its silence trimming leaves; here a recording goes by
the SHA-1 of its path, so the cut is the same on every machine without
that preprocessing. The singer comes from the folder, which settles the
files whose names lack it; the five files MARBLE deletes (a duplicate
and four outside Table 2) are ignored. Chunk the audio as MARBLE does
with `prepare --segment_seconds 3`.
"""

import functools
import hashlib
import os

from jaxmusic.data import listing

TECHNIQUES = ("belt", "breathy", "inhaled", "lip_trill", "spoken",
              "straight", "trill", "trillo", "vibrato", "vocal_fry")
ALL_TECHNIQUES = TECHNIQUES + ("fast_forte", "fast_piano", "forte", "messa",
                               "pp", "slow_forte", "slow_piano")
TEST_SINGERS = ("f2", "f8", "m3", "m5", "m10")
# MARBLE's preprocess deletes these (technique/name).
DELETED = ("vibrato/f2_scales_vibrato_a(1).wav", "vibrato/caro_vibrato.wav",
           "vibrato/dona_vibrato.wav", "vibrato/row_vibrato.wav",
           "vibrato/slow_vibrato_arps.wav")


def _bucket(path: str) -> int:
  return int(hashlib.sha1(path.encode("utf-8")).hexdigest(), 16) % 100


def _technique_split(singer: str, rel: str) -> str:
  if singer in TEST_SINGERS:
    return "test"
  return "valid" if _bucket(rel) < 40 else "train"


def _singer_split(singer: str, rel: str) -> str:
  del singer
  b = _bucket(rel)
  return "test" if b < 20 else "valid" if b < 52 else "train"


def read(root: str, task: str) -> listing.Listing:
  full = os.path.join(root, "FULL")
  if not os.path.isdir(full):
    raise FileNotFoundError(f"{full}: missing from the VocalSet layout")
  techniques, label_of, split_of = (
      (TECHNIQUES, lambda singer, tech: tech, _technique_split)
      if task == "technique" else
      (ALL_TECHNIQUES, lambda singer, tech: singer, _singer_split))
  out = listing.Listing([])
  for path in listing.walk_files(full):
    rel = os.path.relpath(path, full)
    parts = rel.split(os.sep)
    if len(parts) != 4 or not path.endswith(".wav"):
      out.ignored.append((path, "vocalset: not SINGER/CONTEXT/TECHNIQUE/"
                                "NAME.wav"))
      continue
    singer, _, tech, name = parts
    if f"{tech}/{name}" in DELETED:
      out.ignored.append((path, "vocalset: deleted by MARBLE (a duplicate "
                                "or outside Table 2)"))
      continue
    if tech not in techniques:
      out.ignored.append((path, f"vocalset: technique {tech} not in the "
                                f"{task} task"))
      continue
    out.tracks.append(listing.Track(
        rel[:-len(".wav")], audio=path, label=label_of(singer, tech),
        artist=singer, split=split_of(singer, rel)))
  if not out.tracks:
    raise ValueError(f"{full}: no recordings of the {task} task")
  return out


SOURCES = {f"vocalset_{task}": functools.partial(read, task=task)
           for task in ("technique", "singer")}
