"""Symbolic scores as their users keep them: ABC tune books (one file, many
tunes) and MusicXML, Humdrum `**kern` and MEI files, read through music21
into the MIDI that the piano-roll, multitrack and token features are made
from.

An ABC book is cut into tunes here, from its `X:` lines, with the header
fields (`T:` title, `R:` rhythm, `K:` key and mode, `M:` meter) read as
text, so that listing a book of hundreds of tunes costs no parse: music21
parses each tune alone, in `prepare`'s workers. The book's own header (the
fields before its first `X:`) is given to every tune, as ABC defines it.
"""

import copy
import dataclasses
import functools
import io
import os
import re

from jaxmusic.data import decode
from jaxmusic.data import sheet

ABC_EXTS = (".abc",)
SCORE_EXTS = (".xml", ".musicxml", ".mxl", ".krn", ".mei")

# `R:` spellings to one rhythm name each. The tune books spell them freely
# ("R: REEL", "slipjig", "double jig"); keys are lower-case with spaces
# and hyphens removed.
RHYTHMS = {
    "reel": "reel", "reels": "reel",
    "jig": "jig", "jigs": "jig", "doublejig": "jig", "singlejig": "jig",
    "slipjig": "slip jig", "slipjigs": "slip jig",
    "hopjig": "slip jig",
    "hornpipe": "hornpipe", "hornpipes": "hornpipe",
    "polka": "polka", "polkas": "polka",
    "slide": "slide", "slides": "slide",
    "strathspey": "strathspey", "strathspeys": "strathspey",
    "highlandfling": "fling", "fling": "fling", "flings": "fling",
    "air": "air", "airs": "air", "slowair": "air",
    "waltz": "waltz", "waltzes": "waltz",
    "march": "march", "marches": "march",
    "mazurka": "mazurka", "mazurkas": "mazurka",
    "barndance": "barndance", "schottische": "schottische",
    "clog": "clog", "clogs": "clog", "set": "set dance",
    "setdance": "set dance", "walkaround": "walkaround",
    "morris": "morris", "song": "song", "songs": "song",
}
# music21's and the ABC standard's mode names, by their first three letters.
MODES = {"maj": "major", "ion": "major", "min": "minor", "aeo": "minor",
         "m": "minor", "dor": "dorian", "phr": "phrygian", "lyd": "lydian",
         "mix": "mixolydian", "loc": "locrian"}


def normalize_rhythm(value: str | None) -> str | None:
  """`R:` to one rhythm name (reel, jig, slip jig, hornpipe, polka, air,
  ...); a spelling not in RHYTHMS is kept, lower-cased."""
  if not value:
    return None
  key = re.sub(r"[\s\-_]+", "", value.strip().lower()).rstrip(".")
  if not key:
    return None
  return RHYTHMS.get(key, " ".join(value.strip().lower().split()))


def rhythm_from_name(path: str) -> str | None:
  """A tune book named for its rhythm (the Nottingham database's
  `reelsa-c.abc`, `jigs.abc`, `slip.abc`) gives it to tunes without `R:`."""
  stem = re.sub(r"[^a-z]", " ", os.path.basename(path).lower()).split()
  for word in stem[:1]:
    for key in (word, word.rstrip("s")):
      if key in RHYTHMS:
        return RHYTHMS[key]
    for key in sorted(RHYTHMS, key=len, reverse=True):
      if word.startswith(key) and len(key) >= 4:
        return RHYTHMS[key]
  return None


def parse_key(value: str | None) -> tuple[str | None, str | None]:
  """`K:` to (tonic, mode): `D` -> (D, major), `Ador` -> (A, dorian),
  `F#m` -> (F#, minor), `Bb Mix` -> (Bb, mixolydian)."""
  if not value:
    return None, None
  m = re.match(r"\s*([A-Ga-g])([#b]?)\s*([A-Za-z]*)", value)
  if not m:
    return None, None
  tonic = m.group(1).upper() + m.group(2)
  word = m.group(3).lower()
  mode = "major" if not word else MODES.get(word[:3], MODES.get(word))
  return tonic, mode


@dataclasses.dataclass
class Tune:
  """One tune of a book: its `X:` number, header fields and ABC text."""
  number: str
  index: int
  title: str | None
  fields: dict[str, str]
  text: str

  @property
  def name(self) -> str:
    """How a reason names the tune: `X:12 "The Silver Spear"`."""
    return f"X:{self.number}" + (f" {self.title!r}" if self.title else "")


_FIELD = re.compile(r"^([A-Za-z]):\s*(.*?)\s*$")


def _fields(lines) -> dict[str, str]:
  """The first value of each header field (T:, R:, K:, M:, C:, ...)."""
  out = {}
  for line in lines:
    m = _FIELD.match(line)
    if m and m.group(1) not in out and m.group(2):
      out[m.group(1)] = m.group(2)
  return out


def split_book(text: str) -> tuple[str, list[Tune]]:
  """(the book's header, its tunes), each tune's text from its `X:` line to
  the next; the header fields a tune does not set are the book's."""
  parts = re.split(r"(?m)^(?=X:)", text)
  header = parts[0] if not parts[0].startswith("X:") else ""
  book = _fields(header.splitlines())
  tunes = []
  for i, part in enumerate(p for p in parts if p.startswith("X:")):
    lines = part.splitlines()
    number = lines[0][2:].strip() or str(i + 1)
    # The header ends at K:, the last header field.
    head = []
    for line in lines:
      head.append(line)
      if line.startswith("K:"):
        break
    fields = {**book, **_fields(head)}
    tunes.append(Tune(number, i, fields.get("T"), fields, part))
  return header, tunes


def read_book(path: str) -> tuple[str, list[Tune]]:
  with open(path, encoding="utf-8", errors="replace") as f:
    return split_book(f.read())


