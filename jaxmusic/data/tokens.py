"""Event tokens: a REMI-like sequence (Huang & Yang 2020) of a MIDI file,
the symbolic input that MusicBERT and its successors read where a piano
roll spends most of its frames on held notes.

Each bar opens with `Bar`; each note is `Position` (its onset in the bar,
in twelfths of a quarter note, so that sixteenths and triplet eighths both
fall on the grid; written once per onset), `Program` (where the file has
more than one instrument), `Pitch`, `Velocity` (8 bins) and `Duration`
(twelfths of a quarter, 1..96). Bars follow the file's time signatures, in
ticks, so a 6/8 jig's bar holds 36 positions and a 4/4 reel's 48.

Every token also keeps the collection frame it sounds at (a `Bar` its
downbeat's), so that a crop of tokens is the crop of time the piano roll
and the audio of the same seconds are, and two towers can pair them.
The prepared feature is `2 x L` int32 per segment: the ids, then their
frames within the track; id 0 pads.
"""

import numpy as np

FEATURE = "tokens"
PAD, MASK, BAR = 0, 1, 2
POSITIONS = 96       # twelfths of a quarter: bars up to 8 quarter notes
PITCHES = 128
VELOCITIES = 8
DURATIONS = 96       # twelfths of a quarter: up to a breve
PROGRAMS = 129       # GM programs, then 128 for drums
TICKS_PER_QUARTER = 12

POSITION0 = 3
PITCH0 = POSITION0 + POSITIONS
VELOCITY0 = PITCH0 + PITCHES
DURATION0 = VELOCITY0 + VELOCITIES
PROGRAM0 = DURATION0 + DURATIONS
VOCAB = PROGRAM0 + PROGRAMS
CROPS = ("bars", "tokens")


def _bar_ticks(midi, end_tick: int) -> np.ndarray:
  """Every bar line, in the file's ticks, from its time signatures (4/4
  where it has none)."""
  changes = [(midi.time_to_tick(ts.time), ts.numerator, ts.denominator)
             for ts in midi.time_signature_changes] or [(0, 4, 4)]
  if changes[0][0] > 0:
    changes.insert(0, (0, 4, 4))
  bars = []
  for i, (tick, num, den) in enumerate(changes):
    stop = changes[i + 1][0] if i + 1 < len(changes) else end_tick + 1
    length = max(1, round(num * midi.resolution * 4 / den))
    bars.extend(range(tick, max(stop, tick + 1), length))
  return np.asarray(bars, np.int64)


def encode(midi, frame_rate: float) -> tuple[np.ndarray, np.ndarray]:
  """(ids, frames): the track's tokens and the collection frame of each."""
  unit = midi.resolution / TICKS_PER_QUARTER
  multi = len(midi.instruments) > 1
  notes = sorted(
      ((midi.time_to_tick(n.start), midi.time_to_tick(n.end), n.start,
        128 if inst.is_drum else int(inst.program), n.pitch, n.velocity)
       for inst in midi.instruments for n in inst.notes),
      key=lambda n: (n[0], n[3], n[4]))
  if not notes:
    return np.zeros(0, np.int32), np.zeros(0, np.int32)
  bars = _bar_ticks(midi, max(n[0] for n in notes))
  ids, frames = [], []
  bar_now, where = -1, None
  for start, end, seconds, program, pitch, velocity in notes:
    bar = int(np.searchsorted(bars, start, side="right")) - 1
    while bar_now < bar:
      bar_now += 1
      ids.append(BAR)
      frames.append(int(midi.tick_to_time(int(bars[bar_now])) * frame_rate))
      where = None
    frame = int(seconds * frame_rate)
    position = min(int(round((start - bars[bar]) / unit)), POSITIONS - 1)
    if position != where:
      ids.append(POSITION0 + position)
      frames.append(frame)
      where = position
    if multi:
      ids.append(PROGRAM0 + program)
      frames.append(frame)
    duration = int(np.clip(round((end - start) / unit), 1, DURATIONS))
    ids += [PITCH0 + pitch,
            VELOCITY0 + min(velocity, 127) * VELOCITIES // 128,
            DURATION0 + duration - 1]
    frames += [frame] * 3
  return np.asarray(ids, np.int32), np.asarray(frames, np.int32)


def segments(ids, frames, n_segments: int, frames_per_segment: int,
             length: int) -> list[np.ndarray]:
  """Per segment, `2 x length` int32: the tokens sounding in its frames
  (ids, then frames within the track), 0-padded; a segment holding more
  than `length` tokens keeps its first `length`."""
  out = []
  for s in range(n_segments):
    lo, hi = np.searchsorted(frames, [s * frames_per_segment,
                                      (s + 1) * frames_per_segment])
    rec = np.zeros((2, length), np.int32)
    n = min(hi - lo, length)
    rec[0, :n], rec[1, :n] = ids[lo:lo + n], frames[lo:lo + n]
    out.append(rec)
  return out


def crop(ids, frames, start_frame: int, stop_frame: int, length: int,
         by: str = "bars") -> np.ndarray:
  """The `length` ids (0-padded) of the tokens sounding in frames
  [start_frame, stop_frame). `by="tokens"`: the window's first `length`
  tokens. `by="bars"`: whole bars only, from the window's first `Bar` to
  the last bar that fits (a window whose first bar alone is longer than
  `length` keeps that bar's first `length` tokens)."""
  keep = (ids > 0) & (frames >= start_frame) & (frames < stop_frame)
  window = ids[keep]
  if by == "bars":
    bar_at = np.flatnonzero(window == BAR)
    if bar_at.size:
      window = window[bar_at[0]:]
      if window.size > length:
        ends = np.flatnonzero(window[:length + 1] == BAR)
        if ends[-1] > 0:
          window = window[:ends[-1]]
  elif by != "tokens":
    raise ValueError(f"data.token_crop={by!r}: use one of {CROPS}")
  out = np.zeros(length, np.int32)
  out[:min(window.size, length)] = window[:length]
  return out


def bar_index(ids_BxL):
  """Which bar each token is in (0 before the first `Bar`), for bar-level
  masking; works on numpy and jax arrays."""
  return (ids_BxL == BAR).cumsum(axis=-1)


def describe(ids) -> list[str]:
  """Tokens by name (`Bar`, `Position_12`, `Pitch_62`, ...), for reading
  a crop."""
  names = []
  for i in np.asarray(ids).tolist():
    for base, size, name in ((POSITION0, POSITIONS, "Position"),
                             (PITCH0, PITCHES, "Pitch"),
                             (VELOCITY0, VELOCITIES, "Velocity"),
                             (DURATION0, DURATIONS, "Duration"),
                             (PROGRAM0, PROGRAMS, "Program")):
      if base <= i < base + size:
        names.append(f"{name}_{i - base + (name == 'Duration')}")
        break
    else:
      names.append({PAD: "Pad", MASK: "Mask", BAR: "Bar"}.get(i, f"?{i}"))
  return names
