"""Config helpers: `arg` strings and start-up validation.

Configs are `get_config(arg)` functions in `ml_collections_configs/`; `arg` is
a comma-separated list like `runlocal,batch=64` (big_vision's convention).
Validation runs once at start-up and names the key that is wrong.
"""

import importlib.util
import json
import os

import ml_collections

from jaxmusic import storage

CONFIG_DIR = os.path.join(os.path.dirname(__file__), "..",
                          "ml_collections_configs")


CLMR_CHANNELS = (128, 128, 128, 256, 256, 256, 256, 256, 256, 512, 512)
# CLMR's SampleCNN crop: 3**10 samples, 2.68 s at 22,050 Hz.
CLMR_CROP_SAMPLES = 59049
# The piano-roll inputs, each a frontend reading the prepared feature of
# its name (features.MIDI_FEATURES; not imported: configs load light).
ROLL_INPUTS = ("pianoroll", "multitrack")


def model_config(backbone: str, frontend: str, size: str, runlocal: bool,
                 spec_augment: bool = True):
  """`config.model` for a backbone on a frontend (shared by the configs of
  every objective); `spec_augment` adds SpecAugment to a mel frontend."""
  if backbone == "samplecnn":
    return dict(name="samplecnn", frontend=dict(name="waveform"),
                channels=(16, 16, 32, 32, 32, 32, 64, 64, 64, 128)
                if runlocal else CLMR_CHANNELS,
                dtype="float32", impl="auto", pooling="mean")
  if backbone == "cnn":
    return dict(name="cnn", frontend=dict(name=frontend, embed="none"),
                channels=(16, 32, 64, 64) if runlocal
                else (64, 128, 128, 256, 256),
                dtype="float32", pooling="mean")
  if backbone == "shortchunk":  # Won et al. 2020: a global max over time
    return dict(name="shortchunk", frontend=dict(name=frontend, embed="none"),
                channels=(16, 16, 32, 32, 32, 32, 64) if runlocal
                else (128, 128, 256, 256, 256, 256, 512),
                dtype="float32", pooling="max")
  if backbone == "crnn":  # Choi et al. 2017
    return dict(name="crnn", frontend=dict(name=frontend, embed="none"),
                channels=(16, 32, 32, 32) if runlocal else (64, 128, 128, 128),
                gru=(32, 32), dtype="float32", pooling="mean")
  front = dict(name=frontend)
  width = {"tiny": 128}.get(size, 512)
  if frontend == "mel":
    front.update(embed="frame", dim=width)
    if spec_augment:
      front.update(spec_augment=dict(n_freq_masks=2, max_freq_width=16,
                                     n_time_masks=2, max_time_width=10))
  elif frontend in ROLL_INPUTS:
    front.update(embed="linear", dim=width)
  elif frontend == "text":
    # Bytes are no time grid: learned positions, one per byte.
    front.update(embed="bytes", dim=width)
    return dict(name="transformer", frontend=front, size=size,
                positions="learned", max_frames=256, dropout=0.1,
                attention_dropout=0.1, dtype="float32", pooling="mean")
  else:
    # The conv extractor dominates a small model's step (its cost grows
    # with channels squared at 1/2..1/256 of the sample rate).
    front.update(embed="conv", channels=32 if runlocal else 512)
  return dict(name="transformer", frontend=front, size=size,
              positions="conv", conv_pos_kernel=16 if size == "tiny" else 128,
              conv_pos_groups=16, norm_first=True, dropout=0.1,
              attention_dropout=0.1, attention_relax=0.0, dtype="float32",
              impl="auto", pooling="mean")


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
  """Raises ValueError naming the first inconsistent key. The loop's own
  keys are checked here; the objective, the encoder (frontend and
  backbone) and the optimizer each check theirs through their registries."""
  # Imported here so that config files can import this module without jax.
  # pylint: disable=g-import-not-at-top
  import jax
  from jaxmusic import models
  from jaxmusic import objectives
  from jaxmusic import optim
  # pylint: enable=g-import-not-at-top

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
  from jaxmusic import models  # pylint: disable=g-import-not-at-top
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
    from jaxmusic.data import pipeline  # pylint: disable=g-import-not-at-top
    view.data.crop_samples = pipeline.pair_samples(
        mine, config.data.crop_samples,
        models.frontend_config(model).get("hop", 512))
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
