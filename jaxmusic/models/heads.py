"""Heads put on top of an encoder."""

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp


class Projection(nn.Module):
  """SimCLR's projector: bias-free Dense layers with ReLU between them."""
  features: Sequence[int] = (512, 64)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, h_BxD):
    x = h_BxD
    for i, f in enumerate(self.features):
      if i:
        x = nn.relu(x)
      x = nn.Dense(f, use_bias=False, dtype=self.dtype)(x)
    return x.astype(jnp.float32)
