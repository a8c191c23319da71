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

With tags as the second tower's input (data/tags.py), the batch also
carries each pair's tag id and its track's tags, and a pair whose tag the
other track also has is no negative of it (`clip_loss`'s `also_BxB`).

`objective.loss="hinge"` is instead the pairwise ranking loss of Dorfer
et al.'s audio-sheet retrieval (2018): with s the cosine similarity, the
`objective.anchor` tower's output a (the sheet, in Dorfer's setting), its
partner b and k of the batch's other partners b_k as contrastive
examples,

  loss = mean_i sum_k max(0, margin - s(a_i, b_i) + s(a_i, b_k))

(`objective.margin`: Dorfer's alpha, 0.7; `objective.negatives`: k, 0 for
all of the batch's others).

`objective.hash` trains the towers for binary codes (Raffel & Ellis
2015's MIDI <-> audio hashing; eval/hashing.py): each output goes
through tanh, the relaxed sign, before the loss, and a bit-balance term,
`objective.bit_balance` times the mean over bits of each bit's squared
batch mean, keeps every bit in use (half the items +1, half -1). A code
is the sign of the output.

The step is one jit over the global batch, so each pair's negatives are
every other pair of the global batch, on every device and host (CLIP's
"gather" without the all_gather code).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmusic import models


def _normalised(z_BxD):
  z = z_BxD.astype(jnp.float32)
  return z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-12)


def clip_loss(z_a_BxD, z_b_BxD, logit_scale, max_logit_scale: float = 100.0,
              also_BxB=None):
  """Returns (loss, a->b top-1, b->a top-1) for pairs a[i] <-> b[i].
  `also_BxB[i, j]` True marks b[j] as another true partner of a[i]: it
  is left out of both softmaxes rather than pushed away (a batch of tag
  pairs repeats its few words)."""
  z_a, z_b = _normalised(z_a_BxD), _normalised(z_b_BxD)
  scale = jnp.minimum(jnp.exp(logit_scale), max_logit_scale)
  logits_BxB = scale * jnp.einsum("id,jd->ij", z_a, z_b,
                                  precision=jax.lax.Precision.HIGHEST)
  if also_BxB is not None:
    others = also_BxB & ~jnp.eye(logits_BxB.shape[0], dtype=bool)
    logits_BxB = jnp.where(others, -jnp.inf, logits_BxB)
  labels = jnp.arange(logits_BxB.shape[0])
  ce = optax.softmax_cross_entropy_with_integer_labels
  loss = 0.5 * (jnp.mean(ce(logits_BxB, labels))
                + jnp.mean(ce(logits_BxB.T, labels)))
  top1 = lambda l: jnp.mean((jnp.argmax(l, axis=1) == labels)
                            .astype(jnp.float32))
  return loss, top1(logits_BxB), top1(logits_BxB.T)


def hinge_loss(anchor_BxD, partner_BxD, rng, margin: float = 0.7,
               negatives: int = 0, also_BxB=None):
  """Dorfer et al.'s ranking loss (see the module docstring) with
  `negatives` contrastive partners per anchor drawn from the batch (0:
  all others; never one `also_BxB` marks as another true partner, as in
  `clip_loss`); returns (loss, anchor -> partner top-1)."""
  a, b = _normalised(anchor_BxD), _normalised(partner_BxD)
  sim_BxB = jnp.einsum("id,jd->ij", a, b,
                       precision=jax.lax.Precision.HIGHEST)
  n = sim_BxB.shape[0]
  pos_B = jnp.diagonal(sim_BxB)
  hinge_BxB = jax.nn.relu(margin - pos_B[:, None] + sim_BxB)
  others = ~jnp.eye(n, dtype=bool)
  if also_BxB is not None:
    others &= ~also_BxB
  if negatives and negatives < n - 1:
    # k of each anchor's others, uniformly: the smallest k of random
    # keys, with the anchor's own pair (and its other true partners) keyed
    # past every other, and never taken.
    keys_BxB = jnp.where(others, jax.random.uniform(rng, (n, n)), 2.0)
    kth = jnp.sort(keys_BxB, axis=1)[:, negatives - 1:negatives]
    others = (keys_BxB <= kth) & others
  loss = jnp.mean(jnp.sum(jnp.where(others, hinge_BxB, 0.0), axis=1))
  top1 = jnp.mean((jnp.argmax(sim_BxB, axis=1) == jnp.arange(n))
                  .astype(jnp.float32))
  return loss, top1


def _also(batch):
  """`[i, j]`: pair j's tag is one of track i's (samplers/paired.py), or
  None for pairs without tags."""
  if "pair_tags" not in batch:
    return None
  return jnp.take_along_axis(batch["pair_tags"], batch["pair_tag"][None, :],
                             axis=1) > 0


LOSSES = ("infonce", "hinge")


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
    self.loss = obj.get("loss", "infonce")
    self.margin = obj.get("margin", 0.7)
    self.negatives = obj.get("negatives", 0)
    self.anchor = obj.get("anchor", "") or self.towers[-1]
    self.hash = obj.get("hash", False)
    self.bit_balance = obj.get("bit_balance", 0.1)

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
    if obj.get("loss", "infonce") not in LOSSES:
      fail("objective.loss", f"use one of {LOSSES}")
    if obj.get("loss") == "hinge":
      if obj.get("margin", 0.7) <= 0:
        fail("objective.margin", "must be positive (Dorfer et al.: 0.7)")
      if obj.get("negatives", 0) < 0:
        fail("objective.negatives", "contrastive partners per anchor, >= 0 "
             "(0: all of the batch's others)")
      if obj.get("anchor", "") and obj.anchor not in towers:
        fail("objective.anchor", f"one of the towers {towers}")
    if obj.get("bit_balance", 0.1) < 0:
      fail("objective.bit_balance", "must be >= 0")
    if obj.get("hash", False) and not all(
        models.encoder_config(config.model, t).get("bottleneck", 0)
        for t in towers):
      fail("objective.hash", "codes are the signs of each tower's "
           "bottleneck: give model.<tower>.bottleneck the number of bits")
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
    if self.loss == "infonce":
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
    extra = {}
    if self.hash:
      z = [jnp.tanh(v.astype(jnp.float32)) for v in z]
      balance = sum(jnp.mean(jnp.mean(v, axis=0) ** 2) for v in z)
      extra = {"bit_balance": balance,
               "bits_agree": jnp.mean((z[0] > 0) == (z[1] > 0))}
    if self.loss == "hinge":
      anchor = self.towers.index(self.anchor)
      partner = self.towers[1 - anchor]
      also = _also(batch)
      loss, top1 = hinge_loss(z[anchor], z[1 - anchor],
                              jax.random.fold_in(rng, len(self.towers)),
                              self.margin, self.negatives,
                              also if also is None or anchor == 0 else also.T)
      metrics = {f"{self.anchor}_to_{partner}_top1": top1}
    else:
      loss, a2b, b2a = clip_loss(*z, params["logit_scale"],
                                 self.max_logit_scale, _also(batch))
      metrics = {f"{self.towers[0]}_to_{self.towers[1]}_top1": a2b,
                 f"{self.towers[1]}_to_{self.towers[0]}_top1": b2a,
                 "logit_scale": jnp.minimum(jnp.exp(params["logit_scale"]),
                                            self.max_logit_scale)}
    if self.hash:
      loss = loss + self.bit_balance * extra["bit_balance"]
    return loss, ({**metrics, **extra}, new_state)

  def embed(self, variables, x):
    """The first tower's output, for the kNN monitor."""
    return models.pooled(self.encoders[self.towers[0]], variables, x)
