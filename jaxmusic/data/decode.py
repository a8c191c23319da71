"""Decoding audio and MIDI files, with reasons a person can act on.

The decoder, not a list of extensions, decides what is audio: every file is
offered to libsndfile (WAV, FLAC, AIFF, Ogg Vorbis/Opus, MP3, ... whatever
`soundfile.available_formats()` lists), then to audioread's backends (ffmpeg
for m4a/AAC, WMA, ...). Only files that are plainly not media (text, images,
archives, hidden files) are ignored by rule, and the rule is reported.
"""

import io
import os
import struct

import numpy as np

MIDI_EXTS = (".mid", ".midi", ".kar")
# Plainly not media: counted as ignored by rule rather than tried.
NON_MEDIA_EXTS = frozenset(
    ".txt .md .rst .nfo .log .csv .tsv .json .jsonl .yaml .yml .xml .html "
    ".htm .pdf .doc .docx .rtf .jpg .jpeg .png .gif .bmp .tif .tiff .webp "
    ".svg .ico .zip .tar .gz .tgz .bz2 .xz .7z .rar .py .sh .ipynb .exe .db "
    ".ini .cfg .m3u .m3u8 .pls .cue .sfv .md5 .sha1 .lrc .srt .npy .npz "
    ".pkl .h5".split())
# Containers libsndfile does not read; only audioread's ffmpeg backend does.
FFMPEG_EXTS = frozenset(
    ".m4a .mp4 .aac .wma .alac .ape .webm .mka .mkv .ac3 .amr .3gp .m4b "
    ".opus .wv .mpc".split())
SILENCE_DBFS = -80.0
# A file holding less than this fraction of what its header promises.
TRUNCATED_BELOW = 0.99


class Rejected(Exception):
  """A file that cannot be used. `reason` is for people; `detail` keeps the
  decoder's own exception, for bug reports."""

  def __init__(self, reason: str, detail: str = ""):
    super().__init__(reason)
    self.reason, self.detail = reason, detail


def ignore_rule(path: str) -> str | None:
  """Why `path` is skipped without decoding (None: offer it to a decoder)."""
  name = os.path.basename(path)
  if name.startswith("."):
    return "hidden file"
  ext = os.path.splitext(name)[1].lower()
  if ext in NON_MEDIA_EXTS:
    return ext
  return None


def is_midi(path: str) -> bool:
  return path.lower().endswith(MIDI_EXTS)


def _secs(x: float) -> str:
  return np.format_float_positional(round(float(x), 2), trim="0")


def detail(e: BaseException) -> str:
  return f"{type(e).__name__}: {e}".strip()


def _wav_promised_frames(path: str) -> int | None:
  """Frames a RIFF/WAVE header's `data` chunk declares; libsndfile quietly
  shrinks its own count to what the file holds, so truncation shows only
  here."""
  with open(path, "rb") as f:
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
      return None
    block_align = None
    while True:
      chunk = f.read(8)
      if len(chunk) < 8:
        return None
      cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
      if cid == b"fmt ":
        fmt = f.read(size)
        block_align = struct.unpack("<H", fmt[12:14])[0]
        f.seek(size % 2, 1)
      elif cid == b"data":
        # 0 and 0xFFFFFFFF mark streamed files whose writer never knew.
        if not block_align or size in (0, 0xFFFFFFFF):
          return None
        return size // block_align
      else:
        f.seek(size + size % 2, 1)


def _read_soundfile(path: str):
  import soundfile as sf  # pylint: disable=g-import-not-at-top
  info = sf.info(path)
  wav, sr = sf.read(path, dtype="float32", always_2d=True)
  promised = info.frames
  if info.format.startswith("WAV"):
    promised = max(promised, _wav_promised_frames(path) or 0)
  if promised and len(wav) < TRUNCATED_BELOW * promised:
    raise Rejected(f"truncated: header promises {_secs(promised / sr)} s, "
                   f"file holds {_secs(len(wav) / sr)} s")
  return wav.T, sr


