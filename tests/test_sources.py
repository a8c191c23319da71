"""Each source layout, built in a temporary directory."""
import os

import numpy as np
import pretty_midi
import pytest
import soundfile

from jaxmusic.data import sources


def _wav(path, seconds=1.0):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  soundfile.write(path, np.random.default_rng(0).standard_normal(
      int(22050 * seconds)) * 0.1, 22050)


def _mid(path):
  pm = pretty_midi.PrettyMIDI()
  inst = pretty_midi.Instrument(0)
  inst.notes.append(pretty_midi.Note(80, 60, 0.0, 1.5))
  pm.instruments.append(inst)
  pm.write(path)


def test_gtzan_folder_per_label(tmp_path):
  for label in ("blues", "rock"):
    for i in range(2):
      _wav(str(tmp_path / "genres" / label / f"{label}.{i:05d}.wav"))
  (tmp_path / "genres" / "rock" / "notes.txt").write_text("x")
  (tmp_path / "genres" / "rock" / ".DS_Store").write_text("x")
  _wav(str(tmp_path / "genres" / "stray.wav"))
  _wav(str(tmp_path / "genres" / "rock" / "live" / "encore.flac"))
  listing = sources.read_source("gtzan", str(tmp_path))
  assert [(t.track_id, t.label) for t in listing.tracks] == [
      ("blues/blues.00000", "blues"), ("blues/blues.00001", "blues"),
      ("rock/rock.00000", "rock"), ("rock/rock.00001", "rock"),
      ("rock/live/encore", "rock")]
  # Every other file is accounted for, with the rule that skipped it.
  assert sorted((os.path.basename(p), r) for p, r in listing.ignored) == [
      (".DS_Store", "hidden file"), ("notes.txt", ".txt"),
      ("stray.wav", "outside a label folder")]


def test_gtzan_pairs_a_recording_with_its_midi(tmp_path):
  """A score rendered to audio (music21_composers.sh) keeps its MIDI
  beside the recording: one paired track; a MIDI file alone is ignored."""
  _wav(str(tmp_path / "bach" / "bwv1.6.wav"))
  _mid(str(tmp_path / "bach" / "bwv1.6.mid"))
  _mid(str(tmp_path / "bach" / "lonely.mid"))
  listing = sources.read_source("gtzan", str(tmp_path))
  [track] = listing.tracks
  assert track.label == "bach" and track.track_id == "bach/bwv1.6"
  assert track.midi.endswith("bwv1.6.mid")
  assert [(os.path.basename(p), r) for p, r in listing.ignored] == [
      ("lonely.mid", "MIDI in an audio layout")]


def test_folder_layouts_let_the_decoder_decide(tmp_path):
  """An extension no list names is still offered to the decoders, and a
  second file with the same stem keeps its own track."""
  _wav(str(tmp_path / "a" / "x.wav"))
  (tmp_path / "a" / "x.opus").write_bytes(b"anything")
  (tmp_path / "a" / "y.weird").write_bytes(b"anything")
  tracks = sources.read_source("gtzan", str(tmp_path)).tracks
  assert [t.track_id for t in tracks] == ["a/x", "a/x.wav", "a/y"]
  tracks = sources.read_source("folder", str(tmp_path)).tracks
  assert [t.track_id for t in tracks] == ["a/x", "a/x.wav", "a/y"]


@pytest.mark.parametrize("ext,sep", [(".csv", ","), (".tsv", "\t")])
def test_csv_manifest(tmp_path, ext, sep):
  _wav(str(tmp_path / "a.wav"))
  _wav(str(tmp_path / "sub" / "b.wav"))
  lines = [sep.join(["path", "label", "tags", "artist", "split", "tempo",
                     "mood"]),
           sep.join(["a.wav", "x", "t1;t2", "ann", "validation", "120.5",
                     "calm"]),
           sep.join(["sub/b.wav", "y", "", "", "", "", "3"])]
  (tmp_path / f"m{ext}").write_text("\n".join(lines) + "\n")
  a, b = sources.read_source("csv", str(tmp_path / f"m{ext}")).tracks
  assert a.audio == str(tmp_path / "a.wav") and a.tags == ("t1", "t2")
  assert a.split == "valid" and a.artist == "ann"
  assert b.track_id == "sub/b" and b.split is None and b.tags == ()
  # A numeric column becomes a regression target; a mixed one does not.
  assert a.values == {"tempo": 120.5} and b.values == {}


def test_csv_bad_split_is_named(tmp_path):
  (tmp_path / "m.csv").write_text("path,split\na.wav,holdout\n")
  with pytest.raises(ValueError, match="row 2.*holdout"):
    sources.read_source("csv", str(tmp_path / "m.csv"))


def test_magnatagatune_top_tags_and_folder_split(tmp_path):
  tags = ["guitar", "rock", "rare"]
  rows = [("1", "0/a-1.mp3", (1, 1, 0)), ("2", "c/b-1.mp3", (1, 0, 0)),
          ("3", "f/c-1.mp3", (0, 1, 1))]
  text = "\t".join(["clip_id", *tags, "mp3_path"]) + "\n"
  for clip, path, flags in rows:
    text += "\t".join([clip, *map(str, flags), path]) + "\n"
  (tmp_path / "annotations_final.csv").write_text(text)
  tracks = sources.magnatagatune(str(tmp_path), top_k=2).tracks
  assert [t.split for t in tracks] == ["train", "valid", "test"]
  assert [t.tags for t in tracks] == [("guitar", "rock"), ("guitar",),
                                      ("rock",)]


def test_maestro_pairs(tmp_path):
  _wav(str(tmp_path / "2004" / "p.wav"))
  _mid(str(tmp_path / "2004" / "p.midi"))
  (tmp_path / "maestro-v3.0.0.csv").write_text(
      "canonical_composer,canonical_title,split,year,midi_filename,"
      "audio_filename,duration\nChopin,X,validation,2004,2004/p.midi,"
      "2004/p.wav,1.0\n")
  (t,) = sources.read_source("maestro", str(tmp_path)).tracks
  assert t.midi.endswith("p.midi") and t.audio.endswith("p.wav")
  assert t.label == t.artist == "Chopin" and t.split == "valid"


def test_plain_folder_pairs_by_stem(tmp_path):
  _wav(str(tmp_path / "x" / "song.wav"))
  _mid(str(tmp_path / "x" / "song.mid"))
  _mid(str(tmp_path / "only.mid"))
  _wav(str(tmp_path / "solo.flac"))
  (tmp_path / "cover.jpg").write_bytes(b"x")
  listing = sources.read_source("folder", str(tmp_path))
  tracks = {t.track_id: t for t in listing.tracks}
  assert listing.ignored == [(str(tmp_path / "cover.jpg"), ".jpg")]
  assert set(tracks) == {"x/song", "only", "solo"}
  assert tracks["x/song"].audio and tracks["x/song"].midi
  assert tracks["only"].audio is None and tracks["solo"].midi is None


def test_unknown_source_and_missing_input():
  with pytest.raises(ValueError, match="--source=nope"):
    sources.read_source("nope", ".")
  with pytest.raises(FileNotFoundError, match="/no/such"):
    sources.read_source("folder", "/no/such")
