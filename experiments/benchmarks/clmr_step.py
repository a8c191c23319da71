"""The jaxmusic CLMR train step (SampleCNN, NT-Xent, Adam), built the way
`train.py` builds it, for the benchmarks to time."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxmusic import objectives
from jaxmusic import train
from jaxmusic.config import load_config


def clmr_config(augment: bool, dtype: str = "float32"):
  config = load_config("clmr")
  config.model.dtype = dtype
  if not augment:
    config.augment.probs = {k: 0.0 for k in config.augment.probs}
  return config


def make_step(batch: int, augment: bool, dtype: str = "float32"):
  """Returns (run, examples) where run() does one jitted step and blocks."""
  config = clmr_config(augment, dtype)
  objective = objectives.make_objective(config)
  tx, schedule = train.make_optimizer(config.optimizer, config.total_steps)
  views = jnp.asarray(np.random.default_rng(0).standard_normal(
      (batch, 2, config.data.crop_samples)).astype(np.float32) * 0.1)
  variables = objective.init(jax.random.key(0), {"views": views})
  state = {"params": variables["params"],
           "model_state": variables["batch_stats"],
           "opt": tx.init(variables["params"]),
           "step": jnp.zeros((), jnp.int32)}
  step = jax.jit(train.make_train_step(objective, tx, schedule, 0),
                 donate_argnums=0)
  holder = [state]

  def run():
    holder[0], metrics = step(holder[0], {"views": views})
    metrics["loss"].block_until_ready()

  return run
