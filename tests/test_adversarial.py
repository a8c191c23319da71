"""Parameter groups in the train step (a game with a known equilibrium, 1
device against 8, bit-exact resume), ALI, the contractive autoencoder's
Jacobian penalty, the chroma frontend and the composer study's
feed-forward, LSTM and ALI-CNN encoders."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import librosa
import ml_collections
import numpy as np
import pytest

from conftest import one_step_loss
from jaxmusic import config as config_lib
from jaxmusic import models
from jaxmusic import objectives
from jaxmusic import optim
from jaxmusic import parallel
from jaxmusic import train
from jaxmusic.data import pipeline
from jaxmusic.data import records
from jaxmusic.models import alicnn
from jaxmusic.objectives import ali

ROOT = os.path.join(os.path.dirname(__file__), "..")


class SaddleGame:
  """min_x max_y f(x, y) = (x - 1)^2 / 2 + x y - (y - 2)^2 / 2: strongly
  convex in x, strongly concave in y; its one saddle point solves
  x - 1 + y = 0 and x - (y - 2) = 0: x = -1/2, y = 3/2."""

  def __init__(self, updates=1):
    f = lambda p: (0.5 * (p["x"] - 1.0) ** 2 + p["x"] * p["y"]
                   - 0.5 * (p["y"] - 2.0) ** 2)
    self.groups = (
        optim.Group("x", ("x",), lambda p, s, b, r: (f(p), ({}, s))),
        optim.Group("y", ("y",), lambda p, s, b, r: (-f(p), ({}, s)),
                    {"learning_rate": 0.05}, updates))


def _game_config():
  c = ml_collections.ConfigDict()
  c.seed, c.total_steps = 0, 400
  c.objective = {"name": "game"}
  c.optimizer = dict(name="sgd", learning_rate=0.1, schedule="constant",
                     warmup_steps=0, momentum=0.0, grad_clip_norm=0.0,
                     accumulate_steps=1, weight_decay=0.0, b1=0.9, b2=0.999)
  return c


@pytest.mark.parametrize("updates", [1, 3])
def test_a_two_group_game_reaches_its_saddle_point(updates):
  config = _game_config()
  step_fn, init_opt = train.make_step(SaddleGame(updates), config)
  params = {"x": jnp.asarray(3.0), "y": jnp.asarray(-2.0)}
  state = {"params": params, "model_state": {}, "opt": init_opt(params),
           "step": jnp.zeros((), jnp.int32)}
  step_fn = jax.jit(step_fn)
  for _ in range(config.total_steps):
    state, metrics = step_fn(state, {})
  assert float(state["params"]["x"]) == pytest.approx(-0.5, abs=1e-4)
  assert float(state["params"]["y"]) == pytest.approx(1.5, abs=1e-4)
  # Each group's own optimizer: y's learning rate is its override.
  assert float(metrics["y_lr"]) == pytest.approx(0.05)
  assert float(metrics["x_lr"]) == pytest.approx(0.1)
  assert set(state["opt"]) == {"x", "y"}


def test_params_outside_every_group_are_an_error():
  _, init_opt = train.make_step(SaddleGame(), _game_config())
  with pytest.raises(ValueError, match=r"\['z'\] belong to no parameter"):
    init_opt({"x": 0.0, "y": 0.0, "z": 0.0})


def _tiny_ali(arg="runlocal", **over):
  c = config_lib.load_config("ali", arg)
  c.batch_size = 8
  c.total_steps = 6
  c.log_every = 1
  c.checkpoint.every = 2
  c.monitor.every = 0
  for k, v in over.items():
    c[k] = v
  return c


def test_ali_generator_and_discriminator_shapes():
  """Table 3's stack takes 32 x 32 to 1 x 1; G's output is the crop's
  frames x bins (cut from 32, or from the grid it grows), in [0, 1]."""
  assert alicnn.out_side(32) == 1 and alicnn.out_side(12) == 1
  assert alicnn.out_side(116) == 22
  assert ali.grown(32) == 1 and ali.grown(12) == 1 and ali.grown(116) == 22
  for frames, bins in ((32, 32), (32, 12), (116, 128)):
    gen = ali.Generator(frames, bins)
    z = jax.random.normal(jax.random.key(0), (3, 8))
    v = gen.init(jax.random.key(1), z)
    x = gen.apply(v, z)
    assert x.shape == (3, frames, bins)
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    d = ali.Discriminator()
    dv = d.init(jax.random.key(2), x, z)
    assert d.apply(dv, x, z).shape == (3,)


def test_ali_losses_are_the_papers_code(tiny_corpus):
  """D's loss is softplus(-D(x, z^)) + softplus(D(x~, z)); E and G's the
  same with the labels swapped, on the same logits."""
  config = _tiny_ali()
  config.data.dir = tiny_corpus
  config_lib.validate(config)
  obj = objectives.make_objective(config, records.load_manifest(tiny_corpus))
  batch = next(iter(pipeline.from_config(tiny_corpus, config.data, "train",
                                         obj.data_mode, batch_size=8)))
  v = obj.init(jax.random.key(0), batch)
  rng = jax.random.key(1)
  real, fake, metrics, _ = obj._play(v["params"], v["model_state"], batch,
                                     rng)
  sp = lambda a: np.log1p(np.exp(np.asarray(a, np.float64)))
  d, _ = obj.d_loss(v["params"], v["model_state"], batch, rng)
  g, _ = obj.g_loss(v["params"], v["model_state"], batch, rng)
  assert float(d) == pytest.approx(np.mean(sp(-real) + sp(fake)), rel=1e-5)
  assert float(g) == pytest.approx(np.mean(sp(real) + sp(-fake)), rel=1e-5)
  assert float(metrics["d_accuracy_real"]) == np.mean(np.asarray(real) > 0)
  # The embedding is the posterior mean: the encoder's bottleneck.
  emb = obj.embed(v, batch["inputs"])
  mu, _, x01, _ = obj.encode(v["params"], v["model_state"], batch["inputs"])
  np.testing.assert_allclose(emb, mu, rtol=1e-6)
  assert emb.shape == (8, config.model.bottleneck)
  assert x01.shape == (8, 32, 32)
  assert float(x01.min()) == 0.0 and float(x01.max()) == 1.0


@pytest.mark.slow
def test_ali_step_on_8_devices_equals_one_device(tiny_corpus):
  """Both groups' losses and the updated params of one step agree between
  one device and the batch split over 8 (BatchNorm and dropout included:
  statistics and random bits do not depend on the sharding). SGD, so that
  an update is its gradient scaled: Adam's first step is about +-lr for
  any gradient, and flips one near 0 with the reduction order."""
  config = _tiny_ali()
  config.data.dir = tiny_corpus
  config.optimizer.update(name="sgd", momentum=0.0, learning_rate=0.01)
  obj = objectives.make_objective(config, records.load_manifest(tiny_corpus))
  batch = next(iter(pipeline.from_config(tiny_corpus, config.data, "train",
                                         obj.data_mode, batch_size=8)))
  step_fn, init_opt = train.make_step(obj, config)
  v = obj.init(jax.random.key(0), batch)
  state = {"params": v["params"], "model_state": v["model_state"],
           "opt": init_opt(v["params"]), "step": jnp.zeros((), jnp.int32)}
  one = jax.device_put(state, jax.devices()[0])
  want_state, want = jax.jit(step_fn)(one, batch)
  mesh = parallel.make_mesh([("data", -1), ("fsdp", 1)])
  shardings = parallel.tree_shardings(mesh, jax.eval_shape(lambda: state))
  got_state, got = jax.jit(step_fn, in_shardings=(
      shardings, parallel.batch_sharding(mesh)))(
          jax.device_put(state, shardings),
          parallel.global_batch(mesh, batch))
  for key in ("discriminator_loss", "generator_loss", "d_accuracy_real"):
    np.testing.assert_allclose(got[key], want[key], rtol=2e-5, atol=2e-5)
  def close(new, ref, old):
    # Each leaf's update: the sums reduce in another order, and an
    # activation that a rounding moves across a leaky ReLU's kink changes
    # the gradient of the weights it touches, so a few elements (6 in
    # 524,288 of D's widest kernel) move by a few % of the largest, and
    # on some CPUs (XLA's kernels differ) about 1 % of a small leaf's
    # elements by 0.1 %; per-device BatchNorm statistics or dropout masks
    # would move most elements by far more.
    step_got, step_want = np.asarray(new) - old, np.asarray(ref) - old
    scale = np.max(np.abs(step_want)) + 1e-12
    np.testing.assert_allclose(step_got, step_want, rtol=0,
                               atol=0.1 * scale)
    assert np.mean(np.abs(step_got - step_want) > 1e-2 * scale) < 1e-3
  for part in ("params", "model_state"):
    jax.tree.map(close, got_state[part], want_state[part],
                 jax.device_get(state[part]))


def _cli(data, workdir, steps, *extra, harness=None):
  cmd = [sys.executable]
  cmd += [os.path.join(ROOT, "tests", "train_harness.py"), *harness, "--"] \
      if harness else ["-m", "jaxmusic.main"]
  cmd += ["--config", os.path.join(ROOT, "ml_collections_configs",
                                   "ali.py:runlocal"),
          f"--workdir={workdir}", f"--config.data.dir={data}",
          f"--config.total_steps={steps}", "--config.batch_size=8",
          "--config.log_every=1", "--config.checkpoint.every=2",
          "--config.monitor.every=0", *extra]
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT,
             XLA_FLAGS="--xla_force_host_platform_device_count=1")
  return subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                        env=env)


def _rows(workdir):
  out = {}
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    for line in f:
      row = json.loads(line)
      if "generator_loss" in row:
        out[row["step"]] = (row["discriminator_loss"], row["generator_loss"])
  return out


@pytest.mark.slow
def test_ali_resumes_bit_for_bit_and_writes_its_figures(tiny_corpus,
                                                         tmp_path):
  """Killed at step 5, after its step-4 checkpoint, and resumed, a run's D and G
  losses equal an unbroken run's at every step: both optimizers' states
  and every network's statistics are checkpointed."""
  ref = _cli(tiny_corpus, tmp_path / "ref", 6)
  assert ref.returncode == 0, ref.stderr[-2000:]
  killed = _cli(tiny_corpus, tmp_path / "run", 6, harness=("kill", "5"))
  assert killed.returncode == -9
  again = _cli(tiny_corpus, tmp_path / "run", 6)
  assert again.returncode == 0, again.stderr[-2000:]
  assert "resumed from step 4" in again.stderr
  want, got = _rows(tmp_path / "ref"), _rows(tmp_path / "run")
  assert sorted(want) == list(range(1, 7))
  assert got == want
  for name in ("ali_samples", "ali_interpolation", "ali_reconstructions"):
    assert os.path.getsize(tmp_path / "ref" / "figures" / f"{name}.png") > 0


