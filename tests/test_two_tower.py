"""Two-tower contrastive learning: the loss against a float64 reference,
global negatives over 8 devices, the text tower's padding, export per tower
and the cross-modal retrieval metrics against brute force."""

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from conftest import one_step_loss
from jaxmusic import config as config_lib
from jaxmusic import defaults
from jaxmusic.eval import embeddings
from jaxmusic import models
from jaxmusic import objectives
from jaxmusic import parallel
from jaxmusic.eval import report as report_lib
from jaxmusic import train
from jaxmusic.data import features as feats
from jaxmusic.data import pipeline
from jaxmusic.data import samplers
from jaxmusic.data import records
from jaxmusic.eval import probes
from jaxmusic.objectives import two_tower


def reference(z_a, z_b, scale):
  """CLIP's symmetric loss in float64, from its paper's pseudocode."""
  norm = lambda z: z / np.linalg.norm(z, axis=1, keepdims=True)
  logits = scale * norm(z_a.astype(np.float64)) @ norm(
      z_b.astype(np.float64)).T

  def ce(l):
    return np.mean([np.log(np.sum(np.exp(row - row.max()))) + row.max()
                    - row[i] for i, row in enumerate(l)])
  return (ce(logits) + ce(logits.T)) / 2


@pytest.mark.parametrize("log_scale,clamp", [(np.log(1 / 0.07), 100.0),
                                             (np.log(500.0), 100.0),
                                             (0.0, 100.0)])
def test_loss_matches_float64_reference(log_scale, clamp):
  rng = np.random.default_rng(0)
  z_a, z_b = rng.standard_normal((2, 16, 8)).astype(np.float32)
  loss, a2b, b2a = two_tower.clip_loss(jnp.asarray(z_a), jnp.asarray(z_b),
                                       jnp.float32(log_scale), clamp)
  want = reference(z_a, z_b, min(np.exp(log_scale), clamp))
  np.testing.assert_allclose(float(loss), want, rtol=1e-5, atol=1e-5)
  assert 0 <= float(a2b) <= 1 and 0 <= float(b2a) <= 1


def test_logit_scale_is_clamped_with_no_gradient_beyond():
  z = jnp.asarray(np.random.default_rng(1).standard_normal((4, 8)),
                  jnp.float32)
  grad = jax.grad(lambda s: two_tower.clip_loss(z, z[::-1], s)[0])
  assert float(grad(jnp.float32(np.log(200.0)))) == 0.0
  assert float(grad(jnp.float32(np.log(10.0)))) != 0.0


def _tiny(towers):
  audio = ",audio_model=transformer" if "audio" in towers else ""
  c = config_lib.load_config("two_tower", f"towers={towers},runlocal{audio}")
  c.data.crop_samples = 16 * 512
  c.data.text_bytes = 32
  for t in c.model.towers:
    tower = c.model[t]
    if tower.name == "transformer":
      tower.update(width=16, heads=2, ffn=32, layers=1)
      tower.frontend.dim = 16
      if tower.positions == "conv":
        tower.update(conv_pos_kernel=4, conv_pos_groups=4)
    tower.bottleneck = 8
  return c


@pytest.mark.slow
def test_loss_and_grads_on_8_devices_equal_1_device(tiny_corpus):
  """One jit over the global batch: each pair's negatives are all 15
  other pairs, whichever device holds them."""
  config = _tiny("pianoroll+text")
  config.data.dir = tiny_corpus
  obj = objectives.make_objective(config, records.load_manifest(tiny_corpus))
  batch = next(iter(pipeline.from_config(tiny_corpus, config.data, "train",
                                         "paired", batch_size=16)))
  variables = obj.init(jax.random.key(0), batch)
  results = []
  for n in (1, 8):
    mesh = jax.make_mesh((n, 1), ("data", "fsdp"),
                         (jax.sharding.AxisType.Auto,) * 2,
                         devices=jax.devices()[:n])
    shard = NamedSharding(mesh, P(parallel.BATCH_AXES))
    sharded = jax.device_put(batch, shard)
    if n == 8:
      assert len(sharded["inputs"].sharding.device_set) == 8
    fn = jax.jit(lambda p, b: jax.value_and_grad(
        lambda q: obj.loss_fn(q, variables["model_state"], b,
                              jax.random.key(1))[0])(p))
    results.append(fn(variables["params"], sharded))
  (l1, g1), (l8, g8) = results
  np.testing.assert_allclose(float(l8), float(l1), rtol=1e-5, atol=1e-5)
  for a, b in zip(jax.tree.leaves(g8), jax.tree.leaves(g1)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5,
                               atol=1e-5)
  # Against 2 x 8 pairs scored separately: the loss differs.
  half = {k: v[:8] for k, v in batch.items()}
  assert abs(float(obj.loss_fn(variables["params"], variables["model_state"],
                               half, jax.random.key(1))[0]) - float(l1)) > 1e-3