def _read_audioread(path: str, first_error: Exception):
  import audioread  # pylint: disable=g-import-not-at-top
  ext = os.path.splitext(path)[1].lower()
  backends = audioread.available_backends()
  has_ffmpeg = any("FFmpeg" in b.__name__ for b in backends)
  if ext in FFMPEG_EXTS and not has_ffmpeg:
    raise Rejected(f"no decoder for {ext} here: install ffmpeg",
                   detail(first_error))
  try:
    with audioread.audio_open(path, backends=backends) as f:
      sr, channels = f.samplerate, f.channels
      pcm = b"".join(f)
  except Exception as e:  # pylint: disable=broad-except
    raise Rejected("not an audio file or an unsupported encoding",
                   f"{detail(first_error)}; {detail(e)}") from e
  wav = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0
  return wav.reshape(-1, channels).T, sr


def load_audio(path: str, sr: int, channel: int | None = None) -> np.ndarray:
  """Mono float32 at `sr`, as `librosa.load(path, sr=sr)` gives it (or only
  `channel` of a multichannel file); raises Rejected with a reason for
  anything unusable."""
  import librosa  # pylint: disable=g-import-not-at-top
  try:
    size = os.path.getsize(path)
  except OSError as e:
    raise Rejected("file not found or unreadable", detail(e)) from e
  if size == 0:
    raise Rejected("empty file (0 bytes)")
  try:
    wav_CxT, file_sr = _read_soundfile(path)
  except Rejected:
    raise
  except Exception as e:  # pylint: disable=broad-except
    wav_CxT, file_sr = _read_audioread(path, e)
  if wav_CxT.shape[-1] == 0:
    raise Rejected("no samples (a header with an empty body)")
  if not np.all(np.isfinite(wav_CxT)):
    raise Rejected("contains NaN or infinite samples")
  if channel is not None:
    if not 0 <= channel < wav_CxT.shape[0]:
      raise Rejected(f"no channel {channel}: the file has "
                     f"{wav_CxT.shape[0]}")
    wav_CxT = wav_CxT[channel]
  wav = librosa.to_mono(wav_CxT)
  if np.max(np.abs(wav)) < 10 ** (SILENCE_DBFS / 20):
    raise Rejected(f"silent (peak below {SILENCE_DBFS:g} dBFS)")
  if file_sr != sr:
    wav = librosa.resample(wav, orig_sr=file_sr, target_sr=sr)
  return wav.astype(np.float32)


# pretty_midi refuses a file whose last tick passes 1e7 as likely corrupt;
# music21 writes 10,080 ticks a quarter note, past that in 8 minutes at
# 120 bpm. Such a file is re-timed at this resolution, which moves no
# event by more than half a tick of it (0.5 ms at 120 bpm).
COARSE_TICKS_PER_BEAT = 480


def _coarser(path: str):
  """The MIDI file at `path` re-timed to COARSE_TICKS_PER_BEAT, as a
  file-like object; event times are rounded from their absolute ticks,
  so no rounding accumulates."""
  import mido  # pylint: disable=g-import-not-at-top
  src = mido.MidiFile(path)
  scale = COARSE_TICKS_PER_BEAT / src.ticks_per_beat
  out = mido.MidiFile(type=src.type, ticks_per_beat=COARSE_TICKS_PER_BEAT)
  for track in src.tracks:
    new, now, last = mido.MidiTrack(), 0, 0
    for msg in track:
      now += msg.time
      tick = int(round(now * scale))
      new.append(msg.copy(time=tick - last))
      last = tick
    out.tracks.append(new)
  buf = io.BytesIO()
  out.save(file=buf)
  buf.seek(0)
  return buf


def load_midi(path: str):
  """A PrettyMIDI with at least one note; raises Rejected otherwise."""
  import pretty_midi  # pylint: disable=g-import-not-at-top
  try:
    if os.path.getsize(path) == 0:
      raise Rejected("empty file (0 bytes)")
    try:
      midi = pretty_midi.PrettyMIDI(path)
    except ValueError as e:
      if "largest tick" not in str(e):
        raise
      midi = pretty_midi.PrettyMIDI(_coarser(path))
  except Rejected:
    raise
  except OSError as e:
    raise Rejected("file not found or unreadable", detail(e)) from e
  except Exception as e:  # pylint: disable=broad-except
    raise Rejected("not a readable MIDI file", detail(e)) from e
  if not any(inst.notes for inst in midi.instruments):
    raise Rejected("MIDI file has no notes")
  return midi


def too_short(seconds: float, segment_seconds: float) -> Rejected:
  return Rejected(f"shorter than one segment ({_secs(seconds)} s < "
                  f"{_secs(segment_seconds)} s)")
