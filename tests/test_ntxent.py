"""NT-Xent against a float64 numpy reference, and over sharded batches."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from conftest import one_step_loss
from conftest import small_transformer
from jaxmusic import objectives
from jaxmusic import parallel
from jaxmusic.models.frontends import pianoroll
from jaxmusic.config import load_config
from jaxmusic.objectives import ntxent


def reference(z_a, z_b, t):
  """SimCLR's NT-Xent in float64 numpy, written from the paper's formula."""
  z = np.concatenate([z_a, z_b]).astype(np.float64)
  z /= np.linalg.norm(z, axis=1, keepdims=True)
  n = len(z)
  sim = z @ z.T / t
  losses = []
  for i in range(n):
    j = (i + n // 2) % n
    others = [sim[i, k] for k in range(n) if k != i]
    m = max(others)
    losses.append(-(sim[i, j] - m - np.log(np.sum(np.exp(np.array(others) - m)))))
  return np.mean(losses)


@pytest.mark.parametrize("temperature", [0.5, 0.1, 0.01])
def test_matches_float64_reference(temperature):
  rng = np.random.default_rng(0)
  z_a, z_b = rng.standard_normal((2, 16, 32)).astype(np.float32)
  loss, acc = ntxent.nt_xent(jnp.asarray(z_a), jnp.asarray(z_b), temperature)
  np.testing.assert_allclose(float(loss), reference(z_a, z_b, temperature),
                             rtol=1e-5, atol=1e-5)
  assert 0 <= float(acc) <= 1


def test_stable_for_tiny_temperature_and_identical_views():
  z = jnp.asarray(np.random.default_rng(1).standard_normal((8, 4)) * 1e3,
                  jnp.float32)
  loss, acc = ntxent.nt_xent(z, z, 1e-3)
  assert np.isfinite(float(loss)) and float(acc) == 1.0
  assert float(loss) < 1e-3


def _mesh(n):
  return jax.make_mesh((n, 1), ("data", "fsdp"),
                       (jax.sharding.AxisType.Auto,) * 2,
                       devices=jax.devices()[:n])


def test_loss_and_grads_on_8_devices_equal_1_device():
  rng = np.random.default_rng(2)
  x_a, x_b = rng.standard_normal((2, 32, 24)).astype(np.float32)
  w = jnp.asarray(rng.standard_normal((24, 16)).astype(np.float32))

  def loss_fn(w, x_a, x_b):
    return ntxent.nt_xent(jnp.tanh(x_a @ w), jnp.tanh(x_b @ w), 0.5)[0]

  results = []
  for n in (1, 8):
    mesh = _mesh(n)
    shard = NamedSharding(mesh, P(parallel.BATCH_AXES))
    fn = jax.jit(jax.value_and_grad(loss_fn),
                 in_shardings=(NamedSharding(mesh, P()), shard, shard))
    results.append(fn(w, x_a, x_b))
    if n == 8:
      assert len(jax.device_put(x_a, shard).sharding.device_set) == 8
  (l1, g1), (l8, g8) = results
  np.testing.assert_allclose(float(l8), float(l1), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.asarray(g8), np.asarray(g1), rtol=1e-5,
                             atol=1e-5)


# nanodo's train_test pins a one-step loss; these pin CLMR's through each
# backbone (augmentations, SpecAugment and dropout included, all drawn from
# the step's rng), so a change anywhere on the path shows here.
def _one_step_loss(backbone, front):
  config = load_config("clmr", f"model={backbone},input={front},runlocal")
  config.objective.projection_dims = (16, 8)
  # CLMR's own chain and one pass over both views on every path (runlocal's
  # SampleCNN drops the chain and takes a pass per view: tested below).
  config.augment.chain = load_config("clmr", f"input={front}").augment.chain
  config.objective.joint_views = True
  if backbone == "samplecnn":
    config.model.channels = (8, 8, 8, 16)
    n = 81 * 4
  else:
    n = 16 * 512
    if backbone == "transformer":
      config.model.update(width=32, heads=2, ffn=64, layers=2,
                          conv_pos_kernel=8, conv_pos_groups=4)
      config.model.frontend.dim = 32
    else:
      config.model.channels = (4, 8)
  objective = objectives.make_objective(config)
  t = np.arange(n) / 22050
  views_Bx2xT = np.stack([[0.3 * np.sin(2 * np.pi * (220 * (i + 1) + 30 * v)
                                        * t) for v in range(2)]
                          for i in range(8)]).astype(np.float32)
  batch = {"views": jnp.asarray(views_Bx2xT)}
  variables = objective.init(jax.random.key(0), batch)
  loss, _ = jax.jit(objective.loss_fn)(variables["params"],
                                       variables["model_state"], batch,
                                       jax.random.key(1))
  return float(loss)


@pytest.mark.parametrize("backbone,front,want", [
    ("samplecnn", "waveform", 2.7310876846313477),
    ("transformer", "mel", 2.7814998626708984),
    ("cnn", "mel", 2.6902761459350586)])
@pytest.mark.slow
def test_pinned_one_step_loss_for_each_backbone(backbone, front, want):
  assert _one_step_loss(backbone, front) == pytest.approx(want, rel=1e-4)


@pytest.mark.slow
def test_clmr_on_the_multitrack_roll_takes_the_roll_chain(tiny_corpus):
  """The multitrack roll is a piano roll with lanes: CLMR reads it with
  the piano roll's transforms (whose transposition moves the pitches
  only), from the prepared `multitrack` feature."""
  config = small_transformer(load_config(
      "clmr", "model=transformer,input=multitrack,runlocal"))
  assert config.data.features == ("multitrack",)
  assert ntxent.augmentation_table(config) is pianoroll.ROLL_TRANSFORMS
  loss, metrics = one_step_loss(config, tiny_corpus)
  roll = small_transformer(load_config(
      "clmr", "model=transformer,input=pianoroll,runlocal"))
  # log(2B - 1) is chance for B = 8 pairs; the two inputs differ.
  assert 0 < loss < 2 * np.log(15)
  assert 0 <= float(metrics["positive_top1"]) <= 1
  assert loss != pytest.approx(one_step_loss(roll, tiny_corpus)[0])


@pytest.mark.slow
def test_views_in_separate_passes_take_their_own_batchnorm_statistics():
  """`joint_views=False` (CLMR's PyTorch order): each view is normalised by
  its own batch statistics, and both passes update the running ones."""
  config = load_config("clmr", "runlocal")
  config.objective.projection_dims = (16, 8)
  config.model.channels = (8, 8, 8, 16)
  config.augment.chain = ()
  rng = np.random.default_rng(0)
  batch = {"views": jnp.asarray(
      rng.standard_normal((8, 2, 81 * 4)).astype(np.float32))}
  losses = {}
  for joint in (True, False):
    config.objective.joint_views = joint
    objective = objectives.make_objective(config)
    variables = objective.init(jax.random.key(0), batch)
    losses[joint], (_, state) = objective.loss_fn(
        variables["params"], variables["model_state"], batch,
        jax.random.key(1))
  # By hand: view a in train mode, then view b from a's updated state.
  v = {"params": variables["params"], "model_state": variables["model_state"]}
  _, z_a, s_a = objective._encode(v, batch["views"][:, 0], train=True)
  _, z_b, s_b = objective._encode(
      {"params": v["params"], "model_state": {"encoder": s_a}},
      batch["views"][:, 1], train=True)
  want, _ = ntxent.nt_xent(z_a, z_b, config.objective.temperature)
  np.testing.assert_allclose(float(losses[False]), float(want), rtol=1e-6)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6),
               state["encoder"], s_b)
  assert abs(float(losses[False]) - float(losses[True])) > 1e-4


@pytest.mark.slow
def test_views_in_separate_passes_draw_their_own_masks():
  """With `joint_views=False` the second pass folds its keys: two copies of
  one crop, through a transformer with dropout and SpecAugment, come out
  different (with the first pass's keys they would be identical)."""
  config = load_config("clmr", "runlocal,model=transformer,input=mel")
  config.objective.update(joint_views=False, projection_dims=(16, 8))
  config.augment.chain = ()
  config.model.update(width=32, heads=2, ffn=64, layers=2,
                      conv_pos_kernel=8, conv_pos_groups=4)
  config.model.frontend.dim = 32
  objective = objectives.make_objective(config)
  crop_BxT = np.random.default_rng(0).standard_normal(
      (4, 16 * 512)).astype(np.float32)
  batch = {"views": jnp.asarray(np.stack([crop_BxT, crop_BxT], axis=1))}
  variables = objective.init(jax.random.key(0), batch)
  encoded = []
  encode = objective._encode
  objective._encode = lambda *a, **k: encoded.append(encode(*a, **k)) or \
      encoded[-1]
  objective.loss_fn(variables["params"], variables["model_state"], batch,
                    jax.random.key(1))
  (_, z_a, _), (_, z_b, _) = encoded
  assert float(jnp.max(jnp.abs(z_a - z_b))) > 1e-3
