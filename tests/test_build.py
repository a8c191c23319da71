"""`prepare`: features, splits, bad files, resumability, CLI."""
import json
import os
import subprocess
import sys

import librosa
import numpy as np
import pretty_midi
import pytest
import soundfile

from jaxmusic.data import build, pipeline, records

SR = 22050


def _tone(path, seconds=3.0, freq=440.0, amp=0.3):
  t = np.arange(int(SR * seconds)) / SR
  soundfile.write(path, amp * np.sin(2 * np.pi * freq * t), SR)


def _collection(root):
  """Six good tracks and one of each kind of bad file."""
  os.makedirs(root, exist_ok=True)
  rows = ["path,midi,label"]
  for i in range(6):
    _tone(os.path.join(root, f"good{i}.wav"), freq=220 * (1 + i % 3))
    rows.append(f"good{i}.wav,,{'ab'[i % 2]}")
  with open(os.path.join(root, "corrupt.wav"), "wb") as f:
    f.write(b"RIFF\x00\x00garbage" * 10)
  rows.append("corrupt.wav,,a")
  soundfile.write(os.path.join(root, "silent.wav"), np.zeros(SR * 3), SR)
  rows.append("silent.wav,,a")
  soundfile.write(os.path.join(root, "empty.wav"), np.zeros(0), SR)
  rows.append("empty.wav,,a")
  _tone(os.path.join(root, "short.wav"), seconds=0.5)
  rows.append("short.wav,,b")
  _tone(os.path.join(root, "paired.wav"))
  with open(os.path.join(root, "broken.mid"), "wb") as f:
    f.write(b"MThd not really midi")
  rows.append("paired.wav,broken.mid,b")
  with open(os.path.join(root, "m.csv"), "w") as f:
    f.write("\n".join(rows) + "\n")
  return os.path.join(root, "m.csv")


def test_bad_files_rejected_with_reasons_rest_kept(tmp_path):
  csv_path = _collection(str(tmp_path / "in"))
  out = str(tmp_path / "out")
  m = build.prepare("csv", csv_path, out, features=("waveform",),
                    segment_seconds=1.0, progress=False)
  assert sum(s["num_tracks"] for s in m["splits"].values()) == 6
  rejected = {os.path.basename(r["path"]): r["reason"] for r in map(
      json.loads, open(os.path.join(out, records.REJECTED)))}
  assert set(rejected) == {"corrupt.wav", "silent.wav", "empty.wav",
                           "short.wav", "paired.wav"}
  assert "cannot decode" in rejected["corrupt.wav"]
  assert rejected["silent.wav"] == "silent audio"
  assert rejected["empty.wav"] in ("empty audio", ) or "decode" in rejected["empty.wav"]
  assert "shorter than one segment" in rejected["short.wav"]
  assert "unreadable MIDI" in rejected["paired.wav"]


def test_nothing_usable_exits_nonzero_with_one_line(tmp_path):
  root = tmp_path / "in"
  root.mkdir()
  soundfile.write(root / "silent.wav", np.zeros(SR * 2), SR)
  proc = subprocess.run(
      [sys.executable, "-m", "jaxmusic.prepare", "--source=folder",
       f"--input={root}", f"--output={tmp_path / 'out'}"],
      capture_output=True, text=True, timeout=300)
  assert proc.returncode == 1
  assert "no usable track" in proc.stderr.strip().splitlines()[-1]


def test_no_track_in_two_splits_and_split_column_honoured(tiny_corpus):
  m = records.load_manifest(tiny_corpus)
  ids = [t["id"] for s in m["splits"].values() for t in s["tracks"]]
  assert len(ids) == len(set(ids)) == 60
  # The synthetic corpus's split column: 5:1:1 per artist.
  assert [m["splits"][s]["num_tracks"] for s in records.SPLITS] == [40, 10, 10]
  assert build.assign_split("some/track") == build.assign_split("some/track")
  counts = {s: 0 for s in records.SPLITS}
  for i in range(2000):
    counts[build.assign_split(f"t{i}")] += 1
  assert 1500 < counts["train"] < 1700 and 130 < counts["test"] < 270


