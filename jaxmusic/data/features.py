"""Features computed once at prepare time, with librosa and pretty_midi.

All frame features share one hop, so frame k of every feature (and of the
piano roll) is centred on audio sample k * hop: any crop in frames lines up
with the waveform crop starting at sample start_frame * hop.
"""

import dataclasses
import os
import shutil

import librosa
import numpy as np

from jaxmusic.data import sheet as sheet_music
from jaxmusic.data import tags
from jaxmusic.data import tokens as event_tokens

AUDIO_FEATURES = ("waveform", "logmel", "cqt", "chroma", "mfcc")
MIDI_FEATURES = ("pianoroll", "multitrack", event_tokens.FEATURE)
# Off the frame grid: each segment holds its events (tokens.py), and a
# crop is the events of its seconds.
EVENT_FEATURES = (event_tokens.FEATURE,)
# Engraved from the score (sheet.py): a strip per segment and its frames'
# columns, off the frame grid in width.
SHEET = sheet_music.SHEET
SCORE_FEATURES = (SHEET,)
ALL_FEATURES = AUDIO_FEATURES + MIDI_FEATURES + SCORE_FEATURES


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
  sample_rate: int = 22050
  hop_length: int = 512
  n_fft: int = 2048
  n_mels: int = 128
  n_mfcc: int = 20
  cqt_bins: int = 84
  cqt_bins_per_octave: int = 12
  waveform_dtype: str = "int16"
  feature_dtype: str = "float32"
  # Event tokens kept per segment (tokens.py); a denser segment keeps its
  # first ones.
  tokens_per_segment: int = 1024
  # The engraved strip's height and a snippet's width, in pixels (Dorfer
  # et al.: 180 x 200).
  sheet_height: int = 180
  sheet_width: int = 200
  # GM soundfonts that render MIDI-only tracks with FluidSynth: the first
  # gives the audio features, each further one a rendering `name@k` the
  # paired mode draws from (different samples, as an augmentation). None:
  # the synthetic corpus's timbres.
  soundfonts: tuple[str, ...] = ()

  def validate(self, features):
    unknown = set(features) - set(ALL_FEATURES)
    if unknown:
      raise ValueError(f"--features: unknown {sorted(unknown)}; known: "
                       f"{', '.join(ALL_FEATURES)}")
    if self.waveform_dtype not in ("int16", "float16", "float32"):
      raise ValueError(f"--waveform_dtype={self.waveform_dtype}: use int16, "
                       "float16 or float32")
    if min(self.sheet_height, self.sheet_width) < 16:
      raise ValueError(f"--sheet_height={self.sheet_height} / --sheet_width="
                       f"{self.sheet_width}: at least 16 pixels")
    for path in self.soundfonts:
      if not os.path.isfile(path):
        raise ValueError(f"--soundfonts: {path} does not exist")
    if self.soundfonts and shutil.which("fluidsynth") is None:
      raise ValueError("--soundfonts needs FluidSynth's command line "
                       "(Debian: apt install fluidsynth)")


def rendering(feature: str, k: int) -> str:
  """The record key of `feature` in the k-th audio rendering (0: the
  feature itself)."""
  return feature if k == 0 else f"{feature}@{k + 1}"


# Text towers read UTF-8 bytes: id = byte + 1, 0 pads. No tokenizer to
# download, any language, and a vocabulary of 257.
TEXT = "text"
# Track metadata read as bytes, not prepared arrays: the track's text, and
# one of its tags drawn per example (tags.py).
METADATA_FEATURES = (TEXT, tags.FEATURE)
WAVEFORM = "waveform"
PIANOROLL = "pianoroll"
TEXT_VOCAB = 257


@dataclasses.dataclass(frozen=True)
class Sequences:
  """How long the off-grid inputs' crops are: a text's bytes, and the
  event tokens' count and crop rule (tokens.crop: "bars" or "tokens")."""
  text_bytes: int = 64
  tokens: int = 256
  token_crop: str = "bars"

  @classmethod
  def from_config(cls, data_cfg) -> "Sequences":
    return cls(data_cfg.get("text_bytes", 64), data_cfg.get("tokens", 256),
               data_cfg.get("token_crop", "bars"))


