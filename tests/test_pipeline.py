"""Grain pipelines: modes, determinism, host sharding, iterator restore."""
import itertools

import grain
import numpy as np
import orbax.checkpoint as ocp
import pytest

from jaxmusic.data import features as feats
from jaxmusic.data import pipeline
from jaxmusic.data import samplers

CROP = 8192


def take(ds, n):
  return list(itertools.islice(iter(ds), n))


def test_views_two_crops_of_one_track(tiny_corpus):
  data = pipeline.PreparedData(tiny_corpus)
  (batch,) = take(pipeline.make_dataset(data, "train", "views", batch_size=4,
                                        crop_samples=CROP), 1)
  assert batch["views"].shape == (4, 2, CROP)
  assert batch["views"].dtype == np.float32
  tracks = data.tracks("train")
  for views, t in zip(batch["views"], batch["track"]):
    full = np.concatenate([data.read("train", tracks[t]["first_record"] + s)
                           ["waveform"] for s in range(tracks[t]["num_segments"])])
    full = full.astype(np.float32) / 32767
    for v in views:  # each view is a contiguous piece of that track
      starts = np.flatnonzero(np.isclose(full[: len(full) - CROP + 1], v[0]))
      assert any(np.allclose(full[s:s + CROP], v) for s in starts)
  assert not np.allclose(batch["views"][:, 0], batch["views"][:, 1])


def test_crops_cross_segment_borders(tiny_corpus):
  data = pipeline.PreparedData(tiny_corpus)
  track = data.tracks("train")[0]
  seg = data.segment_samples
  start_frame = (seg - 1024) // data.hop
  crop = data.span("train", track, "waveform", start_frame, 4096)
  a = data.read("train", track["first_record"])["waveform"]
  b = data.read("train", track["first_record"] + 1)["waveform"]
  want = np.concatenate([a, b])[start_frame * 512:start_frame * 512 + 4096]
  np.testing.assert_array_equal(crop, want.astype(np.float32) / 32767)
  mel = data.span("train", track, "logmel", start_frame, 4096)
  assert mel.shape == (128, 8)


@pytest.mark.parametrize("by", [None, "label", "artist"])
def test_triplet_samplers_keep_their_rules(tiny_corpus, by):
  """Temporal: the positive is the anchor's own track within the radius,
  the negative another track. Metadata: the positive is another track
  sharing the label (or artist), the negative one that does not. Each crop
  is the stored audio at its reported track and start."""
  data = pipeline.PreparedData(tiny_corpus)
  ds = pipeline.make_dataset(data, "train", "triplet", batch_size=8,
                             crop_samples=CROP, triplet_by=by,
                             radius_seconds=0.5, seed=2)
  tracks = data.tracks("train")
  radius = int(0.5 * 22050 / data.hop)
  for b in take(ds, 3):
    for i in range(8):
      a, p, n = (tracks[t] for t in b["tracks"][i])
      sa, sp, _ = b["starts"][i]
      if by is None:
        assert b["tracks"][i][1] == b["tracks"][i][0]
        assert abs(int(sp) - int(sa)) <= radius
        assert b["tracks"][i][2] != b["tracks"][i][0]
      else:
        assert b["tracks"][i][1] != b["tracks"][i][0]
        assert p[by] == a[by] and n[by] != a[by]
      for name, t, s in zip(("anchor", "positive", "negative"),
                            (a, p, n), b["starts"][i]):
        np.testing.assert_array_equal(
            b[name][i], data.span("train", t, "waveform", int(s), CROP))


