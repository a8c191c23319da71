"""SimCLR/CLMR NT-Xent over the global batch.

The step is one jit over arrays sharded on the batch axis, so the similarity
matrix below spans every device and host: each example's negatives are all
other 2B-2 views of the global batch, not just its device's share (the bug
in CLMR's and SimCLR's PyTorch DDP code).
"""

import jax
import jax.numpy as jnp

from jaxmusic import models
from jaxmusic.audio import augment
from jaxmusic.models import heads


def nt_xent(z_a_BxD, z_b_BxD, temperature: float):
  """Returns (loss, positive top-1 accuracy) for paired views a[i] <-> b[i].

  Cosine similarities over all 2B views; each row's own similarity is
  excluded and `logsumexp` subtracts the row max, so large 1/temperature
  cannot overflow.
  """
  z = jnp.concatenate([z_a_BxD, z_b_BxD]).astype(jnp.float32)
  z = z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-12)
  n = z.shape[0]
  logits_NxN = jnp.einsum("id,jd->ij", z, z,
                          precision=jax.lax.Precision.HIGHEST) / temperature
  logits_NxN = jnp.where(jnp.eye(n, dtype=bool), -jnp.inf, logits_NxN)
  positive = (jnp.arange(n) + n // 2) % n
  pos_logit = jnp.take_along_axis(logits_NxN, positive[:, None], axis=1)[:, 0]
  loss = jnp.mean(jax.nn.logsumexp(logits_NxN, axis=1) - pos_logit)
  accuracy = jnp.mean(jnp.argmax(logits_NxN, axis=1) == positive)
  return loss, accuracy


def augmentation_table(config):
  """The encoder's frontend's transforms: the waveform chain before a
  waveform or mel frontend, the piano-roll chain (transposition, velocity,
  time masks) before a piano roll."""
  return models.frontend_of(config.model)[0].AUGMENTATIONS


class CLMR:
  """Two views of a track, any encoder, a projection, NT-Xent.

  Augmentations run here, inside the jitted step, before the encoder's
  frontend: CLMR's waveform chain (a mel frontend then applies SpecAugment
  when its config asks for it), or the piano-roll chain for piano rolls.
  """

  data_mode = "views"

  def __init__(self, config, manifest=None):
    del manifest  # CLMR needs nothing from the data beyond its crops
    self.encoder = models.make_encoder(config.model)
    obj = config.objective
    self.projector = heads.Projection(
        tuple(obj.projection_dims),
        dtype=jnp.dtype(config.model.get("dtype", "float32")))
    self.temperature = obj.temperature
    # False: each view is its own forward pass, with its own BatchNorm
    # statistics, as CLMR's PyTorch code runs them.
    self.joint_views = obj.get("joint_views", True)
    aug = config.augment
    self.chain = augment.make_chain(tuple(aug.chain), config.data.sample_rate,
                                    probs=dict(aug.get("probs", {})),
                                    table=augmentation_table(config))

  @staticmethod
  def validate(config, fail):
    obj = config.objective
    if obj.get("temperature", 0.0) <= 0:
      fail("objective.temperature", "must be positive")
    if not obj.get("projection_dims"):
      fail("objective.projection_dims", "needs at least one layer")
    table = augmentation_table(config)
    for key, names in (("augment.chain", config.augment.chain),
                       ("augment.probs", config.augment.get("probs", {}))):
      unknown = set(names) - set(table)
      if unknown:
        fail(key, f"unknown {sorted(unknown)} for a "
             f"{models.input_feature(config.model)} input; known: "
             f"{sorted(table)}")

  def _encode(self, variables, x, train, rngs=None):
    out, state = models.apply(
        self.encoder, variables["params"]["encoder"],
        variables["model_state"]["encoder"], x, train=train, rngs=rngs)
    h_BxD = out.pooled
    z = self.projector.apply({"params": variables["params"]["projector"]},
                             h_BxD)
    return h_BxD, z, state

  def init(self, rng, batch):
    k_enc, k_proj = jax.random.split(rng)
    x = batch["views"][:2, 0]
    params, state, out = models.init(self.encoder, k_enc, x)
    proj = self.projector.init(k_proj, out.pooled)
    return {"params": {"encoder": params, "projector": proj["params"]},
            "model_state": {"encoder": state}}

  def loss_fn(self, params, model_state, batch, rng):
    views_Bx2x = batch["views"]
    k_a, k_b, k_drop, k_aug = jax.random.split(rng, 4)
    a = augment.apply_batch(self.chain, k_a, views_Bx2x[:, 0])
    b = augment.apply_batch(self.chain, k_b, views_Bx2x[:, 1])
    rngs = {"dropout": k_drop, "augment": k_aug}
    if self.joint_views:
      # One forward over both views: one set of global BatchNorm statistics.
      _, z, state = self._encode(
          {"params": params, "model_state": model_state},
          jnp.concatenate([a, b]), train=True, rngs=rngs)
      z_a, z_b = jnp.split(z, 2)
    else:
      _, z_a, state = self._encode(
          {"params": params, "model_state": model_state}, a, train=True,
          rngs=rngs)
      # The second pass draws its own dropout and SpecAugment masks: with
      # the first pass's keys, both views would be masked alike.
      _, z_b, state = self._encode(
          {"params": params, "model_state": {"encoder": state}}, b,
          train=True, rngs=jax.tree.map(lambda k: jax.random.fold_in(k, 1),
                                        rngs))
    loss, acc = nt_xent(z_a, z_b, self.temperature)
    return loss, ({"positive_top1": acc}, {"encoder": state})

  def embed(self, variables, x):
    """The pooled encoder output `BxD`; `variables` holds "params" and
    "model_state" as the train state does."""
    return self._encode(variables, x, train=False)[0]