@pytest.mark.parametrize("arg,want_d,want_g", [
    ("runlocal", 1.2139, 1.7437),
    pytest.param("runlocal,input=chroma", 1.3758, 1.4803,
                 marks=pytest.mark.slow),
    pytest.param("runlocal,model=transformer", 1.2217, 1.6381,
                 marks=pytest.mark.slow),
])
def test_pinned_ali_one_step_losses(tiny_corpus, arg, want_d, want_g):
  config = _tiny_ali(arg)
  config.data.dir = tiny_corpus
  config_lib.validate(config)
  obj = objectives.make_objective(config, records.load_manifest(tiny_corpus))
  batch = next(iter(pipeline.from_config(tiny_corpus, config.data, "train",
                                         obj.data_mode, batch_size=8,
                                         seed=0)))
  v = obj.init(jax.random.key(0), batch)
  d, _ = jax.jit(obj.d_loss)(v["params"], v["model_state"], batch,
                             jax.random.key(1))
  g, _ = jax.jit(obj.g_loss)(v["params"], v["model_state"], batch,
                             jax.random.key(1))
  assert float(d) == pytest.approx(want_d, abs=1e-3)
  assert float(g) == pytest.approx(want_g, abs=1e-3)


@pytest.mark.parametrize("key,value,match", [
    ("objective.groups.discriminatr", {"updates": 1}, "unknown group"),
    ("objective.groups.generator", {"updates": 0}, "updates.*must be >= 1"),
    ("objective.groups.generator", {"learning_rat": 1e-4},
     "generator.learning_rat"),
    ("objective.groups.discriminator", {"learning_rate": -1.0},
     "discriminator.learning_rate.*must be positive"),
    ("model.bottleneck", 0, "latent width"),
])
def test_bad_ali_configs_name_the_key(key, value, match):
  config = _tiny_ali()
  parent, _, leaf = key.rpartition(".")
  node = config
  for part in parent.split("."):
    node = node[part]
  node[leaf] = value
  with pytest.raises(ValueError, match=match):
    config_lib.validate(config)


