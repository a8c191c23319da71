"""NSynth as distributed: `nsynth-{train,valid,test}/examples.json` beside
`audio/NOTE.wav` (4 s, 16 kHz), the three folders its official split.

The label is the instrument family (11: bass, brass, flute, guitar,
keyboard, mallet, organ, reed, string, synth_lead, vocal), MARBLE's
NSynth instrument task; `pitch` (the MIDI note, 21-108), `velocity` and
`source` (acoustic, electronic, synthetic) are extra labels
(`probe --target pitch`: MARBLE's NSynth pitch task); the qualities are
the tags; the instrument is the artist.
"""

import json
import os

from jaxmusic.data import listing

SPLITS = {"nsynth-train": "train", "nsynth-valid": "valid",
          "nsynth-test": "test"}


def read(root: str) -> listing.Listing:
  found = [f for f in SPLITS if os.path.isdir(os.path.join(root, f))]
  if not found:
    raise FileNotFoundError(f"{root}: none of {', '.join(SPLITS)}")
  out = listing.Listing([])
  for folder in found:
    path = os.path.join(root, folder, "examples.json")
    if not os.path.exists(path):
      raise FileNotFoundError(f"{path}: missing from the NSynth layout")
    with open(path) as f:
      try:
        examples = json.load(f)
      except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e})") from None
    for note, ex in sorted(examples.items()):
      try:
        out.tracks.append(listing.Track(
            note, audio=os.path.join(root, folder, "audio", f"{note}.wav"),
            label=ex["instrument_family_str"],
            artist=ex["instrument_str"], split=SPLITS[folder],
            tags=tuple(ex.get("qualities_str", ())),
            labels={"pitch": str(ex["pitch"]),
                    "velocity": str(ex["velocity"]),
                    "source": ex["instrument_source_str"]}))
      except KeyError as e:
        raise ValueError(f"{path}: note {note} has no {e.args[0]!r}") \
            from None
  return out
