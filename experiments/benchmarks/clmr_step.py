"""The jaxmusic CLMR train step (SampleCNN, NT-Xent, Adam), built the way
`train.py` builds it, for the benchmarks to time."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxmusic import objectives
from jaxmusic import optim
from jaxmusic import train
from jaxmusic.config import load_config


def clmr_config(augment: bool, dtype: str = "float32", impl: str = "auto"):
  config = load_config("clmr")
  config.model.dtype = dtype
  config.model.impl = impl
  if not augment:
    config.augment.probs = {k: 0.0 for k in config.augment.probs}
  return config


def make_step(batch: int, augment: bool, dtype: str = "float32",
              impl: str = "auto"):
  """Returns run(), which does one jitted step and blocks."""
  config = clmr_config(augment, dtype, impl)
  objective = objectives.make_objective(config)
  tx, lr_at_step = optim.make_optimizer(config.optimizer, config.total_steps)
  views = jnp.asarray(np.random.default_rng(0).standard_normal(
      (batch, 2, config.data.crop_samples)).astype(np.float32) * 0.1)
  variables = objective.init(jax.random.key(0), {"views": views})
  state = {"params": variables["params"],
           "model_state": variables["model_state"],
           "opt": tx.init(variables["params"]),
           "step": jnp.zeros((), jnp.int32)}
  step = jax.jit(train.make_train_step(objective, tx, lr_at_step, 0),
                 donate_argnums=0)
  holder = [state]

  def run():
    holder[0], metrics = step(holder[0], {"views": views})
    metrics["loss"].block_until_ready()

  return run
