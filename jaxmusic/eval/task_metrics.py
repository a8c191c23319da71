"""The metrics benchmark tasks are reported in, where a task's own metric
is not a generic classification, tagging or regression score: GiantSteps'
MIREX-weighted key score and GTZAN-rhythm's beat F-measure, both as
mir_eval defines them.

  key    each track scores 1 for the right key, 0.5 for the key a fifth
         above in the same mode, 0.3 for its relative, 0.2 for its
         parallel, 0 otherwise (mir_eval.key.weighted_score, MIREX's
         weights); the mean over tracks
  beats  mir_eval.beat.f_measure with its 70 ms window, after
         mir_eval's trimming of the first 5 s (as mir_eval.beat.evaluate
         scores); the mean over tracks
"""

import re

import mir_eval
import numpy as np

BEAT_WINDOW_S = 0.07
_KEY = re.compile(r"^\s*([A-Ga-g])([#b♯♭]?)\s*[: ]?\s*(major|minor|maj|min)"
                  r"\s*$", re.IGNORECASE)


def normalize_key(label: str) -> str:
  """`Eb major` from the spellings key annotations use (`Eb major`,
  `eb:maj`, `D# min`, `A minor`): mir_eval's `tonic mode`."""
  m = _KEY.match(label)
  if not m:
    raise ValueError(f"key {label!r}: not a tonic and major/minor")
  tonic, accidental, mode = m.groups()
  accidental = {"♯": "#", "♭": "b"}.get(accidental, accidental)
  mode = "major" if mode.lower().startswith("maj") else "minor"
  return f"{tonic.upper()}{accidental} {mode}"


def is_key_vocabulary(names) -> bool:
  """Whether every name is a key (`normalize_key` reads it)."""
  return bool(len(names)) and all(_KEY.match(str(n)) for n in names)


def key_metrics(reference, estimated) -> dict[str, float]:
  """`mirex_key`, the mean MIREX-weighted score, and `key_accuracy`, the
  share exactly right, over paired key labels."""
  if len(reference) != len(estimated) or not len(reference):
    raise ValueError(f"key_metrics: {len(reference)} references, "
                     f"{len(estimated)} estimates")
  pairs = [(normalize_key(r), normalize_key(e))
           for r, e in zip(reference, estimated)]
  scores = [mir_eval.key.weighted_score(r, e) for r, e in pairs]
  return {"mirex_key": float(np.mean(scores)),
          "key_accuracy": float(np.mean([r == e for r, e in pairs]))}


def beat_f_measure(reference, estimated) -> float:
  """The mean over tracks of mir_eval's beat F-measure (70 ms window,
  beats in the first 5 s left out); `reference` and `estimated` hold
  each track's beat times in seconds."""
  if len(reference) != len(estimated) or not len(reference):
    raise ValueError(f"beat_f_measure: {len(reference)} references, "
                     f"{len(estimated)} estimates")
  trim = lambda b: mir_eval.beat.trim_beats(np.asarray(b, np.float64))
  return float(np.mean([
      mir_eval.beat.f_measure(trim(r), trim(e), BEAT_WINDOW_S)
      for r, e in zip(reference, estimated)]))