def test_contractive_penalty_is_the_jacobians_frobenius_norm():
  """models.jacobian_sq_norm against the full Jacobian by jax.jacrev, per
  example, on a feed-forward encoder (no batch coupling)."""
  cfg = ml_collections.ConfigDict(dict(
      name="feedforward", frontend=dict(name="mel", embed="none", n_mels=16),
      hidden=(12, 8), dropout=0.0, dtype="float32", pooling="mean",
      bottleneck=5))
  enc = models.make_encoder(cfg)
  h = jax.random.normal(jax.random.key(0), (3, 4, 16))
  params, state = models.split(enc.init(jax.random.key(1), h,
                                        method="from_features"))
  got = models.jacobian_sq_norm(enc, params, state, h)
  one = lambda h_FxC: enc.apply({"params": params, **state}, h_FxC[None],
                                method="from_features")[0]
  want = np.mean([np.sum(np.square(jax.jacrev(one)(h[b])))
                  for b in range(3)])
  assert float(got) == pytest.approx(want, rel=1e-5)


def test_cae_adds_the_weighted_penalty(tiny_corpus):
  base = "variant=cae,input=mfcc,model=feedforward,runlocal,latent=8"
  config = config_lib.load_config("autoencoder", base)
  config.objective.contraction = 0.0
  rec_only, m0 = one_step_loss(config, tiny_corpus)
  config = config_lib.load_config("autoencoder", base)
  config.objective.contraction = 0.5
  loss, m = one_step_loss(config, tiny_corpus)
  assert m["jacobian_sq_norm"] > 0
  assert loss == pytest.approx(rec_only + 0.5 * float(m["jacobian_sq_norm"]),
                               rel=1e-5)
  assert float(m0["reconstruction"]) == pytest.approx(rec_only, rel=1e-6)


