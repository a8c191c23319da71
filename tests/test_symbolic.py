"""Symbolic music as users keep it: ABC tune books and scores through
`prepare`, REMI-like event tokens, their crops, transposition and
MusicBERT's bar-level masking."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pretty_midi
import pytest

from jaxmusic.data import build
from jaxmusic.data import features as feats
from jaxmusic.data import pipeline
from jaxmusic.data import scores
from jaxmusic.data import sources
from jaxmusic.data import tokens as T
from jaxmusic.models.frontends import tokens as token_frontend
from jaxmusic.objectives import masked_tokens

BOOK = """%abc-2.1
% a tune book's header applies to every tune
M:4/4
L:1/8

X:1
T:The Silver Spear
R:reel
K:D
|:FA (3AAA BAFA|dAFA BEE2|FA (3AAA BAFA|dBAF E2D2:|
|:fa (3aaa bafa|fa (3aaa gfef|fa (3aaa bafa|gfef d2d2:|

X:2
T:Out on the Ocean
M:6/8
R: Jig
K:G
|:D|GBA G2B|c2A B2G|ABA GED|EGG G2D|GBA G2B|c2A B2G|ABA GED|EGF G2:|

X:3
T:A Slip Jig With No Notes
R:slipjig
M:9/8
K:Ador
z9|z9|

X:4
T:Broken Tune
R:hornpipe
K:Bb
|:BA GF|[[[ ((( }}} x/0/0/0 &&&
"""


def _book(tmp_path, text=BOOK, name="book.abc"):
  folder = tmp_path / "books"
  folder.mkdir(exist_ok=True)
  (folder / name).write_text(text)
  (folder / "notes.txt").write_text("not a tune book")
  (folder / "tune.mid").write_bytes(b"MThd")
  return str(folder)


def test_a_books_header_and_fields_are_read_as_text():
  header, tunes = scores.split_book(BOOK)
  assert "M:4/4" in header
  assert [t.number for t in tunes] == ["1", "2", "3", "4"]
  assert tunes[0].fields["M"] == "4/4"  # the book's header
  assert tunes[1].fields["M"] == "6/8"  # the tune's own
  assert [scores.normalize_rhythm(t.fields["R"]) for t in tunes] == [
      "reel", "jig", "slip jig", "hornpipe"]
  assert scores.parse_key("Ador") == ("A", "dorian")
  assert scores.parse_key("F#m") == ("F#", "minor")
  assert scores.parse_key("Bb Mix") == ("Bb", "mixolydian")
  assert scores.parse_key("D") == ("D", "major")
  assert scores.rhythm_from_name("/x/reelsa-c.abc") == "reel"
  assert scores.rhythm_from_name("/x/jigs.abc") == "jig"
  assert scores.rhythm_from_name("/x/0001-0050.abc") is None
  assert tunes[1].name == "X:2 'Out on the Ocean'"


def test_prepare_abc_makes_every_tune_a_track_and_accounts_for_the_rest(
    tmp_path):
  root = _book(tmp_path)
  listing = sources.read_source("abc", root)
  assert [t.track_id for t in listing.tracks] == [
      "book#1", "book#2", "book#3", "book#4"]
  assert listing.ignored == [(os.path.join(root, "notes.txt"), ".txt"),
                             (os.path.join(root, "tune.mid"),
                              "not an ABC tune book")]
  out = str(tmp_path / "prepared")
  manifest = build.prepare("abc", root, out,
                           features=("pianoroll", "tokens"),
                           segment_seconds=1.0, progress=False)
  kept = {t["id"]: t for s in manifest["splits"].values()
          for t in s["tracks"]}
  assert sorted(kept) == ["book#1", "book#2"]
  assert kept["book#1"]["text"] == "The Silver Spear"
  vocab = manifest["vocab"]
  assert vocab["label"] == ["jig", "reel"]
  assert vocab["labels"]["meter"] == ["4/4", "6/8"]
  assert vocab["labels"]["key"] == ["D major", "G major"]
  lab = kept["book#2"]["labels"]
  assert vocab["labels"]["meter"][lab["meter"]] == "6/8"
  assert vocab["label"][kept["book#1"]["label"]] == "reel"
  with open(os.path.join(out, "rejected.jsonl")) as f:
    rejected = {r["track_id"]: r["reason"] for r in map(json.loads, f)}
  assert set(rejected) == {"book#3", "book#4"}
  assert "X:3 'A Slip Jig With No Notes'" in rejected["book#3"]
  assert "no notes" in rejected["book#3"]
  assert "X:4 'Broken Tune'" in rejected["book#4"]
  # The tokens of the reel: 4/4 bars of 48 positions, its first note D.
  data = pipeline.PreparedData(out)
  track = data.tracks("train")[0] if data.tracks("train") else None
  assert manifest["shapes"]["tokens"] == ["int32", [2, 1024]]
  rec = data.read("train" if track else "test", 0)["tokens"]
  names = T.describe(rec[0][rec[0] > 0])
  assert names[0] == "Bar" and names[1].startswith("Position_")
  assert any(n.startswith("Pitch_") for n in names)


def test_prepare_score_takes_the_composer_from_metadata_or_folder(tmp_path):
  import music21
  root = tmp_path / "scores"

  def write(path, composer, title, pitches):
    s = music21.stream.Score()
    part = music21.stream.Part()
    for p in pitches:
      part.append(music21.note.Note(p, quarterLength=1.0))
    s.append(part)
    s.insert(0, music21.metadata.Metadata())
    if composer:
      s.metadata.composer = composer
    s.metadata.title = title
    path.parent.mkdir(parents=True, exist_ok=True)
    s.write("musicxml", fp=str(path))

  write(root / "bach" / "a.musicxml", "J. S. Bach", "Chorale",
        ["C4", "E4", "G4", "C5"] * 4)
  write(root / "folder_only" / "b.musicxml", None, "Untitled",
        ["D4", "F4", "A4"] * 5)
  (root / "kern").mkdir()
  (root / "kern" / "d.krn").write_text(
      "**kern\n*M4/4\n=1\n4c\n4d\n4e\n4f\n=2\n4g\n4a\n4b\n4cc\n"
      "=3\n2cc\n2c\n==\n*-\n")
  (root / "broken").mkdir()
  (root / "broken" / "c.krn").write_text("**kern\n*M4/4\nthis is not kern\n")
  out = str(tmp_path / "prepared")
  manifest = build.prepare("score", str(root), out, features=("tokens",),
                           segment_seconds=1.0, progress=False)
  kept = {t["id"]: t for s in manifest["splits"].values()
          for t in s["tracks"]}
  labels = manifest["vocab"]["label"]
  assert labels[kept[os.path.join("bach", "a")]["label"]] == "J. S. Bach"
  assert kept[os.path.join("bach", "a")]["text"] == "Chorale"
  assert labels[kept[os.path.join("folder_only", "b")]["label"]] == \
      "folder_only"
  assert labels[kept[os.path.join("kern", "d")]["label"]] == "kern"
  with open(os.path.join(out, "rejected.jsonl")) as f:
    rejected = [json.loads(line) for line in f]
  assert [r["track_id"] for r in rejected] == [os.path.join("broken", "c")]


def _midi(notes, ts=(4, 4), programs=(0,)):
  pm = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=120)
  pm.time_signature_changes.append(pretty_midi.TimeSignature(*ts, 0))
  for program in programs:
    inst = pretty_midi.Instrument(program)
    inst.notes += [pretty_midi.Note(v, p, s, e) for v, p, s, e in notes]
    pm.instruments.append(inst)
  return pm


def test_tokens_follow_bars_positions_and_durations():
  """At 120 bpm a quarter is 0.5 s and a 4/4 bar 2 s; positions and
  durations count twelfths of a quarter; an empty bar keeps its `Bar`."""
  pm = _midi([(100, 60, 0.0, 0.5), (64, 64, 0.5, 0.75),
              (80, 67, 2.0, 2.125), (80, 72, 6.25, 6.5)])
  ids, frames = T.encode(pm, 22050 / 512)
  assert T.describe(ids) == [
      "Bar", "Position_0", "Pitch_60", "Velocity_6", "Duration_12",
      "Position_12", "Pitch_64", "Velocity_4", "Duration_6",
      "Bar", "Position_0", "Pitch_67", "Velocity_5", "Duration_3",
      "Bar",
      "Bar", "Position_6", "Pitch_72", "Velocity_5", "Duration_6"]
  fps = 22050 / 512
  assert frames[9] == int(2.0 * fps) and frames[14] == int(4.0 * fps)
  # A 6/8 bar is 3 quarters: the fourth eighth note opens bar 2.
  jig = _midi([(90, 62 + i, 0.25 * i, 0.25 * (i + 1)) for i in range(7)],
              ts=(6, 8))
  names = T.describe(T.encode(jig, fps)[0])
  assert names.count("Bar") == 2
  assert names[names.index("Bar", 1) + 1] == "Position_0"
  assert "Position_30" in names  # the sixth eighth: 5 x 6 twelfths
  # Two instruments: each note says its program.
  duo = _midi([(90, 60, 0.0, 0.5)], programs=(0, 40))
  assert [n for n in T.describe(T.encode(duo, fps)[0])
          if n.startswith("Program")] == ["Program_0", "Program_40"]


def test_token_crops_keep_whole_bars_or_the_first_tokens():
  pm = _midi([(90, 60 + i % 12, 0.5 * i, 0.5 * i + 0.25) for i in range(16)])
  ids, frames = T.encode(pm, 22050 / 512)
  fps = 22050 / 512
  start = int(0.7 * fps)  # inside bar 1, after its first two notes
  by_bars = T.describe(T.crop(ids, frames, start, 10 ** 6, 12, "bars"))
  # Bar 2 (4 notes of 4 tokens, 1 Bar) does not fit 12: bar 2's first
  # tokens are kept rather than nothing.
  assert by_bars[0] == "Bar"
  by_bars = T.describe(T.crop(ids, frames, start, 10 ** 6, 40, "bars"))
  assert by_bars[0] == "Bar" and by_bars.count("Bar") == 2
  assert by_bars[34:] == ["Pad"] * 6  # whole bars: 2 x 17 tokens
  by_tokens = T.describe(T.crop(ids, frames, start, 10 ** 6, 12, "tokens"))
  assert by_tokens[0] == "Position_24" and "Pad" not in by_tokens
  with pytest.raises(ValueError, match="token_crop='beats'"):
    T.crop(ids, frames, 0, 100, 8, "beats")


def test_transposition_moves_pitch_tokens_only():
  ids = jnp.asarray([T.BAR, T.POSITION0 + 3, T.PITCH0 + 60, T.VELOCITY0 + 5,
                     T.DURATION0 + 2, T.PITCH0 + 127, T.PAD])
  for seed in range(6):
    key = jax.random.PRNGKey(seed)
    shift = int(jax.random.randint(key, (), -6, 7))
    got = np.asarray(token_frontend.token_transpose(key, ids, 6))
    want = np.asarray(ids).copy()
    want[2] += shift
    want[5] = min(T.PITCH0 + 127 + shift, T.PITCH0 + 127)
    np.testing.assert_array_equal(got, want)


def test_bar_level_masking_masks_a_bars_tokens_of_a_type_together():
  pm = _midi([(90, 60 + i % 12, 0.25 * i, 0.25 * i + 0.25)
              for i in range(32)])
  ids, _ = T.encode(pm, 22050 / 512)
  ids_BxL = jnp.asarray(np.stack([ids[:120]] * 4))
  mask = np.asarray(masked_tokens.bar_type_mask(jax.random.PRNGKey(0),
                                                ids_BxL, 0.3, 64))
  kind = np.asarray(masked_tokens.token_type(ids_BxL))
  bar = np.asarray(T.bar_index(ids_BxL))
  assert not mask[kind < 0].any()  # Bar and pad never
  assert mask.any() and not mask.all()
  for b in range(4):
    for cell in {(bar[b, i], kind[b, i]) for i in range(120)
                 if kind[b, i] >= 0}:
      same = (bar[b] == cell[0]) & (kind[b] == cell[1])
      assert mask[b, same].all() or not mask[b, same].any()
  corrupted = np.asarray(masked_tokens.corrupt(jax.random.PRNGKey(1),
                                               ids_BxL, jnp.asarray(mask)))
  assert (corrupted[~mask] == np.asarray(ids_BxL)[~mask]).all()
  frac = np.mean(corrupted[mask] == T.MASK)
  assert 0.6 < frac < 0.95


def test_sequences_come_from_the_data_config():
  import ml_collections
  cfg = ml_collections.ConfigDict({"tokens": 64, "token_crop": "tokens"})
  seq = feats.Sequences.from_config(cfg)
  assert (seq.text_bytes, seq.tokens, seq.token_crop) == (64, 64, "tokens")


def test_graded_dcg_equals_a_hand_count():
  """DCG with relevance 1 for the tune itself and 0.5 for a tune of its
  rhythm type, in rank order (ties: the less relevant first), against
  a loop over each query's sorted gallery."""
  from jaxmusic.eval import probes
  rng = np.random.default_rng(0)
  q = rng.standard_normal((30, 5))
  g = q + 1.2 * rng.standard_normal((30, 5))
  g[4] = g[9]  # a tie
  groups = rng.integers(0, 3, 30)
  groups[0] = -1  # no type: only itself is relevant
  got = probes.crossmodal_metrics(q, g, k=10, groups_N=groups)
  cos = lambda a, b: float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
  dcg, dcg10, ndcg10 = [], [], []
  for i in range(30):
    rel = [1.0 if j == i else 0.5 if groups[i] >= 0 and groups[j] == groups[i]
           else 0.0 for j in range(30)]
    order = sorted(range(30), key=lambda j: (-cos(q[i], g[j]), rel[j]))
    gains = [rel[j] / np.log2(r + 2) for r, j in enumerate(order)]
    ideal = sum(r / np.log2(n + 2)
                for n, r in enumerate(sorted(rel, reverse=True)[:10]))
    dcg.append(sum(gains))
    dcg10.append(sum(gains[:10]))
    ndcg10.append(sum(gains[:10]) / ideal)
  assert got["dcg"] == pytest.approx(np.mean(dcg), abs=1e-12)
  assert got["dcg@10"] == pytest.approx(np.mean(dcg10), abs=1e-12)
  assert got["ndcg@10"] == pytest.approx(np.mean(ndcg10), abs=1e-12)


def test_roll_statistics_of_a_hand_made_roll():
  """Two notes a second for 2 s at 10 frames a second: C4, E4, G4, E4
  (intervals +4, +3, -3), C4 held under them."""
  from jaxmusic.eval import baselines
  roll = np.zeros((1, 128, 20), np.uint8)
  for i, p in enumerate((64, 67, 71, 67)):
    roll[0, p, 5 * i:5 * i + 4] = 90
  roll[0, 60, :] = 70
  got = baselines.roll_stats(roll, 10.0)[0]
  assert got[0] == pytest.approx((16 + 20) / 20)  # notes per frame
  assert got[1] == pytest.approx(5 / 2)  # 5 onsets in 2 s
  assert got[2] == pytest.approx(11 / 127)  # C4..B4: 11 semitones
  hist = got[5:]
  # The top voice's intervals: +3, +4, -4 (the held C4 is never on top).
  want = np.zeros(25)
  want[[12 + 3, 12 + 4, 12 - 4]] = 1 / 3
  np.testing.assert_allclose(hist, want, atol=1e-6)


def _tune_book(n=18):
  """A book of `n` short tunes over three rhythm types and two meters,
  each with a title naming its type."""
  kinds = (("reel", "4/4", "|:DEFG ABcd|edcB AGFE:|"),
           ("jig", "6/8", "|:DEF GAB|cBA GFE:|"),
           ("hornpipe", "4/4", "|:dcBA GFED|CDEF GABc:|"))
  tunes = []
  for i in range(n):
    kind, meter, body = kinds[i % 3]
    key = ("D", "G", "Ador")[i % 3 if i % 2 else (i + 1) % 3]
    tunes.append(f"X:{i + 1}\nT:The {kind.title()} of Number {i}\nR:{kind}\n"
                 f"M:{meter}\nL:1/8\nK:{key}\n" + body * (2 + i % 3) + "\n")
  return "\n".join(tunes)


@pytest.mark.slow
def test_a_tune_book_from_prepare_to_the_crossmodal_probe(tmp_path):
  """The README's path: prepare a tune book, train the two towers
  (tokens <-> titles), export each, rank melody <-> title with graded
  DCG, and probe the meter, an extra label."""
  from jaxmusic import config as config_lib
  from jaxmusic import train
  from jaxmusic.eval import embeddings
  from jaxmusic.eval import report
  root = _book(tmp_path, _tune_book())
  data = str(tmp_path / "prepared")
  build.prepare("abc", root, data, features=("tokens", "pianoroll"),
                segment_seconds=1.0, progress=False)
  c = config_lib.load_config("two_tower", "towers=tokens+text,runlocal")
  c.data.dir = data
  c.data.crop_samples = 43 * 512
  c.data.tokens, c.data.text_bytes = 32, 32
  for t in c.model.towers:
    c.model[t].update(width=16, heads=2, ffn=32, layers=1, max_frames=32,
                      bottleneck=8)
    c.model[t].frontend.dim = 16
  c.update(total_steps=3, batch_size=8, log_every=1)
  c.optimizer.warmup_steps = 1
  c.checkpoint.every = 3
  c.monitor.every = 0
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(c, workdir)
  melody, title = str(tmp_path / "melody"), str(tmp_path / "title")
  info = embeddings.run(workdir, melody, data_dir=data,
                        baseline_names=["random_init", "roll_stats"],
                        progress=False)
  assert info["representations"] == ["encoder", "random_init", "roll_stats"]
  embeddings.run(workdir, title, data_dir=data, tower="text",
                 baseline_names=["random_init"], progress=False)
  got = report.run_crossmodal(melody, title, out=str(tmp_path / "x"))
  row = got["rows"][0]
  assert row["probe"] == "tokens->text"
  assert {"mrr", "r@1", "dcg", "dcg@10", "ndcg@10"} <= set(row["metrics"])
  meter = report.run(melody, task="multiclass", target="meter",
                     kinds=("linear",), out=str(tmp_path / "meter"))
  assert meter["target"] == "meter"
  assert {r["representation"] for r in meter["rows"]} == {
      "encoder", "random_init", "roll_stats"}
  # A MIDI file never prepared, cut into the same token crops.
  song = str(tmp_path / "song.mid")
  _midi([(90, 60 + i % 7, 0.25 * i, 0.25 * i + 0.2) for i in range(40)]
        ).write(song)
  files = str(tmp_path / "files")
  embeddings.run(workdir, files, midi=[song], data_dir=data,
                 baseline_names=["random_init"], progress=False)
  emb = np.load(os.path.join(files, "midi", "encoder", "segment",
                             "embeddings.npy"))
  assert emb.shape == (10, 8) and np.isfinite(emb).all()  # 9.95 s, 43 frames a crop
  with pytest.raises(ValueError, match="use label, artist, key, meter, "
                     "mode, rhythm"):
    report.run(melody, task="multiclass", target="tempo", kinds=("linear",),
               out=str(tmp_path / "bad"))


@pytest.mark.slow
def test_masked_tokens_learns_on_the_embedded_corpus(tiny_corpus, tmp_path):
  """MusicBERT's objective on the tiny corpus's tokens: the masked-token
  loss falls within 30 steps."""
  from jaxmusic import config as config_lib
  from jaxmusic import train
  data = str(tmp_path / "prepared")
  build.prepare("csv", os.path.join(os.path.dirname(tiny_corpus), "raw",
                                    "metadata.csv"), data,
                features=("tokens",), segment_seconds=1.0, progress=False)
  c = config_lib.load_config("masked_tokens", "runlocal,tokens=32")
  c.data.dir = data
  c.data.crop_samples = 43 * 512
  c.model.update(width=32, heads=2, ffn=64, layers=1)
  c.model.frontend.dim = 32
  c.update(total_steps=30, batch_size=16, log_every=5)
  c.optimizer.update(warmup_steps=2, learning_rate=3e-3)
  c.checkpoint.every = 30
  c.monitor.every = 0
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(c, workdir)
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    losses = [r["loss"] for r in map(json.loads, f) if "loss" in r]
  assert losses[-1] < 0.8 * losses[0]


def test_masked_tokens_refuses_other_inputs_and_a_frontend_transpose():
  from jaxmusic import config as config_lib
  c = config_lib.load_config("masked_tokens", "runlocal")
  c.model.frontend.transpose = 3
  with pytest.raises(ValueError, match="model.frontend.transpose"):
    config_lib.validate(c)
  c = config_lib.load_config("masked_tokens", "runlocal")
  c.objective.name = "masked_tokens"
  c.model.frontend = {"name": "pianoroll", "embed": "linear", "dim": 128}
  c.data.features = ("pianoroll",)
  with pytest.raises(ValueError, match="tokens frontend"):
    config_lib.validate(c)


def test_a_fine_tuned_tower_keeps_its_new_projection():
  """model_init from a pretraining run: the encoder's leaves come from the
  run, the two-tower projection it lacks keeps its init; any other
  missing leaf is another architecture."""
  from jaxmusic import models
  want = {"frontend": {"embed": {"embedding": np.zeros((4, 2))}},
          "bottleneck_proj": {"kernel": np.zeros((2, 3))}}
  have = {"frontend": {"embed": {"embedding": np.ones((4, 2))}},
          "mask_emb": np.ones(2)}
  got = models.fit(want, have, fresh=models.FRESH)
  np.testing.assert_array_equal(got["frontend"]["embed"]["embedding"], 1)
  np.testing.assert_array_equal(got["bottleneck_proj"]["kernel"], 0)
  with pytest.raises(models.Mismatch):
    models.fit(want, have)
  with pytest.raises(models.Mismatch):
    models.fit({**want, "other": np.zeros(1)}, have, fresh=models.FRESH)
