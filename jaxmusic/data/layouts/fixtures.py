"""Tiny stand-ins for the benchmark datasets, each in its exact layout
(file names, annotation files, split lists) with a few short clips, so the
layouts, `jaxmusic.benchmark` and its docs example run without the data.

Each clip is a synthetic signal that carries its targets: a tone per class
(a key's triad, a note's pitch, a singer's or technique's own partials), a
tone per tag, a level that follows arousal and valence, clicks on the
annotated beats. They stand for the
layouts, not for the music: numbers on them say only that the pipeline
runs.

  python -m jaxmusic.data.layouts.fixtures OUT   # OUT/GTZAN, OUT/GS, ...
"""

import hashlib
import json
import os
import sys

import numpy as np
import soundfile

from jaxmusic.data.layouts import giantsteps_key
from jaxmusic.data.layouts import gtzan_filtered

SR = 22050
SECONDS = 1.0


def _freq(name: str) -> float:
  """A class's own frequency, 200-1000 Hz, from its name."""
  return 200.0 + int(hashlib.sha1(name.encode()).hexdigest(), 16) % 800


def _write(path: str, freqs, level: float = 0.3, channels: int = 1,
           sr: int = SR, seconds: float = SECONDS, seed: int = 0,
           extra=None):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  t = np.arange(int(sr * seconds)) / sr
  rng = np.random.default_rng(int(hashlib.sha1(path.encode()).hexdigest(),
                                  16) % 2**32 + seed)
  wav = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3)) for f in freqs)
  wav = level * wav / max(len(freqs), 1) + 0.02 * rng.standard_normal(len(t))
  if extra is not None:
    wav = wav + extra
  wav = np.repeat(wav[:, None], channels, 1) * np.arange(1, channels + 1)
  # Formats by extension, as the datasets ship them (Sun .au, MP3, WAV).
  soundfile.write(path, (wav / channels).astype(np.float32), sr)


def _midi_hz(note: float) -> float:
  return 440.0 * 2 ** ((note - 69) / 12)


def clicks(beats_s, sr: int, seconds: float) -> np.ndarray:
  """A 5 ms click on every beat."""
  out = np.zeros(int(sr * seconds), np.float32)
  n = int(0.005 * sr)
  for b in beats_s:
    i = int(b * sr)
    out[i:i + n] += np.hanning(2 * n)[n:][:len(out[i:i + n])]
  return out


def gtzan(root: str, per_split=(4, 2, 2), genres=("blues", "jazz", "rock"),
          seconds: float = 8.0):
  """Fault-filtered clips of `genres`, each a genre tone and clicks on its
  beats (70-150 BPM), with GTZAN-Rhythm's JAMS beside: beats, and every
  fourth beat as a downbeat."""
  split = gtzan_filtered.splits()
  for genre in genres:
    for name, n in zip(("train", "valid", "test"), per_split):
      clips = sorted(c for c, s in split.items()
                     if s == name and c.startswith(genre + "."))[:n]
      for clip in clips:
        path = os.path.join(root, "genres", genre, f"{clip}.au")
        period = 60.0 / (70 + _freq(clip) % 80)
        beats = np.arange(0.2, seconds - 0.1, period)
        _write(path, [_freq(genre)], seconds=seconds, level=0.1,
               extra=clicks(beats, SR, seconds))
        _jams(os.path.join(root, "jams", f"{clip}.wav.jams"), beats,
              seconds)


def _jams(path: str, beats, seconds: float):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  ann = lambda kind, times: {
      "namespace": "beat", "sandbox": {"annotation_type": kind},
      "data": [{"time": float(t), "duration": 0.0, "value": i % 4 + 1,
                "confidence": 1.0} for i, t in enumerate(times)]}
  with open(path, "w") as f:
    json.dump({"file_metadata": {"duration": seconds},
               "annotations": [ann("downbeat", beats[::4]),
                               ann("beat", beats)]}, f)