def test_frames_paired_labelled(tiny_corpus):
  data = pipeline.PreparedData(tiny_corpus)
  (f,) = take(pipeline.make_dataset(data, "train", "frames", batch_size=2,
                                    crop_samples=CROP, targets=("cqt",)), 1)
  assert f["inputs"].shape == (2, CROP) and f["cqt"].shape == (2, 84, 16)
  (p,) = take(pipeline.make_dataset(data, "train", "paired", batch_size=2,
                                    feature="logmel", crop_samples=CROP), 1)
  assert p["inputs"].shape == (2, 128, 16) and p["pair"].shape == (2, 128, 16)
  # Velocities 0..127, which the piano-roll frontend alone scales to [0, 1].
  assert 0 <= p["pair"].min() and 64 < p["pair"].max() <= 127
  from jaxmusic.models import frontends
  roll = frontends.PianoRoll(embed="none").apply({}, p["pair"])
  assert 0.5 < float(roll.max()) <= 1.0
  (lab,) = take(pipeline.make_dataset(data, "train", "labelled",
                                      batch_size=3, crop_samples=CROP), 1)
  assert lab["label"].shape == (3,) and lab["tags"].shape == (3, 12)
  tracks = data.tracks("train")
  assert set(lab["label"]) <= {t["label"] for t in tracks}


def _starts(data, track, feature, crop, x):
  """Every start frame at which `x` is `feature`'s crop of `track`."""
  last = (track["num_segments"] * data.segment_samples - crop) // 512
  return {s for s in range(last + 1)
          if np.array_equal(data.span("train", track, feature, s, crop), x)}


def test_paired_audio_and_roll_are_time_aligned(tiny_corpus):
  data = pipeline.PreparedData(tiny_corpus)
  track = data.tracks("train")[5]
  sampler = samplers.make(data, "train", "paired", "waveform", CROP)
  out = sampler(5, np.random.default_rng(3))
  starts = _starts(data, track, "waveform", CROP, out["inputs"])
  assert starts
  roll = data.span("train", track, "pianoroll", min(starts), CROP)
  np.testing.assert_array_equal(roll, out["pair"])
  assert out["track"] == 5


def test_unaligned_pairs_are_crops_of_the_same_track(tiny_corpus):
  """`pair_aligned=False`: the roll is a crop of the audio's track that
  starts anywhere in it, not only where the audio does."""
  data = pipeline.PreparedData(tiny_corpus)
  track = data.tracks("train")[5]
  sampler = samplers.make(data, "train", "paired", "waveform", CROP,
                          pair_aligned=False)
  moved = 0
  for seed in range(6):
    out = sampler(5, np.random.default_rng(seed))
    audio = _starts(data, track, "waveform", CROP, out["inputs"])
    roll = _starts(data, track, "pianoroll", CROP, out["pair"])
    assert audio and roll
    moved += not audio & roll
  assert moved >= 3


def test_text_pairs_each_crop_with_its_tracks_title(tiny_corpus):
  """The paired mode's "text" is the track's title from the CSV, as
  byte ids, and the embedded corpus's titles carry its tags' words."""
  from jaxmusic.data import synthetic
  data = pipeline.PreparedData(tiny_corpus)
  (b,) = take(pipeline.make_dataset(data, "train", "paired", batch_size=4,
                                    feature="pianoroll", crop_samples=CROP,
                                    pair_feature="text",
                                    sequences=feats.Sequences(text_bytes=48)),
                 1)
  assert b["pair"].shape == (4, 48) and b["pair"].dtype == np.int32
  tracks = data.tracks("train")
  for ids, i in zip(b["pair"], b["track"]):
    assert feats.decode_text(ids) == tracks[i]["text"][:48]
  words = {w for table in (synthetic.MODE_WORDS, synthetic.TEMPO_WORDS)
           for ws in table.values() for w in ws}
  informative = sum(bool(words & set(t["text"].split())) for t in tracks)
  assert 0.5 * len(tracks) < informative < len(tracks)
  # 5 bytes cut the second é in half; the half is dropped.
  assert feats.decode_text(feats.encode_text("Sérénade", 5)) == "Sér"


