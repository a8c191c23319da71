"""A grouped 1-D convolution whose kernel gradient XLA:CPU computes fast.

The transformer's convolutional positions (HuBERT: kernel 128, 16 groups)
are one grouped conv. XLA:CPU runs its forward and input gradient at matmul
speed, but writes the kernel gradient as a convolution whose window is the
whole sequence, which took ~3.4 s for the `base` model's 8 x 215 frames
(the rest of the step: ~3 s). Here the kernel gradient is an explicit
im2col matmul per group: the K shifted copies of the padded input,
contracted with the output gradient over batch and time in one axis. The
forward and the input gradient are XLA's. Chosen by `config.model.impl`
(`auto`: on CPU in float32); tests/test_ops.py checks it against autodiff
of the plain conv.
"""

import functools

import jax
import jax.numpy as jnp

# Taps per im2col chunk: bounds the copies' memory at B x T x D x 32.
TAPS_PER_CHUNK = 32


def same_padding(kernel: int) -> tuple[int, int]:
  """HuBERT's padding: K // 2 each side, and the last frame dropped for an
  even K (its SamePad), i.e. (K // 2, (K - 1) // 2): T frames out."""
  return kernel // 2, (kernel - 1) // 2


def plain_conv1d(x_BxTxC, w_KxIxO, groups: int):
  """`lax.conv_general_dilated` with HuBERT's padding: T frames in, T out."""
  return jax.lax.conv_general_dilated(
      x_BxTxC, w_KxIxO, (1,), (same_padding(w_KxIxO.shape[0]),),
      dimension_numbers=("NWC", "WIO", "NWC"), feature_group_count=groups)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def grouped_conv1d(x_BxTxC, w_KxIxO, groups: int):
  """`plain_conv1d`, with the kernel gradient as im2col matmuls."""
  return plain_conv1d(x_BxTxC, w_KxIxO, groups)


def _fwd(x_BxTxC, w_KxIxO, groups):
  return plain_conv1d(x_BxTxC, w_KxIxO, groups), (x_BxTxC, w_KxIxO)


def _bwd(groups, res, dy_BxTxO):
  x_BxTxC, w_KxIxO = res
  _, x_vjp = jax.vjp(lambda x: plain_conv1d(x, w_KxIxO, groups), x_BxTxC)
  (dx,) = x_vjp(dy_BxTxO)
  k, cg, out = w_KxIxO.shape
  b, t, _ = x_BxTxC.shape
  og = out // groups
  left, right = same_padding(k)
  xp_GxBxTxC = jnp.pad(x_BxTxC, ((0, 0), (left, right), (0, 0))).reshape(
      b, t + k - 1, groups, cg).transpose(2, 0, 1, 3)
  dy_GxNxO = dy_BxTxO.reshape(b * t, groups, og).transpose(1, 0, 2)
  parts = []
  for start in range(0, k, TAPS_PER_CHUNK):
    taps = range(start, min(start + TAPS_PER_CHUNK, k))
    # G x (taps C) x (B T): one contracting axis, as XLA:CPU's dot wants.
    cols = jnp.stack([xp_GxBxTxC[:, :, j:j + t] for j in taps], axis=2)
    cols = cols.transpose(0, 2, 4, 1, 3).reshape(groups, len(taps) * cg,
                                                 b * t)
    parts.append(jnp.einsum("gmn,gno->gmo", cols, dy_GxNxO).reshape(
        groups, len(taps), cg, og))
  dw_GxKxCxO = jnp.concatenate(parts, axis=1)
  dw = dw_GxKxCxO.transpose(1, 2, 0, 3).reshape(k, cg, out)
  return dx, dw.astype(w_KxIxO.dtype)


grouped_conv1d.defvjp(_fwd, _bwd)
