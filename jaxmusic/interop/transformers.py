"""`transformers`' HubertModel, Wav2Vec2Model and MERT's port, both ways;
ASTModel in.

A `transformers` checkpoint is a `config.json` and its weights
(`model.safetensors`, sharded safetensors with an index, or
`pytorch_model.bin`). Its encoder is jaxmusic's transformer on the
waveform conv frontend with fairseq's valid layout:

  feature_extractor.conv_layers.i.conv         frontend.conv_i
  feature_extractor.conv_layers.0.layer_norm   frontend.group_norm ("group")
  feature_extractor.conv_layers.i.layer_norm   frontend.layer_norm_i ("layer")
  feature_projection.layer_norm / .projection  input_norm / input_proj
  masked_spec_embed                            mask_embedding
  encoder.pos_conv_embed.conv (weight norm)    positions (gain per tap)
  encoder.layer_norm                           encoder_norm (post-LN) or
                                               final_norm (pre-LN)
  encoder.layers.i.attention.{q,k,v,out}_proj  layer_i.attention.{query,...}
  encoder.layers.i.layer_norm                  layer_i.attention_norm
  encoder.layers.i.feed_forward.*_dense        layer_i.ffn_in / ffn_out
  encoder.layers.i.final_layer_norm            layer_i.ffn_norm

ASTModel is the transformer on the mel frontend's Kaldi fbank and patch
conv (`spectrum="kaldi"`, `embed="ast"`), pre-LN, learned positions, CLS
and distillation tokens, no input norm or projection:

  embeddings.patch_embeddings.projection       frontend.patch
  embeddings.cls_token / distillation_token    cls / distillation
  embeddings.position_embeddings               positions
  layers.i.attention.{q,k,v,o}_proj            layer_i.attention.{query,...}
  layers.i.layernorm_before / _after           layer_i.attention_norm / ffn_norm
  layers.i.mlp.fc1 / fc2                       layer_i.ffn_in / ffn_out
  layernorm                                    final_norm

Torch Linear weights are `out x in` and Conv1d weights `out x in x k`; Flax
kernels are `in x out` and `k x in x out`. Everything here is numpy; torch
is imported only to read a `pytorch_model.bin`.
"""

import json
import os
import re

import numpy as np

from jaxmusic.models import transformer

# model_type -> (the architecture written out, the sample rate its
# released checkpoints read when no preprocessor_config.json says).
MODEL_TYPES = {"hubert": ("HubertModel", 16000),
               "wav2vec2": ("Wav2Vec2Model", 16000),
               "mert_model": ("MERTModel", 24000),
               "audio-spectrogram-transformer": ("ASTModel", 16000)}
AST = "audio-spectrogram-transformer"
# Prefixes of task heads' checkpoints (HubertForCTC, ...), dropped.
_PREFIXES = ("hubert.", "wav2vec2.", "audio_spectrogram_transformer.",
             "model.")
