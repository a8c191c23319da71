"""fairseq's HuBERT (and MERT's fork of it) `.pt` checkpoints, in.

A checkpoint is a pickled dict: `model` (the state dict) and `cfg` (newer
fairseq: `cfg["model"]`, `cfg["task"]`) or `args` (older: one namespace).
The encoder's keys are renamed to `transformers`' (and its config written
as a HubertConfig), so one mapping (transformers.py) builds the encoder;
the pre-training heads, which transformers drops, map to masked
prediction's `Heads`:

  final_proj                 heads.final_proj (fairseq's untie_final_proj:
                             one final_dim chunk per label set, or shared)
  label_embs_concat          heads.codewords (every set's codes, stacked)
  encoder_cqt_model.fc       heads.cqt_head (MERT's CQT regression)
  mask_emb                   the encoder's mask_embedding
"""

import ast
import re

import numpy as np

from jaxmusic.interop.transformers import ConversionError

_RENAMES = [
    # The conv extractor: Sequential(conv, dropout, [norm], GELU).
    (r"^feature_extractor\.conv_layers\.(\d+)\.0\.", r"feature_extractor.conv_layers.\1.conv."),
    (r"^feature_extractor\.conv_layers\.(\d+)\.2\.1\.", r"feature_extractor.conv_layers.\1.layer_norm."),
    (r"^feature_extractor\.conv_layers\.(\d+)\.2\.", r"feature_extractor.conv_layers.\1.layer_norm."),
    (r"^layer_norm\.", "feature_projection.layer_norm."),
    (r"^post_extract_proj\.", "feature_projection.projection."),
    (r"^mask_emb$", "masked_spec_embed"),
    (r"^encoder\.pos_conv\.0\.", "encoder.pos_conv_embed.conv."),
    (r"^encoder\.layers\.(\d+)\.self_attn\.", r"encoder.layers.\1.attention."),
    (r"^encoder\.layers\.(\d+)\.self_attn_layer_norm\.", r"encoder.layers.\1.layer_norm."),
    (r"^encoder\.layers\.(\d+)\.fc1\.", r"encoder.layers.\1.feed_forward.intermediate_dense."),
    (r"^encoder\.layers\.(\d+)\.fc2\.", r"encoder.layers.\1.feed_forward.output_dense."),
]
_HEADS = ("final_proj.", "label_embs_concat", "encoder_cqt_model.")


def read(path: str) -> tuple[dict, dict, dict]:
  """`(model_cfg, task_cfg, state)` of a fairseq checkpoint: its config
  as plain dicts and its state dict as numpy arrays."""
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ConversionError(f"{path}: reading a fairseq checkpoint needs "
                          "torch (pip install torch)") from e
  try:
    # fairseq pickles its config (a dict, or an argparse namespace in older
    # checkpoints) beside the tensors: a checkpoint the user chose to trust.
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
  except Exception as e:  # pylint: disable=broad-except
    raise ConversionError(f"{path}: not a readable torch checkpoint "
                          f"({type(e).__name__}: {e})") from e
  if not isinstance(ckpt, dict) or "model" not in ckpt:
    raise ConversionError(f"{path}: no 'model' state dict; is it a fairseq "
                          "checkpoint?")
  cfg = ckpt.get("cfg")
  if cfg is not None:
    cfg = _plain(cfg)
    model_cfg, task_cfg = dict(cfg.get("model") or {}), dict(
        cfg.get("task") or {})
  elif ckpt.get("args") is not None:
    model_cfg = task_cfg = dict(vars(ckpt["args"]))
  else:
    raise ConversionError(f"{path}: neither 'cfg' nor 'args'; is it a "
                          "fairseq checkpoint?")
  state = {k: v.float().numpy() for k, v in ckpt["model"].items()}
  return model_cfg, task_cfg, state


def _plain(cfg):
  """An OmegaConf config (if that is what was pickled) as plain dicts."""
  if hasattr(cfg, "items"):
    return {k: _plain(v) for k, v in cfg.items()}
  return cfg


