"""A run's encoder, frozen: rebuilt from the run's config and restored from
its checkpoint without the objective's heads or the optimizer state, so
export and the HEAR API work from any objective's run directory. A
two-tower run's other towers load by name (`tower`).
"""

import dataclasses
import os
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxmusic import checkpoint
from jaxmusic import config as config_lib
from jaxmusic import models
from jaxmusic import storage

# Pooling over the frames of one layer's `BxFxC` output.
# "encoder" is the encoder's own pooled output (its `model.pooling`, over
# the valid frames, then its bottleneck), which the others bypass.
POOLINGS = {
    "encoder": None,
    "mean": lambda x: jnp.mean(x, axis=1),
    "meanstd": lambda x: jnp.concatenate([jnp.mean(x, axis=1),
                                          jnp.std(x, axis=1)], axis=-1),
    "max": lambda x: jnp.max(x, axis=1),
}


@dataclasses.dataclass
class FrozenEncoder:
  config: ml_collections.ConfigDict
  module: nn.Module
  params: Any
  state: dict[str, Any]  # the encoder's mutable collections
  step: int  # -1: random init
  workdir: str | None = None
  tower: str | None = None  # a two-tower run's tower; None for one encoder

  @property
  def feature(self) -> str:
    """The prepared feature the encoder reads (models.input_feature)."""
    return models.input_feature(self.config.model)

  @property
  def sample_rate(self) -> int:
    return self.config.data.sample_rate

  @property
  def crop_samples(self) -> int:
    return self.config.data.crop_samples

  def raw_flat_fn(self):
    """Jitted `x -> BxK`: the frontend's own frames (log-mel, MFCC,
    chroma, roll), flattened: what input PCA reads."""
    @jax.jit
    def run(params, state, x):
      raw = models.apply(self.module, params, state, x)[0].raw
      return raw.reshape(raw.shape[0], -1)

    return lambda x: run(self.params, self.state, x)

  def embed_fn(self, pooling: str = "encoder"):
    """Jitted `x -> (BxD, [BxC_l per layer])`: the encoder's output (its
    own pooling, or its output frames pooled), and every sown layer pooled
    (mean for "encoder"). (For SampleCNN the last layer is the output; a
    pre-LN transformer's output is its last layer after the final
    LayerNorm.)"""
    if pooling not in POOLINGS:
      raise ValueError(f"--pooling={pooling}: use one of {sorted(POOLINGS)}")
    pool = POOLINGS[pooling] or POOLINGS["mean"]

    @jax.jit
    def run(params, state, x):
      out = models.apply(self.module, params, state, x)[0]
      pooled = out.pooled if pooling == "encoder" else pool(out.frames)
      return pooled, [pool(h.astype(jnp.float32)) for h in out.layers]

    return lambda x: run(self.params, self.state, x)


def embed_batched(embed, x_Nx, batch_size: int = 64) -> np.ndarray:
  """`embed` (an `embed_fn`) over `x` in batches of one size, the last
  zero-padded, so that one compiled function serves any N."""
  out = []
  for i in range(0, len(x_Nx), batch_size):
    part = x_Nx[i:i + batch_size]
    pad = np.zeros((batch_size - len(part),) + part.shape[1:], part.dtype)
    out.append(np.asarray(embed(np.concatenate([part, pad]))[0])[:len(part)])
  return np.concatenate(out)


class Windows:
  """The encoder on windows of its input length centred every `hop`
  samples of a sound (zero-padded at the ends), mean-pooled: the HEAR
  timestamp embeddings, and the frames of frame-level probes (`pooling`
  "encoder": the encoder's own output, a two-tower's shared space). One
  compiled function serves every sound."""

  def __init__(self, encoder: FrozenEncoder, batch_size: int = 64,
               pooling: str = "mean"):
    self.encoder = encoder
    self.batch_size = batch_size
    self._embed = encoder.embed_fn(pooling)
    z, _ = self._embed(np.zeros((1, encoder.crop_samples), np.float32))
    self.size = z.shape[-1]

  def embed(self, windows_NxW: np.ndarray) -> np.ndarray:
    return embed_batched(self._embed, windows_NxW, self.batch_size)

  def __call__(self, wav_NxT: np.ndarray, hop: float):
    """(N x F x D embeddings, F window centres in samples), a centre every
    `hop` samples from 0 to the sound's end."""
    length = wav_NxT.shape[1]
    width = self.encoder.crop_samples
    centres = np.round(np.arange(0, length + 1e-9, hop)).astype(int)
    padded = np.pad(wav_NxT.astype(np.float32),
                    ((0, 0), (width // 2, width - width // 2)))
    # Window k starts at centre_k - width // 2 in the sound, which is
    # centre_k in `padded`; one sound's windows at a time bounds memory.
    idx = centres[:, None] + np.arange(width)[None]
    return np.stack([self.embed(p[idx]) for p in padded]), centres


def load(workdir: str, step: int | None = None,
         tower: str | None = None) -> FrozenEncoder:
  """The encoder of the run in `workdir` at `step` (default: the newest
  readable checkpoint; an unreadable newest one is named and skipped); for
  a two-tower run, `tower` (default: the first). Its `config` is the
  tower's view (config.tower_view)."""
  run_config = config_lib.load_run_config(workdir)
  key = models.params_key(run_config.model, tower)
  config = config_lib.tower_view(run_config, tower)
  module = models.make_encoder(config.model)
  params, state, step = checkpoint.restore_run(workdir, step, key)
  return FrozenEncoder(config, module, params,
                       models.state_from_checkpoint(state), step,
                       os.fspath(storage.path(workdir)),
                       tower or (models.tower_names(run_config.model)
                                 or (None,))[0])


def load_spec(spec: str) -> FrozenEncoder:
  """`load` from "RUN" or "RUN:STEP" (checkpoint.parse_spec)."""
  return load(*checkpoint.parse_spec(spec))


def random_init(config: ml_collections.ConfigDict, example_x: np.ndarray,
                seed: int = 0) -> FrozenEncoder:
  """The same architecture at random initialisation: the baseline every
  trained encoder must beat."""
  module = models.make_encoder(config.model)
  params, state = models.split(module.init(
      jax.random.key(seed), jnp.asarray(example_x[:1]), method="embed"))
  return FrozenEncoder(config, module, params, state, -1)