@pytest.mark.slow
def test_text_padding_changes_nothing():
  """The byte tower masks attention and pooling: the same title padded to
  16 or 48 bytes embeds identically."""
  cfg = _tiny("pianoroll+text").model.text
  enc = models.make_encoder(cfg)
  ids16 = feats.encode_text("Dark Synth Run", 16)[None]
  ids48 = feats.encode_text("Dark Synth Run", 48)[None]
  params, state, out = models.init(enc, jax.random.key(0), ids16)
  z16 = out.pooled
  z48 = models.apply(enc, params, state, ids48)[0].pooled
  np.testing.assert_allclose(np.asarray(z48), np.asarray(z16), rtol=1e-5,
                             atol=1e-6)
  other = feats.encode_text("Bright Lullaby Piano", 16)[None]
  z_other = models.apply(enc, params, state, other)[0].pooled
  assert not np.allclose(np.asarray(z_other), np.asarray(z16))


def test_towers_are_validated_by_key(tiny_corpus):
  config = _tiny("audio+pianoroll")
  config.data.dir = tiny_corpus
  config.model.pianoroll.bottleneck = 4
  with pytest.raises(ValueError, match="pianoroll.bottleneck"):
    config_lib.validate(config)
  config = _tiny("audio+pianoroll")
  config.data.dir = tiny_corpus
  config.model.pianoroll.frontend.embed = "patch"
  with pytest.raises(ValueError, match=r"model\.pianoroll\.frontend\.embed"):
    config_lib.validate(config)
  config = _tiny("audio+pianoroll")
  config.data.dir = tiny_corpus
  config.model.pianoroll.frontend.transpose = -2
  with pytest.raises(ValueError,
                     match=r"model\.pianoroll\.frontend\.transpose"):
    config_lib.validate(config)


def test_runlocal_pairs_audio_with_the_multitrack_roll(tiny_corpus):
  def roll(arg):
    c = config_lib.load_config("two_tower", arg)
    return c.data.features[list(c.model.towers).index("pianoroll")], \
        c.model.pianoroll.frontend.name
  assert roll("runlocal") == ("multitrack", "multitrack")
  assert roll("") == ("pianoroll", "pianoroll")  # CLIP's recipe
  assert roll("towers=pianoroll+text,runlocal") == ("pianoroll", "pianoroll")
  assert roll("runlocal,roll=pianoroll") == ("pianoroll", "pianoroll")
  with pytest.raises(ValueError, match="roll='notes'"):
    roll("roll=notes")
  # Its lanes are no pitch axis: the 2-D CNNs refuse it by key.
  config = _tiny("audio+pianoroll")
  config.data.dir = tiny_corpus
  config.model.pianoroll = ml_collections.ConfigDict(dict(
      defaults.model_config("cnn", "multitrack", "tiny", True),
      bottleneck=8))
  with pytest.raises(ValueError, match=r"model\.pianoroll\.frontend"):
    config_lib.validate(config)


def test_runlocal_transposes_the_roll_only_against_audio():
  def transpose(arg):
    c = config_lib.load_config("two_tower", arg)
    return c.model.pianoroll.frontend.transpose
  assert transpose("towers=audio+pianoroll,runlocal") == 6
  assert transpose("towers=audio+pianoroll") == 0  # CLIP's recipe
  assert transpose("towers=pianoroll+text,runlocal") == 0
  assert transpose("towers=audio+pianoroll,runlocal,roll_transpose=2") == 2


def test_samplecnn_audio_tower_pairs_with_either_partner(tiny_corpus):
  """The SampleCNN reads 3**10 samples, no whole number of hops: the roll
  tower's view reads the whole frames that cover the crop, as the paired
  mode hands them over, so the roll validates beside it."""
  titles = config_lib.load_config("two_tower", "towers=audio+text,runlocal")
  assert titles.model.audio.name == "samplecnn"
  assert titles.model.audio.frontend.name == "waveform"
  assert titles.data.crop_samples == 59049
  # Against the roll, the runlocal keeps the mel transformer.
  roll = config_lib.load_config("two_tower", "runlocal")
  assert roll.model.audio.name == "transformer"
  assert roll.model.audio.frontend.name == "mel"
  c = config_lib.load_config(
      "two_tower", "towers=audio+pianoroll,runlocal,audio_model=samplecnn")
  c.data.dir = tiny_corpus
  config_lib.validate(c)
  view = config_lib.tower_view(c, "pianoroll")
  assert view.data.crop_samples == 116 * 512
  assert config_lib.tower_view(c, "audio").data.crop_samples == 59049
  sampler = samplers.make(pipeline.PreparedData(tiny_corpus), "train",
                          "paired", "waveform", c.data.crop_samples)
  out = sampler(0, np.random.default_rng(0))
  assert out["inputs"].shape == (59049,)
  assert out["pair"].shape[-1] * 512 == view.data.crop_samples
  with pytest.raises(ValueError, match="audio='mel'"):
    config_lib.load_config("two_tower", "audio_model=samplecnn,audio=mel")


