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


class CLMR:
  """Two augmented views of a crop, SampleCNN (or any encoder), projection,
  NT-Xent. Augmentations run here, inside the jitted step."""

  data_mode = "views"

  def __init__(self, config):
    self.encoder = models.make_encoder(config.model)
    obj = config.objective
    self.projector = heads.Projection(tuple(obj.projection_dims),
                                      dtype=self.encoder.dtype)
    self.temperature = obj.temperature
    aug = config.augment
    self.chain = augment.make_chain(tuple(aug.chain), config.data.sample_rate,
                                    probs=dict(aug.get("probs", {})))

  def _apply(self, variables, wav_BxT, train):
    mutable = ["batch_stats"] if train else False
    out = self.encoder.apply(
        {"params": variables["params"]["encoder"],
         "batch_stats": variables["batch_stats"]["encoder"]}, wav_BxT, train=train,
        mutable=mutable)
    h_BxD, new_state = out if train else (out, None)
    z = self.projector.apply({"params": variables["params"]["projector"]},
                             h_BxD)
    return h_BxD, z, new_state

  def init(self, rng, batch):
    k_enc, k_proj = jax.random.split(rng)
    x = batch["views"][:2, 0]
    enc = self.encoder.init(k_enc, x, train=False)
    h = self.encoder.apply(enc, x)
    proj = self.projector.init(k_proj, h)
    return {"params": {"encoder": enc["params"], "projector": proj["params"]},
            "batch_stats": {"encoder": enc["batch_stats"]}}

  def loss_fn(self, params, model_state, batch, rng):
    views_Bx2xT = batch["views"]
    k_a, k_b = jax.random.split(rng)
    a = augment.apply_batch(self.chain, k_a, views_Bx2xT[:, 0])
    b = augment.apply_batch(self.chain, k_b, views_Bx2xT[:, 1])
    # One forward over both views: one set of global BN statistics.
    _, z, new_state = self._apply(
        {"params": params, "batch_stats": model_state},
        jnp.concatenate([a, b]), train=True)
    half = a.shape[0]
    loss, acc = nt_xent(z[:half], z[half:], self.temperature)
    return loss, ({"positive_top1": acc},
                  {"encoder": new_state["batch_stats"]})

  def embed(self, variables, wav_BxT):
    h, _, _ = self._apply(variables, wav_BxT, train=False)
    return h
