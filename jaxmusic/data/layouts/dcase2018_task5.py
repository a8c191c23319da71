"""DCASE 2018 task 5, monitoring domestic activities: its development set
as distributed, with its four official cross-validation folds.

  ROOT/meta.txt                        audio/NAME.wav <TAB> activity <TAB> session
  ROOT/evaluation_setup/foldK_train.txt   the same three columns
  ROOT/evaluation_setup/foldK_test.txt    audio/NAME.wav
  ROOT/evaluation_setup/foldK_evaluate.txt
  ROOT/audio/NAME.wav                  10 s, 16 kHz, 4 microphones

Nine activities (absence, cooking, dishwashing, eating, other,
social_activity, vacuum_cleaner, watching_tv, working); the task's metric
is the macro F1 over them, averaged over the folds.

Each segment is in one fold's test list: that fold is its `fold` label
(`--protocol dcase` probes each fold in turn on the others), and a fold's
train list must be the other folds, as the layout promises. The prepared
split keeps sessions whole too: fold 1 is test, fold 2 valid, folds 3 and 4
train. The session is the track's artist.

The four microphone channels: `first` (the first channel), `mean` (their
average) or `each` (a track for each channel, `NAME#chC`, all in their
segment's fold).
"""

import functools
import os

from jaxmusic.data import listing

FOLDS = (1, 2, 3, 4)
CHANNELS = 4
SPLIT_OF_FOLD = {1: "test", 2: "valid", 3: "train", 4: "train"}


def _rows(path: str, columns: int) -> list[list[str]]:
  """The tab-separated rows of one of the layout's lists, each checked for
  at least `columns` fields."""
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path}: missing from the DCASE 2018 task 5 "
                            "layout")
  rows = []
  with open(path) as f:
    for i, line in enumerate(f, 1):
      if not line.strip():
        continue
      fields = line.rstrip("\n").split("\t")
      if len(fields) < columns:
        raise ValueError(f"{path} line {i}: {len(fields)} tab-separated "
                         f"field(s), need {columns}")
      rows.append(fields)
  return rows


def read(root: str, channels: str = "first") -> listing.Listing:
  if channels not in ("first", "mean", "each"):
    raise ValueError(f"channels={channels!r}: use first, mean or each")
  meta = {r[0]: r for r in _rows(os.path.join(root, "meta.txt"), 2)}
  setup = os.path.join(root, "evaluation_setup")
  fold_of = {}
  for k in FOLDS:
    for (name, *_) in _rows(os.path.join(setup, f"fold{k}_test.txt"), 1):
      if name in fold_of:
        raise ValueError(f"{setup}/fold{k}_test.txt: {name} is in fold "
                         f"{fold_of[name]}'s test list too")
      fold_of[name] = k
  for k in FOLDS:
    train = {r[0] for r in _rows(os.path.join(setup, f"fold{k}_train.txt"),
                                 2)}
    others = {n for n, j in fold_of.items() if j != k}
    if train != others:
      odd = sorted(train ^ others)[0]
      raise ValueError(f"{setup}/fold{k}_train.txt is not the other folds' "
                       f"test lists ({len(train ^ others)} differ, first "
                       f"{odd})")
  out = listing.Listing([])
  for name, row in meta.items():
    path = os.path.join(root, name)
    if name not in fold_of:
      out.ignored.append((path, "in no fold's test list"))
      continue
    fold = fold_of[name]
    stem = os.path.splitext(os.path.basename(name))[0]
    views = ([(f"{stem}#ch{c}", c) for c in range(CHANNELS)]
             if channels == "each" else
             [(stem, 0 if channels == "first" else None)])
    for track_id, channel in views:
      out.tracks.append(listing.Track(
          track_id, audio=path, label=row[1],
          artist=row[2] if len(row) > 2 else None,
          split=SPLIT_OF_FOLD[fold], labels={"fold": str(fold)},
          channel=channel))
  missing = sorted(set(fold_of) - set(meta))
  if missing:
    raise ValueError(f"{root}/meta.txt: {len(missing)} file(s) of the fold "
                     f"lists have no row (first {missing[0]})")
  return out


SOURCES = {f"dcase2018_task5{'' if c == 'first' else '_' + c}":
           functools.partial(read, channels=c)
           for c in ("first", "mean", "each")}
