"""The audio <-> sheet-music tasks of Dorfer et al. (2018, TISMIR), on a
two-tower run's audio and sheet towers (`two_tower.py:towers=audio+sheet`)
and a prepared score collection (`prepare --features waveform,sheet`):

  retrieval       an excerpt centred every `every` seconds of each test
                  recording, and the snippet at the same place on its page:
                  each ranks every other's partner, both ways (MRR,
                  R@1/5/10, median rank; probes.crossmodal_metrics)
  identification  each test recording's excerpts vote for the piece of
                  their nearest snippet among all test pieces' snippets;
                  top-1 and top-5 accuracy of the vote over recordings
                  (chance: 1 and 5 over the pieces)
  alignment       each test recording played at another tempo (librosa's
                  time stretch by `rates`, in turn) against its score: DTW
                  over 1 - cosine between its excerpts and the score's
                  snippets, both every `grid` seconds (of performance and
                  of score time); each of the timemap's onsets is read off
                  the path as a performance time and scored against its
                  true one (the score time over the rate): mean and median
                  absolute error in seconds. Beside it the chroma-DTW
                  baseline: the same DTW over the chroma of the same audio
                  against the chroma of the score synthesised (the
                  collection's last rendering at the score's tempo, another
                  soundfont where it has several).

Each task runs on the trained towers and on their random init.
"""

import dataclasses
import logging
import os

import librosa
import numpy as np

from jaxmusic import config as config_lib
from jaxmusic import models
from jaxmusic.data import features as feats
from jaxmusic.data import pipeline
from jaxmusic.data import samplers
from jaxmusic.data import sheet
from jaxmusic.eval import frozen
from jaxmusic.eval import hashing
from jaxmusic.eval import probes
from jaxmusic.eval import report as report_lib

RATES = (0.8, 1.25)


@dataclasses.dataclass
class Piece:
  """One test recording with its score's onsets (seconds)."""
  track: dict
  wav_T: np.ndarray
  score_wav_T: np.ndarray
  onsets: np.ndarray


def pieces(data: pipeline.PreparedData, split: str) -> list[Piece]:
  score_feature = feats.rendering(feats.WAVEFORM, data.renderings - 1)
  out = []
  for track in data.tracks(split):
    length = track["num_segments"] * data.segment_samples
    onsets = np.concatenate([
        data.read(split, track["first_record"] + s)[sheet.SHEET_ONSETS]
        for s in range(track["num_segments"])])
    out.append(Piece(track,
                     data.span(split, track, feats.WAVEFORM, 0, length),
                     data.span(split, track, score_feature, 0, length),
                     onsets))
  return out


