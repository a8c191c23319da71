"""Masked prediction of event tokens: BERT's masked language model with
MusicBERT's bar-level masking (Zeng et al. 2021).

Where HuBERT predicts k-means codes of masked frames, a token input is its
own target: the transformer predicts the masked tokens themselves. Random
token masking lets a model copy a note's pitch from the same pitch one
token away in the same bar; MusicBERT therefore masks by bar and type:
for each bar and each token type (position, program, pitch, velocity,
duration) the bar's tokens of that type are masked together with
probability `mask_prob` (MusicBERT: 15%). A masked token becomes `Mask`
with probability 0.8, a random token of the vocabulary with 0.1, and stays
as it is with 0.1 (BERT's 80/10/10). `Bar` tokens are never masked, as
MusicBERT keeps its bar field.

The head is BERT's: dense, GELU, LayerNorm, then logits over the
vocabulary; the loss is the cross-entropy over the masked tokens of the
global batch. Transposition (`objective.transpose`) moves input and
targets together, before masking, so it is the objective's, not the
frontend's.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxmusic import models
from jaxmusic.data import features as feats
from jaxmusic.data import tokens as event_tokens
from jaxmusic.models.frontends import tokens as token_frontend

# The token types masked together within a bar: [start, stop) id ranges.
TYPES = tuple(
    (start, start + size) for start, size in (
        (event_tokens.POSITION0, event_tokens.POSITIONS),
        (event_tokens.PROGRAM0, event_tokens.PROGRAMS),
        (event_tokens.PITCH0, event_tokens.PITCHES),
        (event_tokens.VELOCITY0, event_tokens.VELOCITIES),
        (event_tokens.DURATION0, event_tokens.DURATIONS)))
FIRST_EVENT = event_tokens.BAR + 1


def token_type(ids_BxL):
  """Each token's type index in TYPES, or -1 (pad, mask, bar)."""
  out = jnp.full(ids_BxL.shape, -1, jnp.int32)
  for i, (lo, hi) in enumerate(TYPES):
    out = jnp.where((ids_BxL >= lo) & (ids_BxL < hi), i, out)
  return out


def bar_type_mask(key, ids_BxL, mask_prob: float, max_bars: int):
  """`BxL` bool: MusicBERT's bar-level masking. Each (row, bar, type) cell
  is drawn once, and masks every token of that type in that bar."""
  bar_BxL = jnp.minimum(event_tokens.bar_index(ids_BxL), max_bars - 1)
  kind_BxL = token_type(ids_BxL)
  draw_BxNxT = jax.random.bernoulli(
      key, mask_prob, (ids_BxL.shape[0], max_bars, len(TYPES)))
  picked = jnp.take_along_axis(
      draw_BxNxT.reshape(ids_BxL.shape[0], -1),
      bar_BxL * len(TYPES) + jnp.maximum(kind_BxL, 0), axis=1)
  return picked & (kind_BxL >= 0)


def corrupt(key, ids_BxL, mask_BxL):
  """BERT's 80/10/10: masked tokens become `Mask`, a random event token,
  or stay."""
  k_how, k_tok = jax.random.split(key)
  u = jax.random.uniform(k_how, ids_BxL.shape)
  random_ids = jax.random.randint(k_tok, ids_BxL.shape, FIRST_EVENT,
                                  event_tokens.VOCAB)
  out = jnp.where(mask_BxL & (u < 0.8), event_tokens.MASK, ids_BxL)
  return jnp.where(mask_BxL & (u >= 0.8) & (u < 0.9), random_ids, out)


class LMHead(nn.Module):
  """BERT's masked-LM head over the encoder's frames."""
  vocab: int

  @nn.compact
  def __call__(self, frames_BxLxD):
    x = frames_BxLxD.astype(jnp.float32)
    x = nn.gelu(nn.Dense(x.shape[-1], name="transform")(x), approximate=False)
    x = nn.LayerNorm(name="norm")(x)
    return nn.Dense(self.vocab, name="decoder")(x)


class MaskedTokens:
  """Masked token prediction (`masked_tokens`)."""

  data_mode = "labelled"

  def __init__(self, config, manifest=None):
    del manifest
    self.encoder = models.make_encoder(config.model)
    self.head = LMHead(event_tokens.VOCAB)
    self.obj = config.objective
    # A crop holds at most as many bars as tokens.
    self.max_bars = feats.Sequences.from_config(config.data).tokens

  @staticmethod
  def validate(config, fail):
    obj = config.objective
    if models.input_feature(config.model) != event_tokens.FEATURE:
      fail("model.frontend.name", "masked_tokens predicts event tokens; "
           "its input must be the tokens frontend")
    if not 0 < obj.get("mask_prob", 0.0) < 1:
      fail("objective.mask_prob", "must be in (0, 1) (MusicBERT: 0.15)")
    if not 0 <= obj.get("transpose", 0) < 64:
      fail("objective.transpose", "semitones in 0..63 (0: off)")
    if config.model.frontend.get("transpose", 0):
      fail("model.frontend.transpose", "masked_tokens transposes input and "
           "targets together: set objective.transpose instead")

  @staticmethod
  def _ids(batch):
    return batch["inputs"]

  def init(self, rng, batch):
    k_enc, k_head = jax.random.split(rng)
    params, state, out = models.init(self.encoder, k_enc,
                                     self._ids(batch)[:2])
    head = self.head.init(k_head, out.frames)
    return {"params": {"encoder": params, "head": head["params"]},
            "model_state": {"encoder": state}}

  def loss_fn(self, params, model_state, batch, rng):
    obj = self.obj
    k_shift, k_mask, k_corrupt, k_drop = jax.random.split(rng, 4)
    ids_BxL = self._ids(batch).astype(jnp.int32)
    if obj.get("transpose", 0):
      ids_BxL = jax.vmap(lambda k, x: token_frontend.token_transpose(
          k, x, obj.transpose))(jax.random.split(k_shift, ids_BxL.shape[0]),
                                ids_BxL)
    mask_BxL = bar_type_mask(k_mask, ids_BxL, obj.mask_prob, self.max_bars)
    out, state = models.apply(
        self.encoder, params["encoder"], model_state["encoder"],
        corrupt(k_corrupt, ids_BxL, mask_BxL), train=True,
        rngs={"dropout": k_drop, "augment": k_drop})
    logits_BxLxV = self.head.apply({"params": params["head"]}, out.frames)
    logp = jax.nn.log_softmax(logits_BxLxV, axis=-1)
    nll_BxL = -jnp.take_along_axis(logp, ids_BxL[..., None], axis=-1)[..., 0]
    w_BxL = mask_BxL.astype(jnp.float32)
    n = jnp.maximum(jnp.sum(w_BxL), 1.0)
    loss = jnp.sum(nll_BxL * w_BxL) / n
    hit = (jnp.argmax(logits_BxLxV, axis=-1) == ids_BxL).astype(jnp.float32)
    metrics = {"masked_top1": jnp.sum(hit * w_BxL) / n,
               "mask_fraction": jnp.sum(w_BxL) / jnp.maximum(
                   jnp.sum(ids_BxL > 0), 1)}
    return loss, (metrics, {"encoder": state})

  def embed(self, variables, x):
    """The pooled encoder output `BxD`, unmasked."""
    return models.pooled(self.encoder, variables, x)
