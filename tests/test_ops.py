"""jaxmusic/ops against the plain versions they replace: values and
gradients."""
import jax
import jax.numpy as jnp
import flax.linen as nn
import numpy as np
import pytest

from jaxmusic.models import samplecnn
from jaxmusic.ops import samplecnn_cpu


def test_relu_pool3_matches_autodiff_of_the_plain_form():
  keys = jax.random.split(jax.random.key(0), 4)
  y = jax.random.normal(keys[0], (2, 28, 6))  # 28: a remainder frame
  mul = jnp.array([1.5, -0.7, 0.3, -2.0, 0.9, -0.1])  # both signs
  add = 0.3 * jax.random.normal(keys[1], (6,))
  weights = jax.random.normal(keys[2], (2, 9, 6))
  plain = lambda y, m, a: nn.max_pool(nn.relu(y * m + a), (3,), strides=(3,))
  fused = jax.jit(samplecnn_cpu.relu_pool3)
  np.testing.assert_allclose(fused(y, mul, add), plain(y, mul, add),
                             rtol=1e-5, atol=1e-6)
  grads = [jax.jit(jax.grad(lambda *a, f=f: jnp.sum(f(*a) * weights),
                            argnums=(0, 1, 2)))(y, mul, add)
           for f in (samplecnn_cpu.relu_pool3, plain)]
  np.testing.assert_allclose(grads[0][0], grads[1][0], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-5)
  np.testing.assert_allclose(grads[0][2], grads[1][2], rtol=1e-5)
  assert float(jnp.abs(grads[0][0][:, 27]).max()) == 0  # the remainder


def test_dense_relu_matches_autodiff_of_the_plain_form():
  x = jax.random.normal(jax.random.key(0), (2, 30, 4))
  w = jax.random.normal(jax.random.key(1), (4, 8))
  g = jax.random.normal(jax.random.key(2), (2, 30, 8))
  plain = lambda x, w: jax.nn.relu(x @ w)
  np.testing.assert_allclose(samplecnn_cpu.dense_relu(x, w), plain(x, w),
                             rtol=1e-6, atol=1e-6)
  ours = jax.vjp(samplecnn_cpu.dense_relu, x, w)[1](g)
  ref = jax.vjp(plain, x, w)[1](g)
  for a, b in zip(ours, ref):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_winograd_conv3_matches_xla_conv_and_its_gradients():
  conv = lambda x, k: jax.lax.conv_general_dilated(
      x, k, (1,), ((1, 1),), dimension_numbers=("NWC", "WIO", "NWC"))
  for shape in ((2, 3, 1, 2), (3, 27, 5, 7), (2, 243, 16, 8)):
    b, t, c, o = shape
    keys = jax.random.split(jax.random.key(t), 3)
    x = jax.random.normal(keys[0], (b, t, c))
    k = jax.random.normal(keys[1], (3, c, o))
    g = jax.random.normal(keys[2], (b, t, o))
    ours, ref = (jax.jit(jax.value_and_grad(
        lambda x, k, f=f: jnp.sum(f(x, k) * g), argnums=(0, 1)))
                 for f in (samplecnn_cpu.winograd_conv3, conv))
    np.testing.assert_allclose(jax.jit(samplecnn_cpu.winograd_conv3)(x, k),
                               conv(x, k), rtol=1e-5, atol=1e-5)
    (_, grads), (_, want) = ours(x, k), ref(x, k)
    for a, w in zip(grads, want):  # edges: the first and last tiles
      np.testing.assert_allclose(a, w, rtol=1e-5, atol=1e-4)


