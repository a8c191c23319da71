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

from jaxmusic import defaults
from jaxmusic.data import build, decode, pipeline, records
from jaxmusic.data import features as feats

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
  lines = [json.loads(l) for l in open(os.path.join(out, records.REJECTED))]
  rejected = {os.path.basename(r["path"]): r["reason"] for r in lines}
  assert set(rejected) == {"corrupt.wav", "silent.wav", "empty.wav",
                           "short.wav", "paired.wav"}
  assert rejected == {
      "corrupt.wav": "not an audio file or an unsupported encoding",
      "silent.wav": "silent (peak below -80 dBFS)",
      "empty.wav": "no samples (a header with an empty body)",
      "short.wav": "shorter than one segment (0.5 s < 1.0 s)",
      "paired.wav": "not a readable MIDI file"}
  # The decoder's own words are kept apart, for bug reports.
  detail = {os.path.basename(r["path"]): r["detail"] for r in lines}
  assert "LibsndfileError" in detail["corrupt.wav"]
  assert detail["silent.wav"] == ""


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
    np.testing.assert_array_equal(r["multitrack"][:feats.PITCHES],
                                  r["pianoroll"])
    assert r["segment"] == s and r["offset"] == pytest.approx(
        s * data.segment_samples / SR)


def test_multitrack_roll_keeps_instruments_and_drums():
  """The multitrack roll is the piano roll, then one lane per GM family
  (its loudest note's velocity at each frame), then one per GM drum key;
  pretty_midi's roll has neither the instruments apart nor the drums."""
  pm = pretty_midi.PrettyMIDI()
  piano = pretty_midi.Instrument(program=2)  # family 0
  piano.notes.append(pretty_midi.Note(80, 60, 0.0, 0.5))
  piano.notes.append(pretty_midi.Note(100, 64, 0.25, 0.5))
  bass = pretty_midi.Instrument(program=33)  # family 4
  bass.notes.append(pretty_midi.Note(70, 36, 0.5, 1.0))
  kit = pretty_midi.Instrument(program=0, is_drum=True)
  kit.notes.append(pretty_midi.Note(110, 36, 0.0, 0.01))  # kick, < 1 frame
  kit.notes.append(pretty_midi.Note(60, 42, 0.5, 0.6))  # closed hi-hat
  kit.notes.append(pretty_midi.Note(90, 20, 0.5, 0.6))  # outside GM's map
  pm.instruments += [piano, bass, kit]
  cfg = feats.FeatureConfig()
  fs = cfg.sample_rate / cfg.hop_length
  n = 50
  got = feats.multitrack(pm, n, cfg)
  assert got.shape == (feats.MULTITRACK_ROWS, n) == (191, n)
  # Configs name the roll inputs without importing this module.
  assert defaults.MIDI_INPUTS == feats.MIDI_FEATURES
  assert got.dtype == np.uint8
  np.testing.assert_array_equal(got[:128], feats.pianoroll(pm, n, cfg))
  assert not got[:128, :int(0.5 * fs)][36].any()  # no drums among pitches
  frame = lambda t: int(t * fs)
  families = got[128:144]
  want = np.zeros(n, np.uint8)
  want[frame(0.0):frame(0.5)] = 80
  want[frame(0.25):frame(0.5)] = 100
  np.testing.assert_array_equal(families[0], want)
  want = np.zeros(n, np.uint8)
  want[frame(0.5):frame(1.0)] = 70
  np.testing.assert_array_equal(families[4], want)
  assert not families[[1, 2, 3] + list(range(5, 16))].any()
  drums = got[144:]
  assert drums[36 - 35, 0] == 110 and drums[36 - 35, 1:].sum() == 0
  np.testing.assert_array_equal(np.nonzero(drums[42 - 35])[0],
                                np.arange(frame(0.5), frame(0.6)))
  assert np.count_nonzero(drums) == 1 + frame(0.6) - frame(0.5)


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


def _tracks(labels_counts):
  from jaxmusic.data import sources
  return [sources.Track(f"{label}/{i:03d}", label=label)
          for label, n in labels_counts for i in range(n)]


def _by_split(tracks, chosen):
  out = {s: [] for s in records.SPLITS}
  for t in tracks:
    out[t.split or chosen[t.track_id]].append(t)
  return out


def test_splits_are_stratified_deterministic_and_never_empty():
  tracks = _tracks([("a", 50), ("b", 30), ("c", 20)])
  chosen, warnings = build.assign_splits(tracks)
  assert warnings == []
  splits = _by_split(tracks, chosen)
  for split, frac in zip(records.SPLITS, build.DEFAULT_FRACTIONS):
    for label, n in (("a", 50), ("b", 30), ("c", 20)):
      assert sum(t.label == label for t in splits[split]) == round(frac * n)
  # File order does not move a track.
  again, _ = build.assign_splits(tracks[::-1])
  assert again == chosen
  # Unlabelled sets are cut by the same fractions.
  plain = [build.sources.Track(f"t{i}") for i in range(10)]
  counts = [len(v) for v in _by_split(plain, build.assign_splits(plain)[0])
            .values()]
  assert counts == [8, 1, 1]
  # Three tracks of three labels still reach every split.
  few = _tracks([("a", 1), ("b", 1), ("c", 1)])
  chosen, warnings = build.assign_splits(few)
  assert sorted(chosen.values()) == ["test", "train", "valid"]
  assert len(warnings) == 3


