"""Adversarially learned inference (Dumoulin et al. 2017; BiGAN, Donahue
et al. 2017), as the composer-embedding study ran it on 32 x 32 mel crops.

Three networks play. The encoder E (any encoder of the contract; by
default `alicnn`, the paper's Table 3 G_z(x)) maps a crop x to
q(z | x) = N(mu, sigma^2): mu is the encoder's `model.bottleneck`, log
sigma a linear map beside it, as the paper's last 1x1 conv gives both.
The generator G (Table 3's G_x(z), transposed convs mirroring E, sigmoid
output) maps z ~ N(0, I) to frames. The discriminator D(x, z) (Table 3's
x-path and z-path joined by 1x1 convs; BatchNorm after its first x-conv,
leaky ReLU and dropout 0.2 everywhere, as the study's SVHN-style
adaptation) tells the pairs (x, z^ ~ q(z | x)) from (x~ = G(z), z):

  D loss   = E[softplus(-D(x, z^))] + E[softplus(D(x~, z))]
  E,G loss = E[softplus(D(x, z^))] + E[softplus(-D(x~, z))]

the non-saturating game of the paper's code (each player's logistic loss
with the labels swapped for E and G). They are two parameter groups
(optim.Group): "discriminator" owns D, "generator" owns E, its log-sigma
map and G, each with its own Adam (`objective.groups.<name>` overrides
`config.optimizer`; `updates` steps of a group per batch); the train step
updates D, then E and G against the updated D.

x is the encoder's frontend frames (log-mel, MFCC or chroma), each crop
min-max scaled to [0, 1], G's range. Crops and outputs smaller than 32 on
an axis are zero-padded to 32 where a conv stack reads them (12 chroma
bins); G's 32 x 32 output, or the grid it grows for a longer crop, is cut
to the crop's frames x bins. The embedding is the posterior mean mu.

Once the run ends `after_training` writes beside it (`figures/`): real
against generated crops, the paper's latent interpolation from the origin
to the all-ones vector, and reconstructions x -> E -> G.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxmusic import models
from jaxmusic import optim
from jaxmusic.models import alicnn

GROUPS = ("discriminator", "generator")
GROUP_KEYS = ("learning_rate", "b1", "b2", "updates")
# Table 3's G_x(z): (kernel, stride, channels) of the transposed convs.
DECONVS = ((4, 1, 256), (4, 2, 128), (4, 1, 64), (4, 2, 32), (5, 1, 32))
# D(x): Table 3's x-path; D(z) and D(x, z): its 1x1 widths.
D_X = alicnn.CONVS[:5]
D_Z = (512, 512)
D_XZ = (1024, 1024)


def grown(side: int) -> int:
  """The input grid side G starts from so that its transposed stack
  (VALID: (n - 1) * stride + kernel) covers `side`: 1 for up to 32."""
  n = 1
  while _out(n) < side:
    n += 1
  return n


def _out(n: int) -> int:
  for kernel, stride, _ in DECONVS:
    n = (n - 1) * stride + kernel
  return n


def unit_range(x_BxFxK):
  """Each crop min-max scaled to [0, 1] (G's sigmoid range)."""
  lo = jnp.min(x_BxFxK, axis=(1, 2), keepdims=True)
  hi = jnp.max(x_BxFxK, axis=(1, 2), keepdims=True)
  return (x_BxFxK - lo) / jnp.maximum(hi - lo, 1e-6)


class Generator(nn.Module):
  """G_x(z): `BxD` -> `BxFxK` in [0, 1]. The 1 x 1 latent (Table 3), or
  for a crop longer than 32 a dense map to the grid `grown` gives, through
  the transposed stack, a 1x1 conv of 32 and a 1x1 conv to one channel."""
  frames: int
  bins: int
  leak: float = 0.01

  @nn.compact
  def __call__(self, z_BxD, train: bool = False):
    nf, nk = grown(self.frames), grown(self.bins)
    if nf * nk == 1:
      x = z_BxD[:, None, None, :]
    else:
      x = nn.Dense(nf * nk * z_BxD.shape[-1], name="grid")(z_BxD)
      x = x.reshape(-1, nf, nk, z_BxD.shape[-1])
    for kernel, stride, ch in DECONVS:
      x = nn.ConvTranspose(ch, (kernel, kernel), strides=(stride, stride),
                           padding="VALID", use_bias=False)(x)
      x = nn.BatchNorm(use_running_average=not train, momentum=0.95)(x)
      x = nn.leaky_relu(x, self.leak)
    x = nn.Conv(32, (1, 1), use_bias=False)(x)
    x = nn.leaky_relu(nn.BatchNorm(use_running_average=not train,
                                   momentum=0.95)(x), self.leak)
    x = nn.Conv(1, (1, 1), name="out")(x)[..., 0]
    return nn.sigmoid(x[:, :self.frames, :self.bins])


class Discriminator(nn.Module):
  """D(x, z): `(BxFxK, BxD)` -> `B` logits. The x-path's grid left by a
  crop longer than 32 is averaged to one position before the join."""
  leak: float = 0.01
  dropout: float = 0.2

  @nn.compact
  def __call__(self, x_BxFxK, z_BxD, train: bool = False):
    act = lambda h: nn.leaky_relu(h, self.leak)
    drop = lambda h: nn.Dropout(self.dropout, deterministic=not train)(h)
    h = alicnn.pad_to(x_BxFxK)[..., None]
    for i, (kernel, stride, ch) in enumerate(D_X):
      h = nn.Conv(ch, (kernel, kernel), strides=(stride, stride),
                  padding="VALID", use_bias=i == 0)(drop(h))
      if i:
        h = nn.BatchNorm(use_running_average=not train, momentum=0.95)(h)
      h = act(h)
    h = jnp.mean(h, axis=(1, 2))
    g = z_BxD
    for width in D_Z:
      g = act(nn.Dense(width)(drop(g)))
    j = jnp.concatenate([h, g], axis=-1)
    for width in D_XZ:
      j = act(nn.Dense(width)(drop(j)))
    return nn.Dense(1)(drop(j))[:, 0]


def group_of(obj, name: str, keys, loss_fn) -> optim.Group:
  """Group `name` with its keys from `objective.groups.<name>`: `updates`,
  and the optimizer keys it replaces."""
  given = dict(obj.get("groups", {}).get(name, {}))
  updates = given.pop("updates", 1)
  return optim.Group(name, keys, loss_fn, given, updates)


class ALI:
  """The encoder, its log-sigma map, the generator and the discriminator,
  as two parameter groups."""

  data_mode = "labelled"

  def __init__(self, config, manifest=None):
    del manifest
    obj = config.objective
    self.encoder = models.make_encoder(config.model)
    self.latent = config.model.bottleneck
    self.leak = obj.get("leak", 0.01)
    self.dropout = obj.get("dropout", 0.2)
    self.logsigma = nn.Dense(self.latent, name="logsigma")
    self.discriminator = Discriminator(self.leak, self.dropout)
    self.config = config
    self.groups = (
        group_of(obj, "discriminator", ("discriminator",), self.d_loss),
        group_of(obj, "generator", ("encoder", "logsigma", "generator"),
                 self.g_loss))

  @staticmethod
  def validate(config, fail):
    obj = config.objective
    if config.model.get("bottleneck", 0) <= 0:
      fail("model.bottleneck", "ALI's latent width: must be positive")
    front, fcfg = models.frontend_of(config.model)
    if front.reconstruction(fcfg) is None:
      fail("model.frontend", "ALI generates a frontend's frames: a mel "
           "(log-mel or MFCC), chroma or piano-roll frontend")
    groups = dict(obj.get("groups", {}))
    for name, over in groups.items():
      if name not in GROUPS:
        fail(f"objective.groups.{name}", f"unknown group; use {GROUPS}")
      for key in dict(over):
        if key not in GROUP_KEYS:
          fail(f"objective.groups.{name}.{key}", f"use one of {GROUP_KEYS}")
    if not 0 <= obj.get("dropout", 0.2) < 1:
      fail("objective.dropout", "must be in [0, 1)")
    optim.validate_groups(config, [group_of(obj, n, (n,), None)
                                   for n in GROUPS], fail)

  def _generator(self, frames, bins):
    return Generator(frames, bins, self.leak)

  def encode(self, params, state, x, **kwargs):
    """`(mu, log_sigma, frames_BxFxK in [0, 1], new_state)`."""
    out, new_state = models.apply(self.encoder, params["encoder"],
                                  state["encoder"], x, **kwargs)
    log_sigma = self.logsigma.apply({"params": params["logsigma"]},
                                    jnp.mean(out.frames, axis=1))
    return out.pooled, log_sigma, unit_range(out.raw), new_state

  def init(self, rng, batch):
    k_enc, k_sig, k_gen, k_dis = jax.random.split(rng, 4)
    x = batch["inputs"][:2]
    params, state, out = models.init(self.encoder, k_enc, x)
    sig = self.logsigma.init(k_sig, jnp.mean(out.frames, axis=1))
    gen = self._generator(*out.raw.shape[1:]).init(k_gen, out.pooled)
    dis = self.discriminator.init(k_dis, unit_range(out.raw), out.pooled)
    return {"params": {"encoder": params, "logsigma": sig["params"],
                       "generator": gen["params"],
                       "discriminator": dis["params"]},
            "model_state": {"encoder": state,
                            "generator": {"batch_stats": gen["batch_stats"]},
                            "discriminator": {
                                "batch_stats": dis["batch_stats"]}}}

  def _play(self, params, model_state, batch, rng):
    """Both pairs' logits, the new model state of every network, and
    D's accuracy on each."""
    k_drop, k_aug, k_eps, k_z, k_d = jax.random.split(rng, 5)
    mu, log_sigma, x, enc_state = self.encode(
        params, model_state, batch["inputs"], train=True,
        rngs={"dropout": k_drop, "augment": k_aug})
    z_hat = mu + jnp.exp(log_sigma) * jax.random.normal(k_eps, mu.shape)
    z = jax.random.normal(k_z, mu.shape)
    x_tilde, gen_updates = self._generator(*x.shape[1:]).apply(
        {"params": params["generator"], **model_state["generator"]}, z,
        train=True, mutable=["batch_stats"])
    # Real and generated pairs in one batch, as the paper's code runs D
    # (its BatchNorm sees both).
    logits, dis_updates = self.discriminator.apply(
        {"params": params["discriminator"], **model_state["discriminator"]},
        jnp.concatenate([x, x_tilde]), jnp.concatenate([z_hat, z]),
        train=True, mutable=["batch_stats"], rngs={"dropout": k_d})
    real, fake = jnp.split(logits, 2)
    metrics = {"d_accuracy_real": jnp.mean(real > 0),
               "d_accuracy_fake": jnp.mean(fake < 0),
               "sigma": jnp.mean(jnp.exp(log_sigma))}
    return real, fake, metrics, {"encoder": enc_state,
                                 "generator": dict(gen_updates),
                                 "discriminator": dict(dis_updates)}

  def d_loss(self, params, model_state, batch, rng):
    real, fake, metrics, new = self._play(params, model_state, batch, rng)
    loss = jnp.mean(jax.nn.softplus(-real) + jax.nn.softplus(fake))
    # Each network's running statistics move once a step: D's here.
    return loss, (metrics, {**model_state,
                            "discriminator": new["discriminator"]})

  def g_loss(self, params, model_state, batch, rng):
    real, fake, metrics, new = self._play(params, model_state, batch, rng)
    loss = jnp.mean(jax.nn.softplus(real) + jax.nn.softplus(-fake))
    return loss, (metrics, {**model_state, "encoder": new["encoder"],
                            "generator": new["generator"]})

  def embed(self, variables, x):
    """The posterior mean mu: the bottleneck."""
    return models.pooled(self.encoder, variables, x)

  # ----- Figures ------------------------------------------------------------

  def generate(self, variables, z_BxD, frames: int, bins: int):
    """G(z) in evaluation mode."""
    return self._generator(frames, bins).apply(
        {"params": variables["params"]["generator"],
         **variables["model_state"]["generator"]}, z_BxD)

  def reconstruct(self, variables, x):
    """`(x in [0, 1], G(mu(x)))`: crops through E and back through G."""
    mu, _, frames, _ = self.encode(variables["params"],
                                   variables["model_state"], x)
    return frames, self.generate(variables, mu, *frames.shape[1:])

  def after_training(self, variables, batch, workdir) -> None:
    """Writes `figures/ali_samples.png`, `ali_interpolation.png` and
    `ali_reconstructions.png` beside the run, from its final variables and
    a batch of its crops."""
    real, rec = jax.jit(self.reconstruct)(variables, batch["inputs"])
    frames, bins = real.shape[1:]
    fake = self.generate(variables, jax.random.normal(
        jax.random.key(self.config.seed), (len(real), self.latent)),
        frames, bins)
    interp = self.generate(variables, jnp.asarray(
        interpolation(self.latent), jnp.float32), frames, bins)
    out = workdir / "figures"  # an epath: local or a bucket
    out.mkdir(parents=True, exist_ok=True)
    write_grid(out / "ali_samples.png", [("real", real), ("generated", fake)])
    write_grid(out / "ali_interpolation.png",
               [("G(t * 1), t = 0 .. 1", interp)])
    write_grid(out / "ali_reconstructions.png",
               [("x", real), ("G(E(x))", rec)])


def write_grid(path, rows) -> None:
  """One row of crops (frames across, bins up) a `(title, BxFxK)`, as a
  PNG at `path` (a local path or an epath)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  cols = max(len(np.asarray(r)) for _, r in rows)
  fig, axes = plt.subplots(len(rows), cols, squeeze=False,
                           figsize=(1.3 * cols, 1.5 * len(rows) + 0.3))
  for (title, crops), line in zip(rows, axes):
    crops = np.asarray(crops)
    for i, ax in enumerate(line):
      ax.set_xticks([])
      ax.set_yticks([])
      if i < len(crops):
        ax.imshow(crops[i].T, origin="lower", aspect="auto", vmin=0, vmax=1,
                  cmap="magma")
    line[0].set_ylabel(title, fontsize=7)
  fig.tight_layout()
  with open(path, "wb") if isinstance(path, str) else path.open("wb") as f:
    fig.savefig(f, format="png", dpi=90)
  plt.close(fig)


def interpolation(latent: int, n: int = 8) -> np.ndarray:
  """The study's line from the origin to the all-ones vector."""
  return np.linspace(0.0, 1.0, n)[:, None] * np.ones((1, latent))