@functools.lru_cache(maxsize=4)
def _worker_book(path: str, mtime_ns: int) -> tuple[str, list[Tune]]:
  """`read_book`, kept while a worker parses one book's tunes in a row
  (keyed by the file's mtime, so an edited book is read again)."""
  del mtime_ns
  return read_book(path)


def tune_labels(tune: Tune, book_path: str) -> dict[str, str]:
  """The extra labels a tune keeps: rhythm, key (tonic and mode), mode
  and meter."""
  rhythm = (normalize_rhythm(tune.fields.get("R"))
            or rhythm_from_name(book_path))
  tonic, mode = parse_key(tune.fields.get("K"))
  out = {"rhythm": rhythm,
         "key": f"{tonic} {mode}" if tonic and mode else None,
         "mode": mode, "meter": tune.fields.get("M") or None}
  return {k: v for k, v in out.items() if v}


MUSIC21_DEFAULTS = ("Music21", "Music21 Fragment")


def _unshare(stream):
  """A copy in each place of any element the parse put in two measures
  (music21's ABC reader reuses a tune's meter at a repeat ending, and its
  MIDI writer then refuses the stream)."""
  seen = set()
  for el in list(stream.recurse()):
    if id(el) in seen and el.activeSite is not None:
      site, offset = el.activeSite, el.offset
      site.remove(el)
      site.insert(offset, copy.deepcopy(el))
    seen.add(id(el))
  return stream


def _to_midi(stream):
  """A music21 stream to PrettyMIDI, through music21's own MIDI writer."""
  import music21  # pylint: disable=g-import-not-at-top
  import pretty_midi  # pylint: disable=g-import-not-at-top
  _unshare(stream)
  midi_file = music21.midi.translate.music21ObjectToMidiFile(stream)
  return pretty_midi.PrettyMIDI(io.BytesIO(midi_file.writestr()))


def _checked(midi, what: str):
  if not any(inst.notes for inst in midi.instruments):
    raise decode.Rejected(f"{what}: the parse has no notes")
  return midi


def parse_tune(book_path: str, index: int):
  """Tune `index` of an ABC book as (music21 stream, its name); raises
  Rejected naming its `X:` number and title when music21 cannot parse
  it."""
  import music21  # pylint: disable=g-import-not-at-top
  try:
    header, tunes = _worker_book(book_path, os.stat(book_path).st_mtime_ns)
  except OSError as e:
    raise decode.Rejected("file not found or unreadable",
                          decode.detail(e)) from e
  if index >= len(tunes):
    raise decode.Rejected(f"tune {index + 1} is not in the book (it has "
                          f"{len(tunes)})")
  tune = tunes[index]
  try:
    return music21.converter.parseData(header + tune.text,
                                       format="abc"), tune.name
  except Exception as e:  # pylint: disable=broad-except
    raise decode.Rejected(f"{tune.name}: music21 cannot parse it",
                          decode.detail(e)) from e


def load_tune(book_path: str, index: int):
  """Tune `index` of an ABC book as PrettyMIDI; raises Rejected naming its
  `X:` number and title when music21 cannot parse it or it has no notes."""
  stream, name = parse_tune(book_path, index)
  try:
    midi = _to_midi(stream)
  except Exception as e:  # pylint: disable=broad-except
    raise decode.Rejected(f"{name}: music21 cannot parse it",
                          decode.detail(e)) from e
  return _checked(midi, name)


def parse_score(path: str):
  """A MusicXML, `**kern` or MEI score as (music21 stream, what its own
  metadata names: `label`, the composer, and `text`, the title); raises
  Rejected when music21 cannot parse it."""
  import music21  # pylint: disable=g-import-not-at-top
  try:
    stream = music21.converter.parse(path)
  except Exception as e:  # pylint: disable=broad-except
    raise decode.Rejected("music21 cannot parse it",
                          decode.detail(e)) from e
  md = stream.metadata
  found = {"label": md.composer if md is not None else None,
           "text": md.bestTitle if md is not None else None}
  # MUSIC21_DEFAULTS are what music21's writer puts in a file that named
  # no composer or title: no metadata at all.
  return stream, {k: v for k, v in found.items()
                  if v and v not in MUSIC21_DEFAULTS}


def load_score(path: str):
  """A MusicXML, `**kern` or MEI score as (PrettyMIDI, what its metadata
  names: see `parse_score`); raises Rejected when music21 cannot parse it
  or it has no notes."""
  stream, found = parse_score(path)
  try:
    midi = _to_midi(stream)
  except Exception as e:  # pylint: disable=broad-except
    raise decode.Rejected("music21 cannot parse it",
                          decode.detail(e)) from e
  return _checked(midi, os.path.basename(path)), found


def engrave(score_path: str, tune: int | None, height: int):
  """A score file (or tune `tune` of an ABC book) engraved by verovio
  (sheet.engrave, through music21's MusicXML) and what its metadata
  names; raises Rejected saying why it cannot be."""
  from music21.musicxml import m21ToXml  # pylint: disable=g-import-not-at-top
  if tune is not None:
    (stream, name), found = parse_tune(score_path, tune), {}
  else:
    (stream, found), name = parse_score(score_path), os.path.basename(
        score_path)
  try:
    xml = m21ToXml.GeneralObjectExporter(_unshare(stream)).parse().decode()
  except Exception as e:  # pylint: disable=broad-except
    raise decode.Rejected(f"{name}: music21 cannot write its MusicXML",
                          decode.detail(e)) from e
  try:
    engraving = sheet.engrave(xml, height)
  except decode.Rejected as e:
    raise decode.Rejected(f"{name}: {e.reason}", e.detail) from e
  _checked(engraving.midi, name)
  return engraving, found
