"""Tile2Vec's triplet loss (Jean et al., 2019), adapted to audio.

An anchor crop, a positive (a neighbour within `data.radius_seconds` in
the same track, or with `data.triplet_by` another track sharing the label
or artist) and a negative (another track, or one not sharing it), all
through one encoder; the embeddings are its pooled outputs z:

  loss = mean_i relu(|z_a - z_p| - |z_a - z_n| + margin)
         + l2 * (|Z_a| + |Z_p| + |Z_n|)

with Euclidean distances, and the l2 term on the whole batch's embedding
matrices (Frobenius norms), as Tile2Vec's `train_triplet_epoch` computes
it. The three crops go through the encoder in one pass, so BatchNorm sees
one set of global-batch statistics. CLMR's augmentations are optional
(`augment.chain`, empty by default).
"""

import jax
import jax.numpy as jnp

from jaxmusic import models
from jaxmusic.audio import augment
from jaxmusic.objectives import ntxent


def triplet_loss(z_a_BxD, z_p_BxD, z_n_BxD, margin: float, l2: float):
  """Returns (loss, fraction of triplets the margin already satisfies)."""
  z_a, z_p, z_n = (z.astype(jnp.float32) for z in (z_a_BxD, z_p_BxD,
                                                   z_n_BxD))
  dist = lambda x, y: jnp.sqrt(jnp.sum(jnp.square(x - y), axis=-1) + 1e-12)
  gap_B = dist(z_a, z_p) - dist(z_a, z_n)
  loss = jnp.mean(jax.nn.relu(gap_B + margin))
  frob = lambda z: jnp.sqrt(jnp.sum(jnp.square(z)))
  loss = loss + l2 * (frob(z_a) + frob(z_p) + frob(z_n))
  return loss, jnp.mean((gap_B + margin <= 0).astype(jnp.float32))


class Triplet:
  """Tile2Vec on any encoder."""

  data_mode = "triplet"

  def __init__(self, config, manifest=None):
    del manifest
    self.encoder = models.make_encoder(config.model)
    obj = config.objective
    self.margin, self.l2 = obj.margin, obj.l2
    aug = config.get("augment", {})
    chain = tuple(aug.get("chain", ()))
    self.chain = augment.make_chain(
        chain, config.data.sample_rate, probs=dict(aug.get("probs", {})),
        table=ntxent.augmentation_table(config)) if chain else None

  @staticmethod
  def validate(config, fail):
    obj = config.objective
    if obj.get("margin", 0.0) <= 0:
      fail("objective.margin", "must be positive")
    if obj.get("l2", -1.0) < 0:
      fail("objective.l2", "must be >= 0")
    by = config.data.get("triplet_by") or None
    if by not in (None, "label", "artist"):
      fail("data.triplet_by", "use '' (temporal), 'label' or 'artist'")
    if by is None and config.data.get("radius_seconds", 1.0) <= 0:
      fail("data.radius_seconds", "must be positive")

  def init(self, rng, batch):
    params, state, _ = models.init(self.encoder, rng, batch["anchor"][:2])
    return {"params": {"encoder": params}, "model_state": {"encoder": state}}

  def loss_fn(self, params, model_state, batch, rng):
    k_aug, k_drop, k_spec = jax.random.split(rng, 3)
    crops = jnp.concatenate([batch["anchor"], batch["positive"],
                             batch["negative"]])
    if self.chain is not None:
      crops = augment.apply_batch(self.chain, k_aug, crops)
    out, state = models.apply(
        self.encoder, params["encoder"], model_state["encoder"], crops,
        train=True, rngs={"dropout": k_drop, "augment": k_spec})
    z = out.pooled
    z_a, z_p, z_n = jnp.split(z, 3)
    loss, satisfied = triplet_loss(z_a, z_p, z_n, self.margin, self.l2)
    return loss, ({"margin_satisfied": satisfied}, {"encoder": state})

  def embed(self, variables, x):
    return models.pooled(self.encoder, variables, x)
