"""Sheet music as a prepared feature (Dorfer et al. 2018's audio-sheet
snippets): a score engraved by verovio as one unbroken system, rasterised
to a grayscale strip `sheet_height` pixels high, and the page position of
every frame of its audio.

verovio gives the three things that make the pairs exact: the engraving
(SVG), its own MIDI, and its timemap (each onset's time and the notes it
starts). The audio is rendered from that MIDI (with FluidSynth and a
General MIDI soundfont, or the synthetic corpus's timbres without one), so
a second of audio and a column of the strip agree by construction: frame
k's page position is the timemap's onsets' noteheads, interpolated at
k * hop / sample_rate.

A segment record keeps the strip over its frames' positions, widened by
half a snippet on each side (`sheet`, `H x W` uint8 ink, 0 is paper), and
each frame's column in it (`sheet_x`, float32), and the timemap's onsets
in its seconds (`sheet_onsets`, the alignment task's truth): any crop's
snippet is a slice of the segment holding the crop's centre.
"""

import base64
import dataclasses
import io
import os
import re
import shutil
import subprocess
import tempfile
import warnings

import numpy as np

from jaxmusic.data import decode

SHEET = "sheet"
SHEET_X = "sheet_x"
SHEET_ONSETS = "sheet_onsets"

_NOTE = re.compile(r'<g id="([^"]+)" class="note"[^>]*>.*?'
                   r'translate\(([-\d.]+),\s*([-\d.]+)\)', re.S)
_VIEWBOX = re.compile(r'class="definition-scale"[^>]*viewBox="0 0 ([\d.]+) '
                      r'([\d.]+)"')
_MARGIN = re.compile(r'class="page-margin" transform="translate\(([-\d.]+),'
                     r'\s*([-\d.]+)\)"')
# One system, as long as the piece, with nothing above or beside it.
VEROVIO_OPTIONS = {"breaks": "none", "adjustPageHeight": True,
                   "adjustPageWidth": True, "header": "none",
                   "footer": "none", "scale": 40, "svgViewBox": False}


@dataclasses.dataclass
class Engraving:
  """A score's strip `ink_HxW` (uint8, 255 is full ink), its onsets'
  times in seconds and their columns on the strip, and verovio's MIDI."""
  ink_HxW: np.ndarray
  onset_s: np.ndarray
  onset_x: np.ndarray
  midi: object  # pretty_midi.PrettyMIDI

  def x_at(self, seconds) -> np.ndarray:
    """The strip's column at each time (held before the first onset and
    after the last)."""
    return np.interp(seconds, self.onset_s, self.onset_x).astype(np.float32)


def _rasterise(svg: str, height: int) -> np.ndarray:
  import cairosvg  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  png = cairosvg.svg2png(bytestring=svg.encode(), output_height=height,
                         background_color="white")
  gray = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
  return (255 - gray).astype(np.uint8)