def hf_config(model_cfg: dict, task_cfg: dict) -> dict:
  """fairseq's model config as the HubertConfig that describes the same
  encoder."""
  layers = model_cfg.get("conv_feature_layers",
                         "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2")
  try:
    convs = _conv_layers(layers)
  except (ValueError, SyntaxError) as e:
    raise ConversionError(f"cfg.model.conv_feature_layers={layers!r}: not "
                          "a list of (dim, kernel, stride)") from e
  if model_cfg.get("pos_conv_depth", 1) != 1:
    raise ConversionError(f"cfg.model.pos_conv_depth="
                          f"{model_cfg['pos_conv_depth']}: jaxmusic's "
                          "transformer has one positional conv")
  mode = model_cfg.get("extractor_mode", "default")
  if mode not in ("default", "layer_norm"):
    raise ConversionError(f"cfg.model.extractor_mode={mode!r}: use default "
                          "or layer_norm")
  return {
      "model_type": "hubert",
      "hidden_size": model_cfg.get("encoder_embed_dim", 768),
      "num_hidden_layers": model_cfg.get("encoder_layers", 12),
      "num_attention_heads": model_cfg.get("encoder_attention_heads", 12),
      "intermediate_size": model_cfg.get("encoder_ffn_embed_dim", 3072),
      "hidden_act": model_cfg.get("activation_fn", "gelu"),
      "conv_dim": [d for d, _, _ in convs],
      "conv_kernel": [k for _, k, _ in convs],
      "conv_stride": [s for _, _, s in convs],
      "conv_bias": bool(model_cfg.get("conv_bias", False)),
      "feat_extract_norm": "group" if mode == "default" else "layer",
      "num_conv_pos_embeddings": model_cfg.get("conv_pos", 128),
      "num_conv_pos_embedding_groups": model_cfg.get("conv_pos_groups", 16),
      "do_stable_layer_norm": bool(model_cfg.get("layer_norm_first", False)),
      "hidden_dropout": model_cfg.get("dropout", 0.1),
      "attention_dropout": model_cfg.get("attention_dropout", 0.1),
      "activation_dropout": model_cfg.get("activation_dropout", 0.0),
      "feat_proj_dropout": model_cfg.get("dropout_input", 0.0),
      "layerdrop": model_cfg.get("encoder_layerdrop", 0.0),
      "attention_relax": model_cfg.get("attention_relax", -1.0),
      "deepnorm": model_cfg.get("deepnorm", False),
      "feature_extractor_cqt": model_cfg.get("feature_extractor_cqt", False),
      "_jaxmusic_normalize": bool(task_cfg.get("normalize", False)),
  }


def _conv_layers(text: str):
  """fairseq's conv_feature_layers string, e.g. "[(512,10,5)] +
  [(512,3,2)] * 4", as a list of (dim, kernel, stride); read by parsing
  its list, tuple, + and * literals only."""
  def value(node):
    if isinstance(node, ast.Expression):
      return value(node.body)
    if isinstance(node, (ast.List, ast.Tuple)):
      return [value(e) for e in node.elts]
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
      return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
      return value(node.left) + value(node.right)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
      return value(node.left) * value(node.right)
    raise ValueError(f"unexpected {type(node).__name__}")
  return [tuple(int(x) for x in layer[:3])
          for layer in value(ast.parse(text, mode="eval"))]


def encoder_weights(state: dict) -> dict[str, np.ndarray]:
  """The state dict's encoder keys under `transformers`' names."""
  out = {}
  for key, value in state.items():
    if key.startswith(_HEADS):
      continue
    for pattern, repl in _RENAMES:
      key, n = re.subn(pattern, repl, key)
      if n:
        break
    out[key] = value
  return out


def heads_params(model_cfg: dict, task_cfg: dict, state: dict
                 ) -> tuple[dict, dict]:
  """`(heads params, objective settings)`: masked prediction's heads from
  fairseq's final_proj, label_embs_concat and MERT's CQT head, and the
  objective keys that size them (final_dim, untie_final_proj, the label
  sets' sizes, cqt_bins)."""
  if "final_proj.weight" not in state or "label_embs_concat" not in state:
    return {}, {}
  proj_w, proj_b = state["final_proj.weight"], state["final_proj.bias"]
  codes = state["label_embs_concat"]
  final_dim = codes.shape[1]
  untie = bool(model_cfg.get("untie_final_proj", False))
  sets = proj_w.shape[0] // final_dim if untie else 1
  if untie and proj_w.shape[0] % final_dim:
    raise ConversionError(f"final_proj.weight: {proj_w.shape[0]} outputs are "
                          f"no whole number of final_dim={final_dim} chunks")
  if not untie:
    # A shared projection says nothing of how many label sets there were:
    # the task's label list does (MERT-330M: its 8 codebooks).
    sets = len(task_cfg.get("labels") or ()) or 1
  if codes.shape[0] % sets:
    raise ConversionError(f"label_embs_concat: {codes.shape[0]} codes do not "
                          f"split evenly over {sets} label sets")
  heads = {"final_proj": {"kernel": proj_w.T, "bias": proj_b},
           "codewords": codes}
  settings = {"final_dim": int(final_dim), "untie_final_proj": untie,
              "logit_temp": float(model_cfg.get("logit_temp", 0.1)),
              "label_sizes": [codes.shape[0] // sets] * sets}
  if "encoder_cqt_model.fc.weight" in state:
    heads["cqt_head"] = {"kernel": state["encoder_cqt_model.fc.weight"].T,
                         "bias": state["encoder_cqt_model.fc.bias"]}
    settings["cqt_bins"] = int(state["encoder_cqt_model.fc.weight"].shape[0])
  return heads, settings