@pytest.mark.parametrize("towers,want", [
    ("audio+pianoroll,roll=pianoroll,roll_transpose=0", 3.45033597946167),
    # the roll moved in training
    ("audio+pianoroll,roll=pianoroll", 3.994739532470703),
    ("audio+pianoroll", 3.443875312805176),  # the multitrack roll
    ("pianoroll+text", 4.741337776184082)])
@pytest.mark.slow
def test_pinned_one_step_loss(tiny_corpus, towers, want):
  loss, metrics = one_step_loss(_tiny(towers), tiny_corpus)
  assert loss == pytest.approx(want, rel=1e-4), loss
  assert float(metrics["logit_scale"]) == pytest.approx(1 / 0.07, rel=1e-5)


def brute_force(query, gallery, k=10):
  """Rank by rank, with loops: a tie with the true item counts against
  it."""
  ranks = []
  for i, q in enumerate(query):
    sims = [float(np.dot(q, g) / np.linalg.norm(q) / np.linalg.norm(g))
            for g in gallery]
    ranks.append(sum(s >= sims[i] for s in sims))
  ranks = np.array(ranks)
  return {"mrr": np.mean([1 / r for r in ranks]),
          "r@1": np.mean([r <= 1 for r in ranks]),
          "r@5": np.mean([r <= 5 for r in ranks]),
          "r@10": np.mean([r <= 10 for r in ranks]),
          f"ndcg@{k}": np.mean([1 / np.log2(r + 1) if r <= k else 0.0
                                for r in ranks]),
          "median_rank": float(np.median(ranks))}


def test_crossmodal_metrics_equal_brute_force():
  rng = np.random.default_rng(3)
  a = rng.standard_normal((40, 6))
  b = a + 1.5 * rng.standard_normal((40, 6))
  b[7] = b[3]  # a tie
  got = probes.crossmodal_metrics(a, b, k=10)
  for key, value in brute_force(a, b).items():
    assert got[key] == pytest.approx(value, abs=1e-12), key
  # A collapsed tower is chance, not perfect.
  flat = probes.crossmodal_metrics(a, np.ones_like(b))
  assert flat["r@1"] == 0 and flat["median_rank"] == 40


@pytest.fixture(scope="module")
def two_tower_run(tiny_corpus, tmp_path_factory):
  config = _tiny("pianoroll+text")
  config.data.dir = tiny_corpus
  config.total_steps = 3
  config.batch_size = 8
  config.optimizer.warmup_steps = 1
  config.checkpoint.every = 3
  config.monitor.every = 3
  workdir = str(tmp_path_factory.mktemp("two_tower"))
  train.train_and_evaluate(config, workdir)
  return workdir


@pytest.mark.slow
def test_export_each_tower_then_crossmodal_probe(two_tower_run, tmp_path):
  out_roll, out_text = str(tmp_path / "roll"), str(tmp_path / "text")
  info = embeddings.run(two_tower_run, out_roll, progress=False)
  assert info["tower"] == "pianoroll" and info["feature"] == "pianoroll"
  info = embeddings.run(two_tower_run, out_text, tower="text", progress=False)
  assert info["tower"] == "text" and info["feature"] == "text"
  assert info["representations"] == ["encoder", "random_init"]
  z = np.load(os.path.join(out_text, "test", "encoder", "track",
                           "embeddings.npy"))
  assert z.shape[1] == 8  # the shared space: the towers' bottleneck
  report = report_lib.run_crossmodal(out_roll, out_text, out=str(tmp_path))
  got = {(r["representation"], r["probe"]): r["metrics"]
         for r in report["rows"]}
  assert set(got) == {(rep, d) for rep in ("encoder", "random_init")
                      for d in ("pianoroll->text", "text->pianoroll")}
  x_r = np.load(os.path.join(out_roll, "test", "encoder", "track",
                             "embeddings.npy"))
  want = brute_force(x_r, z)
  assert got[("encoder", "pianoroll->text")]["mrr"] == pytest.approx(
      want["mrr"])
  assert os.path.exists(tmp_path / "results.md")
  with pytest.raises(ValueError, match="this run's towers"):
    embeddings.run(two_tower_run, str(tmp_path / "x"), tower="audio",
                   progress=False)
