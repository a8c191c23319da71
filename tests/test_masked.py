"""HuBERT/MERT masked prediction: span masks, the loss against a float64
reference, 1 vs 8 devices, MERT's CQT target and mixing, and a run."""
import conftest
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from jaxmusic import config as config_lib
from jaxmusic.eval import embeddings
from jaxmusic import objectives
from jaxmusic import parallel
from jaxmusic.data import pipeline
from jaxmusic.data import records
from jaxmusic.data import targets
from jaxmusic.eval import frozen
from jaxmusic.eval import layer_targets
from jaxmusic.objectives import masked


def _runs(row):
  """Lengths of the runs of True in a bool row."""
  padded = np.concatenate([[False], row, [False]]).astype(int)
  edges = np.flatnonzero(np.diff(padded))
  return edges[1::2] - edges[::2]


def _fairseq_mask(rng, batch, frames, prob, length, min_masks=2,
                  same_count=True):
  """fairseq's compute_mask_indices (static spans, overlap, no padding,
  num_mask_ver 2, idc_select_ver 1, require_same_masks), in numpy."""
  rows = []
  for _ in range(batch):
    n = max(min_masks, int(prob * frames / float(length) + rng.random()))
    min_len = length
    if frames - min_len <= n:
      min_len = frames - n - 1
    starts = rng.choice(frames - min_len, n, replace=False)
    idc = np.asarray([s + o for s in starts for o in range(length)])
    rows.append(np.unique(idc[idc < frames]))
  keep = min(len(r) for r in rows)
  mask = np.zeros((batch, frames), bool)
  for i, idc in enumerate(rows):
    if same_count and len(idc) > keep:
      idc = rng.choice(idc, keep, replace=False)
    mask[i, idc] = True
  return mask


@pytest.mark.parametrize("prob,length,frames", [(0.8, 10, 780), (0.8, 5, 375),
                                                (0.3, 4, 215), (0.8, 10, 15)])