def giantsteps(root: str):
  """Train/valid from the MTG key set (artists cut by their hash), test
  from the key set; keys C, G and A minor, and one low-confidence row."""
  keys = ("C major", "G major", "A minor")
  tonic = {"C": 60, "G": 67, "A": 57}
  mtg = os.path.join(root, "giantsteps-mtg-key-dataset-fd7b8c5")
  # Artists 0 and 2 hash to valid, the rest to train.
  rows = [(i, f"Artist {i % 9}", keys[i % 3], 2) for i in range(1, 25)]
  rows.append((25, "Artist 1", "D major", 1))
  os.makedirs(os.path.join(mtg, "annotations"), exist_ok=True)
  os.makedirs(os.path.join(mtg, "md5"), exist_ok=True)
  with open(os.path.join(mtg, "annotations", "beatport_metadata.txt"),
            "w") as f:
    f.write("ID\tARTIST\tTITLE\n" + "".join(f"{i}\t{a}\tTrack {i}\n"
                                            for i, a, _, _ in rows))
  with open(os.path.join(mtg, "annotations", "annotations.txt"), "w") as f:
    f.write("ID\tMANUAL KEY\tC\n" + "".join(f"{i}\t{k}\t{c}\n"
                                            for i, _, k, c in rows))
  test = os.path.join(root, "giantsteps-key-dataset-c8cb8aa")
  os.makedirs(os.path.join(test, "annotations", "key"), exist_ok=True)
  os.makedirs(os.path.join(test, "md5"), exist_ok=True)
  tests = [(100 + i, keys[i % 3]) for i in range(9)]
  for i, key in tests:
    with open(os.path.join(test, "annotations", "key", f"{i}.LOFI.key"),
              "w") as f:
      f.write(key)
  for code, items in ((mtg, [(i, k) for i, _, k, _ in rows]), (test, tests)):
    for i, key in items:
      with open(os.path.join(code, "md5", f"{i}.LOFI.mp3.md5"), "w") as f:
        f.write("0\n")
      name = giantsteps_key.key_label(key, "fixture")
      root_note = tonic.get(name[0], 62)
      third = 3 if name.endswith("minor") else 4
      _write(os.path.join(code, "audio", f"{i}.LOFI.mp3"),
             [_midi_hz(root_note + d) for d in (0, third, 7)])


def emomusic(root: str, n: int = 30):
  info = ["song_id,file_name,Artist,Song title,Genre,Mediaeval 2013 set"]
  static = ["song_id, mean_arousal, std_arousal, mean_valence, std_valence"]
  rng = np.random.default_rng(0)
  # The split hashes the letters of the artist's name: ABBA and Nina
  # Simone go to valid, the others to train.
  artists = ("ABBA", "Nina Simone", "The Beatles", "Björk", "Queen",
             "Prince", "Madonna")
  for i in range(1, n + 1):
    arousal, valence = rng.uniform(1, 9, 2)
    info.append(f"{i},{i}.mp3,{artists[i % len(artists)]},Song {i},Rock,"
                + ("evaluation" if i % 4 == 0 else "development"))
    static.append(f"{i}, {arousal:.3f}, 0.5, {valence:.3f}, 0.5")
    # Arousal is the level, valence the pitch.
    _write(os.path.join(root, "clips_45seconds", f"{i}.mp3"),
           [200.0 + 60.0 * valence], level=0.05 * arousal)
  for name, lines in (("songs_info.csv", info),
                      ("static_annotations.csv", static)):
    with open(os.path.join(root, name), "w") as f:
      f.write("\n".join(lines) + "\n")


def nsynth(root: str, families=("brass", "organ", "string"),
           pitches=(48, 60, 72), per=(2, 1, 1)):
  for k, ((folder, split), count) in enumerate(zip(
      (("nsynth-train", "train"), ("nsynth-valid", "valid"),
       ("nsynth-test", "test")), per)):
    notes = {}
    for fam in families:
      # Each split has its own instruments, as NSynth's do.
      for n in range(10 * k, 10 * k + count):
        for pitch in pitches:
          name = f"{fam}_acoustic_{n:03d}-{pitch:03d}-100"
          notes[name] = {
              "note_str": name, "pitch": pitch, "velocity": 100,
              "sample_rate": 16000, "instrument_family_str": fam,
              "instrument_str": f"{fam}_acoustic_{n:03d}",
              "instrument_source_str": "acoustic",
              "qualities_str": [], "split": split}
          # The family is a partial beside the note.
          _write(os.path.join(root, folder, "audio", f"{name}.wav"),
                 [_midi_hz(pitch), _freq(fam)], sr=16000)
    with open(os.path.join(root, folder, "examples.json"), "w") as f:
      json.dump(notes, f)


def vocalset(root: str, singers=("f1", "f2", "f3", "m1", "m2", "m3"),
             techniques=("belt", "breathy", "vibrato"), takes=3):
  for singer in singers:
    for tech in techniques:
      for take in range(takes):
        _write(os.path.join(root, "FULL", singer, "scales", tech,
                            f"{singer}_scales_{tech}_{'aei'[take]}.wav"),
               [_freq(singer), _freq(tech)], sr=44100)