# ASTModel's names before transformers 5 -> its names now.
_AST_RENAMES = [
    (r"^encoder\.layer\.(\d+)\.attention\.attention\.query\.", r"layers.\1.attention.q_proj."),
    (r"^encoder\.layer\.(\d+)\.attention\.attention\.key\.", r"layers.\1.attention.k_proj."),
    (r"^encoder\.layer\.(\d+)\.attention\.attention\.value\.", r"layers.\1.attention.v_proj."),
    (r"^encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"layers.\1.attention.o_proj."),
    (r"^encoder\.layer\.(\d+)\.intermediate\.dense\.", r"layers.\1.mlp.fc1."),
    (r"^encoder\.layer\.(\d+)\.output\.dense\.", r"layers.\1.mlp.fc2."),
    (r"^encoder\.layer\.(\d+)\.", r"layers.\1."),
]


class ConversionError(ValueError):
  """A checkpoint or run that this mapping cannot express, with why."""


def read_dir(directory: str) -> tuple[dict, dict[str, np.ndarray], int]:
  """`(config, weights, sample_rate)` of a `transformers` checkpoint
  directory; weights are numpy arrays under the base model's key names."""
  path = os.path.join(directory, "config.json")
  if not os.path.exists(path):
    raise ConversionError(f"{path}: missing; --from needs a transformers "
                          "checkpoint directory (config.json + weights)")
  with open(path) as f:
    config = json.load(f)
  model_type = config.get("model_type")
  if model_type not in MODEL_TYPES:
    raise ConversionError(f"{path}: model_type {model_type!r} is not one of "
                          f"{sorted(MODEL_TYPES)}")
  weights = _read_weights(directory)
  sample_rate = MODEL_TYPES[model_type][1]
  pre = os.path.join(directory, "preprocessor_config.json")
  pre_cfg = {}
  if os.path.exists(pre):
    with open(pre) as f:
      pre_cfg = json.load(f)
    sample_rate = int(pre_cfg.get("sampling_rate", sample_rate))
  config["_jaxmusic_preprocessor"] = pre_cfg
  config["_jaxmusic_normalize"] = bool(pre_cfg.get("do_normalize", False))
  if model_type == AST:
    weights = {_ast_name(k): v for k, v in weights.items()}
  return config, weights, sample_rate


def _ast_name(key: str) -> str:
  for pattern, repl in _AST_RENAMES:
    key, n = re.subn(pattern, repl, key)
    if n:
      break
  return key


def _read_weights(directory: str) -> dict[str, np.ndarray]:
  names = os.listdir(directory)
  files = sorted(n for n in names if n.endswith(".safetensors"))
  if files:
    from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
    out = {}
    for name in files:
      out.update(load_file(os.path.join(directory, name)))
  elif "pytorch_model.bin" in names:
    try:
      import torch  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise ConversionError(
          f"{directory}/pytorch_model.bin: reading it needs torch "
          "(pip install torch), or save the model as safetensors") from e
    state = torch.load(os.path.join(directory, "pytorch_model.bin"),
                       map_location="cpu", weights_only=True)
    out = {k: v.float().numpy() for k, v in state.items()}
  else:
    raise ConversionError(f"{directory}: no model.safetensors or "
                          "pytorch_model.bin")
  stripped = {}
  for key, value in out.items():
    for prefix in _PREFIXES:
      if key.startswith(prefix):
        key = key[len(prefix):]
        break
    stripped[key] = np.asarray(value, np.float32)
  return stripped


def model_config(hf: dict) -> dict:
  """jaxmusic's `config.model` for a `transformers` config, or a
  ConversionError naming the key it cannot express."""
  if hf.get("model_type") == AST:
    return ast_model_config(hf)
  path = f"config.json ({hf.get('model_type')})"

  def need(key, ok, want):
    if not ok:
      raise ConversionError(f"{path}: {key}={hf.get(key)!r} is not supported "
                            f"(jaxmusic's transformer needs {want})")

  for key in ("hidden_act", "feat_extract_activation"):
    need(key, hf.get(key, "gelu") == "gelu", "gelu")
  need("layer_norm_eps", abs(hf.get("layer_norm_eps", 1e-5) - 1e-5) < 1e-12,
       "1e-5")
  conv_dim = tuple(hf.get("conv_dim", (512,) * 7))
  need("conv_dim", len(set(conv_dim)) == 1, "one width for every conv")
  need("conv_pos_batch_norm", not hf.get("conv_pos_batch_norm", False),
       "the weight-normed positional conv")
  need("add_adapter", not hf.get("add_adapter", False), "no adapter")
  need("feature_extractor_cqt", not hf.get("feature_extractor_cqt", False),
       "no CQT input features")
  need("deepnorm", not hf.get("deepnorm", False), "no DeepNorm")
  need("num_conv_pos_embeddings",
       hf.get("num_conv_pos_embeddings", 128) > 0, "a positional conv")
  relax = hf.get("attention_relax", -1.0) or -1.0
  return {
      "name": "transformer",
      "frontend": {
          "name": "waveform", "embed": "conv", "channels": conv_dim[0],
          "kernels": tuple(hf.get("conv_kernel", (10, 3, 3, 3, 3, 2, 2))),
          "strides": tuple(hf.get("conv_stride", (5, 2, 2, 2, 2, 2, 2))),
          "padding": "valid", "norm": hf.get("feat_extract_norm", "group"),
          "conv_bias": bool(hf.get("conv_bias", False)),
          "normalize": bool(hf.get("_jaxmusic_normalize", False)),
          "grad_scale": 1.0},
      "size": "base", "layers": hf["num_hidden_layers"],
      "width": hf["hidden_size"], "heads": hf["num_attention_heads"],
      "ffn": hf["intermediate_size"],
      "norm_first": bool(hf.get("do_stable_layer_norm", False)),
      "positions": "conv",
      "conv_pos_kernel": hf.get("num_conv_pos_embeddings", 128),
      "conv_pos_groups": hf.get("num_conv_pos_embedding_groups", 16),
      # wav2vec 2.0's projection is always layer-normed; HuBERT's may not be.
      "input_norm": bool(hf.get("feat_proj_layer_norm", True)),
      "dropout": hf.get("hidden_dropout", 0.1),
      "attention_dropout": hf.get("attention_dropout", 0.1),
      "activation_dropout": hf.get("activation_dropout", 0.0),
      "input_dropout": hf.get("feat_proj_dropout", 0.0),
      "layerdrop": hf.get("layerdrop", 0.0),
      # MERT's attention relaxation is the same softmax (transformer.py).
      "attention_relax": float(relax) if relax > 0 else 0.0,
      "dtype": "float32", "impl": "auto", "pooling": "mean",
  }


# An encoder layer's parts: jaxmusic's name -> the family's module name.
HUBERT_LAYER = {"query": "attention.q_proj", "key": "attention.k_proj",
                "value": "attention.v_proj", "out": "attention.out_proj",
                "attention_norm": "layer_norm",
                "ffn_norm": "final_layer_norm",
                "ffn_in": "feed_forward.intermediate_dense",
                "ffn_out": "feed_forward.output_dense"}
AST_LAYER = {**HUBERT_LAYER, "out": "attention.o_proj",
             "attention_norm": "layernorm_before",
             "ffn_norm": "layernorm_after", "ffn_in": "mlp.fc1",
             "ffn_out": "mlp.fc2"}


def _layer(w, pre: str, names: dict, heads: int, width: int,
           qkv_bias: bool = True) -> dict:
  """One encoder layer's parameters, read through `w(key)`."""
  attn = {}
  for ours in ("query", "key", "value"):
    bias = (w(f"{pre}{names[ours]}.bias") if qkv_bias
            else np.zeros((width,), np.float32))
    attn[ours] = {"kernel": w(f"{pre}{names[ours]}.weight").T.reshape(
        width, heads, width // heads), "bias": bias.reshape(
            heads, width // heads)}
  attn["out"] = {"kernel": w(f"{pre}{names['out']}.weight").T.reshape(
      heads, width // heads, width), "bias": w(f"{pre}{names['out']}.bias")}
  layer = {"attention": attn}
  for ours in ("attention_norm", "ffn_norm"):
    layer[ours] = _norm(w(f"{pre}{names[ours]}.weight"),
                        w(f"{pre}{names[ours]}.bias"))
  for ours in ("ffn_in", "ffn_out"):
    layer[ours] = _linear(w(f"{pre}{names[ours]}.weight"),
                          w(f"{pre}{names[ours]}.bias"))
  return layer


def _linear(w, b):
  return {"kernel": w.T, "bias": b}


def _norm(w, b):
  return {"scale": w, "bias": b}


def _pos_conv(weights):
  base = "encoder.pos_conv_embed.conv."
  if base + "weight_g" in weights:
    g, v = weights[base + "weight_g"], weights[base + "weight_v"]
  else:
    g = weights[base + "parametrizations.weight.original0"]
    v = weights[base + "parametrizations.weight.original1"]
  if g.size != v.shape[-1]:
    raise ConversionError(f"{base}weight_g: shape {g.shape} is not a gain "
                          "per kernel tap (weight_norm dim=2)")
  return {"kernel": v.transpose(2, 1, 0), "gain": g.reshape(-1),
          "bias": weights[base + "bias"]}


def ast_model_config(hf: dict) -> dict:
  """`config.model` for an ASTModel config (and its feature extractor's,
  under `_jaxmusic_preprocessor`)."""
  if hf.get("hidden_act", "gelu") != "gelu":
    raise ConversionError(f"config.json ({AST}): hidden_act="
                          f"{hf['hidden_act']!r} is not supported (gelu)")
  pre = hf.get("_jaxmusic_preprocessor") or {}
  mels = hf.get("num_mel_bins", 128)
  patch = hf.get("patch_size", 16)
  strides = (hf.get("frequency_stride", 10), hf.get("time_stride", 10))
  length = hf.get("max_length", 1024)
  patches = (((mels - patch) // strides[0] + 1)
             * ((length - patch) // strides[1] + 1))
  normalize = pre.get("do_normalize", True)
  return {
      "name": "transformer",
      "frontend": {
          "name": "mel", "embed": "ast", "spectrum": "kaldi",
          "dim": hf.get("hidden_size", 768),
          "sample_rate": int(pre.get("sampling_rate", 16000)),
          # Kaldi's 25 ms frames every 10 ms.
          "n_fft": int(pre.get("sampling_rate", 16000)) * 25 // 1000,
          "hop": int(pre.get("sampling_rate", 16000)) // 100,
          "n_mels": mels, "patch_bands": patch, "patch_frames": patch,
          "patch_stride": strides, "fbank_frames": length,
          "fbank_mean": float(pre.get("mean", -4.2677393)) if normalize
                        else 0.0,
          "fbank_std": float(pre.get("std", 4.5689974)) if normalize
                       else 0.5},
      "size": "base", "layers": hf["num_hidden_layers"],
      "width": hf["hidden_size"], "heads": hf["num_attention_heads"],
      "ffn": hf["intermediate_size"], "norm_first": True,
      "positions": "learned", "max_frames": patches + 2,
      "input_norm": False, "input_proj": False, "distillation": True,
      "norm_eps": hf.get("layer_norm_eps", 1e-12),
      "dropout": hf.get("hidden_dropout_prob", 0.0),
      "attention_dropout": hf.get("attention_probs_dropout_prob", 0.0),
      "activation_dropout": 0.0, "input_dropout": 0.0,
      "dtype": "float32", "impl": "auto", "pooling": "cls",
  }


def _ast_params(hf: dict, w) -> dict:
  cfg = ast_model_config(hf)
  heads, width = cfg["heads"], cfg["width"]
  pre = "embeddings."
  params = {
      "frontend": {"patch": {
          "kernel": w(pre + "patch_embeddings.projection.weight").transpose(
              2, 3, 1, 0),
          "bias": w(pre + "patch_embeddings.projection.bias")}},
      "cls": w(pre + "cls_token").reshape(-1),
      "distillation": w(pre + "distillation_token").reshape(-1),
      "positions": w(pre + "position_embeddings")[0],
      "final_norm": _norm(w("layernorm.weight"), w("layernorm.bias")),
  }
  for i in range(cfg["layers"]):
    params[f"layer_{i}"] = _layer(w, f"layers.{i}.", AST_LAYER, heads, width,
                                  hf.get("qkv_bias", True))
  return params


def params_from_hf(hf: dict, weights: dict[str, np.ndarray]) -> dict:
  """The encoder's parameters (`params["encoder"]`) from the checkpoint's
  weights; raises ConversionError naming a missing or unused key."""
  used = set()

  def w(key):
    if key not in weights:
      raise ConversionError(f"weights: no {key!r} (a {hf.get('model_type')} "
                            "checkpoint of another architecture?)")
    used.add(key)
    return weights[key]

  if hf.get("model_type") == AST:
    params = _ast_params(hf, w)
    _check_unused(weights, used)
    return params
  cfg = model_config(hf)
  heads, width = cfg["heads"], cfg["width"]
  frontend = {}
  for i in range(len(cfg["frontend"]["kernels"])):
    pre = f"feature_extractor.conv_layers.{i}."
    conv = {"kernel": w(pre + "conv.weight").transpose(2, 1, 0)}
    if cfg["frontend"]["conv_bias"]:
      conv["bias"] = w(pre + "conv.bias")
    frontend[f"conv_{i}"] = conv
    if cfg["frontend"]["norm"] == "layer":
      frontend[f"layer_norm_{i}"] = _norm(w(pre + "layer_norm.weight"),
                                          w(pre + "layer_norm.bias"))
    elif i == 0:
      frontend["group_norm"] = _norm(w(pre + "layer_norm.weight"),
                                     w(pre + "layer_norm.bias"))
  params = {"frontend": frontend,
            "input_proj": _linear(w("feature_projection.projection.weight"),
                                  w("feature_projection.projection.bias"))}
  if cfg["input_norm"]:
    params["input_norm"] = _norm(w("feature_projection.layer_norm.weight"),
                                 w("feature_projection.layer_norm.bias"))
  params["positions"] = _pos_conv(weights)
  used |= {k for k in weights if k.startswith("encoder.pos_conv_embed.")}
  params["final_norm" if cfg["norm_first"] else "encoder_norm"] = _norm(
      w("encoder.layer_norm.weight"), w("encoder.layer_norm.bias"))
  for i in range(cfg["layers"]):
    params[f"layer_{i}"] = _layer(w, f"encoder.layers.{i}.", HUBERT_LAYER,
                                  heads, width)
  if "masked_spec_embed" in weights:
    params["mask_embedding"] = w("masked_spec_embed")
  _check_unused(weights, used)
  return params


def _check_unused(weights, used):
  # Task heads (a classifier, CTC's lm_head, pre-training's projections)
  # are not the encoder's.
  unused = sorted(k for k in weights if k not in used and not re.match(
      r"(lm_head|projector|classifier|quantizer|project_|"
      r"encoder_cqt_model|label_embs|final_proj)", k))
  if unused:
    raise ConversionError(f"weights: {len(unused)} keys jaxmusic's "
                          f"transformer has no place for, e.g. {unused[0]!r}")


def hf_from_params(model_cfg, params, sample_rate: int
                   ) -> tuple[dict, dict[str, np.ndarray], dict]:
  """`(config, weights, preprocessor_config)` of a `transformers`
  HubertModel holding a jaxmusic encoder; raises ConversionError where the
  encoder is not one HubertModel can express."""
  front = dict(model_cfg.get("frontend") or {})

  def need(key, ok, want):
    if not ok:
      raise ConversionError(f"config.model.{key}: HubertModel needs {want}")

  need("name", model_cfg.get("name") == "transformer", "the transformer")
  need("frontend.name", front.get("name") == "waveform" and
       front.get("embed") == "conv", "the waveform conv frontend")
  need("frontend.padding", front.get("padding", "same") == "valid",
       "fairseq's valid conv layout (padding='valid'); the centred layout "
       "pads, which HubertModel's extractor does not")
  need("positions", model_cfg.get("positions", "conv") == "conv",
       "the convolutional positions")
  need("pooling", model_cfg.get("pooling", "mean") != "cls", "no CLS token")
  need("bottleneck", not model_cfg.get("bottleneck", 0), "no bottleneck")
  shape = transformer.shape_of(
      model_cfg.get("size", "tiny"), **{k: model_cfg.get(k, 0) for k in (
          "layers", "width", "heads", "ffn")})
  kernels = tuple(front.get("kernels"))
  strides = tuple(front.get("strides"))
  channels = front.get("channels", 512)
  norm_first = bool(model_cfg.get("norm_first", True))
  input_norm = bool(model_cfg.get("input_norm", True))
  config = {
      "model_type": "hubert", "architectures": ["HubertModel"],
      "hidden_size": shape.width, "num_hidden_layers": shape.layers,
      "num_attention_heads": shape.heads,
      "intermediate_size": shape.ffn, "hidden_act": "gelu",
      "feat_extract_activation": "gelu",
      "feat_extract_norm": front.get("norm", "group"),
      "conv_dim": [channels] * len(kernels), "conv_kernel": list(kernels),
      "conv_stride": list(strides),
      "conv_bias": bool(front.get("conv_bias", False)),
      "num_conv_pos_embeddings": model_cfg.get("conv_pos_kernel", 128),
      "num_conv_pos_embedding_groups": model_cfg.get("conv_pos_groups", 16),
      "do_stable_layer_norm": norm_first, "feat_proj_layer_norm": input_norm,
      "layer_norm_eps": 1e-5,
      "hidden_dropout": model_cfg.get("dropout", 0.1),
      "attention_dropout": model_cfg.get("attention_dropout", 0.1),
      "activation_dropout": model_cfg.get("activation_dropout") or 0.0,
      "feat_proj_dropout": model_cfg.get("input_dropout", 0.0),
      "layerdrop": model_cfg.get("layerdrop", 0.0),
      # HubertModel keeps masked_spec_embed only where it masks.
      "mask_time_prob": 0.05 if "mask_embedding" in params else 0.0,
      "apply_spec_augment": "mask_embedding" in params,
  }
  np_ = lambda x: np.asarray(x, np.float32)
  out = {}
  for i in range(len(kernels)):
    pre = f"feature_extractor.conv_layers.{i}."
    out[pre + "conv.weight"] = np_(
        params["frontend"][f"conv_{i}"]["kernel"]).transpose(2, 1, 0)
    if config["conv_bias"]:
      out[pre + "conv.bias"] = np_(params["frontend"][f"conv_{i}"]["bias"])
    norm = (params["frontend"].get(f"layer_norm_{i}")
            if config["feat_extract_norm"] == "layer"
            else params["frontend"]["group_norm"] if i == 0 else None)
    if norm is not None:
      out[pre + "layer_norm.weight"] = np_(norm["scale"])
      out[pre + "layer_norm.bias"] = np_(norm["bias"])
  if input_norm:
    out["feature_projection.layer_norm.weight"] = np_(
        params["input_norm"]["scale"])
    out["feature_projection.layer_norm.bias"] = np_(
        params["input_norm"]["bias"])
  out["feature_projection.projection.weight"] = np_(
      params["input_proj"]["kernel"]).T
  out["feature_projection.projection.bias"] = np_(params["input_proj"]["bias"])
  pos = params["positions"]
  base = "encoder.pos_conv_embed.conv."
  out[base + "parametrizations.weight.original0"] = np_(pos["gain"]).reshape(
      1, 1, -1)
  out[base + "parametrizations.weight.original1"] = np_(
      pos["kernel"]).transpose(2, 1, 0)
  out[base + "bias"] = np_(pos["bias"])
  final = params["final_norm" if norm_first else "encoder_norm"]
  out["encoder.layer_norm.weight"] = np_(final["scale"])
  out["encoder.layer_norm.bias"] = np_(final["bias"])
  d = shape.width
  names = HUBERT_LAYER
  for i in range(shape.layers):
    layer, pre = params[f"layer_{i}"], f"encoder.layers.{i}."
    for ours in ("query", "key", "value", "out"):
      part = layer["attention"][ours]
      out[f"{pre}{names[ours]}.weight"] = np_(part["kernel"]).reshape(d, d).T
      out[f"{pre}{names[ours]}.bias"] = np_(part["bias"]).reshape(d)
    for ours in ("attention_norm", "ffn_norm"):
      out[f"{pre}{names[ours]}.weight"] = np_(layer[ours]["scale"])
      out[f"{pre}{names[ours]}.bias"] = np_(layer[ours]["bias"])
    for ours in ("ffn_in", "ffn_out"):
      out[f"{pre}{names[ours]}.weight"] = np_(layer[ours]["kernel"]).T
      out[f"{pre}{names[ours]}.bias"] = np_(layer[ours]["bias"])
  if "mask_embedding" in params:
    out["masked_spec_embed"] = np_(params["mask_embedding"])
  preprocessor = {
      "feature_extractor_type": "Wav2Vec2FeatureExtractor",
      "feature_size": 1, "padding_side": "right", "padding_value": 0.0,
      "do_normalize": bool(front.get("normalize", False)),
      "return_attention_mask": True, "sampling_rate": int(sample_rate)}
  return config, {k: np.ascontiguousarray(v) for k, v in out.items()}, \
      preprocessor
