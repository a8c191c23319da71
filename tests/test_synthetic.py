import csv
import hashlib
import os

import numpy as np
import pretty_midi
import soundfile

from jaxmusic.data import synthetic


def _digest(folder):
  h = hashlib.sha1()
  for name in sorted(os.listdir(folder)):
    with open(os.path.join(folder, name), "rb") as f:
      h.update(name.encode() + f.read())
  return h.hexdigest()


def test_generation_is_deterministic_from_seed(tmp_path):
  cfg = synthetic.SyntheticConfig(num_tracks=6, seconds=2.0, seed=3)
  synthetic.generate(str(tmp_path / "a"), cfg)
  synthetic.generate(str(tmp_path / "b"), cfg)
  synthetic.generate(str(tmp_path / "c"),
                     synthetic.SyntheticConfig(num_tracks=6, seconds=2.0,
                                               seed=4))
  assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
  assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_paired_midi_and_audio_with_labels(tmp_path):
  path = synthetic.generate(str(tmp_path),
                            synthetic.SyntheticConfig(num_tracks=20,
                                                      seconds=3.0))
  rows = list(csv.DictReader(open(path)))
  assert {r["label"] for r in rows} == set(synthetic.GENRES)
  assert len({r["artist"] for r in rows}) == 10
  for r in rows:
    wav, sr = soundfile.read(tmp_path / r["path"])
    pm = pretty_midi.PrettyMIDI(str(tmp_path / r["midi"]))
    assert sr == 22050 and wav.ndim == 1 and len(wav) == 3 * 22050
    assert np.max(np.abs(wav)) > 0.5
    tags = set(r["tags"].split(";"))
    assert len(tags & {"fast", "slow"}) == 1
    assert len(tags & {"major", "minor"}) == 1
    names = {i.name for i in pm.instruments}
    assert names <= tags and names & set(synthetic.INSTRUMENTS)
    assert r["artist"].startswith(r["label"])


def test_rendering_follows_the_midi():
  pm = pretty_midi.PrettyMIDI()
  inst = pretty_midi.Instrument(program=73, name="flute")
  inst.notes.append(pretty_midi.Note(100, 69, 0.5, 1.0))  # A4, 440 Hz
  pm.instruments.append(inst)
  wav = synthetic.render(pm, 22050, seconds=2.0)
  assert np.abs(wav[:int(0.45 * 22050)]).max() < 1e-6
  body = wav[int(0.6 * 22050):int(0.9 * 22050)]
  spec = np.abs(np.fft.rfft(body * np.hanning(len(body))))
  assert abs(np.argmax(spec) * 22050 / len(body) - 440) < 5


def test_genres_differ_in_timbre_tempo_and_mode():
  rng = np.random.default_rng(0)
  tempos = {g: [] for g in synthetic.GENRES}
  for i in range(40):
    artist = sorted(synthetic.ARTISTS)[i % 10]
    pm, tags = synthetic.compose(rng, artist, 4.0)
    tempos[synthetic.ARTISTS[artist]["genre"]].append(pm.get_tempo_changes()[1][0])
  assert np.mean(tempos["electronic"]) > np.mean(tempos["ballad"]) + 30
