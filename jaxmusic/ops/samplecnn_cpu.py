"""SampleCNN for CPUs: the network of `models/samplecnn.py`, with the same
parameter tree and values, built from kernels that XLA:CPU runs faster.

Chosen by `config.model.impl = "cpu_fast"` (or `auto` on CPU in float32).
What differs from the plain composition, each tested against it (values
and gradients, tests/test_ops.py):
- the conv bias is folded into BatchNorm, which cancels it in training;
- the stem's conv, BatchNorm and ReLU are one product (`dense_relu`), its
  batch moments taken from a 4x4 Gram matrix;
- ReLU + max-pool is one op whose gradient reads y once (`relu_pool3`);
- the block convs are Winograd F(3, 3) with a VJP that keeps 5/9 of the
  work in both gradients (`winograd_conv3`);
- `computed_once` keeps XLA:CPU from fusing cheap producers into several
  consumers (a conditional as a fusion barrier).
Timings are in experiments/benchmarks/RESULTS.md.
"""

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxmusic.defaults import CLMR_CHANNELS


def computed_once(fn, *args):
  """`fn(*args)`, computed where XLA cannot fuse it into its consumers.

  XLA:CPU fuses cheap elementwise producers into each consumer. For the
  pooling below that costs twice: the window selection, used three times,
  is recomputed from the 3x larger unpooled input each time; and the pooled
  output, fused into the next conv's weight-gradient transpose, turns that
  transpose's tiled copy into a strided loop (71 ms instead of 37 ms at
  block 2). `optimization_barrier` does not stop this, because XLA:CPU
  removes it before fusion. A conditional's branches are separate
  computations, so the value is computed in the branch and its consumers
  read the stored result. Both branches are `fn`, so the value is
  `fn(*args)` whichever runs; the predicate is read from the data (the last
  argument's first element, equal to itself unless NaN) only so that XLA
  cannot simplify the conditional away.
  """
  last = jax.tree.leaves(args)[-1]
  first = last[(0,) * last.ndim]  # no reshape: a sharded array stays so
  return jax.lax.cond(first == first, fn, fn, *args)


def _once_on_cpu(fn, *args):
  # Only XLA:CPU needs it; elsewhere a conditional would cost a sync.
  return (computed_once(fn, *args) if jax.default_backend() == "cpu"
          else fn(*args))


class Conv(nn.Module):
  """`nn.Conv`'s kernel and bias for a width-3 1-D conv, as parameters only.

  SampleCNN applies them itself: in training BatchNorm subtracts the batch
  mean, which cancels the bias exactly, so the bias is left out of the
  activations (a full pass saved per layer) and gets an exact zero gradient,
  where PyTorch's float noise would be scaled up to learning-rate-sized
  Adam steps. The running mean still includes it (see `BatchNorm`)."""
  features: int

  @nn.compact
  def __call__(self, in_features: int):
    kernel_3xIxO = self.param("kernel", nn.initializers.lecun_normal(),
                              (3, in_features, self.features))
    bias_O = self.param("bias", nn.initializers.zeros, (self.features,))
    return kernel_3xIxO, bias_O


class BatchNorm(nn.Module):
  """`nn.BatchNorm`'s params and statistics, as the per-channel `(mul, add)`
  that normalise a bias-free conv output y as `y * mul + add`.

  `batch_moments` are y's batch mean and mean square in training (None in
  eval). The running mean is kept for y + conv bias, as PyTorch and Flax
  keep it.
  """
  momentum: float = 0.9  # PyTorch's BN momentum 0.1
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, batch_moments, conv_bias_C):
    c = conv_bias_C.shape[0]
    scale = self.param("scale", nn.initializers.ones, (c,))
    beta = self.param("bias", nn.initializers.zeros, (c,))
    ra_mean = self.variable("batch_stats", "mean", jnp.zeros, (c,))
    ra_var = self.variable("batch_stats", "var", jnp.ones, (c,))
    if batch_moments is None:
      mean, var = ra_mean.value - conv_bias_C, ra_var.value
    else:
      mean, mean_sq = batch_moments
      var = jnp.maximum(mean_sq - jnp.square(mean), 0.0)
      if not self.is_initializing():
        m, batch = self.momentum, jax.lax.stop_gradient((mean, var))
        ra_mean.value = m * ra_mean.value + (1 - m) * (batch[0] + conv_bias_C)
        ra_var.value = m * ra_var.value + (1 - m) * batch[1]
    mul = scale * jax.lax.rsqrt(var + self.epsilon)
    return mul, beta - mean * mul


def moments(y_BxTxC):
  """Per-channel mean and mean square over batch and time, in float32."""
  y = y_BxTxC.astype(jnp.float32)
  return jnp.mean(y, axis=(0, 1)), jnp.mean(jnp.square(y), axis=(0, 1))