def test_a_source_split_column_wins():
  tracks = _tracks([("a", 6)])
  for t in tracks[:3]:
    t.split = "train"
  chosen, _ = build.assign_splits(tracks)
  assert set(chosen) == {t.track_id for t in tracks[3:]}
  assert sorted(chosen.values()) == ["test", "train", "valid"]


def _label_folders(root, counts, seconds=1.5):
  for label, n in counts:
    (root / label).mkdir(parents=True)
    for i in range(n):
      _tone(str(root / label / f"{label}{i}.wav"), seconds=seconds,
            freq=220 * (i + 1))


def test_ten_tracks_over_two_labels_can_be_probed(tmp_path, caplog):
  _label_folders(tmp_path / "in", [("jazz", 5), ("rock", 5)])
  m = build.prepare("gtzan", str(tmp_path / "in"), str(tmp_path / "out"),
                    features=("waveform",), segment_seconds=1.0,
                    progress=False)
  for split, want in zip(records.SPLITS, (3, 1, 1)):
    labels = sorted(t["label"] for t in m["splits"][split]["tracks"])
    assert labels == sorted([0] * want + [1] * want), split
  assert m["split_warnings"] == []
  # A label of 2 tracks cannot reach all three splits: named in a warning.
  _label_folders(tmp_path / "in2", [("jazz", 5), ("solo", 2)])
  with caplog.at_level("WARNING"):
    m = build.prepare("gtzan", str(tmp_path / "in2"), str(tmp_path / "out2"),
                      features=("waveform",), segment_seconds=1.0,
                      progress=False)
  assert m["split_warnings"] == [
      "label 'solo' has 2 track(s): too few to reach valid"]
  assert "'solo'" in caplog.text
  assert all(m["splits"][s]["num_tracks"] for s in records.SPLITS)


def test_every_file_accounted_for_and_opus_decoded(tmp_path):
  """A label stored as Ogg Opus (48 kHz stereo) is prepared, not dropped;
  every other file is rejected with a reason or ignored by a stated rule."""
  root = tmp_path / "in"
  _label_folders(root, [("wav", 3)])
  (root / "opus").mkdir()
  t = np.arange(48000 * 2) / 48000
  for i in range(3):
    stereo = 0.3 * np.stack([np.sin(2 * np.pi * 330 * (i + 1) * t)] * 2, 1)
    soundfile.write(root / "opus" / f"o{i}.opus", stereo, 48000,
                    format="OGG", subtype="OPUS")
  (root / "opus" / "cover.jpg").write_bytes(b"\xff\xd8")
  (root / "wav" / "readme.txt").write_text("liner notes")
  (root / "wav" / "bad.wav").write_bytes(b"")
  (root / "wav" / "song.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " * 8)
  out = tmp_path / "out"
  m = build.prepare("gtzan", str(root), str(out), features=("waveform",),
                    segment_seconds=1.0, progress=False)
  assert m["vocab"]["label"] == ["opus", "wav"]
  opus = [t for s in m["splits"].values() for t in s["tracks"]
          if t["path"].endswith(".opus")]
  assert len(opus) == 3 and all(t["num_segments"] == 2 for t in opus)
  rejected = {os.path.basename(r["path"]): r["reason"] for r in map(
      json.loads, open(out / records.REJECTED))}
  import audioread
  has_ffmpeg = any("FFmpeg" in b.__name__
                   for b in audioread.available_backends())
  assert rejected == {
      "bad.wav": "empty file (0 bytes)",
      "song.m4a": ("not an audio file or an unsupported encoding"
                   if has_ffmpeg else "no decoder for .m4a here: install "
                   "ffmpeg")}
  assert m["ignored"] == {".jpg": 1, ".txt": 1}
  files = sum(len(f) for _, _, f in os.walk(root))
  prepared = sum(s["num_tracks"] for s in m["splits"].values())
  assert prepared + len(rejected) + sum(m["ignored"].values()) == files
  text = build.summary(m)
  assert text.endswith("rejected 2 (see rejected.jsonl); ignored 2 files "
                       "(.jpg x1, .txt x1)")