def test_sequential_covers_every_segment_in_order(tiny_corpus):
  data = pipeline.PreparedData(tiny_corpus)
  seg = data.segment_samples
  batches = list(pipeline.make_dataset(data, "valid", "sequential",
                                       batch_size=3, crop_samples=seg // 2))
  tracks = np.concatenate([b["track"] for b in batches])
  segments = np.concatenate([b["segment"] for b in batches])
  chunks = np.concatenate([b["chunk"] for b in batches])
  want = [(t, s, c) for t, info in enumerate(data.tracks("valid"))
          for s in range(info["num_segments"]) for c in range(2)]
  assert list(zip(tracks, segments, chunks)) == want


def test_same_seed_same_batches_other_seed_differs(tiny_corpus):
  make = lambda seed: take(pipeline.make_dataset(
      tiny_corpus, "train", "views", batch_size=4, crop_samples=CROP,
      seed=seed), 3)
  a, b, c = make(0), make(0), make(1)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x["views"], y["views"])
  assert not np.array_equal(a[0]["views"], c[0]["views"])


def test_two_hosts_get_disjoint_covering_shards(tiny_corpus):
  n_tracks = len(pipeline.PreparedData(tiny_corpus).tracks("train"))
  per_host = []
  for host in range(2):
    ds = pipeline.make_dataset(tiny_corpus, "train", "views", batch_size=5,
                               crop_samples=CROP, seed=7, shard_index=host,
                               shard_count=2)
    # One epoch: 4 batches x 5 = 20 per host = half the 40 tracks.
    per_host.append(np.concatenate([b["track"] for b in take(ds, 4)]))
  assert not set(per_host[0]) & set(per_host[1])
  assert set(per_host[0]) | set(per_host[1]) == set(range(n_tracks))
  seq = [np.concatenate([b["track"] for b in pipeline.make_dataset(
      tiny_corpus, "train", "sequential", batch_size=4, crop_samples=0,
      shard_index=h, shard_count=2)]) for h in range(2)]
  assert len(seq[0]) + len(seq[1]) == sum(
      t["num_segments"] for t in pipeline.PreparedData(tiny_corpus).tracks(
          "train"))


def test_iterator_state_restored_through_orbax_gives_identical_batches(
    tiny_corpus, tmp_path):
  ds = pipeline.make_dataset(tiny_corpus, "train", "views", batch_size=4,
                             crop_samples=CROP, seed=3)
  it = iter(ds)
  for _ in range(3):
    next(it)
  mngr = ocp.CheckpointManager(tmp_path / "ckpt")
  mngr.save(3, args=ocp.args.Composite(
      data_iter=grain.checkpoint.CheckpointSave(it)))
  mngr.wait_until_finished()
  want = [next(it) for _ in range(2)]
  fresh = iter(pipeline.make_dataset(tiny_corpus, "train", "views",
                                     batch_size=4, crop_samples=CROP, seed=3))
  mngr.restore(3, args=ocp.args.Composite(
      data_iter=grain.checkpoint.CheckpointRestore(fresh)))
  for w in want:
    np.testing.assert_array_equal(next(fresh)["views"], w["views"])


def test_config_errors_name_the_problem(tiny_corpus):
  with pytest.raises(ValueError, match="'chroma' is not in"):
    pipeline.make_dataset(tiny_corpus, "train", "views", batch_size=2,
                          feature="chroma")
  with pytest.raises(ValueError, match="longer than the shortest"):
    pipeline.make_dataset(tiny_corpus, "train", "views", batch_size=2,
                          crop_samples=10**7)
  with pytest.raises(ValueError, match="data.mode='pairs'"):
    pipeline.make_dataset(tiny_corpus, "train", "pairs", batch_size=2)
  with pytest.raises(FileNotFoundError, match="no prepared dataset"):
    pipeline.PreparedData("/nonexistent")


def test_elements_do_not_depend_on_host_count(tiny_corpus):
  one = take(pipeline.make_dataset(tiny_corpus, "train", "views",
                                   batch_size=4, crop_samples=CROP, seed=5), 1)
  two = [take(pipeline.make_dataset(tiny_corpus, "train", "views",
                                    batch_size=2, crop_samples=CROP, seed=5,
                                    shard_index=h, shard_count=2), 1)[0]
         for h in range(2)]
  merged = np.stack([two[0]["views"][0], two[1]["views"][0],
                     two[0]["views"][1], two[1]["views"][1]])
  np.testing.assert_array_equal(merged, one[0]["views"])
