"""Two-tower contrastive learning: CLIP's symmetric InfoNCE (Radford et al.
2021), as MuLan (Huang et al. 2022) pairs music with text, here between any
two encoders of the contract: audio <-> piano roll, piano roll <-> text,
audio <-> text.

Each tower is an encoder under its own `config.model.<tower>` sub-config
(`model.towers` names them, in the order of `data.features`), read from
the `paired` mode: batch["inputs"] for the first tower, batch["pair"] for
the second. A tower's `bottleneck` projects its pooled output into the
shared space (CLIP's per-tower projection), so export writes embeddings in
that space. With z_a, z_b the L2-normalised outputs and s the learned
logit scale (initialised at log(1 / temperature), 1 / 0.07 as CLIP;
exp(s) clamped at `max_logit_scale`, 100):

  logits = exp(s) * z_a z_b^T
  loss = (CE(logits, diag) + CE(logits^T, diag)) / 2

The step is one jit over the global batch, so each pair's negatives are
every other pair of the global batch, on every device and host (CLIP's
"gather" without the all_gather code).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmusic import models


def clip_loss(z_a_BxD, z_b_BxD, logit_scale, max_logit_scale: float = 100.0):
  """Returns (loss, a->b top-1, b->a top-1) for pairs a[i] <-> b[i]."""
  norm = lambda z: z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True),
                                   1e-12)
  z_a = norm(z_a_BxD.astype(jnp.float32))
  z_b = norm(z_b_BxD.astype(jnp.float32))
  scale = jnp.minimum(jnp.exp(logit_scale), max_logit_scale)
  logits_BxB = scale * jnp.einsum("id,jd->ij", z_a, z_b,
                                  precision=jax.lax.Precision.HIGHEST)
  labels = jnp.arange(logits_BxB.shape[0])
  ce = optax.softmax_cross_entropy_with_integer_labels
  loss = 0.5 * (jnp.mean(ce(logits_BxB, labels))
                + jnp.mean(ce(logits_BxB.T, labels)))
  top1 = lambda l: jnp.mean((jnp.argmax(l, axis=1) == labels)
                            .astype(jnp.float32))
  return loss, top1(logits_BxB), top1(logits_BxB.T)


class TwoTower:
  """Two encoders, a learned logit scale, symmetric InfoNCE."""

  data_mode = "paired"

  def __init__(self, config, manifest=None):
    del manifest
    self.towers = models.tower_names(config.model)
    self.encoders = {t: models.make_encoder(models.encoder_config(
        config.model, t)) for t in self.towers}
    self.keys = {t: models.params_key(config.model, t) for t in self.towers}
    obj = config.objective
    self.temperature = obj.temperature
    self.max_logit_scale = obj.max_logit_scale

  @staticmethod
  def validate(config, fail):
    towers = models.tower_names(config.model)
    if len(towers) != 2:
      fail("model.towers", "two_tower needs two tower names, each with its "
           "model.<tower> encoder config")
    obj = config.objective
    if obj.get("temperature", 0.0) <= 0:
      fail("objective.temperature", "must be positive (CLIP: 0.07)")
    if obj.get("max_logit_scale", 0.0) <= 1:
      fail("objective.max_logit_scale", "must exceed 1 (CLIP: 100)")
    widths = {models.encoder_config(config.model, t).get("bottleneck", 0)
              for t in towers}
    if len(widths) > 1:
      fail(f"model.{towers[1]}.bottleneck", "the towers' projections must "
           f"share one width; got {sorted(widths)}")

  def _inputs(self, batch):
    return dict(zip(self.towers, (batch["inputs"], batch["pair"])))

  def init(self, rng, batch):
    params, state, widths = {}, {}, {}
    for (tower, x), key in zip(self._inputs(batch).items(),
                               jax.random.split(rng, len(self.towers))):
      p, s, out = models.init(self.encoders[tower], key, x[:2])
      params[self.keys[tower]], state[self.keys[tower]] = p, s
      widths[tower] = out.pooled.shape[-1]
    if len(set(widths.values())) > 1:
      raise ValueError(f"config.model.<tower>.bottleneck: the towers' "
                       f"outputs differ in width {widths}; give both the same "
                       "bottleneck (the shared space)")
    params["logit_scale"] = jnp.asarray(np.log(1.0 / self.temperature),
                                        jnp.float32)
    return {"params": params, "model_state": state}

  def loss_fn(self, params, model_state, batch, rng):
    z, new_state = [], {}
    for (tower, x), key in zip(self._inputs(batch).items(),
                               jax.random.split(rng, len(self.towers))):
      k_drop, k_aug = jax.random.split(key)
      name = self.keys[tower]
      out, new_state[name] = models.apply(
          self.encoders[tower], params[name], model_state[name], x,
          train=True, rngs={"dropout": k_drop, "augment": k_aug})
      z.append(out.pooled)
    loss, a2b, b2a = clip_loss(*z, params["logit_scale"],
                               self.max_logit_scale)
    metrics = {f"{self.towers[0]}_to_{self.towers[1]}_top1": a2b,
               f"{self.towers[1]}_to_{self.towers[0]}_top1": b2a,
               "logit_scale": jnp.minimum(jnp.exp(params["logit_scale"]),
                                          self.max_logit_scale)}
    return loss, (metrics, new_state)

  def embed(self, variables, x):
    """The first tower's output, for the kNN monitor."""
    return models.pooled(self.encoders[self.towers[0]], variables, x)