def test_bad_audio_reasons_in_words(tmp_path):
  wav = tmp_path / "long.wav"
  _tone(str(wav), seconds=15.0)
  (tmp_path / "trunc.wav").write_bytes(wav.read_bytes()[:44 + 441 * 2])
  soundfile.write(tmp_path / "nan.wav",
                  np.full(SR, np.nan, np.float32), SR, subtype="FLOAT")
  soundfile.write(tmp_path / "quiet.wav", np.full(SR, 5e-5), SR,
                  subtype="FLOAT")
  reasons = {}
  for name in ("trunc.wav", "nan.wav", "quiet.wav", "missing.wav"):
    with pytest.raises(build.Rejected) as e:
      build.decode.load_audio(str(tmp_path / name), SR)
    reasons[name] = e.value.reason
  assert reasons == {
      "trunc.wav": "truncated: header promises 15.0 s, file holds 0.02 s",
      "nan.wav": "contains NaN or infinite samples",
      "quiet.wav": "silent (peak below -80 dBFS)",
      "missing.wav": "file not found or unreadable"}
  # Just above the threshold is kept, and decoding matches librosa.load.
  soundfile.write(tmp_path / "soft.wav", np.full(SR, 2e-4), SR,
                  subtype="FLOAT")
  np.testing.assert_allclose(
      build.decode.load_audio(str(tmp_path / "soft.wav"), 16000),
      librosa.load(str(tmp_path / "soft.wav"), sr=16000)[0], atol=1e-6)


def test_synthetic_source_prepares_with_the_defaults(tmp_path):
  proc = subprocess.run(
      [sys.executable, "-m", "jaxmusic.prepare", "--source=synthetic",
       f"--output={tmp_path / 'out'}", "--synthetic_tracks=20",
       "--features=waveform"], capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr
  assert "prepared 20 tracks" in proc.stdout and "rejected 0" in proc.stdout
  m = records.load_manifest(str(tmp_path / "out"))
  # The source's own default segment, 3 s (the tracks are 6 s long).
  assert m["segment_samples"] == round(3 * 22050 / 512) * 512


def test_beam_runner_output_is_byte_identical_to_local(tmp_path):
  """`--runner beam` (the DirectRunner, 2 worker processes) writes the
  same records, rejections and manifest as the local runner."""
  csv_path = _collection(str(tmp_path / "in"))
  local = str(tmp_path / "local")
  build.prepare("csv", csv_path, local, features=("waveform", "logmel"),
                segment_seconds=1.0, progress=False)
  beam = str(tmp_path / "beam")
  proc = subprocess.run(
      [sys.executable, "-m", "jaxmusic.prepare", "--source=csv",
       f"--input={csv_path}", f"--output={beam}",
       "--features=waveform,logmel", "--segment_seconds=1", "--workers=2",
       "--runner=beam"], capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "prepared 6 tracks" in proc.stdout and "rejected 5" in proc.stdout
  names = sorted(n for n in os.listdir(local) if not n.startswith("."))
  assert names == sorted(n for n in os.listdir(beam) if not n.startswith("."))
  assert any(n.endswith(".array_record") for n in names)
  for name in names:
    with open(os.path.join(local, name), "rb") as a, \
        open(os.path.join(beam, name), "rb") as b:
      assert a.read() == b.read(), name
  bad = subprocess.run(
      [sys.executable, "-m", "jaxmusic.prepare", "--source=csv",
       f"--input={csv_path}", f"--output={tmp_path / 'x'}", "--",
       "--runner=DirectRunner"], capture_output=True, text=True, timeout=300)
  assert bad.returncode == 2 and "need --runner=beam" in bad.stderr


def test_long_fine_grained_midi_is_retimed_not_rejected(tmp_path):
  """music21 writes 10,080 ticks a quarter: past pretty_midi's 1e7-tick
  guard in ~8 minutes. Such a file is read re-timed at 480 ticks a beat,
  every note within half a tick of its time in the file."""
  import mido  # pylint: disable=g-import-not-at-top
  path = str(tmp_path / "long.mid")
  mid = mido.MidiFile(ticks_per_beat=10080)
  track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000)])
  # 1,100 quarter notes of 10,080 ticks, one note a beat at odd offsets.
  starts = [b * 10080 + (b * 37) % 5000 for b in range(1100)]
  last = 0
  for b, start in enumerate(starts):
    track.append(mido.Message("note_on", note=60 + b % 12, velocity=80,
                              time=start - last))
    track.append(mido.Message("note_off", note=60 + b % 12, velocity=0,
                              time=5000))
    last = start + 5000
  mid.tracks.append(track)
  mid.save(path)
  with pytest.raises(ValueError, match="largest tick"):
    pretty_midi.PrettyMIDI(path)
  notes = decode.load_midi(path).instruments[0].notes
  want_s = np.array(starts) / 10080 * 0.5
  np.testing.assert_allclose([n.start for n in notes], want_s,
                             atol=0.5 * 0.5 / 480)
  assert len(notes) == 1100 and notes[-1].end == pytest.approx(
      (starts[-1] + 5000) / 10080 * 0.5, abs=0.5 * 0.5 / 480)
