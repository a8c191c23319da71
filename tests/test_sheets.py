"""Sheet music: verovio's engraving and timemap, the sheet feature in
prepare, the image frontend's augmentations, Dorfer's hinge loss, the
VGG pathway, and the audio <-> sheet tasks."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmusic import config as config_lib
from jaxmusic.audio import augment
from jaxmusic.data import build
from jaxmusic.data import decode
from jaxmusic.data import features as feats
from jaxmusic.data import pipeline
from jaxmusic.data import samplers
from jaxmusic.data import sheet
from jaxmusic.eval import sheets
from jaxmusic.models import vgg
from jaxmusic.models.frontends import image
from jaxmusic.objectives import two_tower


def scale_xml(pitches, bpm=120, title=None):
  """A one-part MusicXML of quarter notes at `bpm`."""
  import music21  # pylint: disable=g-import-not-at-top
  from music21.musicxml import m21ToXml  # pylint: disable=g-import-not-at-top
  part = music21.stream.Part()
  part.append(music21.tempo.MetronomeMark(number=bpm))
  for p in pitches:
    part.append(music21.note.Note(p, quarterLength=1.0))
  score = music21.stream.Score([part])
  if title:
    score.insert(0, music21.metadata.Metadata(title=title))
  return m21ToXml.GeneralObjectExporter(score).parse().decode()


def write_scores(root, n=3, notes=24):
  os.makedirs(root, exist_ok=True)
  rng = np.random.default_rng(0)
  for i in range(n):
    pitches = rng.integers(55, 80, notes).tolist()
    with open(os.path.join(root, f"piece{i}.musicxml"), "w") as f:
      f.write(scale_xml(pitches, title=f"Piece {i}"))
  return root


def test_engraving_ties_each_onset_to_its_notehead_and_its_time():
  pitches = list(range(60, 72))
  eng = sheet.engrave(scale_xml(pitches, bpm=120), height=120)
  assert eng.ink_HxW.shape[0] == 120 and eng.ink_HxW.dtype == np.uint8
  # Quarter notes at 120 bpm: an onset every half second.
  np.testing.assert_allclose(eng.onset_s, np.arange(12) * 0.5, atol=1e-3)
  assert np.all(np.diff(eng.onset_x) > 0)
  assert 0 < eng.onset_x[0] and eng.onset_x[-1] < eng.ink_HxW.shape[1]
  # Ink stands at each notehead's column: the strip is darker there than
  # halfway between two heads, in the staff's rows.
  rows = eng.ink_HxW.sum(axis=1) > 0
  heads = eng.ink_HxW[rows][:, np.round(eng.onset_x + 3).astype(int)]
  assert heads.max(axis=0).min() > 200
  notes = sorted((n for inst in eng.midi.instruments for n in inst.notes),
                 key=lambda n: n.start)
  assert [n.pitch for n in notes] == pitches
  np.testing.assert_allclose([n.start for n in notes], eng.onset_s,
                             atol=1e-3)


def test_verovio_rejects_what_it_cannot_engrave():
  with pytest.raises(decode.Rejected, match="verovio"):
    sheet.engrave("<score-partwise><part-list/></not-xml", 180)


def test_segments_keep_the_strip_around_each_frame():
  eng = sheet.engrave(scale_xml(list(range(60, 76))), height=100)
  rate, per_seg, width = 20.0, 40, 64
  segs = sheet.segments(eng, 3, per_seg, rate, width)
  frame_x = eng.x_at(np.arange(3 * per_seg) / rate)
  for s, seg in enumerate(segs):
    for k in (0, per_seg // 2, per_seg - 1):
      x = frame_x[s * per_seg + k]
      lo = int(round(x)) - width // 2
      want = np.zeros((100, width), np.uint8)
      a, b = max(lo, 0), min(lo + width, eng.ink_HxW.shape[1])
      want[:, a - lo:b - lo] = eng.ink_HxW[:, a:b]
      got = sheet.snippet(seg[sheet.SHEET], seg[sheet.SHEET_X][k], width)
      np.testing.assert_array_equal(got, want)
  onsets = np.concatenate([s[sheet.SHEET_ONSETS] for s in segs])
  np.testing.assert_allclose(onsets, eng.onset_s[eng.onset_s < 6.0])


@pytest.fixture(scope="module")
def score_collection(tmp_path_factory):
  root = tmp_path_factory.mktemp("scores")
  write_scores(str(root / "in"), n=4, notes=28)
  with open(root / "in" / "broken.musicxml", "w") as f:
    f.write("<score-partwise><part-list>")
  out = str(root / "prepared")
  cfg = feats.FeatureConfig(sheet_height=96, sheet_width=80)
  build.prepare("score", str(root / "in"), out, ("waveform", "sheet"),
                segment_seconds=4.0, cfg=cfg, progress=False,
                fractions=(0.5, 0.25, 0.25))
  return out


def test_prepare_engraves_scores_and_rejects_the_broken_one(score_collection):
  with open(os.path.join(score_collection, "rejected.jsonl")) as f:
    rejected = [json.loads(line) for line in f]
  assert [os.path.basename(r["path"]) for r in rejected] == [
      "broken.musicxml"]
  assert "music21 cannot parse" in rejected[0]["reason"]
  data = pipeline.PreparedData(score_collection)
  rec = data.read("train", 0)
  assert rec[sheet.SHEET].shape[0] == 96
  assert rec[sheet.SHEET_X].shape == (data.frames_per_segment,)
  crops = samplers.Crops(data, "train", "waveform", 8192)
  paired = samplers.Paired(crops, pair_feature="sheet")
  item = paired(0, np.random.default_rng(0))
  assert item["pair"].shape == (96, 80) and item["pair"].dtype == np.uint8
  assert item["inputs"].shape == (8192,)
  # Export reads a sheet tower's chunks as the snippets at their centres.
  reader = samplers.SequentialReader(data, "train", "sheet", 8192)
  np.testing.assert_array_equal(reader(1)["inputs"],
                                crops.sheet_at(crops.tracks[0], 16))


def test_prepare_without_a_score_names_the_reason(tmp_path):
  track = build.sources.Track("t", audio=None, midi=None)
  with pytest.raises(decode.Rejected, match="no score"):
    build.process_track(track, ("waveform", "sheet"), feats.FeatureConfig(),
                        22050)


def test_soundfonts_are_checked_before_any_work():
  with pytest.raises(ValueError, match="nothing.sf2"):
    feats.FeatureConfig(soundfonts=("/nothing.sf2",)).validate(
        ("waveform",))


def test_sheet_augmentation_is_a_zoom_and_a_shift():
  ink = jnp.asarray(np.random.default_rng(0).random((20, 30)), jnp.float32)
  key = jax.random.key(0)
  np.testing.assert_allclose(image.scale_translate(key, ink, 0.0, 0), ink,
                             atol=1e-6)
  moved = image.scale_translate(key, ink, 0.0, 3)
  shift = np.asarray(jax.random.randint(jax.random.split(key)[1], (2,), -3,
                                        4))
  want = np.zeros_like(ink)
  dy, dx = shift
  src = np.asarray(ink)[max(0, -dy):20 - max(0, dy),
                        max(0, -dx):30 - max(0, dx)]
  want[max(0, dy):max(0, dy) + src.shape[0],
       max(0, dx):max(0, dx) + src.shape[1]] = src
  np.testing.assert_allclose(moved, want, atol=1e-5)


def test_time_stretch_resamples_about_the_centre():
  ramp = jnp.tile(jnp.arange(41, dtype=jnp.float32), (3, 1))
  key = jax.random.key(1)
  out = np.asarray(augment.time_stretch(key, ramp, 0.2))
  rate = float(jax.random.uniform(key, (), minval=0.8, maxval=1.2))
  want = np.clip((np.arange(41) - 20) * rate + 20, 0, 40)
  np.testing.assert_allclose(out[0], want, atol=1e-4)
  np.testing.assert_allclose(augment.time_stretch(key, ramp, 0.0), ramp)


def hinge_reference(a, b, margin):
  a = a / np.linalg.norm(a, axis=1, keepdims=True)
  b = b / np.linalg.norm(b, axis=1, keepdims=True)
  sim = a.astype(np.float64) @ b.T.astype(np.float64)
  total = 0.0
  for i in range(len(a)):
    for k in range(len(a)):
      if k != i:
        total += max(0.0, margin - sim[i, i] + sim[i, k])
  return total / len(a)


def test_hinge_loss_matches_float64_reference():
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
  loss, _ = two_tower.hinge_loss(jnp.asarray(a), jnp.asarray(b),
                                 jax.random.key(0), margin=0.7)
  np.testing.assert_allclose(loss, hinge_reference(a, b, 0.7), rtol=1e-5)


def test_hinge_loss_counts_k_negatives():
  z = jnp.ones((8, 4))
  # Every similarity is 1: each active hinge is the margin.
  loss, _ = two_tower.hinge_loss(z, z, jax.random.key(0), margin=0.5,
                                 negatives=3)
  np.testing.assert_allclose(loss, 3 * 0.5, rtol=1e-6)


def test_vgg_halves_both_axes_per_block():
  module = vgg.VGG(channels=(4, 8, 8, 8), out_channels=6)
  x = jnp.ones((2, 48, 92))
  variables = module.init(jax.random.key(0), x)
  y, _ = module.apply(variables, x)
  assert y.shape == (2, 3, 6)


def test_audio_sheet_config_validates_and_names_bad_keys(score_collection):
  c = config_lib.load_config("two_tower", "towers=audio+sheet,runlocal")
  c.data.dir = score_collection
  c.batch_size = 8
  config_lib.validate(c)
  assert c.model.audio.frontend.n_mels == 92
  assert c.objective.loss == "hinge"
  c.objective.loss = "hing"
  with pytest.raises(ValueError, match="config.objective.loss='hing'"):
    config_lib.validate(c)


class OracleTowers:
  """Embeds an excerpt and a snippet by (piece, time): retrieval is
  perfect and DTW follows the true tempo."""

  def __init__(self, pieces, sr, rates=None):
    self.sr, self.index = sr, {id(p.wav_T): i for i, p in enumerate(pieces)}
    self.track = {p.track["id"]: i for i, p in enumerate(pieces)}
    self.rates = rates

  @staticmethod
  def _code(piece, t):
    """A point on a circle for the time, far off for another piece."""
    angle = 0.35 * np.asarray(t)
    one_hot = np.eye(8)[[piece % 8] * len(angle)] * 4.0
    return np.concatenate([np.stack([np.cos(angle), np.sin(angle)], 1),
                           one_hot], axis=1)

  def audio(self, wav_T, centres_s):
    piece = self.index.get(id(wav_T))
    if piece is None:  # a time-stretched performance
      piece, rate = self.stretched
      return self._code(piece, centres_s * rate)
    return self._code(piece, centres_s)

  def sheet(self, track, centres_s):
    return self._code(self.track[track["id"]], centres_s)


def test_oracle_embeddings_score_perfectly(monkeypatch):
  sr = 100
  pieces = [sheets.Piece({"id": f"p{i}"}, np.zeros(3000 + 100 * i),
                         np.zeros(3000 + 100 * i),
                         np.arange(0.5, 25, 1.0)) for i in range(6)]
  towers = OracleTowers(pieces, sr)
  out = sheets.retrieval(towers, pieces, every=1.0, sr=sr)
  assert out["identification"]["top1"] == 1.0
  assert out["audio->sheet"]["mrr"] == 1.0
  assert out["sheet->audio"]["median_rank"] == 1.0

  def stretch(y, rate):
    towers.stretched = (next(i for i, p in enumerate(pieces)
                             if p.wav_T is y), rate)
    return np.zeros(int(len(y) / rate))

  monkeypatch.setattr(sheets.librosa.effects, "time_stretch", stretch)
  err = sheets.alignment(towers, pieces, grid=0.2, sr=sr)
  assert err["mean_abs_s"] < 0.3


@pytest.mark.slow
def test_audio_sheet_run_and_its_tasks(score_collection, tmp_path):
  from jaxmusic import train  # pylint: disable=g-import-not-at-top
  c = config_lib.load_config("two_tower", "towers=audio+sheet,runlocal")
  c.data.dir = score_collection
  c.data.crop_samples = 16 * 1024
  c.batch_size = 8
  c.total_steps = 30
  c.log_every = 10
  c.checkpoint.every = 30
  c.monitor.every = 0
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(c, workdir)
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    losses = [json.loads(line)["loss"] for line in f if '"loss"' in line]
  assert losses[-1] < losses[0]
  report = sheets.run(workdir, score_collection, split="train", every=1.0,
                      grid=0.25)
  assert set(report["rows"]) == {"encoder", "random_init", "chroma_dtw"}
  # Chroma-DTW follows a tempo change of a synthesised score closely.
  assert report["rows"]["chroma_dtw"]["alignment"]["median_abs_s"] < 0.5
  for row in ("encoder", "random_init"):
    assert 0 < report["rows"][row]["audio->sheet"]["mrr"] <= 1
  assert "| chroma_dtw |" in sheets.markdown(report)
