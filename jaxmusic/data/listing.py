"""What every source gives `prepare`: the tracks of a collection (where each
one's audio, MIDI or score lives, with whatever labels, tags, artist and
split its layout provides) and every other file under the input with the
rule it was ignored by, so that no file goes unaccounted for."""

import dataclasses
import os

_SPLIT_ALIASES = {"train": "train", "training": "train", "valid": "valid",
                  "validation": "valid", "val": "valid", "dev": "valid",
                  "test": "test", "testing": "test", "eval": "test"}


@dataclasses.dataclass
class Track:
  track_id: str
  audio: str | None = None
  midi: str | None = None
  label: str | None = None
  tags: tuple[str, ...] = ()
  artist: str | None = None
  split: str | None = None
  # Free text for text towers: a title, joined tags or a caption.
  text: str | None = None
  # Numeric per-track targets (tempo, year, ...) for regression probes.
  values: dict[str, float] = dataclasses.field(default_factory=dict)
  # Categorical targets beside `label` (a tune's key, mode and meter), for
  # probes (`--target key`).
  labels: dict[str, str] = dataclasses.field(default_factory=dict)
  # A symbolic score music21 reads (an ABC book, MusicXML, **kern, MEI),
  # and for a book the tune's index in it.
  score: str | None = None
  tune: int | None = None
  # Which channel of a multichannel recording the track is (None: their
  # mean), for layouts whose channels are separate microphones.
  channel: int | None = None

  @property
  def path(self) -> str | None:
    return self.audio or self.midi or self.score


@dataclasses.dataclass
class Listing:
  tracks: list[Track]
  # (path, rule) for each file under the input skipped without decoding.
  ignored: list[tuple[str, str]] = dataclasses.field(default_factory=list)


def walk_files(root: str) -> list[str]:
  """Every file under `root`, in a fixed order; symlinked folders are
  followed once."""
  out = []
  for folder, dirs, files in os.walk(root, followlinks=True):
    dirs.sort()
    out += [os.path.join(folder, f) for f in sorted(files)]
  return out


def normalize_split(value: str | None, where: str) -> str | None:
  if value is None or value == "":
    return None
  split = _SPLIT_ALIASES.get(value.strip().lower())
  if split is None:
    raise ValueError(f"{where}: unknown split {value!r}; use train, valid or "
                     "test")
  return split