def base(feature: str) -> str:
  """The feature a record key holds: `logmel@2` (a second rendering) is
  `logmel`."""
  return feature.split("@")[0]


def unit(feature: str, hop: int) -> int:
  """Samples per step of `feature` along its last axis: 1 for the
  waveform, the collection's hop for frame features."""
  return 1 if base(feature) == WAVEFORM else hop


def encode_text(text: str, n_bytes: int) -> np.ndarray:
  """`n_bytes` int32 ids of `text`'s UTF-8 bytes, truncated or 0-padded."""
  raw = np.frombuffer((text or "").encode("utf-8")[:n_bytes], np.uint8)
  out = np.zeros(n_bytes, np.int32)
  out[:raw.size] = raw.astype(np.int32) + 1
  return out


def decode_text(ids) -> str:
  """`encode_text`'s inverse (a cut multi-byte character is dropped)."""
  ids = np.asarray(ids)
  return bytes((ids[ids > 0] - 1).astype(np.uint8)).decode("utf-8",
                                                          errors="ignore")


def quantize_waveform(wav_T: np.ndarray, dtype: str) -> np.ndarray:
  if dtype == "int16":
    return np.round(np.clip(wav_T, -1.0, 1.0) * 32767).astype(np.int16)
  return wav_T.astype(dtype)


def dequantize_waveform(wav_T: np.ndarray) -> np.ndarray:
  if wav_T.dtype == np.int16:
    return wav_T.astype(np.float32) / 32767.0
  return wav_T.astype(np.float32)


def audio_feature(name: str, wav_T: np.ndarray, cfg: FeatureConfig):
  """One feature `FxN` of a whole track, as the librosa call it names."""
  sr, hop, n_fft = cfg.sample_rate, cfg.hop_length, cfg.n_fft
  if name == "logmel":
    mel = librosa.feature.melspectrogram(y=wav_T, sr=sr, n_fft=n_fft,
                                         hop_length=hop, n_mels=cfg.n_mels)
    return librosa.power_to_db(mel, top_db=80.0)
  if name == "mfcc":
    return librosa.feature.mfcc(y=wav_T, sr=sr, n_mfcc=cfg.n_mfcc,
                                n_fft=n_fft, hop_length=hop,
                                n_mels=cfg.n_mels)
  if name == "cqt":
    return np.abs(librosa.cqt(wav_T, sr=sr, hop_length=hop,
                              n_bins=cfg.cqt_bins,
                              bins_per_octave=cfg.cqt_bins_per_octave))
  if name == "chroma":
    return librosa.feature.chroma_stft(y=wav_T, sr=sr, n_fft=n_fft,
                                       hop_length=hop, tuning=0.0)
  raise ValueError(f"unknown audio feature {name!r}")


def pianoroll(midi, n_frames: int, cfg: FeatureConfig) -> np.ndarray:
  """128 x n_frames velocities (uint8) at the audio frame rate."""
  fs = cfg.sample_rate / cfg.hop_length
  roll = midi.get_piano_roll(fs=fs)
  out = np.zeros((128, n_frames), np.uint8)
  n = min(n_frames, roll.shape[1])
  out[:, :n] = np.clip(roll[:, :n], 0, 127).astype(np.uint8)
  return out


# The multitrack roll's rows: the 128 pitches (all pitched instruments, as
# `pianoroll`), then one lane per General MIDI instrument family (programs
# 8f..8f+7: piano, chromatic percussion, organ, guitar, bass, strings,
# ensemble, brass, reed, pipe, synth lead, ...), then one lane per key of
# the GM percussion map (35-81: kick, snare, hi-hats, toms, cymbals, ...).
PITCHES = 128
GM_FAMILIES = 16
GM_DRUM_KEYS = range(35, 82)
MULTITRACK_ROWS = PITCHES + GM_FAMILIES + len(GM_DRUM_KEYS)


