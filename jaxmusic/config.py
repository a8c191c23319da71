"""Config helpers: `arg` strings and start-up validation.

Configs are `get_config(arg)` functions in `ml_collections_configs/`; `arg` is
a comma-separated list like `runlocal,batch=64` (big_vision's convention).
Validation runs once at start-up and names the key that is wrong.
"""

import difflib
import importlib.util
import json
import os

import jax
import ml_collections

from jaxmusic import models
from jaxmusic import objectives
from jaxmusic import optim
from jaxmusic import storage
from jaxmusic.data import pipeline

CONFIG_DIR = os.path.join(os.path.dirname(__file__), "..",
                          "ml_collections_configs")


def _dotted_keys(tree, prefix=""):
  for key, value in tree.items():
    yield prefix + key
    if hasattr(value, "items"):
      yield from _dotted_keys(value, f"{prefix}{key}.")


def flag_error(argv, error: Exception) -> str:
  """One line for a command line that failed to parse: the config
  argument's own error, or the misspelt `--config.` key with the nearest
  existing one."""
  spec = next((a.split("=", 1)[1] if "=" in a else b
               for a, b in zip(argv, list(argv[1:]) + [None])
               if a.split("=", 1)[0] == "--config"), None)
  if spec:
    path, arg = spec.split(":", 1) if ":" in spec else (spec, None)
    try:
      config = load_config_file(path, arg or None)
    except Exception as e:  # pylint: disable=broad-except
      # The config's own error (an unknown argument or value) is the line.
      return f"--config={spec}: {e}"
    keys = list(_dotted_keys(config.to_dict()))
    for a in argv:
      if a.startswith("--config."):
        key = a[len("--config."):].split("=", 1)[0]
        if key not in keys:
          near = difflib.get_close_matches(key, keys, n=1)
          return (f"--config.{key}: no such key"
                  + (f"; did you mean --config.{near[0]}?" if near else ""))
  cause = error
  while cause.__cause__ or cause.__context__:
    cause = cause.__cause__ or cause.__context__
  return str(cause).strip().splitlines()[-1] if str(cause).strip() else \
      str(error).strip().splitlines()[-1]


