"""The embedded default dataset: generated music with paired MIDI and audio.

Each track is composed as MIDI (pretty_midi) from a genre's recipe and an
artist's variation, then rendered at 22,050 Hz with additive-synthesis
timbres (harmonic profiles and ADSR envelopes) and noise-burst drums. The
labels are learnable but not trivial: genres differ in mode, tempo range,
rhythm density and instrument set, with overlapping tempi and optional
instruments, and each genre has artist sub-styles.

Each track also gets a title that carries musical information as real titles
do, mixed with noise words: a mode word, a tempo word and an instrument
name, each present with some probability (`title`), so that melody<->title
retrieval is learnable but not trivial.
"""

import csv
import dataclasses
import hashlib
import json
import os

import numpy as np
import pretty_midi

SAMPLE_RATE = 22050
SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "major_pentatonic": (0, 2, 4, 7, 9),
    "minor_pentatonic": (0, 3, 5, 7, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
}
MAJOR_SCALES = ("major", "mixolydian", "major_pentatonic")

# Timbres: harmonic amplitudes (k = 1..), ADSR in seconds/level, vibrato.
TIMBRES = {
    "piano": dict(program=0, harmonics=(1, .5, .3, .2, .12, .08, .05),
                  adsr=(.005, .6, .15, .2), vibrato=0.0),
    "strings": dict(program=48, harmonics=(1, .7, .5, .4, .3, .2, .15, .1),
                    adsr=(.25, .2, .8, .4), vibrato=5.0),
    "organ": dict(program=16, harmonics=(1, .9, 0, .6, 0, .4, 0, .3),
                  adsr=(.02, .05, .95, .08), vibrato=0.0),
    "synth_lead": dict(program=80, harmonics=(1, 0, .33, 0, .2, 0, .14, 0, .11),
                       adsr=(.01, .1, .7, .1), vibrato=6.0),
    "guitar": dict(program=25, harmonics=(1, .8, .55, .4, .3, .22, .15, .1),
                   adsr=(.003, .35, .05, .1), vibrato=0.0),
    "flute": dict(program=73, harmonics=(1, .15, .05),
                  adsr=(.08, .1, .85, .15), vibrato=4.5),
    "bass": dict(program=33, harmonics=(1, .6, .3, .15),
                 adsr=(.01, .3, .5, .08), vibrato=0.0),
}
INSTRUMENTS = tuple(TIMBRES) + ("drums",)

# Genres: scale choices, tempo range, notes per beat, core and optional
# instruments. Tempo ranges overlap on purpose.
GENRES = {
    "ballad": dict(scales=("major", "major_pentatonic"), tempo=(60, 92),
                   density=(0.5, 1.0), core=("piano",),
                   optional=("strings", "bass", "flute"), drums=0.3),
    "rock": dict(scales=("mixolydian", "minor_pentatonic"), tempo=(96, 150),
                 density=(2.0, 2.0), core=("guitar", "bass", "drums"),
                 optional=("organ", "synth_lead"), drums=1.0),
    "jazz": dict(scales=("dorian", "mixolydian"), tempo=(84, 160),
                 density=(1.0, 3.0), core=("organ", "bass"),
                 optional=("piano", "flute", "drums"), drums=0.6),
    "electronic": dict(scales=("minor", "harmonic_minor"), tempo=(118, 136),
                       density=(4.0, 2.0), core=("synth_lead", "bass", "drums"),
                       optional=("strings", "organ"), drums=1.0),
    "folk": dict(scales=("major_pentatonic", "major", "dorian"),
                 tempo=(76, 124), density=(1.0, 2.0), core=("guitar",),
                 optional=("flute", "strings", "bass", "drums"), drums=0.4),
}
# Two artists per genre: an octave shift, a tempo lean and a brightness.
ARTISTS = {f"{g}_{v}": dict(genre=g, octave=o, tempo_lean=lean, bright=b)
           for g in GENRES
           for v, (o, lean, b) in zip("ab", ((0, -1, 0.7), (1, 1, 1.3)))}


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
  num_tracks: int = 320
  seconds: float = 6.0
  seed: int = 0
  sample_rate: int = SAMPLE_RATE
  # Part of the cache key: bumped when generation or metadata changes
  # (2: a tempo column; 3: a title column), so stale cached corpora are not
  # reused.
  version: int = 3

  def key(self) -> str:
    blob = json.dumps(dataclasses.asdict(self), sort_keys=True).encode()
    return hashlib.sha1(blob).hexdigest()[:10]


