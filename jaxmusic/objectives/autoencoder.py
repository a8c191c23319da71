"""Autoencoders: the AE, the contractive AE (Rifai et al. 2011) and the
VAE (Kingma and Welling, 2014) that Symphony2vec and the composer study
compared as music embeddings, on log-mel, MFCC, chroma or piano-roll
crops, or on the waveform.

The encoder is any encoder of the contract, the transformer included: the
decoder reconstructs the frontend's frames before their embedding (the
log-mel or MFCC, the piano roll). A waveform encoder (SampleCNN, the
transformer's conv extractor) has no frames of its own to give back, so it
reconstructs the crop's log-mel (128 bands, the mel frontend's scaling):
the spectral distance by which waveform autoencoders are trained and
judged (RAVE, Caillon and Esling 2021; DDSP), without a waveform decoder.
The encoder's `model.bottleneck` is the code z (AE) or the posterior mean
mu (VAE), so export and the probes read the embedding the paper reads.
The VAE's log-variance is a linear map of the frames' mean, beside the
bottleneck. A transposed-conv decoder maps the code back to the frontend's
`BxFxK` frames:

  AE    loss = rec(x, dec(z))
  CAE   loss = rec(x, dec(z)) + lambda * ||dz/dh||_F^2
  VAE   loss = rec(x, dec(mu + sigma * eps))
               + beta * w(step) * KL(N(mu, sigma^2) || N(0, I))

rec is the squared error (log-mel, MFCC) or the Bernoulli cross-entropy
(piano roll, in [0, 1]) summed over the crop's frames and bins and
averaged over the batch, as in the ELBO; w rises linearly from 0 to 1 over
`kl_warmup_steps` (Bowman et al. 2016), counted in the objective's own
state, so the train loop stays unchanged and resume keeps it. The CAE's
penalty is the squared Frobenius norm of the encoder's Jacobian from the
frontend's output h (the frames themselves for the CNN, ALI-CNN,
feed-forward and LSTM encoders) to the code, taken exactly by
vector-Jacobian products (models.jacobian_sq_norm), weighted by
`objective.contraction`.
"""

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxmusic import models

VARIANTS = ("ae", "cae", "vae")
RECONSTRUCTIONS = ("mse", "bce")


def gaussian_kl(mu_BxD, logvar_BxD):
  """KL(N(mu, exp(logvar)) || N(0, I)) per example, summed over D."""
  return 0.5 * jnp.sum(jnp.exp(logvar_BxD) + jnp.square(mu_BxD) - 1.0
                       - logvar_BxD, axis=-1)


def reconstruction_loss(x_BxFxK, out_BxFxK, kind: str):
  """Per-example error summed over frames and bins: squared error, or the
  Bernoulli cross-entropy of `out` as logits."""
  x, out = x_BxFxK.astype(jnp.float32), out_BxFxK.astype(jnp.float32)
  if kind == "bce":
    err = optax.sigmoid_binary_cross_entropy(out, x)
  else:
    err = jnp.square(out - x)
  return jnp.sum(err, axis=(1, 2))


class Decoder(nn.Module):
  """`BxD` code -> `BxFxK` frames: a dense layer to a (F/2^n) x (K/2^n)
  grid of `channels[0]`, n transposed 3x3 convs that double both axes
  (BatchNorm, ReLU), a 3x3 conv to one channel, cut to F x K."""
  frames: int
  bins: int
  channels: Sequence[int] = (64, 32, 16)

  @nn.compact
  def __call__(self, z_BxD, train: bool = False):
    up = 2 ** len(self.channels)
    f0, k0 = math.ceil(self.frames / up), math.ceil(self.bins / up)
    x = nn.Dense(f0 * k0 * self.channels[0])(z_BxD)
    x = nn.relu(x.reshape(-1, f0, k0, self.channels[0]))
    for ch in self.channels:
      x = nn.ConvTranspose(ch, (3, 3), strides=(2, 2), padding="SAME",
                           use_bias=False)(x)
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
      x = nn.relu(x)
    x = nn.Conv(1, (3, 3), padding="SAME")(x)[..., 0]
    return x[:, :self.frames, :self.bins]


