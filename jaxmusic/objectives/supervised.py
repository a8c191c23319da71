"""Supervised training on the data's labels: the reference every
self-supervised row is judged against.

A linear classifier on the pooled encoder output, trained with the encoder:
softmax cross-entropy on the class label (`objective.target="label"`), or
per-tag sigmoid binary cross-entropy on the multi-hot tags
(`target="tags"`). Class and tag counts come from the prepared data's
manifest; tracks without a label (-1) weigh nothing. Any encoder of the
contract.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxmusic import models

TARGETS = ("label", "tags")


def classification_loss(logits_BxK, batch, target: str):
  """`(loss, accuracy)`: cross-entropy over the labelled examples and top-1
  accuracy, or the tags' mean binary cross-entropy and per-tag accuracy at
  0.5."""
  logits = logits_BxK.astype(jnp.float32)
  if target == "label":
    label_B = batch["label"]
    valid = (label_B >= 0).astype(jnp.float32)
    ce = optax.softmax_cross_entropy_with_integer_labels(
        logits, jnp.maximum(label_B, 0))
    n = jnp.maximum(jnp.sum(valid), 1.0)
    hit = (jnp.argmax(logits, axis=-1) == label_B).astype(jnp.float32)
    return jnp.sum(ce * valid) / n, jnp.sum(hit * valid) / n
  tags = batch["tags"].astype(jnp.float32)
  bce = optax.sigmoid_binary_cross_entropy(logits, tags)
  return jnp.mean(bce), jnp.mean(((logits > 0) == (tags > 0.5))
                                 .astype(jnp.float32))


class Supervised:
  """Any encoder, a linear head, cross-entropy on labels or tags."""

  data_mode = "labelled"

  def __init__(self, config, manifest=None):
    self.target = config.objective.target
    vocab = (manifest or {}).get("vocab", {})
    n = len(vocab.get("label" if self.target == "label" else "tags", ()))
    if n < 2 and self.target == "label" or n < 1:
      raise ValueError(f"config.objective.target={self.target!r}: the data "
                       f"has {n} {'classes' if self.target == 'label' else 'tags'}"
                       "; supervised training needs them in the manifest")
    self.encoder = models.make_encoder(config.model)
    self.head = nn.Dense(n, name="classifier")

  @staticmethod
  def validate(config, fail):
    if config.objective.get("target") not in TARGETS:
      fail("objective.target", f"use one of {TARGETS}")

  def init(self, rng, batch):
    k_enc, k_head = jax.random.split(rng)
    x = batch["inputs"][:2]
    params, state, out = models.init(self.encoder, k_enc, x)
    head = self.head.init(k_head, out.pooled)
    return {"params": {"encoder": params, "head": head["params"]},
            "model_state": {"encoder": state}}

  def loss_fn(self, params, model_state, batch, rng):
    k_drop, k_aug = jax.random.split(rng)
    out, state = models.apply(
        self.encoder, params["encoder"], model_state["encoder"],
        batch["inputs"], train=True,
        rngs={"dropout": k_drop, "augment": k_aug})
    logits = self.head.apply({"params": params["head"]}, out.pooled)
    loss, accuracy = classification_loss(logits, batch, self.target)
    return loss, ({"accuracy": accuracy}, {"encoder": state})

  def embed(self, variables, x):
    return models.pooled(self.encoder, variables, x)