def test_chroma_frontend_is_librosas_chroma_on_the_grid():
  sr = 22050
  y = librosa.tone(440.0, sr=sr, duration=1.0).astype(np.float32)
  y = y + 0.5 * librosa.tone(660.0, sr=sr, duration=1.0).astype(np.float32)
  y = y[:43 * 512]
  cfg = ml_collections.ConfigDict(dict(
      name="cnn", frontend=dict(name="chroma", embed="none"),
      channels=(4,), dtype="float32", pooling="mean"))
  enc = models.make_encoder(cfg)
  x = jnp.asarray(y)[None]
  params, state, out = models.init(enc, jax.random.key(0), x)
  want = librosa.feature.chroma_stft(y=y, sr=sr, tuning=0.0)[:, :43].T
  assert out.raw.shape == (1, 43, 12)
  np.testing.assert_allclose(out.raw[0], want, atol=2e-4)
  assert int(np.argmax(out.raw[0].mean(0))) == 9  # A


def test_feedforward_and_lstm_backbones():
  """The feed-forward network reads the whole crop as one frame; the LSTM
  keeps the frames; both pool and project through the encoder."""
  x = jax.random.normal(jax.random.key(0), (2, 10, 12))
  for cfg, frames in ((dict(name="feedforward", hidden=(16, 8)), 1),
                      (dict(name="lstm", units=(6, 5)), 10)):
    cfg = ml_collections.ConfigDict(dict(
        cfg, frontend=dict(name="chroma", embed="none"), dtype="float32",
        pooling="mean", bottleneck=4))
    enc = models.make_encoder(cfg)
    params, state = models.split(enc.init(jax.random.key(1), x,
                                          method="from_features"))
    out = enc.apply({"params": params, **state}, x, method="from_features")
    assert out.shape == (2, 4)
    back = models.BACKBONES[cfg.name].module(cfg, "xla")(
        **{k: v for k, v in cfg.items() if k not in models.ENCODER_KEYS})
    (frames_BxFxD, _), _ = back.init_with_output(jax.random.key(2), x)
    assert frames_BxFxD.shape[:2] == (2, frames)