@jax.custom_vjp
def relu_pool3(y_BxTxC, mul_C, add_C):
  """Max-pool 3 (stride 3) of `relu(y * mul + add)`, with a gradient that
  reads the full-size y once.

  The affine map and ReLU are monotone per channel, so the window's max is
  taken at its max of y where mul > 0 and at its min where mul < 0. The
  forward keeps that selected y (a third of y's size); the backward then
  sums mul's and add's gradients on the pooled grid, and writes y's gradient
  in one pass that routes each window's gradient to the first position
  holding the selected value, as XLA's max-pool gradient does. Autodiff of
  the plain form writes the unpooled gradient first and reduces it twice at
  full size. Where mul is exactly 0 the window's min is taken. On CPU the
  selection and the output are each `computed_once`.
  """
  return _relu_pool3_fwd(y_BxTxC, mul_C, add_C)[0]


def _windows(y_BxTxC):
  b, t, c = y_BxTxC.shape
  return y_BxTxC[:, :t // 3 * 3].reshape(b, t // 3, 3, c)


def _pool_select(y_BxTxC, mul_C):
  """Each window's max of y where mul > 0, its min elsewhere."""
  sign_C = jnp.where(mul_C > 0, 1, -1).astype(y_BxTxC.dtype)
  w_BxFx3xC = _windows(y_BxTxC)
  # Three elementwise maxima, not a reduce over the window axis: XLA:CPU
  # hands that reduce to YNNPACK, which took 25-44 ms at block 1 against
  # ~20 ms for this.
  return sign_C * functools.reduce(
      jnp.maximum, [w_BxFx3xC[:, :, i] * sign_C for i in range(3)])


def _affine_relu(x, mul_C, add_C):
  return nn.relu(x * mul_C + add_C)


def _relu_pool3_fwd(y_BxTxC, mul_C, add_C):
  sel_BxFxC = _once_on_cpu(_pool_select, y_BxTxC, mul_C)
  out_BxFxC = _once_on_cpu(_affine_relu, sel_BxFxC, mul_C, add_C)
  return out_BxFxC, (y_BxTxC, sel_BxFxC, mul_C, add_C)


def _relu_pool3_bwd(res, d_out_BxFxC):
  y_BxTxC, sel_BxFxC, mul_C, add_C = res
  dz_BxFxC = jnp.where(sel_BxFxC * mul_C + add_C > 0, d_out_BxFxC, 0)
  d_mul = jnp.sum(dz_BxFxC * sel_BxFxC, axis=(0, 1), dtype=jnp.float32)
  d_add = jnp.sum(dz_BxFxC, axis=(0, 1), dtype=jnp.float32)
  w_BxFx3xC = _windows(y_BxTxC)
  first_BxFxC = jnp.where(w_BxFx3xC[:, :, 0] == sel_BxFxC, 0,
                          jnp.where(w_BxFx3xC[:, :, 1] == sel_BxFxC, 1, 2))
  at_BxFx3xC = (jax.lax.broadcasted_iota(jnp.int32, w_BxFx3xC.shape, 2)
                == first_BxFxC[:, :, None])
  dy = jnp.where(at_BxFx3xC, (dz_BxFxC * mul_C)[:, :, None], 0)
  b, t, c = y_BxTxC.shape
  dy_BxTxC = jnp.pad(dy.reshape(b, -1, c), ((0, 0), (0, t % 3), (0, 0)))
  return (dy_BxTxC.astype(y_BxTxC.dtype), d_mul.astype(mul_C.dtype),
          d_add.astype(add_C.dtype))


relu_pool3.defvjp(_relu_pool3_fwd, _relu_pool3_bwd)


@jax.custom_vjp
def dense_relu(x_BxFxK, w_KxC):
  """`relu(x @ w)` for a small K, whose weight gradient is `x^T @ d_z`.

  Written as K multiply-adds rather than a dot, so the ReLU fuses into the
  one pass that writes the output (a dot writes it, then a ReLU rewrites
  it). Autodiff's weight gradient would transpose the large `d_z`; this one
  contracts it as it lies."""
  return nn.relu(sum(x_BxFxK[..., k, None] * w_KxC[k]
                     for k in range(w_KxC.shape[0])))


def _dense_relu_fwd(x_BxFxK, w_KxC):
  return dense_relu(x_BxFxK, w_KxC), (x_BxFxK, w_KxC)


def _dense_relu_bwd(res, d_out_BxFxC):
  x_BxFxK, w_KxC = res
  # The ReLU's mask is recomputed from the small x rather than read from
  # the stored output.
  dz_BxFxC = jnp.where(dense_relu(x_BxFxK, w_KxC) > 0, d_out_BxFxC, 0)
  d_w = jnp.einsum("bfk,bfc->kc", x_BxFxK, dz_BxFxC)
  return jnp.einsum("bfc,kc->bfk", dz_BxFxC, w_KxC), d_w


dense_relu.defvjp(_dense_relu_fwd, _dense_relu_bwd)


# Winograd F(3, 3) (Lavin & Gray 2016): Toom-Cook at the points 0, 1, -1,
# 2 and infinity. Three outputs of a width-3 correlation, y_j = sum_k
# d_{j+k} g_k over a 5-sample tile d, are `AT @ ((G @ g) * (BT @ d))`: five
# products where the direct form takes nine. BT's rows are scaled to
# integers and G's rows by the inverse scale.
_WINO_AT = np.array([[1, 1, 1, 1, 0],
                     [0, 1, -1, 2, 0],
                     [0, 1, 1, 4, 1]], np.float32)
_WINO_G = np.array([[1 / 2, 0, 0],
                    [1 / 2, 1 / 2, 1 / 2],
                    [1 / 6, -1 / 6, 1 / 6],
                    [1 / 6, 1 / 3, 2 / 3],
                    [0, 0, 1]], np.float32)
_WINO_BT = np.array([[2, -1, -2, 1, 0],
                     [0, 2, 1, -1, 0],
                     [0, -2, 3, -1, 0],
                     [0, -1, 0, 1, 0],
                     [0, 2, -1, -2, 1]], np.float32)


def _shift(a_BxPxC, s):
  """`a[:, p - s]` for s = +-1, zero where that falls outside."""
  pad = ((0, 0), (1, 0), (0, 0)) if s > 0 else ((0, 0), (0, 1), (0, 0))
  return jnp.pad(a_BxPxC[:, :-1] if s > 0 else a_BxPxC[:, 1:], pad)


def _stack_rows(coef_NxL, parts):
  """`coef @ parts` for constant coefficients: N sums stacked on a new
  leading axis (the transformed tiles, five matmul operands)."""
  return jnp.stack([sum(float(c) * p for c, p in zip(row, parts) if c)
                    for row in coef_NxL])


def _combine(coefs, parts):
  """`sum(c * p)` over constant coefficient arrays and the parts they
  scale, broadcast; for a coefficient axis inside the output, as in y's
  3-sample tiles. A stack there, as XLA:CPU's concatenate, took 93 ms for
  the first block's input gradient against 62 ms for this. (For a leading
  axis the stack is the faster: 127 ms against 179 ms.)"""
  return sum(jnp.asarray(c, p.dtype) * p for c, p in zip(coefs, parts)
             if np.any(c))


@jax.custom_vjp
def winograd_conv3(x_BxTxC, kernel_3xCxO):
  """Width-3 conv with padding 1, as `lax.conv_general_dilated` computes
  it, by Winograd F(3, 3); T must be a multiple of 3.

  Tile p's five samples are x[3p - 1 .. 3p + 3]. The five transformed
  tiles are multiplied by the five transformed kernels as one batched
  matmul: 5/9 of the direct form's work, in the forward and in both
  gradients. XLA:CPU runs these K = C matmuls at 130-160 GFLOP/s against
  its conv's ~180, so the gain is less than 9/5: on 2 CPU cores a 32 x 19,683
  x 128 layer's input and weight gradients took ~700 ms against 863 ms,
  and the CLMR step went from ~2.36 s to ~1.9 s. Errors are ~2e-6 of the
  largest value in float32.
  """
  return _winograd_fwd(x_BxTxC, kernel_3xCxO)[0]


def _winograd_fwd(x_BxTxC, kernel_3xCxO):
  b, t, _ = x_BxTxC.shape
  xw = _windows(x_BxTxC)
  tiles = [_shift(xw[:, :, 2], 1), xw[:, :, 0], xw[:, :, 1], xw[:, :, 2],
           _shift(xw[:, :, 0], -1)]
  v_5xBxPxC = _stack_rows(_WINO_BT, tiles)
  g_5xCxO = jnp.einsum("ik,kco->ico", _WINO_G, kernel_3xCxO)
  m_5xBxPxO = jnp.einsum("ibpc,ico->ibpo", v_5xBxPxC, g_5xCxO)
  y_BxPx3xO = _combine([col.reshape(3, 1) for col in _WINO_AT.T],
                       [m[:, :, None] for m in m_5xBxPxO])
  return y_BxPx3xO.reshape(b, t, -1), (v_5xBxPxC, g_5xCxO)


def _winograd_bwd(res, dy_BxTxO):
  v_5xBxPxC, g_5xCxO = res
  _, b, p, c = v_5xBxPxC.shape
  dyw = _windows(dy_BxTxO)
  dm_5xBxPxO = _stack_rows(_WINO_AT.T, [dyw[:, :, j] for j in range(3)])
  dv_5xBxPxC = jnp.einsum("ibpo,ico->ibpc", dm_5xBxPxO, g_5xCxO)
  # One contracting axis, as XLA:CPU's dot takes it without a transpose;
  # with two (b, p) it transposed v first, at 1 s for the first block.
  dg_5xCxO = jnp.einsum("inc,ino->ico", v_5xBxPxC.reshape(5, b * p, c),
                        dm_5xBxPxO.reshape(5, b * p, -1))
  # x[3q + r] is sample l = r + 1 of tile q, and also sample l = r + 4 of
  # tile q - 1 or l = r - 2 of tile q + 1 where those exist.
  bt = np.pad(_WINO_BT, ((0, 0), (2, 3)))  # column l + 2 holds sample l
  coefs, parts = [], []
  for i in range(5):
    for shift, off in ((0, 1), (1, 4), (-1, -2)):
      coefs.append(bt[i, np.arange(3) + off + 2].reshape(3, 1))
      dv = dv_5xBxPxC[i]
      parts.append((dv if shift == 0 else _shift(dv, shift))[:, :, None])
  dx_BxPx3xC = _combine(coefs, parts)
  dkernel = jnp.einsum("ik,ico->kco", _WINO_G, dg_5xCxO)
  return dx_BxPx3xC.reshape(b, 3 * p, c), dkernel


winograd_conv3.defvjp(_winograd_fwd, _winograd_bwd)


def conv3(x_BxTxC, kernel_3xCxO):
  """Width-3 conv with padding 1: by Winograd in float32 where T is a
  multiple of 3, else XLA's conv. In bfloat16 Winograd's transforms would
  cost precision."""
  if x_BxTxC.dtype == jnp.float32 and x_BxTxC.shape[1] % 3 == 0:
    return winograd_conv3(x_BxTxC, kernel_3xCxO)
  return jax.lax.conv_general_dilated(
      x_BxTxC, kernel_3xCxO, (1,), ((1, 1),),
      dimension_numbers=("NWC", "WIO", "NWC"))


class SampleCNN(nn.Module):
  """`models.samplecnn.SampleCNN`, computed with the kernels above: the
  same `BxTx1 -> BxFxD`, parameters, running statistics and sown layers."""
  channels: Sequence[int] = CLMR_CHANNELS
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BxTx1, train: bool = False):
    dt = self.dtype
    x = self._stem(x_BxTx1[..., 0], train)
    self.sow("intermediates", "layers", x)
    for i, ch in enumerate(self.channels[1:]):
      kernel, bias = Conv(ch)(x.shape[-1])
      y = conv3(x.astype(dt), kernel.astype(dt))
      mul, add = BatchNorm()(moments(y) if train else None, bias)
      mul, add = mul.astype(dt), add.astype(dt)
      if i < len(self.channels) - 2:
        x = relu_pool3(y, mul, add)
      else:  # the final conv has no pool
        x = _affine_relu(y, mul, add)
      self.sow("intermediates", "layers", x)
    return x.astype(jnp.float32), None
  def _stem(self, wav_BxT, train):
    """Conv k3 s3 from one channel, BN and ReLU, in one pass.

    The stem's windows don't overlap, so its conv is `wav3 @ kernel` over
    the Bx(T/3)x3 reshaped wave. Its output's batch moments then follow from
    wav3's sums and 3x3 Gram matrix, without a pass over the 128-channel
    output, and BatchNorm folds into the product: `relu([wav3, 1] @
    [kernel * mul; add])` (`dense_relu`). Its weight gradient is then
    `[wav3, 1]^T @ d_z`, and the moments' gradients are 4x4-sized.
    """
    b, t = wav_BxT.shape
    kernel, bias = Conv(self.channels[0])(1)
    wav3 = wav_BxT[:, :t // 3 * 3].reshape(b, t // 3, 3).astype(jnp.float32)
    wav4_BxFx4 = jnp.concatenate([wav3, jnp.ones_like(wav3[..., :1])], -1)
    k_3xC = kernel[:, 0]
    stats = None
    if train:
      gram_4x4 = jnp.einsum("bfk,bfl->kl", wav4_BxFx4, wav4_BxFx4,
                            precision=jax.lax.Precision.HIGHEST)
      gram_4x4 = gram_4x4 / (b * (t // 3))
      stats = (gram_4x4[3, :3] @ k_3xC,
               jnp.einsum("kc,kl,lc->c", k_3xC, gram_4x4[:3, :3], k_3xC))
    mul, add = BatchNorm()(stats, bias)
    w_4xC = jnp.concatenate([k_3xC * mul, add[None]])
    # Stored once: fused into the first block's Winograd input transform,
    # the stem was recomputed for each tile row (421 ms there, against 94
    # ms reading the stored output).
    return _once_on_cpu(dense_relu, wav4_BxFx4.astype(self.dtype),
                        w_4xC.astype(self.dtype))