def multitrack(midi, n_frames: int, cfg: FeatureConfig) -> np.ndarray:
  """MULTITRACK_ROWS x n_frames velocities (uint8): `pianoroll`, plus what
  it merges or drops: which instrument family plays at each frame (its
  loudest note's velocity) and the drum kit (pretty_midi's roll has no
  drums). Where Pypianoroll keeps a 128-pitch roll per track, the lanes
  keep the instrumentation in 63 rows. Drum hits last at least one frame;
  keys outside the GM percussion map are left out."""
  fs = cfg.sample_rate / cfg.hop_length
  out = np.zeros((MULTITRACK_ROWS, n_frames), np.uint8)
  out[:PITCHES] = pianoroll(midi, n_frames, cfg)
  drums = PITCHES + GM_FAMILIES - GM_DRUM_KEYS.start
  for inst in midi.instruments:
    if not inst.is_drum:
      lane = inst.get_piano_roll(fs=fs).max(axis=0, initial=0)[:n_frames]
      row = out[PITCHES + inst.program // 8]
      np.maximum(row[:len(lane)], np.clip(lane, 0, 127).astype(np.uint8),
                 out=row[:len(lane)])
      continue
    for note in inst.notes:
      if note.pitch in GM_DRUM_KEYS:
        start = int(note.start * fs)
        end = max(int(note.end * fs), start + 1)
        row = out[drums + note.pitch, start:end]
        np.maximum(row, min(note.velocity, 127), out=row)
  return out


def midi_feature(name: str, midi, n_frames: int,
                 cfg: FeatureConfig) -> np.ndarray:
  """One MIDI feature (`pianoroll` or `multitrack`) of a whole track."""
  if name == "pianoroll":
    return pianoroll(midi, n_frames, cfg)
  if name == "multitrack":
    return multitrack(midi, n_frames, cfg)
  raise ValueError(f"unknown MIDI feature {name!r}")


def _audio_frames(name, wav_T, cfg: FeatureConfig, n_segments: int,
                  segment_samples: int) -> np.ndarray:
  """An audio feature over a track's whole segments: the quantised
  waveform, or a frame feature's first frames."""
  wav_T = wav_T[: n_segments * segment_samples]
  if name == "waveform":
    return quantize_waveform(wav_T, cfg.waveform_dtype)
  total_frames = n_segments * (segment_samples // cfg.hop_length)
  return audio_feature(name, wav_T, cfg)[:, :total_frames].astype(
      cfg.feature_dtype)


def segment_track(wav_T, midi, features, cfg: FeatureConfig,
                  segment_samples: int, engraving=None, renderings=()):
  """Splits one track into records of `segment_samples` (a hop multiple).

  Features are computed over the whole track and then sliced, so frames are
  continuous across segment borders; the remainder shorter than a segment
  is dropped. `engraving` (sheet.Engraving) gives the sheet feature;
  `renderings`, further waveforms of the same MIDI, give the audio
  features again under `rendering(name, k)`.
  """
  frames_per_segment = segment_samples // cfg.hop_length
  n_segments = 0 if wav_T is None else len(wav_T) // segment_samples
  if wav_T is None:
    n_segments = int(midi.get_end_time() * cfg.sample_rate) // segment_samples
  total_frames = n_segments * frames_per_segment
  full = {}
  for name in features:
    if name in EVENT_FEATURES:
      full[name] = event_tokens.segments(
          *event_tokens.encode(midi, cfg.sample_rate / cfg.hop_length),
          n_segments, frames_per_segment, cfg.tokens_per_segment)
    elif name == SHEET:
      full[name] = sheet_music.segments(
          engraving, n_segments, frames_per_segment,
          cfg.sample_rate / cfg.hop_length, cfg.sheet_width)
    elif name in MIDI_FEATURES:
      full[name] = midi_feature(name, midi, total_frames, cfg)
    else:
      for k, wav in enumerate((wav_T, *renderings)):
        wav = np.pad(wav, (0, max(0, len(wav_T) - len(wav))))
        full[rendering(name, k)] = _audio_frames(name, wav, cfg, n_segments,
                                                 segment_samples)
  records = []
  for s in range(n_segments):
    rec = {"segment": np.int32(s),
           "offset": np.float32(s * segment_samples / cfg.sample_rate)}
    for name, arr in full.items():
      if name in EVENT_FEATURES:
        rec[name] = arr[s]
      elif name == SHEET:
        rec.update(arr[s])
      elif base(name) == WAVEFORM:
        rec[name] = arr[s * segment_samples:(s + 1) * segment_samples]
      else:
        rec[name] = arr[:, s * frames_per_segment:(s + 1) * frames_per_segment]
    records.append(rec)
  return records