def test_span_mask_draws_as_fairseq_does(prob, length, frames):
  """Per row, without fairseq's equal-count trim: the number of masked
  frames has fairseq's mean and spread, every span is whole and starts in
  fairseq's candidates; with the trim every row has the fewest's count."""
  batch = 256
  ours = np.asarray(masked.span_mask(jax.random.key(0), batch, frames, prob,
                                     length, same_count=False))
  ref = np.concatenate([_fairseq_mask(np.random.default_rng(s), 16, frames,
                                      prob, length, same_count=False)
                        for s in range(batch // 16)])
  for stat in (np.mean, np.std):
    a, b = stat(ours.sum(1)), stat(ref.sum(1))
    assert abs(a - b) <= 0.1 * max(b, 1.0) + 0.5, (stat.__name__, a, b)
  runs = np.concatenate([_runs(r) for r in ours])
  assert runs.min() >= min(length, frames)
  n = max(2, int(prob * frames / length))
  if frames - length > n + 1:  # fairseq never starts a span at F - L
    assert not ours[:, -1].any() or length == 1
  same = np.asarray(masked.span_mask(jax.random.key(0), batch, frames, prob,
                                     length))
  counts = same.sum(1)
  assert (counts == counts[0]).all() and counts[0] == ours.sum(1).min()
  assert (same <= ours).all()  # the trim keeps a subset of each row's spans


def test_span_mask_has_at_least_min_masks_spans():
  mask = np.asarray(masked.span_mask(jax.random.key(1), 256, 40, 0.01, 5,
                                     same_count=False))
  assert (mask.sum(1) >= 6).all()  # two spans of 5, overlapping at most 4
  assert set(np.unique(mask.sum(1))) >= {10}


def test_masks_differ_per_step_and_example_and_not_per_device_count():
  key = jax.random.key(0)
  fn = lambda k: masked.span_mask(k, 16, 100, 0.8, 10)
  a = np.asarray(fn(jax.random.fold_in(key, 0)))
  b = np.asarray(fn(jax.random.fold_in(key, 1)))
  assert (a != b).any()
  assert len({r.tobytes() for r in a}) == 16
  mesh = parallel.make_mesh([("data", -1), ("fsdp", 1)])
  sharded = jax.jit(fn, out_shardings=NamedSharding(mesh, P("data")))(
      jax.random.fold_in(key, 0))
  assert len(sharded.sharding.device_set) == 8
  np.testing.assert_array_equal(np.asarray(sharded), a)


def _reference_loss(frames, proj_w, proj_b, codewords, ks, final_dim, temp,
                    targets, mask, w_masked, w_unmasked):
  """The loss in float64 numpy, written from the papers' definitions."""
  f = frames.astype(np.float64)
  proj = f @ proj_w.astype(np.float64) + proj_b
  offsets = np.cumsum([0] + list(ks))
  weight = np.where(mask, w_masked, w_unmasked)
  total = 0.0
  for i, k in enumerate(ks):
    x = proj[..., i * final_dim:(i + 1) * final_dim]
    c = codewords[offsets[i]:offsets[i] + k].astype(np.float64)
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    c = c / np.linalg.norm(c, axis=-1, keepdims=True)
    logits = x @ c.T / temp
    logz = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) \
        + logits.max(-1)
    nll = logz - np.take_along_axis(logits, targets[i][..., None], -1)[..., 0]
    total += np.sum(weight * nll)
  # fairseq's hubert_criterion sample size: masked frames, plus unmasked
  # ones when they are predicted.
  return total / (mask.sum() + (mask.size - mask.sum() if w_unmasked else 0))


@pytest.mark.parametrize("w_unmasked", [0.0, 0.5])
def test_loss_matches_float64_reference(w_unmasked):
  rng = np.random.default_rng(0)
  b, f, d, final_dim, ks = 3, 20, 16, 8, (7, 5)
  frames = rng.standard_normal((b, f, d)).astype(np.float32)
  heads = masked.Heads(ks, final_dim, temperature=0.1)
  params = heads.init(jax.random.key(0), frames)["params"]
  logits, cqt = heads.apply({"params": params}, frames)
  assert cqt is None
  targets = [rng.integers(0, k, (b, f)) for k in ks]
  mask = rng.random((b, f)) < 0.5
  got = masked.masked_prediction_loss(logits, [jnp.asarray(t) for t in
                                               targets],
                                      jnp.asarray(mask), 1.0, w_unmasked)
  want = _reference_loss(frames, np.asarray(params["final_proj"]["kernel"]),
                         np.asarray(params["final_proj"]["bias"]),
                         np.asarray(params["codewords"]), ks, final_dim, 0.1,
                         targets, mask, 1.0, w_unmasked)
  np.testing.assert_allclose(float(got), want, rtol=1e-5)


def _objective_and_batch(corpus, name, arg, batch_size=8, **objective):
  config = conftest.small_transformer(
      config_lib.load_config(name, f"{arg},runlocal"))
  config.data.dir = corpus
  config.data.targets = ("mfcc_k16",)
  if name == "mert":  # the crop is 0.74 s: shorter mixing segments
    config.objective.mix_seconds = (0.2, 0.3)
  config.objective.update(objective)
  config_lib.validate(config)
  obj = objectives.make_objective(config, records.load_manifest(corpus))
  batch = next(iter(pipeline.from_config(corpus, config.data, "train",
                                         obj.data_mode,
                                         batch_size=batch_size, seed=0)))
  return config, obj, batch


@pytest.mark.parametrize("name,arg", [("hubert", "input=mel"),
                                      ("mert", "input=waveform")])
@pytest.mark.slow
def test_loss_and_grads_on_8_devices_equal_1(tiny_targets, name, arg):
  _, obj, batch = _objective_and_batch(tiny_targets, name, arg)
  variables = obj.init(jax.random.key(0), batch)
  rng = jax.random.key(5)
  fn = jax.value_and_grad(obj.loss_fn, has_aux=True)

  def run(batch_shardings):
    b = jax.device_put(batch, batch_shardings)
    (loss, (metrics, _)), grads = jax.jit(fn)(
        variables["params"], variables["model_state"], b, rng)
    return float(loss), jax.device_get(grads), jax.device_get(metrics)

  one = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  mesh = parallel.make_mesh([("data", -1), ("fsdp", 1)])
  loss1, grads1, m1 = run(one)
  loss8, grads8, m8 = run(parallel.batch_sharding(mesh))
  assert np.isfinite(loss1)
  assert loss8 == pytest.approx(loss1, rel=1e-5)
  assert m8["mask_fraction"] == pytest.approx(m1["mask_fraction"])
  for a, b in zip(jax.tree.leaves(grads1), jax.tree.leaves(grads8)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_cqt_target_is_computed_before_mixing(tiny_targets):
  """With the CQT head zeroed its prediction is 0, so the CQT loss is the
  target's mean square over masked frames: the same whether every example
  is mixed or none is, because the target comes from the clean crop."""
  results = []
  for mix_prob in (0.0, 1.0):
    _, obj, batch = _objective_and_batch(tiny_targets, "mert",
                                         "input=waveform", mix_prob=mix_prob)
    variables = obj.init(jax.random.key(0), batch)
    params = jax.tree.map(lambda x: x, variables["params"])
    params["heads"]["cqt_head"] = jax.tree.map(
        jnp.zeros_like, params["heads"]["cqt_head"])
    _, (metrics, _) = jax.jit(obj.loss_fn)(params, variables["model_state"],
                                           batch, jax.random.key(1))
    results.append(jax.device_get(metrics))
  assert results[0]["cqt_mse"] == pytest.approx(results[1]["cqt_mse"],
                                                rel=1e-6)
  # ... while the encoder did see different inputs.
  assert results[0]["masked_top1"] != results[1]["masked_top1"] or \
      results[0]["prediction_perplexity"] != pytest.approx(
          results[1]["prediction_perplexity"], rel=1e-7)


def test_config_errors_name_the_key(tiny_targets):
  config = config_lib.load_config("mert", "input=pianoroll,runlocal")
  config.objective.cqt_weight = 1.0
  with pytest.raises(ValueError, match=r"objective\.cqt_weight"):
    config_lib.validate(config)
  config = config_lib.load_config("hubert", "runlocal")
  config.data.targets = ()
  with pytest.raises(ValueError, match=r"data\.targets"):
    config_lib.validate(config)
  config = config_lib.load_config("hubert", "runlocal")
  config.data.dir = tiny_targets
  config.data.targets = ("layer6_k500",)
  with pytest.raises(ValueError, match="layer6_k500.*python -m "
                     "jaxmusic.targets"):
    objectives.make_objective(config, records.load_manifest(tiny_targets))


@pytest.mark.parametrize("recipe", ["hubert", "mert", "mert_330m"])
@pytest.mark.parametrize("inp", ["waveform", "mel", "pianoroll"])
def test_configs_validate(recipe, inp):
  for arg in (f"input={inp}", f"input={inp},runlocal"):
    config = config_lib.load_config(recipe, arg)
    config_lib.validate(config)
    assert config.objective.name == recipe.split("_")[0]


@pytest.mark.slow
def test_run_learns_exports_and_gives_iteration_2_targets(hubert_run,
                                                          tiny_targets,
                                                          tmp_path):
  """The recipe's stages on one run: train (metrics logged), export every
  layer, and k-means on layer 1 of the run as the next targets."""
  import json
  import os
  rows = [json.loads(l) for l in open(os.path.join(hubert_run,
                                                   "metrics.jsonl"))]
  logged = [r for r in rows if "loss" in r]
  assert {"masked_top1", "unmasked_top1", "prediction_perplexity",
          "mask_fraction"} <= set(logged[-1])
  assert [r["step"] for r in rows if "knn_accuracy" in r] == [0, 2, 4]
  info = embeddings.run(hubert_run, str(tmp_path / "emb"),
                        data_dir=tiny_targets,
                        splits=("valid",), layers="all",
                        baseline_names=("random_init",), batch_size=16,
                        progress=False)
  # transformers' hidden_states: the input embedding, then each layer.
  assert info["layer_widths"]["encoder"] == [32, 32, 32]
  layers = np.load(tmp_path / "emb" / "valid" / "encoder" / "segment" /
                   "layers.npy")
  assert layers.shape[1:] == (3, 32) and np.isfinite(layers).all()

  data = pipeline.PreparedData(tiny_targets)
  encoder = frozen.load(hubert_run)
  entry = layer_targets.run_targets(data, "it2_l1_k8", encoder, 1,
                              targets.KMeansSpec(k=8, fit_fraction=0.5),
                              progress=False)
  assert (entry["source"], entry["layer"], entry["step"]) == ("layer 1", 1, 4)
  assert entry["run"] == os.path.abspath(hubert_run)
  centroids = np.load(os.path.join(targets.store_dir(tiny_targets,
                                                     "it2_l1_k8"),
                                   "centroids.npy"))
  assert centroids.shape == (8, 32)
  data = pipeline.PreparedData(tiny_targets)
  track = data.tracks("test")[0]
  frames = layer_targets.run_layer_frames(encoder, data, 1)("test", track)
  stored = data.span("test", track, "it2_l1_k8", 0,
                     track["num_segments"] * data.segment_samples)
  np.testing.assert_array_equal(stored[0], targets.assign(frames, centroids))
  with pytest.raises(ValueError, match="--layer=3"):
    layer_targets.run_layer_frames(encoder, data, 3)("test", track)


@pytest.mark.slow
def test_targets_are_read_at_the_encoder_frames(tiny_targets):
  """A collection at a 256-sample hop under 512-sample encoder frames:
  the loss reads every second target frame, as fairseq reads 100 Hz labels
  at 50 Hz frames, and the CQT teacher sits on the encoder's frames."""
  config = conftest.small_transformer(config_lib.load_config(
      "hubert", "input=waveform,runlocal"))
  config.data.hop_length = 256
  config.data.targets = ("codes_k4",)
  config.objective.unmasked_weight = 1.0
  config_lib.validate(config)
  obj = objectives.make_objective(config, {
      "hop_length": 256, "targets": {"codes_k4": {"k": 4, "codebooks": 1}}})
  assert obj.ratio == 2
  rng = np.random.default_rng(0)
  wav = jnp.asarray(0.1 * rng.standard_normal((4, 32 * 512)), jnp.float32)
  codes = rng.integers(0, 4, (4, 1, 64)).astype(np.int32)
  variables = obj.init(jax.random.key(0), {"inputs": wav})
  run = jax.jit(lambda c: obj.loss_fn(variables["params"],
                                      variables["model_state"],
                                      {"inputs": wav, "codes_k4": c},
                                      jax.random.key(1))[0])
  loss = lambda c: float(run(jnp.asarray(c)))
  base = loss(codes)
  odd = codes.copy()
  odd[..., 1::2] = (odd[..., 1::2] + 1) % 4
  assert loss(odd) == base
  even = codes.copy()
  even[..., 0::2] = (even[..., 0::2] + 1) % 4
  assert loss(even) != base
  assert obj._cqt_target(wav, 32).shape[1] == 32


def test_mert_330m_counts_its_published_updates():
  """400,000 updates and 32,000 warm-up updates at update_freq 8: the loop
  runs 8 micro-steps an update."""
  from jaxmusic import optim
  config = config_lib.load_config("mert_330m")
  assert config.optimizer.accumulate_steps == 8
  assert config.total_steps == 8 * 400_000
  _, lr_at_step = optim.make_optimizer(config.optimizer, config.total_steps)
  peak = config.optimizer.learning_rate
  assert float(lr_at_step(8 * 16_000)) == pytest.approx(peak / 2, rel=1e-3)
  assert float(lr_at_step(8 * 32_000)) == pytest.approx(peak, rel=1e-3)
  assert float(lr_at_step(8 * 216_000)) == pytest.approx(peak / 2, rel=1e-3)


def test_a_collection_on_another_grid_stops_training(tiny_corpus, tmp_path):
  from jaxmusic import train
  config = conftest.small_transformer(config_lib.load_config(
      "hubert", "input=waveform,runlocal"))
  config.data.update(dir=tiny_corpus, sample_rate=16000, hop_length=160,
                     targets=("mfcc_k16",))
  config.model.frontend.update(kernels=(10, 3, 3, 3, 3, 2, 2),
                               strides=(5, 2, 2, 2, 2, 2, 2),
                               padding="valid")
  config.data.crop_samples = 16000
  with pytest.raises(ValueError) as e:
    train.train_and_evaluate(config, str(tmp_path / "run"))
  line = str(e.value)
  assert "\n" not in line
  for part in ("22050 Hz", "512-sample hop", "16000 Hz", "160-sample hop",
               "--sample_rate 16000 --hop_length 160"):
    assert part in line