def compose(rng: np.random.Generator, artist: str, seconds: float):
  """One track's MIDI and its labels."""
  style = ARTISTS[artist]
  genre = GENRES[style["genre"]]
  scale_name = genre["scales"][rng.integers(len(genre["scales"]))]
  scale = SCALES[scale_name]
  lo, hi = genre["tempo"]
  mid = (lo + hi) / 2
  tempo = rng.uniform(*((lo, mid + 6) if style["tempo_lean"] < 0
                        else (mid - 6, hi)))
  beat = 60.0 / tempo
  root = 48 + int(rng.integers(12)) + 12 * style["octave"]
  instruments = list(genre["core"])
  instruments += [i for i in genre["optional"] if rng.random() < 0.4]
  pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
  degrees = len(scale)
  progression = rng.choice(degrees, size=4) if degrees < 7 else (
      np.array([0, 4, 5, 3])[rng.permutation(4)])

  def pitch(degree, octave=0):
    return root + 12 * (octave + degree // degrees) + scale[degree % degrees]

  n_beats = int(seconds / beat) + 1
  for name in instruments:
    if name == "drums":
      continue
    inst = pretty_midi.Instrument(program=TIMBRES[name]["program"], name=name)
    if name == "bass":
      for b in range(n_beats):
        chord = progression[(b // 4) % 4]
        note = pitch(int(chord), -1)
        inst.notes.append(pretty_midi.Note(90, note, b * beat,
                                           (b + 0.9) * beat))
    elif name in ("strings", "organ") and name not in genre["core"]:
      for bar in range(n_beats // 4 + 1):
        chord = int(progression[bar % 4])
        for d in (0, 2, 4):
          inst.notes.append(pretty_midi.Note(60, pitch(chord + d),
                                             bar * 4 * beat,
                                             (bar + 1) * 4 * beat))
    else:
      per_beat = genre["density"][0] if name in genre["core"] else \
          genre["density"][1]
      step = beat / per_beat
      t, degree = 0.0, int(rng.integers(degrees))
      while t < seconds:
        if rng.random() < 0.85:
          degree = int(np.clip(degree + rng.integers(-2, 3), 0,
                               2 * degrees - 1))
          dur = step * (rng.choice([1, 1, 2]) if per_beat <= 1 else 1)
          inst.notes.append(pretty_midi.Note(
              int(rng.integers(70, 110)), pitch(degree),
              t, min(t + 0.95 * dur, seconds)))
        t += step
    pm.instruments.append(inst)
  if "drums" in instruments:
    kit = pretty_midi.Instrument(program=0, is_drum=True, name="drums")
    subdiv = 4 if style["genre"] == "electronic" else 2
    for i in range(int(n_beats * subdiv)):
      t = i * beat / subdiv
      if i % subdiv == 0 and (style["genre"] == "electronic" or
                              (i // subdiv) % 2 == 0):
        kit.notes.append(pretty_midi.Note(110, 36, t, t + 0.1))
      if i % subdiv == 0 and (i // subdiv) % 2 == 1:
        kit.notes.append(pretty_midi.Note(100, 38, t, t + 0.1))
      if rng.random() < genre["drums"]:
        kit.notes.append(pretty_midi.Note(70, 42, t, t + 0.05))
    pm.instruments.append(kit)
  tags = sorted(set(instruments)) + [
      "fast" if tempo >= 110 else "slow",
      "major" if scale_name in MAJOR_SCALES else "minor"]
  return pm, tags


# Title words. Mode and tempo words follow the tags; instrument names are
# the track's own; noise words carry nothing.
MODE_WORDS = {"major": ("Bright", "Sunny", "Golden", "Happy", "Major"),
              "minor": ("Dark", "Lonely", "Shadow", "Grey", "Minor")}
TEMPO_WORDS = {"fast": ("Rush", "Dance", "Racing", "Allegro", "Run"),
               "slow": ("Lullaby", "Drift", "Adagio", "Slow", "Dream")}
INSTRUMENT_WORDS = {"piano": "Piano", "strings": "Strings", "organ": "Organ",
                    "synth_lead": "Synth", "guitar": "Guitar",
                    "flute": "Flute", "bass": "Bass", "drums": "Drums"}
NOISE_WORDS = ("Blue", "River", "Night", "Song", "Tale", "Road", "City",
               "Heart", "Window", "Letter", "Summer", "Winter", "Echo",
               "Garden", "Morning", "Stone", "No. 2", "No. 7", "Waltz",
               "Home", "Mirror", "Train", "Ocean", "Light")


def title(rng: np.random.Generator, tags, p_word: float = 0.6) -> str:
  """A title from a track's tags: each of a mode word, a tempo word and an
  instrument name with probability `p_word`, among one to three noise
  words, in random order."""
  words = [str(rng.choice(NOISE_WORDS)) for _ in range(rng.integers(1, 4))]
  for table in (MODE_WORDS, TEMPO_WORDS):
    key = next(t for t in tags if t in table)
    if rng.random() < p_word:
      words.append(str(rng.choice(table[key])))
  names = [INSTRUMENT_WORDS[t] for t in tags if t in INSTRUMENT_WORDS]
  if rng.random() < p_word:
    words.append(str(rng.choice(names)))
  return " ".join(words[i] for i in rng.permutation(len(words)))


def _adsr(n, sr, attack, decay, sustain, release):
  t = np.arange(n) / sr
  env = np.where(t < attack, t / max(attack, 1e-4),
                 sustain + (1 - sustain) * np.exp(-(t - attack) /
                                                  max(decay, 1e-4)))
  n_rel = int(release * sr)
  if n_rel:
    env[-n_rel:] *= np.linspace(1, 0, min(n_rel, n))
  return env


def _render_note(note, timbre, sr, bright, rng):
  n = max(int((note.end - note.start + timbre["adsr"][3]) * sr), 1)
  t = np.arange(n) / sr
  f0 = pretty_midi.note_number_to_hz(note.pitch)
  vib = 1 + 0.004 * np.sin(2 * np.pi * timbre["vibrato"] * t)
  phase = 2 * np.pi * f0 * np.cumsum(vib) / sr + rng.uniform(0, 2 * np.pi)
  wave = np.zeros(n)
  for k, amp in enumerate(timbre["harmonics"], start=1):
    if amp and k * f0 < sr / 2:
      wave += amp * bright ** (k - 1) * np.sin(k * phase)
  return wave * _adsr(n, sr, *timbre["adsr"]) * note.velocity / 127


def _render_drum(note, sr, rng):
  n = int(0.25 * sr)
  t = np.arange(n) / sr
  if note.pitch == 36:  # kick: a falling sine
    freq = 50 + 100 * np.exp(-t * 30)
    wave = np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t * 18)
  elif note.pitch == 38:  # snare: noise burst over a 200 Hz body
    wave = (rng.standard_normal(n) * 0.6 + np.sin(2 * np.pi * 200 * t)) * \
        np.exp(-t * 25)
  else:  # hi-hat: differenced (high-passed) noise, very short
    wave = np.diff(rng.standard_normal(n + 1)) * 0.5 * np.exp(-t * 80)
  return wave * note.velocity / 127


def render(pm: pretty_midi.PrettyMIDI, sr: int = SAMPLE_RATE, seconds=None,
           bright: float = 1.0, seed: int = 0) -> np.ndarray:
  """Renders MIDI with the timbre named by each instrument (or its GM
  program family), peak-normalised to 0.9."""
  rng = np.random.default_rng(seed)
  total = seconds if seconds is not None else pm.get_end_time() + 0.5
  out = np.zeros(int(total * sr) + sr)
  by_program = {v["program"]: k for k, v in TIMBRES.items()}
  for inst in pm.instruments:
    name = inst.name if inst.name in TIMBRES else by_program.get(
        inst.program - inst.program % 8, "piano")
    for note in inst.notes:
      wave = (_render_drum(note, sr, rng) if inst.is_drum else
              _render_note(note, TIMBRES[name], sr, bright, rng))
      start = int(note.start * sr)
      out[start:start + len(wave)] += wave[: len(out) - start]
  out = out[: int(total * sr)]
  peak = np.max(np.abs(out))
  return (0.9 * out / peak if peak > 0 else out).astype(np.float32)


def generate(directory: str, cfg: SyntheticConfig) -> str:
  """Writes wav + mid files and `metadata.csv`; returns the CSV's path.

  Splits are stratified by artist (5:1:1 by order) and fixed by the seed, so
  every split has every artist and no track is in two splits.
  """
  import soundfile  # pylint: disable=g-import-not-at-top
  path = os.path.join(directory, "metadata.csv")
  if os.path.exists(path):
    return path
  os.makedirs(directory, exist_ok=True)
  rng = np.random.default_rng(cfg.seed)
  artists = sorted(ARTISTS)
  rows, per_artist = [], {a: 0 for a in artists}
  for i in range(cfg.num_tracks):
    artist = artists[i % len(artists)]
    k = per_artist[artist]
    per_artist[artist] += 1
    track_rng = np.random.default_rng(rng.integers(2**32))
    pm, tags = compose(track_rng, artist, cfg.seconds)
    wav = render(pm, cfg.sample_rate, cfg.seconds,
                 ARTISTS[artist]["bright"], seed=int(track_rng.integers(2**31)))
    name = f"track{i:05d}"
    soundfile.write(os.path.join(directory, name + ".wav"), wav,
                    cfg.sample_rate, subtype="PCM_16")
    pm.write(os.path.join(directory, name + ".mid"))
    split = ("valid" if k % 7 == 2 else "test" if k % 7 == 5 else "train")
    # Titles draw from their own stream: the audio and MIDI stay those of
    # the corpus before titles existed.
    name_rng = np.random.default_rng([cfg.seed, i, 1])
    rows.append(dict(id=name, path=name + ".wav", midi=name + ".mid",
                     label=ARTISTS[artist]["genre"], artist=artist,
                     tags=";".join(tags), split=split,
                     title=title(name_rng, tags),
                     tempo=round(pm.get_tempo_changes()[1][0], 2)))
  tmp = path + ".tmp"
  with open(tmp, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  os.replace(tmp, path)
  return path