class Autoencoder:
  """An encoder of the contract, a bottleneck, a conv decoder."""

  data_mode = "labelled"

  def __init__(self, config, manifest=None):
    del manifest
    obj = config.objective
    self.variant = obj.variant
    self.encoder = models.make_encoder(config.model)
    front, fcfg = models.frontend_of(config.model)
    self.reconstruction = (obj.get("reconstruction")
                           or front.reconstruction(fcfg))
    self.beta = obj.get("beta", 1.0)
    self.warmup = obj.get("kl_warmup_steps", 0)
    self.contraction = obj.get("contraction", 0.1)
    self.channels = tuple(obj.get("decoder_channels", (64, 32, 16)))
    self.decoder = None  # sized from the frontend's frames at init
    # A module making the frames to reconstruct (a waveform's log-mel), or
    # None for the frontend's own raw frames.
    self.target = front.reconstruction_target(fcfg, config.data)
    self.logvar = nn.Dense(config.model.get("bottleneck", 0), name="logvar")

  @staticmethod
  def validate(config, fail):
    obj = config.objective
    if obj.get("variant") not in VARIANTS:
      fail("objective.variant", f"use one of {VARIANTS}")
    if obj.get("reconstruction") and obj.reconstruction not in \
        RECONSTRUCTIONS:
      fail("objective.reconstruction", f"use one of {RECONSTRUCTIONS} (or "
           "'' for bce on piano rolls, mse otherwise)")
    if config.model.get("bottleneck", 0) <= 0:
      fail("model.bottleneck", "the autoencoder's code width: must be "
           "positive")
    front, fcfg = models.frontend_of(config.model)
    if front.reconstruction(fcfg) is None:
      fail("model.frontend", "the autoencoder reconstructs a frontend's "
           "frames: a mel (log-mel or MFCC) or piano-roll frontend, not "
           "patches, or a waveform's log-mel")
    if obj.get("contraction", 0.1) < 0:
      fail("objective.contraction", "the CAE's penalty weight: must be >= 0")
    if obj.get("beta", 1.0) < 0 or obj.get("kl_warmup_steps", 0) < 0:
      fail("objective.beta", "beta and kl_warmup_steps must be >= 0")

  def _decoder(self, frames, bins):
    return Decoder(frames, bins, self.channels)

  def encode(self, params, state, x, **kwargs):
    """`((frames, code, features), new_state, x_BxFxK)`: the encoder's
    pass and the frames the decoder reconstructs."""
    out, new_state = models.apply(self.encoder, params, state, x, **kwargs)
    target = out.raw if self.target is None else self.target.apply({}, x)
    return (out.frames, out.pooled, out.features), new_state, target

  def init(self, rng, batch):
    k_enc, k_dec, k_var = jax.random.split(rng, 3)
    x = batch["inputs"][:2]
    # models.init's two steps, with the frontend's frames (which size the
    # decoder) from the same pass.
    params, state = models.split(self.encoder.init(k_enc, x, method="embed"))
    (frames, z, _), _, feats = self.encode(params, state, x)
    dec = self._decoder(*feats.shape[1:]).init(k_dec, z)
    out = {"params": {"encoder": params, "decoder": dec["params"]},
           "model_state": {"encoder": state,
                           "decoder": {"batch_stats": dec["batch_stats"]},
                           "step": jnp.zeros((), jnp.int32)}}
    if self.variant == "vae":
      out["params"]["logvar"] = self.logvar.init(
          k_var, jnp.mean(frames, axis=1))["params"]
    return out

  def loss_fn(self, params, model_state, batch, rng):
    k_drop, k_aug, k_eps = jax.random.split(rng, 3)
    (frames, code, h), enc_state, x_BxFxK = self.encode(
        params["encoder"], model_state["encoder"], batch["inputs"],
        train=True, rngs={"dropout": k_drop, "augment": k_aug})
    metrics = {}
    z = code
    if self.variant == "vae":
      logvar = self.logvar.apply({"params": params["logvar"]},
                                 jnp.mean(frames, axis=1))
      z = code + jnp.exp(0.5 * logvar) * jax.random.normal(k_eps, code.shape)
      kl = jnp.mean(gaussian_kl(code, logvar))
    out, dec_updates = self._decoder(*x_BxFxK.shape[1:]).apply(
        {"params": params["decoder"], **model_state["decoder"]}, z,
        train=True, mutable=["batch_stats"])
    rec = jnp.mean(reconstruction_loss(x_BxFxK, out, self.reconstruction))
    loss = rec
    metrics["reconstruction"] = rec
    if self.variant == "cae":
      penalty = models.jacobian_sq_norm(self.encoder, params["encoder"],
                                        model_state["encoder"], h)
      loss = rec + self.contraction * penalty
      metrics["jacobian_sq_norm"] = penalty
    step = model_state["step"]
    if self.variant == "vae":
      weight = (jnp.minimum(1.0, step / self.warmup) if self.warmup
                else 1.0)
      loss = rec + self.beta * weight * kl
      metrics.update(kl=kl, kl_weight=jnp.asarray(weight, jnp.float32))
    return loss, (metrics, {"encoder": enc_state, "decoder": dec_updates,
                            "step": step + 1})

  def embed(self, variables, x):
    """The code (AE, CAE) or the posterior mean (VAE): the bottleneck."""
    return models.pooled(self.encoder, variables, x)