def load_config_file(path: str, arg: str | None = None):
  """`get_config(arg)` of the config file at `path`."""
  spec = importlib.util.spec_from_file_location(
      f"jaxmusic_config_{os.path.basename(path)[:-3]}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def load_config(name: str, arg: str | None = None):
  """`ml_collections_configs/NAME.py`'s `get_config(arg)`, outside the CLI."""
  return load_config_file(os.path.join(CONFIG_DIR, f"{name}.py"), arg)


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the first inconsistent key. The loop's own
  keys are checked here; the objective, the encoder (frontend and
  backbone) and the optimizer each check theirs through their registries."""

  def fail(key, why):
    try:
      value = repr(config_value(config, key))
    except (KeyError, AttributeError):
      value = "(missing)"
    raise ValueError(f"config.{key}={value}: {why}")

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
  towers = models.tower_names(config.model)
  if towers and len(config.data.features) < len(towers):
    fail("data.features", f"lists one feature per tower {list(towers)}, in "
         "that order")
  for tower in towers or (None,):
    view = tower_view(config, tower)

    def tower_fail(key, why, tower=tower):
      if tower and key.startswith("model."):
        key = f"model.{tower}." + key[len("model."):]
      fail(key, why)

    models.validate(view.model, view.data, tower_fail)
  objective_cls.validate(config, fail)
  optim.validate(config, fail)
  if config.data.dir and not (
      storage.path(config.data.dir) / "manifest.json").exists():
    fail("data.dir", "has no manifest.json; run `python -m jaxmusic.prepare`")


def tower_view(config: ml_collections.ConfigDict, tower: str | None):
  """`config` as one encoder's config: `model` is `tower`'s sub-config and
  the tower's feature (towers and features pair up in order) comes first
  in `data.features`. A one-encoder config (tower None) is returned as
  is."""
  names = models.tower_names(config.model)
  if not names:
    models.encoder_config(config.model, tower)  # raises for a named tower
    return config
  tower = tower or names[0]
  model = models.encoder_config(config.model, tower)
  features = tuple(config.data.features)
  mine = features[names.index(tower)]
  view = ml_collections.ConfigDict(config.to_dict())
  view.model = ml_collections.ConfigDict(model.to_dict())
  view.data.features = (mine,) + tuple(f for f in features if f != mine)
  if tower != names[0]:
    # A later tower reads its feature as the pair of the first tower's
    # crop (`Sampler.frames_at`), so a SampleCNN's 3**n samples can pair
    # with a piano roll.
    view.data.crop_samples = pipeline.pair_samples(
        mine, config.data.crop_samples,
        config.data.get("hop_length", 512))
  return view


def config_value(config, dotted: str):
  value = config
  for part in dotted.split("."):
    value = value[part]
  return value


RUN_CONFIG = "config.json"


def save_run_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Writes the run's resolved config beside its checkpoints (a bucket
  object is written whole, a local file through an atomic rename)."""
  path = storage.path(workdir) / RUN_CONFIG
  text = config.to_json_best_effort(indent=2)
  if storage.is_remote(workdir):
    path.write_text(text)
    return
  tmp = path.parent / (RUN_CONFIG + ".tmp")
  tmp.write_text(text)
  tmp.replace(path)


# What a run may change when it resumes: its length, its logging and
# checkpoint cadence, where its data is read from, the mesh it runs on and
# the attention kernel (`impl`, the same maths). Anything else would train
# the checkpoints under a config other than the one saved beside them.
RESUMABLE = ("total_steps", "log_every", "checkpoint.", "monitor.", "mesh",
             "sharding_rules", "data.dir", "data.cache_dir", "data.workers",
             "data.synthetic.workers")


def check_resume(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Raises ValueError naming the keys where `config` differs from the
  run whose checkpoints are already in `workdir`, before anything there
  is overwritten; a new workdir, or one with no checkpoint, passes."""
  path = storage.path(workdir) / RUN_CONFIG
  ckpts = storage.path(workdir) / "checkpoints"
  if not (path.exists() and ckpts.exists() and any(ckpts.iterdir())):
    return
  flat = lambda tree, pre="": [
      kv for k, v in tree.items() for kv in (
          flat(v, f"{pre}{k}.") if isinstance(v, dict) else [(pre + k, v)])]
  old = dict(flat(json.loads(path.read_text())))
  new = dict(flat(json.loads(config.to_json_best_effort())))
  # Keys only one side has are a jaxmusic version's additions, not a
  # change the user made.
  changed = [k for k in sorted(old.keys() & new.keys())
             if old[k] != new[k] and k.rsplit(".", 1)[-1] != "impl"
             and not any(k == r or (r.endswith(".") and k.startswith(r))
                         for r in RESUMABLE)]
  if changed:
    diffs = ", ".join(f"{k}: {old[k]!r} -> {new[k]!r}"
                      for k in changed[:3])
    more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
    raise ValueError(f"{workdir}: holds checkpoints trained under another "
                     f"config ({diffs}{more}); resume with its config.json "
                     "or use a new --workdir")


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a run in `workdir` was trained with (JSON lists become
  tuples, as the config files write them)."""
  path = storage.path(workdir) / RUN_CONFIG
  if not path.exists():
    raise FileNotFoundError(f"{path}: missing; is {workdir} a jaxmusic run "
                            "directory (python -m jaxmusic.main --workdir)?")
  tree = json.loads(path.read_text())
  tuples = lambda x: (tuple(map(tuples, x)) if isinstance(x, list) else
                      {k: tuples(v) for k, v in x.items()}
                      if isinstance(x, dict) else x)
  return ml_collections.ConfigDict(tuples(tree))
