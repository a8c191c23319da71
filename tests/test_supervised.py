"""Supervised training: the losses against float64 references, a pinned
one-step loss, and `config.model_init` loading a run's encoder exactly."""
import conftest
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmusic import config as config_lib
from jaxmusic import objectives
from jaxmusic import parallel
from jaxmusic import train
from jaxmusic.data import pipeline
from jaxmusic.data import records
from jaxmusic.eval import frozen
from jaxmusic.objectives import supervised


def test_label_loss_matches_float64_reference():
  rng = np.random.default_rng(0)
  logits = rng.standard_normal((6, 5)).astype(np.float32) * 3
  label = np.array([0, 4, -1, 2, 2, -1])
  loss, acc = supervised.classification_loss(
      jnp.asarray(logits), {"label": jnp.asarray(label)}, "label")
  x = logits.astype(np.float64)
  logp = x - np.log(np.exp(x).sum(-1, keepdims=True))
  keep = label >= 0
  want = -np.mean(logp[keep, label[keep]])
  np.testing.assert_allclose(float(loss), want, rtol=1e-6)
  assert float(acc) == pytest.approx(np.mean(x[keep].argmax(-1)
                                             == label[keep]))


def test_tag_loss_matches_float64_reference():
  rng = np.random.default_rng(1)
  logits = rng.standard_normal((4, 7)).astype(np.float32) * 4
  tags = (rng.random((4, 7)) < 0.3).astype(np.float32)
  loss, _ = supervised.classification_loss(
      jnp.asarray(logits), {"tags": jnp.asarray(tags)}, "tags")
  x = logits.astype(np.float64)
  want = np.mean(np.log1p(np.exp(-x)) + (1 - tags) * x)
  np.testing.assert_allclose(float(loss), want, rtol=1e-6)


def _tiny_samplecnn(corpus, arg="runlocal"):
  config = config_lib.load_config("supervised", arg)
  config.data.dir = corpus
  config.model.channels = (8, 8, 8, 8, 8, 8, 16)
  config.data.crop_samples = 729
  config.batch_size = 8
  return config


@pytest.mark.slow
def test_pinned_one_step_loss(tiny_corpus):
  loss, metrics = conftest.one_step_loss(_tiny_samplecnn(tiny_corpus),
                                         tiny_corpus)
  assert loss == pytest.approx(PINNED_LOSS, rel=1e-4)
  assert 0.0 <= float(metrics["accuracy"]) <= 1.0


PINNED_LOSS = 1.8798564672470093


def _initial_state(config, corpus):
  obj = objectives.make_objective(config, records.load_manifest(corpus))
  batch = next(iter(pipeline.from_config(corpus, config.data, "train",
                                         obj.data_mode, batch_size=2,
                                         seed=0)))
  variables = obj.init(jax.random.key(3), batch)
  state = {"params": variables["params"],
           "model_state": variables["model_state"]}
  mesh = parallel.make_mesh(config.mesh)
  shardings = parallel.tree_shardings(mesh, jax.eval_shape(lambda: state),
                                      tuple(map(tuple,
                                                config.sharding_rules)))
  return jax.device_put(state, shardings), shardings


@pytest.mark.slow
def test_model_init_loads_exactly_the_saved_encoder(tiny_run, tiny_corpus):
  config = _tiny_samplecnn(tiny_corpus)
  state, shardings = _initial_state(config, tiny_corpus)
  head_before = jax.device_get(state["params"]["head"])
  state = train.encoder_from_run(state, f"{tiny_run}:2", shardings)
  saved = frozen.load(tiny_run, 2)
  for a, b in zip(jax.tree.leaves(saved.params),
                  jax.tree.leaves(state["params"]["encoder"])):
    np.testing.assert_array_equal(a, b)
  for a, b in zip(jax.tree.leaves(saved.state),
                  jax.tree.leaves(state["model_state"]["encoder"])):
    np.testing.assert_array_equal(a, b)
  for a, b in zip(jax.tree.leaves(head_before),
                  jax.tree.leaves(state["params"]["head"])):
    np.testing.assert_array_equal(a, b)  # the head keeps its own init
  config.model.channels = (8, 8, 8, 8, 8, 8, 32)
  state, shardings = _initial_state(config, tiny_corpus)
  with pytest.raises(ValueError, match="config.model_init=.*shape"):
    train.encoder_from_run(state, tiny_run, shardings)


@pytest.mark.slow
def test_fine_tuning_a_masked_run_is_the_same_command(hubert_run,
                                                      tiny_targets,
                                                      tmp_path):
  """A HuBERT run's encoder (with its mask embedding) fine-tuned under
  `supervised`: train starts from it and runs."""
  config = conftest.small_transformer(config_lib.load_config(
      "supervised", "model=transformer,input=mel,runlocal"))
  config.data.dir = tiny_targets
  config.total_steps = 3
  config.monitor.every = 0
  config.model_init = hubert_run
  state = train.train_and_evaluate(config, str(tmp_path / "ft"))
  assert int(state["step"]) == 3
  assert "mask_embedding" not in state["params"]["encoder"]