class Towers:
  """The audio and sheet towers (trained, or at random init) over a
  collection's excerpts and snippets."""

  def __init__(self, audio: frozen.FrozenEncoder,
               sheet_tower: frozen.FrozenEncoder, crops: samplers.Crops,
               batch_size: int = 64):
    self.crops, self.batch_size = crops, batch_size
    self.crop = audio.crop_samples
    self._audio = audio.embed_fn("encoder")
    self._sheet = sheet_tower.embed_fn("encoder")

  def audio(self, wav_T: np.ndarray, centres_s: np.ndarray) -> np.ndarray:
    """The audio tower on excerpts centred at `centres_s` (zero-padded at
    the ends)."""
    sr = self.crops.data.manifest["sample_rate"]
    padded = np.pad(wav_T, (self.crop // 2, self.crop - self.crop // 2))
    starts = np.round(centres_s * sr).astype(int)
    return frozen.embed_batched(
        self._audio, padded[starts[:, None] + np.arange(self.crop)],
        self.batch_size)

  def sheet(self, track: dict, centres_s: np.ndarray) -> np.ndarray:
    """The sheet tower on the snippets at score times `centres_s`."""
    rate = self.crops.data.manifest["frame_rate"]
    half = self.crop // self.crops.data.hop // 2
    snippets = np.stack([self.crops.sheet_at(track, int(round(t * rate))
                                             - half) for t in centres_s])
    return frozen.embed_batched(self._sheet, snippets, self.batch_size)


def centres(seconds: float, every: float) -> np.ndarray:
  return np.arange(every / 2, seconds, every)


def retrieval(towers: Towers, pieces, every: float, sr: int):
  """(retrieval metrics both ways, identification accuracies)."""
  za, zs, piece_of = [], [], []
  for i, p in enumerate(pieces):
    times = centres(len(p.wav_T) / sr, every)
    za.append(towers.audio(p.wav_T, times))
    zs.append(towers.sheet(p.track, times))
    piece_of.append(np.full(len(times), i))
  za, zs, piece_of = map(np.concatenate, (za, zs, piece_of))
  out = {"audio->sheet": probes.crossmodal_metrics(za, zs),
         "sheet->audio": probes.crossmodal_metrics(zs, za)}
  nearest = np.argmin(hashing.cosine(za, zs), axis=1)
  votes = np.zeros((len(pieces), len(pieces)))
  np.add.at(votes, (piece_of, piece_of[nearest]), 1)
  # A tie ranks the true piece below the others, so that a collapsed
  # encoder scores chance at best.
  rank = np.sum(votes >= np.diag(votes)[:, None], axis=1)
  out["identification"] = {"top1": float(np.mean(rank <= 1)),
                           "top5": float(np.mean(rank <= 5)),
                           "pieces": float(len(pieces))}
  return out


def _dtw_times(cost_PxS: np.ndarray, onsets_s: np.ndarray,
               grid: float) -> np.ndarray:
  """Each score onset's performance time along the DTW path of
  `cost_PxS` (performance x score steps of `grid` seconds)."""
  _, path = librosa.sequence.dtw(C=cost_PxS)
  perf, score = path[:, 0], path[:, 1]
  times = []
  for t in onsets_s:
    j = int(np.clip(round(t / grid - 0.5), 0, cost_PxS.shape[1] - 1))
    times.append((perf[score == j].mean() + 0.5) * grid)
  return np.asarray(times)


def _errors(pred_s, true_s) -> dict[str, float]:
  err = np.abs(pred_s - true_s)
  return {"mean_abs_s": float(np.mean(err)),
          "median_abs_s": float(np.median(err))}


def alignment(towers: Towers | None, pieces, grid: float, sr: int,
              rates=RATES):
  """Onset errors of DTW over the towers' distances (towers given) or of
  the chroma-DTW baseline (towers None)."""
  pred, true = [], []
  for i, p in enumerate(pieces):
    rate = rates[i % len(rates)]
    perf = librosa.effects.time_stretch(p.wav_T, rate=rate)
    if towers is None:
      hop = int(round(grid * sr))
      chroma = lambda w: librosa.feature.chroma_stft(
          y=w, sr=sr, hop_length=hop, tuning=0.0).T
      cost = hashing.cosine(chroma(perf), chroma(p.score_wav_T))
    else:
      cost = hashing.cosine(
          towers.audio(perf, centres(len(perf) / sr, grid)),
          towers.sheet(p.track, centres(len(p.wav_T) / sr, grid)))
    pred.append(_dtw_times(cost, p.onsets, grid))
    true.append(p.onsets / rate)
  return _errors(np.concatenate(pred), np.concatenate(true))


def run(workdir: str, data_dir: str, split: str = "test",
        every: float = 1.0, grid: float = 0.2, out: str = "",
        seed: int = 0) -> dict:
  """All three tasks for the run's towers and their random init, and
  the chroma-DTW baseline; writes `sheets.json` to `out` (default: the
  run's workdir)."""
  towers = models.tower_names(config_lib.load_run_config(workdir).model)
  if set(towers) != {"audio", "sheet"}:
    raise ValueError(f"{workdir}: an audio+sheet two-tower run is needed; "
                     f"its towers are {towers or 'none'}")
  data = pipeline.PreparedData(data_dir)
  data.has(sheet.SHEET)
  recordings = pieces(data, split)
  sr = data.manifest["sample_rate"]
  if len(recordings) < 2:
    raise ValueError(f"{data_dir}: the {split} split has {len(recordings)} "
                     "piece(s); identification needs two or more")
  audio = frozen.load(workdir, tower="audio")
  sheet_tower = frozen.load(workdir, tower="sheet")
  crops = samplers.Crops(data, split, feats.WAVEFORM, audio.crop_samples)
  snippet = crops.sheet_at(recordings[0].track, 0)[None]
  encoders = {
      "encoder": (audio, sheet_tower),
      "random_init": (frozen.random_init(audio.config, np.zeros(
          (1, audio.crop_samples), np.float32), seed),
                      frozen.random_init(sheet_tower.config, snippet, seed))}
  report = {"workdir": os.path.abspath(workdir), "step": audio.step,
            "data": os.path.abspath(data_dir), "split": split,
            "every_s": every, "grid_s": grid, "rates": list(RATES),
            "rows": {}}
  for name, (a, s) in encoders.items():
    logging.info("sheets: %s", name)
    t = Towers(a, s, crops)
    row = retrieval(t, recordings, every, sr)
    row["alignment"] = alignment(t, recordings, grid, sr)
    report["rows"][name] = row
  report["rows"]["chroma_dtw"] = {
      "alignment": alignment(None, recordings, grid, sr)}
  report_lib.save_json(report, out or workdir, "sheets.json")
  return report


def markdown(report: dict) -> str:
  """The report as one table: a row per representation."""
  lines = ["| representation | a->s MRR | s->a MRR | a->s R@1 | a->s R@10 | "
           "a->s median rank | piece top-1 | piece top-5 | align mean (s) | "
           "align median (s) |", "|" + "---|" * 10]
  fmt = lambda d, k: f"{d[k]:.3f}" if d and k in d else "–"
  for name, row in report["rows"].items():
    a2s, s2a = row.get("audio->sheet"), row.get("sheet->audio")
    ident, align = row.get("identification"), row.get("alignment")
    lines.append(f"| {name} | {fmt(a2s, 'mrr')} | {fmt(s2a, 'mrr')} | "
                 f"{fmt(a2s, 'r@1')} | {fmt(a2s, 'r@10')} | "
                 f"{fmt(a2s, 'median_rank')} | {fmt(ident, 'top1')} | "
                 f"{fmt(ident, 'top5')} | {fmt(align, 'mean_abs_s')} | "
                 f"{fmt(align, 'median_abs_s')} |")
  return "\n".join(lines)
