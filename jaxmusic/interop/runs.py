"""A foreign checkpoint as a jaxmusic run directory (its `config.json` and
an Orbax checkpoint of the encoder), and a run's encoder as a foreign
checkpoint. Everything that reads a run (export, probe, the HEAR API,
`config.model_init`) reads a converted one."""

import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxmusic import checkpoint
from jaxmusic import config as config_lib
from jaxmusic import models
from jaxmusic import objectives
from jaxmusic import storage
from jaxmusic.eval import frozen
from jaxmusic.interop import fairseq
from jaxmusic.interop import transformers as hf_interop

# The recipe a converted encoder continues pre-training under, by the
# checkpoint's model_type.
RECIPES = {"hubert": "hubert", "wav2vec2": "hubert", "mert_model": "mert",
           # AST was trained on AudioSet's labels.
           hf_interop.AST: "supervised"}


def run_config(model_cfg: dict, sample_rate: int, recipe: str
               ) -> ml_collections.ConfigDict:
  """The full recipe (`ml_collections_configs/RECIPE.py`) with this
  encoder and its sample rate: the config masked pre-training continues
  under, and the grid export cuts crops on."""
  if recipe == "mert" and model_cfg["layers"] == 24:
    recipe = "mert_330m"
  arg = {"supervised": "model=transformer,input=mel"}.get(recipe)
  config = config_lib.load_config(recipe, arg)
  config.model = ml_collections.ConfigDict(model_cfg)
  front = model_cfg["frontend"]
  if front.get("embed") == "ast":
    # AST's fixed input: max_length Kaldi frames, a crop that makes them.
    frames = front["fbank_frames"]
    config.data.update(sample_rate=sample_rate, hop_length=front["hop"],
                       crop_samples=front["n_fft"] + (frames - 1)
                       * front["hop"], features=("waveform",))
    config.data.segment_seconds = max(
        config.data.segment_seconds,
        float(-(-config.data.crop_samples // sample_rate)))
  elif config.data.sample_rate != sample_rate:
    # Not the recipe's grid: labels on the encoder's own frames.
    hop = int(np.prod(model_cfg["frontend"]["strides"]))
    config.data.update(sample_rate=sample_rate, hop_length=hop,
                       crop_samples=5 * sample_rate,
                       segment_seconds=max(config.data.segment_seconds, 5.0))
  return config


def import_hf(directory: str, out: str, recipe: str | None = None) -> dict:
  """Converts a `transformers` checkpoint directory into the run directory
  `out`; returns its config as a dict."""
  hf, weights, sample_rate = hf_interop.read_dir(directory)
  params = hf_interop.params_from_hf(hf, weights)
  config = run_config(hf_interop.model_config(hf), sample_rate,
                      recipe or RECIPES[hf["model_type"]])
  return _write(directory, out, config, {"encoder": params})


def import_fairseq(path: str, out: str, recipe: str | None = None) -> dict:
  """Converts a fairseq HuBERT (or MERT) `.pt` checkpoint into the run
  directory `out`, its pre-training heads too, so that masked prediction
  continues from them (`config.model_init`); returns its config."""
  model_cfg, task_cfg, state = fairseq.read(path)
  hf = fairseq.hf_config(model_cfg, task_cfg)
  params = {"encoder": hf_interop.params_from_hf(
      hf, fairseq.encoder_weights(state))}
  heads, settings = fairseq.heads_params(model_cfg, task_cfg, state)
  mert = "cqt_bins" in settings or "audio_cqt_loss_m" in model_cfg
  config = run_config(hf_interop.model_config(hf),
                      int(task_cfg.get("sample_rate", 16000)),
                      recipe or ("mert" if mert else "hubert"))
  if heads:
    params["heads"] = heads
    sizes = settings.pop("label_sizes")
    config.objective.update(settings)
    config.objective.cqt_weight = 1.0 if "cqt_bins" in settings else 0.0
    # The run's label sets: the recipe's where their sizes agree, else
    # names that say the size the heads need (the collection's own sets
    # replace them: --config.data.targets).
    names = list(config.data.targets)
    if len(names) != len(sizes) or any(
        not n.endswith(f"_k{k}") for n, k in zip(names, sizes)):
      names = [f"labels{i}_k{k}" for i, k in enumerate(sizes)]
    config.data.targets = tuple(names)
  return _write(path, out, config, params)


def _write(source, out, config, params) -> dict:
  """Checks `params` against the encoder (and heads) `config` describes,
  then writes the run directory."""
  encoder = models.make_encoder(config.model, masked=True)
  x = np.zeros((1, config.data.crop_samples), np.float32)
  want = jax.eval_shape(lambda: encoder.init(
      jax.random.key(0), x, method="embed"))["params"]
  if "mask_embedding" not in params["encoder"]:
    want = {k: v for k, v in want.items() if k != "mask_embedding"}
  _check_shapes(want, params["encoder"], source)
  if "heads" in params:
    # The objective sized by a manifest holding the run's label sets.
    heads = objectives.make_objective(config, {
        "hop_length": config.data.hop_length,
        "targets": {n: {"k": int(n.rsplit("_k", 1)[1]), "codebooks": 1}
                    for n in config.data.targets}}).heads
    width = params["encoder"]["input_proj"]["kernel"].shape[1]
    _check_shapes(jax.eval_shape(lambda: heads.init(
        jax.random.key(0), jnp.zeros((1, 1, width))))["params"],
                  params["heads"], source)
  storage.path(out).mkdir(parents=True, exist_ok=True)
  config_lib.save_run_config(config, out)
  checkpoint.save_params(os.fspath(storage.path(out) / "checkpoints"),
                         params)
  return config.to_dict()


def _check_shapes(want, have, source):
  try:
    models.fit(want, have)
  except models.Mismatch as e:
    raise hf_interop.ConversionError(
        f"{source}: the converted {e.path} has shape "
        f"{'none' if e.have is None else e.have}, the encoder its config "
        f"describes needs {e.want}") from None


def export_hf(run: str, out: str, step: int | None = None) -> str:
  """Writes the run's encoder as a `transformers` HubertModel directory
  (`config.json`, `model.safetensors`, `preprocessor_config.json`)."""
  from safetensors.numpy import save_file  # pylint: disable=g-import-not-at-top
  encoder = frozen.load(run, step)
  params = jax.tree.map(np.asarray, jax.device_get(encoder.params))
  hf, weights, preprocessor = hf_interop.hf_from_params(
      encoder.config.model.to_dict(), params, encoder.sample_rate)
  os.makedirs(out, exist_ok=True)
  with open(os.path.join(out, "config.json"), "w") as f:
    json.dump(hf, f, indent=2)
  with open(os.path.join(out, "preprocessor_config.json"), "w") as f:
    json.dump(preprocessor, f, indent=2)
  save_file(weights, os.path.join(out, "model.safetensors"),
            metadata={"format": "pt"})
  return out
