import jax
import jax.numpy as jnp
import numpy as np

from jaxmusic import objectives
from jaxmusic.config import load_config
from jaxmusic.models import samplecnn


def test_clmr_contrastive_model_has_clmr_parameter_count():
  config = load_config("clmr")
  objective = objectives.make_objective(config)
  batch = {"views": jnp.zeros((2, 2, 59049))}
  shapes = jax.eval_shape(objective.init, jax.random.key(0), batch)
  n = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes["params"]))
  assert n == 2_663_424
  encoder = sum(int(np.prod(x.shape))
                for x in jax.tree.leaves(shapes["params"]["encoder"]))
  assert encoder == 2_368_512


def test_samplecnn_reduces_59049_samples_to_one_512_frame():
  model = samplecnn.SampleCNN()
  assert samplecnn.receptive_field(model.channels) == 59049
  variables = jax.eval_shape(model.init, jax.random.key(0),
                             jnp.zeros((2, 59049)))
  out = jax.eval_shape(model.apply, variables, jnp.zeros((3, 59049)))
  assert out.shape == (3, 512)


def test_batchnorm_uses_batch_statistics_only_in_training():
  model = samplecnn.SampleCNN(channels=(4, 4, 8))
  x = jnp.asarray(np.random.default_rng(0).standard_normal((4, 27)),
                  jnp.float32)
  variables = model.init(jax.random.key(0), x)
  train_out, updated = model.apply(variables, x, train=True,
                                   mutable=["batch_stats"])
  eval_out = model.apply(variables, x)
  assert not np.allclose(train_out, eval_out)
  moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()),
                       variables["batch_stats"], updated["batch_stats"])
  assert max(jax.tree.leaves(moved)) > 0


def test_bf16_compute_keeps_float32_params():
  config = load_config("clmr", "runlocal")
  config.model.dtype = "bfloat16"
  objective = objectives.make_objective(config)
  variables = objective.init(jax.random.key(0),
                             {"views": jnp.zeros((2, 2, 19683))})
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(variables))
  h = objective.embed(variables, jnp.zeros((2, 19683)))
  assert h.shape == (2, 128) and h.dtype == jnp.float32


def test_max_pool3_matches_flax_max_pool_in_value_and_gradient():
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  x_BxTxC = jax.random.normal(jax.random.key(0), (2, 28, 5))  # 28: a remainder
  reference = lambda x: nn.max_pool(x, (3,), strides=(3,))
  np.testing.assert_array_equal(samplecnn.max_pool3(x_BxTxC),
                                reference(x_BxTxC))
  weights = jax.random.normal(jax.random.key(1), (2, 9, 5))
  grad = lambda pool: jax.grad(lambda x: jnp.sum(pool(x) * weights))(x_BxTxC)
  np.testing.assert_array_equal(grad(samplecnn.max_pool3), grad(reference))


def test_materialized_is_the_identity_in_value_and_gradient():
  x = jax.random.normal(jax.random.key(0), (4, 81, 8))
  w = jax.random.normal(jax.random.key(1), x.shape)
  step = jax.jit(jax.value_and_grad(
      lambda x: jnp.sum(samplecnn.materialized(x) * w)))
  np.testing.assert_array_equal(jax.jit(samplecnn.materialized)(x), x)
  value, grad = step(x)
  np.testing.assert_array_equal(value, jnp.sum(x * w))
  np.testing.assert_array_equal(grad, w)
  # A NaN first element makes the loop run zero times: still the identity.
  x_nan = x.at[0, 0, 0].set(jnp.nan)
  np.testing.assert_array_equal(jax.jit(samplecnn.materialized)(x_nan), x_nan)
  # It must stay a loop in the compiled step, or XLA fuses through it.
  assert " while(" in step.lower(x).compile().as_text()