def engrave(musicxml: str, height: int = 180) -> Engraving:
  """Engraves a MusicXML document; raises decode.Rejected saying why
  verovio could not."""
  import pretty_midi  # pylint: disable=g-import-not-at-top
  import verovio  # pylint: disable=g-import-not-at-top
  verovio.enableLog(verovio.LOG_OFF)
  tk = verovio.toolkit()
  tk.setOptions(VEROVIO_OPTIONS)
  if not tk.loadData(musicxml) or tk.getPageCount() < 1:
    raise decode.Rejected("verovio cannot engrave it")
  if tk.getPageCount() > 1:
    raise decode.Rejected(f"verovio engraved {tk.getPageCount()} pages, "
                          "not one system")
  svg = tk.renderToSVG(1)
  box, margin = _VIEWBOX.search(svg), _MARGIN.search(svg)
  if not box:
    raise decode.Rejected("verovio's SVG has no page box")
  dx = float(margin.group(1)) if margin else 0.0
  heads = {m.group(1): float(m.group(2)) + dx for m in _NOTE.finditer(svg)}
  times, xs = [], []
  for event in tk.renderToTimemap():
    on = [heads[n] for n in event.get("on", ()) if n in heads]
    if on:
      times.append(event["tstamp"] / 1000.0)
      xs.append(min(on))
  if len(times) < 2:
    raise decode.Rejected("verovio's timemap has fewer than two onsets")
  ink = _rasterise(svg, height)
  px_per_unit = ink.shape[1] / float(box.group(1))
  try:
    with warnings.catch_warnings():
      # verovio writes its tempo on the first note track, which
      # pretty_midi reads correctly but warns about.
      warnings.simplefilter("ignore", RuntimeWarning)
      midi = pretty_midi.PrettyMIDI(io.BytesIO(base64.b64decode(
          tk.renderToMIDI())))
  except Exception as e:  # pylint: disable=broad-except
    raise decode.Rejected("verovio's MIDI cannot be read",
                          decode.detail(e)) from e
  return Engraving(ink, np.asarray(times), np.asarray(xs) * px_per_unit,
                   midi)


def segments(eng: Engraving, n_segments: int, frames_per_segment: int,
             frame_rate: float, width: int) -> list[dict[str, np.ndarray]]:
  """Each segment's strip (its frames' columns widened by half a snippet
  each side, paper beyond the page), its frames' columns in it, and the
  onsets (seconds) in it."""
  half = width // 2 + 1
  frame_x = eng.x_at(np.arange(n_segments * frames_per_segment) / frame_rate)
  out = []
  for s in range(n_segments):
    x = frame_x[s * frames_per_segment:(s + 1) * frames_per_segment]
    lo = int(np.floor(x.min())) - half
    hi = int(np.ceil(x.max())) + half
    strip = np.zeros((eng.ink_HxW.shape[0], hi - lo), np.uint8)
    a, b = max(lo, 0), min(hi, eng.ink_HxW.shape[1])
    if b > a:
      strip[:, a - lo:b - lo] = eng.ink_HxW[:, a:b]
    t0, t1 = (s * frames_per_segment / frame_rate,
              (s + 1) * frames_per_segment / frame_rate)
    onsets = eng.onset_s[(eng.onset_s >= t0) & (eng.onset_s < t1)]
    out.append({SHEET: strip, SHEET_X: (x - lo).astype(np.float32),
                SHEET_ONSETS: onsets.astype(np.float32)})
  return out


def snippet(strip_HxW: np.ndarray, x: float, width: int) -> np.ndarray:
  """The `H x width` snippet of a segment's strip centred at column `x`."""
  lo = int(round(x)) - width // 2
  lo = min(max(lo, 0), strip_HxW.shape[1] - width)
  return strip_HxW[:, lo:lo + width]


def fluidsynth(midi, soundfont: str, sr: int) -> np.ndarray:
  """`midi` played by FluidSynth's command line with `soundfont`, mono
  float32 at `sr`."""
  import soundfile  # pylint: disable=g-import-not-at-top
  exe = shutil.which("fluidsynth")  # checked by FeatureConfig.validate
  with tempfile.TemporaryDirectory() as tmp:
    mid, wav = os.path.join(tmp, "in.mid"), os.path.join(tmp, "out.wav")
    midi.write(mid)
    run = subprocess.run([exe, "-ni", "-q", "-g", "0.5", "-r", str(sr),
                          "-F", wav, soundfont, mid],
                         capture_output=True, text=True, check=False)
    if run.returncode or not os.path.exists(wav):
      raise decode.Rejected(f"FluidSynth failed with {soundfont}",
                            run.stderr[-500:])
    data, file_sr = soundfile.read(wav, dtype="float32", always_2d=True)
  if file_sr != sr:
    raise decode.Rejected(f"FluidSynth wrote {file_sr} Hz, not {sr}")
  return data.mean(axis=1)