def test_stored_features_equal_librosa(tiny_corpus):
  data = pipeline.PreparedData(tiny_corpus)
  m = data.manifest
  track = data.tracks("train")[3]
  n = track["num_segments"]
  wav, _ = librosa.load(track["path"], sr=SR, mono=True)
  wav = wav[: n * data.segment_samples]
  recs = [data.read("train", track["first_record"] + s) for s in range(n)]
  stored_wav = np.concatenate([r["waveform"] for r in recs])
  np.testing.assert_allclose(stored_wav / 32767.0, wav, atol=1.0 / 32767)
  F = m["frames_per_segment"]
  ref_mel = librosa.power_to_db(librosa.feature.melspectrogram(
      y=wav, sr=SR, n_fft=2048, hop_length=512, n_mels=128), top_db=80.0)
  ref_cqt = np.abs(librosa.cqt(wav, sr=SR, hop_length=512, n_bins=84))
  pm = pretty_midi.PrettyMIDI(track["path"][:-4] + ".mid")
  ref_roll = pm.get_piano_roll(fs=SR / 512)
  for s, r in enumerate(recs):
    np.testing.assert_allclose(r["logmel"], ref_mel[:, s * F:(s + 1) * F],
                               atol=1e-3)
    np.testing.assert_allclose(r["cqt"], ref_cqt[:, s * F:(s + 1) * F],
                               rtol=1e-4, atol=1e-6)
    want = ref_roll[:, s * F:(s + 1) * F]
    np.testing.assert_array_equal(r["pianoroll"][:, :want.shape[1]],
                                  np.clip(want, 0, 127).astype(np.uint8))
    assert r["segment"] == s and r["offset"] == pytest.approx(
        s * data.segment_samples / SR)


def test_rerun_skips_completed_and_resumes_partial(tmp_path, monkeypatch):
  csv_path = _collection(str(tmp_path / "in"))
  out = str(tmp_path / "out")
  calls, crash = [], [True]
  real = build.process_track

  def counting(track, *a, **k):
    calls.append(track.track_id)
    if len(calls) == 3 and crash and crash.pop():
      raise SystemExit("killed mid-way")
    return real(track, *a, **k)

  monkeypatch.setattr(build, "process_track", counting)
  with pytest.raises(SystemExit):
    build.prepare("csv", csv_path, out, features=("waveform",),
                  segment_seconds=1.0, progress=False)
  done_before = calls[:2]
  calls.clear()
  first = build.prepare("csv", csv_path, out, features=("waveform",),
                        segment_seconds=1.0, progress=False)
  assert not set(done_before) & set(calls)  # finished tracks were skipped
  assert len(calls) == 11 - len(done_before)
  calls.clear()
  again = build.prepare("csv", csv_path, out, features=("waveform",),
                        segment_seconds=1.0, progress=False)
  assert calls == [] and again == first


def test_cli_writes_manifest_and_summary(tmp_path):
  csv_path = _collection(str(tmp_path / "in"))
  proc = subprocess.run(
      [sys.executable, "-m", "jaxmusic.prepare", "--source=csv",
       f"--input={csv_path}", f"--output={tmp_path / 'out'}",
       "--features=waveform,chroma,mfcc", "--segment_seconds=1",
       "--workers=2"], capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr
  assert "prepared 6 tracks" in proc.stdout and "rejected 5" in proc.stdout
  m = records.load_manifest(str(tmp_path / "out"))
  assert m["shapes"]["chroma"] == ["float32", [12, 43]]
  assert m["shapes"]["mfcc"] == ["float32", [20, 43]]
  assert m["vocab"]["label"] == ["a", "b"] and records.verify(
      str(tmp_path / "out"), m)
