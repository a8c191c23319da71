"""Config helpers: `arg` strings and start-up validation.

Configs are `get_config(arg)` functions in `ml_collections_configs/`; `arg` is
a comma-separated list like `runlocal,batch=64` (big_vision's convention).
Validation runs once at start-up and names the key that is wrong.
"""

import importlib.util
import json
import os

import jax
import ml_collections

from jaxmusic import models
from jaxmusic import objectives
from jaxmusic.audio import augment

CONFIG_DIR = os.path.join(os.path.dirname(__file__), "..",
                          "ml_collections_configs")
OPTIMIZERS = ("adam", "adamw", "lars", "sgd")
SCHEDULES = ("constant", "cosine")


def parse_arg(arg: str | None, **defaults) -> ml_collections.ConfigDict:
  """`"runlocal,batch=64"` -> {runlocal: True, batch: 64, ...defaults}."""
  out = dict(defaults)
  for item in filter(None, (arg or "").split(",")):
    key, _, value = item.partition("=")
    if key not in defaults:
      raise ValueError(f"config arg {key!r}: unknown; known: "
                       f"{sorted(defaults)}")
    if not value:
      out[key] = True
    else:
      out[key] = type(defaults[key])(value) if not isinstance(
          defaults[key], bool) else value.lower() in ("1", "true", "yes")
  return ml_collections.ConfigDict(out)


def load_config(name: str, arg: str | None = None):
  """`ml_collections_configs/NAME.py`'s `get_config(arg)`, outside the CLI."""
  spec = importlib.util.spec_from_file_location(
      f"jaxmusic_config_{name}", os.path.join(CONFIG_DIR, f"{name}.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the first inconsistent key."""
  def fail(key, why):
    raise ValueError(f"config.{key}={config_value(config, key)!r}: {why}")

  n_dev, n_proc = jax.device_count(), jax.process_count()
  if config.batch_size <= 0 or config.batch_size % n_dev:
    fail("batch_size", f"must be a positive multiple of the {n_dev} devices")
  if config.batch_size % n_proc:
    fail("batch_size", f"must divide over {n_proc} processes")
  if config.total_steps <= 0:
    fail("total_steps", "must be positive")
  objective_cls = objectives.OBJECTIVES.get(config.objective.name)
  if objective_cls is None:
    fail("objective.name", f"unknown; known: {sorted(objectives.OBJECTIVES)}")
  if config.model.name not in models.ENCODERS:
    fail("model.name", f"unknown; known: {sorted(models.ENCODERS)}")
  need = models.input_length(config.model)
  if need is not None and config.data.crop_samples != need:
    fail("data.crop_samples", f"{config.model.name} with "
         f"{len(config.model.channels)} conv stages takes exactly {need} "
         "samples")
  if config.objective.get("temperature", 1.0) <= 0:
    fail("objective.temperature", "must be positive")
  opt = config.optimizer
  if opt.name not in OPTIMIZERS:
    fail("optimizer.name", f"unknown; known: {OPTIMIZERS}")
  if opt.schedule not in SCHEDULES:
    fail("optimizer.schedule", f"unknown; known: {SCHEDULES}")
  if opt.learning_rate <= 0:
    fail("optimizer.learning_rate", "must be positive")
  if opt.warmup_steps >= config.total_steps and opt.warmup_steps:
    fail("optimizer.warmup_steps", "must be below total_steps")
  if opt.accumulate_steps < 1:
    fail("optimizer.accumulate_steps", "must be >= 1")
  unknown = set(config.augment.chain) - set(augment.TRANSFORMS)
  if unknown:
    fail("augment.chain", f"unknown {sorted(unknown)}; known: "
         f"{sorted(augment.TRANSFORMS)}")
  if config.data.dir and not os.path.exists(
      os.path.join(config.data.dir, "manifest.json")):
    fail("data.dir", "has no manifest.json; run `python -m jaxmusic.prepare`")
  if config.model.get("dtype", "float32") not in ("float32", "bfloat16"):
    fail("model.dtype", "use float32 or bfloat16")


def config_value(config, dotted: str):
  value = config
  for part in dotted.split("."):
    value = value[part]
  return value


RUN_CONFIG = "config.json"


def save_run_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Writes the run's resolved config beside its checkpoints."""
  tmp = os.path.join(workdir, RUN_CONFIG + ".tmp")
  with open(tmp, "w") as f:
    f.write(config.to_json_best_effort(indent=2))
  os.replace(tmp, os.path.join(workdir, RUN_CONFIG))


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a run in `workdir` was trained with (JSON lists become
  tuples, as the config files write them)."""
  path = os.path.join(workdir, RUN_CONFIG)
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path}: missing; is {workdir} a jaxmusic run "
                            "directory (python -m jaxmusic.main --workdir)?")
  with open(path) as f:
    tree = json.load(f)
  tuples = lambda x: (tuple(map(tuples, x)) if isinstance(x, list) else
                      {k: tuples(v) for k, v in x.items()}
                      if isinstance(x, dict) else x)
  return ml_collections.ConfigDict(tuples(tree))