@pytest.mark.slow
def test_cpu_samplecnn_equals_the_plain_model():
  """Same parameter tree and initial values; in training the same output,
  gradients and running statistics; in eval the same output and sown
  layers. The conv biases are made nonzero, so their folding into BatchNorm
  is checked too. T = 81 runs the block convs through Winograd at T = 27,
  9 and 3."""
  channels = (16, 16, 32, 32)
  ours = samplecnn_cpu.SampleCNN(channels=channels)
  plain = samplecnn.SampleCNN(channels)
  x = jax.random.normal(jax.random.key(0), (6, 81, 1))
  variables = plain.init(jax.random.key(1), x)
  jax.tree.map(np.testing.assert_array_equal,
               ours.init(jax.random.key(1), x), variables)
  variables = jax.tree.map(
      lambda v: v + 0.3 * jax.random.normal(jax.random.key(2), v.shape),
      variables)
  train = lambda m: jax.jit(jax.value_and_grad(
      lambda p: (lambda out: (jnp.sum(out[0][0].mean(1) ** 2), out[1]))(m.apply(
          {"params": p, "batch_stats": variables["batch_stats"]}, x,
          train=True, mutable=["batch_stats"])), has_aux=True))(
              variables["params"])
  ((loss_a, stats_a), grad_a), ((loss_b, stats_b), grad_b) = map(
      train, (ours, plain))
  np.testing.assert_allclose(loss_a, loss_b, rtol=1e-5)
  close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
  jax.tree.map(close, stats_a, stats_b)
  for layer, g in grad_b.items():
    for name, value in g.items():
      if layer.startswith("Conv") and name == "bias":
        # BatchNorm cancels a conv bias; autodiff leaves float noise.
        assert float(jnp.abs(grad_a[layer][name]).max()) == 0
        assert float(jnp.abs(value).max()) < 1e-4
      else:
        close(grad_a[layer][name], value)
  (a, _), sown_a = ours.apply(variables, x, mutable=["intermediates"])
  (b, _), sown_b = plain.apply(variables, x, mutable=["intermediates"])
  close(a, b)
  jax.tree.map(close, sown_a, sown_b)


def test_impl_switch_picks_the_cpu_kernels_only_where_asked():
  from jaxmusic import models
  from jaxmusic.config import load_config
  cfg = load_config("clmr", "runlocal").model
  assert jax.default_backend() == "cpu"
  assert models.resolve_impl(cfg) == "cpu_fast"
  assert isinstance(models.make_encoder(cfg).backbone, samplecnn_cpu.SampleCNN)
  cfg.dtype = "bfloat16"
  assert models.resolve_impl(cfg) == "xla"
  cfg.dtype, cfg.impl = "float32", "xla"
  assert isinstance(models.make_encoder(cfg).backbone, samplecnn.SampleCNN)


def test_computed_once_is_fn_and_stays_a_conditional():
  fn = lambda x, s: jnp.sin(x) * s
  x, s = jax.random.normal(jax.random.key(0), (4, 9, 8)), jnp.ones(8)
  once = jax.jit(lambda x, s: samplecnn_cpu.computed_once(fn, x, s))
  np.testing.assert_array_equal(once(x, s), jax.jit(fn)(x, s))
  # A NaN where the predicate is read runs the other branch: still fn.
  s_nan = s.at[0].set(jnp.nan)
  np.testing.assert_array_equal(once(x, s_nan), jax.jit(fn)(x, s_nan))
  # It must stay a conditional in the compiled program, or XLA fuses
  # through it.
  assert " conditional(" in once.lower(x, s).compile().as_text()


def test_grouped_conv1d_matches_the_plain_conv_and_its_gradients():
  from jaxmusic.ops import grouped_conv
  for b, t, d, groups, k in ((2, 9, 8, 2, 4), (3, 40, 32, 4, 7),
                             (2, 70, 64, 16, 128)):
    keys = jax.random.split(jax.random.key(k), 3)
    x = jax.random.normal(keys[0], (b, t, d))
    w = jax.random.normal(keys[1], (k, d // groups, d))
    g = jax.random.normal(keys[2], (b, t, d))
    plain = lambda x, w: grouped_conv.plain_conv1d(x, w, groups)
    fast = lambda x, w: grouped_conv.grouped_conv1d(x, w, groups)
    np.testing.assert_allclose(jax.jit(fast)(x, w), plain(x, w), rtol=1e-5,
                               atol=1e-4)
    assert fast(x, w).shape == (b, t, d)
    want, got = (jax.jit(jax.grad(lambda x, w, f=f: jnp.sum(f(x, w) * g),
                                  argnums=(0, 1)))(x, w)
                 for f in (plain, fast))
    for a, r in zip(got, want):
      np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-3)


@pytest.mark.slow
def test_transformer_fast_positions_equal_the_plain_ones():
  from jaxmusic.models import transformer
  x = jax.random.normal(jax.random.key(0), (2, 30, 16))
  make = lambda impl: transformer.Transformer(
      width=16, heads=2, ffn=32, layers=1, conv_pos_kernel=8,
      conv_pos_groups=4, dropout=0.0, attention_dropout=0.0, impl=impl)
  variables = make("xla").init(jax.random.key(1), x)
  loss = lambda impl: jax.jit(jax.value_and_grad(
      lambda v: jnp.sum(make(impl).apply(v, x)[0] ** 2)))(variables)
  (a, ga), (b, gb) = loss("cpu_fast"), loss("xla")
  np.testing.assert_allclose(a, b, rtol=1e-5)
  jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=1e-4,
                                                       atol=1e-4), ga, gb)
