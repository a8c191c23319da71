"""Zero-shot tags: the held-out rule, the tag pairs the paired mode draws,
the loss that keeps a pair's other true tags out of its negatives, the
retrieval scores against hand counts, and a run queried by `probe --task
zeroshot`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmusic import config as config_lib
from jaxmusic.data import features as feats
from jaxmusic.data import pipeline
from jaxmusic.data import samplers
from jaxmusic.data import tags
from jaxmusic.eval import zeroshot
from jaxmusic.objectives import two_tower

VOCAB = ["bass", "drums", "fast", "flute", "guitar", "major", "minor"]


def test_held_out_by_name_or_every_kth():
  assert tags.held_out(VOCAB, ("minor", "bass")) == [0, 6]
  assert tags.held_out(VOCAB, (), 3) == [2, 5]
  assert tags.held_out(VOCAB, (), 0) == []
  assert tags.split(VOCAB, (), 3) == ([0, 1, 3, 4, 6], [2, 5])
  with pytest.raises(ValueError, match="'flutes' is not in"):
    tags.held_out(VOCAB, ("flutes",))
  with pytest.raises(ValueError, match="none is left"):
    tags.split(VOCAB, (), 1)


def test_config_args():
  c = config_lib.load_config("two_tower", "towers=audio+tags,holdout=flute+"
                             "organ,runlocal")
  assert tuple(c.data.features) == ("waveform", tags.FEATURE)
  assert c.data.zeroshot_holdout == ("flute", "organ")
  assert c.model.tags.frontend.name == "tag"
  assert c.model.tags.max_frames == c.data.text_bytes
  config_lib.validate(c)
  with pytest.raises(ValueError, match="holdout"):
    config_lib.load_config("two_tower", "towers=audio+text,holdout=flute")


def test_tag_pairs_never_name_a_held_out_tag(tiny_corpus):
  data = pipeline.PreparedData(tiny_corpus)
  vocab = data.manifest["vocab"]["tags"]
  # Hold out every tag of the first track but one, so that tracks with
  # none of the others left must give their turn away.
  first = data.tracks("train")[0]["tags"]
  holdout = tuple(vocab[i] for i in first[1:])
  sampler = samplers.make(data, "train", "paired", feats.WAVEFORM, 4096,
                          pair_feature=tags.FEATURE,
                          zeroshot_holdout=holdout)
  rng = np.random.default_rng(0)
  drawn = set()
  for i in range(len(data.tracks("train"))):
    for _ in range(3):
      ex = sampler(i, rng)
      track = data.tracks("train")[int(ex["track"])]
      tag = int(ex["pair_tag"])
      assert vocab[tag] not in holdout and tag in track["tags"]
      assert ex["pair_tags"][tag] == 1 and ex["pair_tags"].sum() == len(
          track["tags"])
      want = feats.encode_text(tags.text(vocab[tag]), 64)
      np.testing.assert_array_equal(ex["pair"], want)
      drawn.add(tag)
  assert drawn == set(range(len(vocab))) - {vocab.index(h) for h in holdout}


def test_holding_out_every_tag_of_the_split_is_an_error(tiny_corpus):
  data = pipeline.PreparedData(tiny_corpus)
  with pytest.raises(ValueError, match="none is left"):
    samplers.make(data, "train", "paired", feats.WAVEFORM, 4096,
                  pair_feature=tags.FEATURE, zeroshot_every=1)


def test_loss_leaves_a_pairs_other_true_tags_out_of_its_negatives():
  rng = np.random.default_rng(0)
  z_a, z_b = rng.standard_normal((2, 6, 8)).astype(np.float32)
  also = rng.random((6, 6)) < 0.4
  loss, _, _ = two_tower.clip_loss(jnp.asarray(z_a), jnp.asarray(z_b),
                                   jnp.float32(np.log(10.0)), 100.0,
                                   jnp.asarray(also))
  norm = lambda z: z / np.linalg.norm(z, axis=1, keepdims=True)
  logits = 10.0 * norm(z_a.astype(np.float64)) @ norm(
      z_b.astype(np.float64)).T
  keep = ~also | np.eye(6, dtype=bool)

  def ce(l, k):
    return np.mean([np.log(np.sum(np.exp(row[m]))) - row[i]
                    for i, (row, m) in enumerate(zip(l, k))])
  want = (ce(logits, keep) + ce(logits.T, keep.T)) / 2
  np.testing.assert_allclose(float(loss), want, rtol=1e-5)
  plain, _, _ = two_tower.clip_loss(jnp.asarray(z_a), jnp.asarray(z_b),
                                    jnp.float32(np.log(10.0)), 100.0)
  assert float(plain) > float(loss)


def test_also_reads_each_pairs_tag_against_each_tracks_tags():
  batch = {"pair_tag": jnp.asarray([2, 0, 2]),
           "pair_tags": jnp.asarray([[0, 0, 1], [1, 1, 0], [1, 0, 1]],
                                    jnp.float32)}
  want = [[True, False, True], [False, True, False], [True, True, True]]
  also = two_tower._also  # pylint: disable=protected-access
  np.testing.assert_array_equal(also(batch), want)
  assert also({}) is None


def test_tag_scores_by_hand():
  scores = np.arange(12, 0, -1, dtype=float)  # item 0 ranks first
  relevant = np.zeros(12, bool)
  relevant[[2, 5, 11]] = True
  got = zeroshot.tag_scores(scores, relevant)
  assert got["p@10"] == pytest.approx(2 / 10)
  assert got["mrr"] == pytest.approx(1 / 3)
  assert got["ap"] == pytest.approx((1 / 3 + 2 / 6 + 3 / 12) / 3)
  # 9 negatives: 7 are below item 2, 5 below item 5 and none below 11.
  assert got["auc"] == pytest.approx((7 + 5 + 0) / 27)


def test_summarise_groups_and_skips_tags_no_item_has():
  rel = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0]], bool)
  scores = np.array([[0.9, 0.1, 0.5], [0.1, 0.9, 0.5], [0.8, 0.2, 0.5]])
  out = zeroshot.summarise(scores, rel, {"zero_shot": [1], "seen": [0, 2]})
  assert set(out["per_tag"]) == {0, 1}
  assert out["zero_shot"]["mrr"] == 1.0 and out["zero_shot"]["tags"] == 1
  assert out["seen"]["tags"] == 1 and out["seen"]["p@10"] == pytest.approx(
      2 / 3)
  nothing = zeroshot.summarise(np.full((3, 3), np.nan), rel,
                               {"zero_shot": [1]})
  assert nothing["zero_shot"] is None


@pytest.mark.slow
def test_run_and_zeroshot_probe(tiny_corpus, tmp_path):
  from jaxmusic import train  # pylint: disable=g-import-not-at-top
  c = config_lib.load_config("two_tower", "towers=audio+tags,runlocal")
  c.data.dir = tiny_corpus
  c.data.crop_samples = 16 * 512
  c.batch_size = 8
  c.total_steps = 6
  c.optimizer.warmup_steps = 2
  c.checkpoint.every = 6
  c.monitor.every = 0
  for tower in ("audio", "tags"):
    c.model[tower].update(size="tiny", layers=1, width=32, heads=2, ffn=64)
    c.model[tower].frontend.dim = 32
  c.model.audio.update(conv_pos_kernel=8, conv_pos_groups=4)
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(c, workdir)
  report = zeroshot.run(workdir, tiny_corpus, out=str(tmp_path / "out"))
  vocab = pipeline.PreparedData(tiny_corpus).manifest["vocab"]["tags"]
  assert report["held_out"] == [vocab[i] for i in tags.held_out(vocab)]
  rows = report["rows"]
  assert set(rows) == {"encoder", "random_init", "supervised",
                       "supervised_mfcc", "chance"}
  for name in ("encoder", "random_init", "chance"):
    assert rows[name]["zero_shot"]["tags"] >= 1
    for m in zeroshot.METRICS:
      assert 0.0 <= rows[name]["zero_shot"][m] <= 1.0
  # A classifier has no output for a tag it never saw.
  assert rows["supervised"]["zero_shot"] is None
  assert rows["supervised"]["seen"]["tags"] >= 1
  table = zeroshot.markdown(report)
  assert table.count("\n") == 6 and "| supervised | – |" in table



@pytest.mark.parametrize("negatives", [0, 3])
def test_hinge_never_counts_another_true_partner(negatives):
  # Every pair but the first matches its own partner and no other; the
  # first's partner points away, so each of its negatives costs 1.7.
  a = np.eye(8, dtype=np.float32)
  b = a.copy()
  b[0] = -a[0]
  also = np.zeros((8, 8), bool)
  also[0, 1:] = True
  loss = lambda m: float(two_tower.hinge_loss(
      jnp.asarray(a), jnp.asarray(b), jax.random.key(0), 0.7, negatives,
      m)[0])
  assert loss(None) == pytest.approx((negatives or 7) * 1.7 / 8)
  assert loss(jnp.asarray(also)) == 0.0


def test_folds_read_each_tag_from_the_run_that_held_it_out():
  from experiments import zeroshot_tags  # pylint: disable=g-import-not-at-top
  metrics = lambda ap: {m: ap for m in zeroshot.METRICS}

  def fold(held, aps):
    rows = {}
    for name in zeroshot_tags.ROWS:
      per_tag = {v: metrics(aps[v]) for v in range(3)}
      if name.startswith("supervised"):
        per_tag = {v: m for v, m in per_tag.items() if v not in held}
      rows[name] = {"per_tag": per_tag,
                    "zero_shot": None if name.startswith("supervised")
                    else metrics(0.5), "seen": metrics(0.9)}
    return {"held_out": [["a", "b", "c"][v] for v in held], "rows": rows}

  results = {"vocab": ["a", "b", "c"],
             "folds": [fold([0], [0.1, 0.8, 0.8]),
                       fold([1, 2], [0.9, 0.2, 0.3])]}
  summ = zeroshot_tags.summary(results)
  assert summ["rows"]["encoder"]["zero_shot"]["ap"] == pytest.approx(0.2)
  assert summ["rows"]["encoder"]["seen"]["ap"] == pytest.approx(0.9)
  assert summ["rows"]["supervised"]["zero_shot"] is None
  assert summ["per_tag"]["a"]["encoder"] == {"zero_shot": [0.1],
                                             "seen": [0.9]}
  assert summ["per_tag"]["c"]["supervised"] == {"seen": [0.8]}
