"""A run's encoder, frozen: rebuilt from the run's config and restored from
its checkpoint without the objective's heads or the optimizer state, so
export and the HEAR API work from any objective's run directory. A
two-tower run's other towers load by name (`tower`).
"""

import dataclasses
import logging
import os
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

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
      (frames, pooled), _, layers = models.apply(
          self.module, params, state, x, intermediates=True)
      out = pooled if pooling == "encoder" else pool(frames)
      return out, [pool(h.astype(jnp.float32)) for h in layers]

    return lambda x: run(self.params, self.state, x)


def latest_steps(workdir: str) -> list[int]:
  directory = storage.path(workdir) / "checkpoints"
  if not directory.is_dir():
    return []
  return sorted((int(d.name) for d in directory.iterdir()
                 if d.name.isdigit() and (d / "state").exists()),
                reverse=True)


def _restore_encoder(path: str, key: str = "encoder"):
  """Reads only params[key] and model_state[key] from a checkpoint's state
  item (Orbax partial restore), onto one device; `(None, {})` where the
  checkpoint has no params[key] (a converted encoder has no heads)."""
  checkpointer = ocp.PyTreeCheckpointer()
  absl_logger = logging.getLogger("absl")
  level = absl_logger.level
  # The state item has no metadata file of its own (the step has); Orbax
  # warns about it on every read.
  absl_logger.setLevel(logging.ERROR)
  try:
    tree = checkpointer.metadata(path).item_metadata.tree
  finally:
    absl_logger.setLevel(level)
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  if key not in tree["params"]:
    return None, {}
  wanted = {"params": {key: tree["params"][key]}}
  # A stateless encoder (the transformer) may leave no model_state node.
  state_tree = (tree.get("model_state") or {}).get(key) or {}
  if state_tree:
    wanted["model_state"] = {key: state_tree}
  item = jax.tree.map(
      lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
      wanted)
  restored = checkpointer.restore(path, args=ocp.args.PyTreeRestore(
      item=item, restore_args=ocp.checkpoint_utils.construct_restore_args(
          item), partial_restore=True))
  return (restored["params"][key], models.state_from_checkpoint(
      restored.get("model_state", {}).get(key)))


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
  steps = latest_steps(workdir)
  if step is not None:
    if step not in steps:
      raise FileNotFoundError(
          f"{os.path.join(workdir, 'checkpoints', str(step))}: no such "
          f"checkpoint; have steps {sorted(steps) or 'none'}")
    steps = [step]
  if not steps:
    raise FileNotFoundError(f"{os.path.join(workdir, 'checkpoints')}: no "
                            "checkpoint to load")
  directory = storage.path(workdir) / "checkpoints"
  (params, state), step = checkpoint.newest_readable(
      os.fspath(directory), steps,
      lambda s: _restore_encoder(directory / str(s) / "state", key))
  return FrozenEncoder(config, module, params, state, step,
                       os.fspath(storage.path(workdir)),
                       tower or (models.tower_names(run_config.model)
                                 or (None,))[0])


def load_heads(workdir: str, step: int):
  """The objective's heads (`params["heads"]`) of the run's checkpoint at
  `step`, or None where it has none."""
  path = storage.path(workdir) / "checkpoints" / str(step) / "state"
  return _restore_encoder(path, "heads")[0]


def load_spec(spec: str) -> FrozenEncoder:
  """`load` from "RUN" or "RUN:STEP" (a suffix that is not a step number
  stays part of the path, so `gs://...` run directories load too)."""
  workdir, sep, step = spec.rpartition(":")
  if not (sep and step.isdigit()):
    return load(spec)
  return load(workdir, int(step))


def random_init(config: ml_collections.ConfigDict, example_x: np.ndarray,
                seed: int = 0) -> FrozenEncoder:
  """The same architecture at random initialisation: the baseline every
  trained encoder must beat."""
  module = models.make_encoder(config.model)
  params, state = models.split(module.init(
      jax.random.key(seed), jnp.asarray(example_x[:1]), method="embed"))
  return FrozenEncoder(config, module, params, state, -1)