def mtg_jamendo(root: str, n: int = 30):
  """The four split-0 subsets over one set of tracks; every track's tags
  are tones."""
  tags = {"genre": ("genre---rock", "genre---pop"),
          "instrument": ("instrument---piano", "instrument---guitar"),
          "moodtheme": ("mood/theme---happy", "mood/theme---sad")}
  tags["top50tags"] = tags["genre"] + tags["instrument"]
  splits = os.path.join(root, "mtg-jamendo-dataset", "data", "splits",
                        "split-0")
  os.makedirs(splits, exist_ok=True)
  rows = {s: [] for s in ("train", "validation", "test")}
  rng = np.random.default_rng(1)
  for i in range(n):
    split = ("test", "validation", "train", "train", "train")[i % 5]
    on = {sub: [t for t in ts if rng.random() < 0.5] or [ts[0]]
          for sub, ts in tags.items() if sub != "top50tags"}
    on["top50tags"] = on["genre"] + on["instrument"]
    path = f"{i:02d}/{i}.mp3"
    rows[split].append((i, path, on))
    _write(os.path.join(root, "audio", path),
           [_freq(t) for sub in ("genre", "instrument", "moodtheme")
            for t in on[sub]])
  head = "TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS\n"
  for sub in tags:
    for split, items in rows.items():
      with open(os.path.join(splits, f"autotagging_{sub}-{split}.tsv"),
                "w") as f:
        f.write(head + "".join(
            f"track_{i:07d}\tartist_{i % 7:06d}\talbum_{i:06d}\t{p}\t30.0\t"
            + "\t".join(on[sub]) + "\n" for i, p, on in items))


def magnatagatune(root: str, n: int = 48,
                  tags=("guitar", "classical", "slow", "techno")):
  """`annotations_final.csv` (tab-separated 0/1 tag columns) and the mp3
  folders whose first character is the split (0-b train, c valid, d-f
  test)."""
  folders = "0123456789abcdef"
  rng = np.random.default_rng(2)
  lines = ["\t".join(("clip_id",) + tags + ("mp3_path",))]
  for i in range(n):
    on = [t for t in tags if rng.random() < 0.5] or [tags[0]]
    # Every fourth clip valid or test, as the folders' 12:1:3 would be.
    folder = folders[(i * 5) % 16]
    rel = f"{folder}/artist_{i}-album-{i:02d}-song.mp3"
    lines.append("\t".join([str(i)] + ["1" if t in on else "0"
                                        for t in tags] + [rel]))
    _write(os.path.join(root, rel), [_freq(t) for t in on])
  with open(os.path.join(root, "annotations_final.csv"), "w") as f:
    f.write("\n".join(lines) + "\n")


def dcase2018_task5(root: str, activities=("absence", "cooking", "dishwashing"),
                    per_fold: int = 2):
  setup = os.path.join(root, "evaluation_setup")
  os.makedirs(setup, exist_ok=True)
  folds = {k: [(f"DevNode{k}_ex{i}_{j}", act, f"DevNode{k}_ex{i}")
               for i, act in enumerate(activities) for j in range(per_fold)]
           for k in (1, 2, 3, 4)}
  meta = []
  for k, rows in folds.items():
    for name, activity, session in rows:
      _write(os.path.join(root, "audio", f"{name}.wav"), [_freq(activity)],
             channels=4, sr=16000)
      meta.append(f"audio/{name}.wav\t{activity}\t{session}\n")
    with open(os.path.join(setup, f"fold{k}_test.txt"), "w") as f:
      f.write("".join(f"audio/{n}.wav\n" for n, _, _ in rows))
    with open(os.path.join(setup, f"fold{k}_evaluate.txt"), "w") as f:
      f.write("".join(f"audio/{n}.wav\t{a}\n" for n, a, _ in rows))
    with open(os.path.join(setup, f"fold{k}_train.txt"), "w") as f:
      f.write("".join(f"audio/{n}.wav\t{a}\t{s}\n"
                      for j, other in folds.items() if j != k
                      for n, a, s in other))
  with open(os.path.join(root, "meta.txt"), "w") as f:
    f.write("".join(meta))


# Each writer and the folder `jaxmusic.benchmark` looks for it in.
WRITERS = {"MTT": magnatagatune, "GTZAN": gtzan, "GS": giantsteps, "EMO": emomusic,
           "NSynth": nsynth, "VocalSet": vocalset, "MTG": mtg_jamendo,
           "DCASE2018-task5-dev": dcase2018_task5}


def write(root: str, names=None) -> list[str]:
  """Writes the fixtures `names` (default: all) under `root`; returns
  their folders."""
  out = []
  for name in names or WRITERS:
    WRITERS[name](os.path.join(root, name))
    out.append(os.path.join(root, name))
  return out


if __name__ == "__main__":
  if len(sys.argv) != 2:
    raise SystemExit("usage: python -m jaxmusic.data.layouts.fixtures OUT")
  print("\n".join(write(sys.argv[1])))
