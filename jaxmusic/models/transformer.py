"""The transformer backbone of HuBERT (Hsu et al. 2021) and MERT (Li et al.
2023), over any frontend's `BxFxC` frames.

Frames are layer-normed and projected to the model width (HuBERT's
`post_extract_proj`), masked where masked prediction says (its `mask_emb`),
given positions, and run through pre-LN (default) or post-LN (HuBERT base's)
encoder layers. Positions are HuBERT's convolutional relative embedding (a
grouped conv over time, kernel 128, 16 groups, weight-normed per kernel
tap, GELU), or learned or sinusoidal absolute embeddings. The sown layers
are `transformers`' `hidden_states`: the first layer's input, then every
layer's output. `jaxmusic/interop/transformers.py` maps the parameters to
and from `HubertModel` and `Wav2Vec2Model`.

Compute runs in `dtype` (bfloat16 on accelerators); parameters stay float32
and the attention softmax is float32. MERT's attention relaxation (from
CogView's PB-relax) is the option `attention_relax`: the scores are
computed from q / alpha and rescaled by alpha after the row max is taken
out, which is the same softmax with smaller intermediates in half precision.
"""

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxmusic.ops import grouped_conv

# name -> (layers, width, heads, FFN width)
SIZES = {
    "tiny": (4, 128, 4, 512),
    "small": (6, 384, 6, 1536),
    "base": (12, 768, 12, 3072),
    "95m": (12, 768, 12, 3072),
    "330m": (24, 1024, 16, 4096),
}
POSITIONS = ("conv", "learned", "sinusoidal")


@dataclasses.dataclass(frozen=True)
class Shape:
  layers: int
  width: int
  heads: int
  ffn: int


def shape_of(size: str, **overrides) -> Shape:
  """The named size, with any of layers/width/heads/ffn overridden."""
  layers, width, heads, ffn = SIZES[size]
  shape = dict(layers=layers, width=width, heads=heads, ffn=ffn)
  shape.update({k: v for k, v in overrides.items() if v})
  return Shape(**shape)


def sinusoidal(n: int, width: int) -> np.ndarray:
  """`n x width` sines and cosines (Vaswani et al.)."""
  pos = np.arange(n)[:, None]
  inv = np.exp(-math.log(10000.0) * np.arange(0, width, 2) / width)
  out = np.zeros((n, width), np.float32)
  out[:, 0::2] = np.sin(pos * inv)
  out[:, 1::2] = np.cos(pos * inv)[:, :width // 2]
  return out


class ConvPositions(nn.Module):
  """HuBERT's relative positions: a grouped conv over time, weight-normed
  as fairseq's and transformers' `weight_norm(conv, dim=2)`, one gain per
  kernel tap over its (in, out) weights, then GELU; an even kernel drops
  the last frame to keep the length."""
  kernel: int = 128
  groups: int = 16
  impl: str = "xla"  # "cpu_fast": jaxmusic/ops/grouped_conv.py
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BxFxD):
    d = x_BxFxD.shape[-1]
    v = self.param("kernel", nn.initializers.normal(
        math.sqrt(4.0 / (self.kernel * d))), (self.kernel, d // self.groups, d))
    tap_norm = lambda w: jnp.sqrt(jnp.sum(jnp.square(w), axis=(1, 2)))
    g = self.param("gain", lambda k, s: tap_norm(v), (self.kernel,))
    b = self.param("bias", nn.initializers.zeros, (d,))
    w = v * (g / jnp.maximum(tap_norm(v), 1e-12))[:, None, None]
    conv = (grouped_conv.grouped_conv1d if self.impl == "cpu_fast"
            else grouped_conv.plain_conv1d)
    y = conv(x_BxFxD.astype(self.dtype), w.astype(self.dtype), self.groups)
    return nn.gelu(y + b.astype(self.dtype), approximate=False)


class Attention(nn.Module):
  heads: int
  dropout: float = 0.0
  relax: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BxFxD, train: bool, valid_BxF=None):
    d = x_BxFxD.shape[-1]
    dense = lambda name: nn.DenseGeneral((self.heads, d // self.heads),
                                         dtype=self.dtype, name=name)
    q, k, v = (dense(n)(x_BxFxD) for n in ("query", "key", "value"))
    scale = 1.0 / math.sqrt(d // self.heads)
    if self.relax:
      scale /= self.relax
    logits_BxHxFxF = jnp.einsum("bqhd,bkhd->bhqk", q * scale, k).astype(
        jnp.float32)
    if self.relax:
      logits_BxHxFxF = (logits_BxHxFxF - jax.lax.stop_gradient(
          logits_BxHxFxF.max(-1, keepdims=True))) * self.relax
    if valid_BxF is not None:  # padding keys get no weight
      logits_BxHxFxF = jnp.where(valid_BxF[:, None, None, :], logits_BxHxFxF,
                                 jnp.finfo(jnp.float32).min)
    weights = jax.nn.softmax(logits_BxHxFxF, axis=-1)
    weights = nn.Dropout(self.dropout, deterministic=not train)(weights)
    out = jnp.einsum("bhqk,bkhd->bqhd", weights.astype(self.dtype), v)
    return nn.DenseGeneral(d, axis=(-2, -1), dtype=self.dtype,
                           name="out")(out)


class Layer(nn.Module):
  heads: int
  ffn: int
  norm_first: bool = True
  dropout: float = 0.1
  attention_dropout: float = 0.1
  relax: float = 0.0
  dtype: Any = jnp.float32
  activation_dropout: float | None = None  # None: `dropout`
  norm_eps: float = 1e-5

  @nn.compact
  def __call__(self, x_BxFxD, train: bool, valid_BxF=None):
    drop = nn.Dropout(self.dropout, deterministic=not train)
    # One module for both when they share a rate: both draw from one
    # dropout stream, so the pinned one-step losses stay fixed.
    act_drop = drop if self.activation_dropout is None else nn.Dropout(
        self.activation_dropout, deterministic=not train)
    norm = lambda name: nn.LayerNorm(epsilon=self.norm_eps,
                                     dtype=jnp.float32, name=name)
    attn = Attention(self.heads, self.attention_dropout, self.relax,
                     self.dtype, name="attention")
    ffn = lambda h: nn.Dense(x_BxFxD.shape[-1], dtype=self.dtype,
                             name="ffn_out")(act_drop(nn.gelu(nn.Dense(
                                 self.ffn, dtype=self.dtype, name="ffn_in")(
                                     h), approximate=False)))
    x = x_BxFxD
    if self.norm_first:
      x = x + drop(attn(norm("attention_norm")(x).astype(self.dtype), train,
                        valid_BxF))
      return x + drop(ffn(norm("ffn_norm")(x).astype(self.dtype)))
    x = norm("attention_norm")(x + drop(attn(x, train, valid_BxF)))
    return norm("ffn_norm")(x + drop(ffn(x))).astype(self.dtype)


class Transformer(nn.Module):
  """`BxFxC` frames -> `BxFxD`; with `cls`, a learned CLS token is
  prepended and its output is returned beside the frames. `valid_BxF`
  (padded text) keeps attention off the padding frames."""
  size: str = "tiny"
  layers: int = 0  # 0: the size's own
  width: int = 0
  heads: int = 0
  ffn: int = 0
  norm_first: bool = True
  positions: str = "conv"
  conv_pos_kernel: int = 128
  conv_pos_groups: int = 16
  max_frames: int = 4096  # learned positions only
  dropout: float = 0.1
  attention_dropout: float = 0.1
  attention_relax: float = 0.0
  # fairseq's activation_dropout (inside the FFN; None: `dropout`),
  # dropout_input (after the input projection) and encoder_layerdrop (a
  # whole layer skipped with this probability in training).
  activation_dropout: float | None = None
  input_dropout: float = 0.0
  layerdrop: float = 0.0
  cls: bool = False
  # transformers' feat_proj_layer_norm: a LayerNorm on the frontend's
  # frames before the projection (fairseq's and wav2vec 2.0's always have
  # it; some HubertModel configs drop it). AST has neither: its patch conv
  # is the projection (`input_proj=False`).
  input_norm: bool = True
  input_proj: bool = True
  # AST's (DeiT's) distillation token, after the CLS token (`cls`); the
  # pooled `cls` output is then their mean, as ASTModel's pooler.
  distillation: bool = False
  norm_eps: float = 1e-5  # AST's (ViT's): 1e-12
  # Masked prediction's learned mask embedding (fairseq's mask_emb,
  # transformers' masked_spec_embed), which replaces the masked frames
  # after the projection and the input dropout, as fairseq masks them.
  masked: bool = False
  impl: str = "xla"  # "cpu_fast": the positions' conv from jaxmusic/ops
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BxFxC, train: bool = False, valid_BxF=None,
               mask_BxF=None):
    s = shape_of(self.size, layers=self.layers, width=self.width,
                 heads=self.heads, ffn=self.ffn)
    drop = nn.Dropout(self.dropout, deterministic=not train)
    x = x_BxFxC
    if self.input_norm:
      x = nn.LayerNorm(epsilon=self.norm_eps, dtype=jnp.float32,
                       name="input_norm")(x)
    if self.input_proj:
      x = nn.Dense(s.width, dtype=self.dtype, name="input_proj")(x)
    x = nn.Dropout(self.input_dropout, deterministic=not train)(x)
    if self.masked:
      # fairseq's mask_emb: uniform in [0, 1).
      emb = self.param("mask_embedding", nn.initializers.uniform(1.0),
                       (s.width,))
      if mask_BxF is not None:
        x = jnp.where(mask_BxF[..., None], emb.astype(x.dtype), x)
    elif mask_BxF is not None:
      raise ValueError("this transformer was built without a mask "
                       "embedding (models.make_encoder(..., masked=True))")
    prefix = int(self.cls) + int(self.cls and self.distillation)
    if prefix:
      names = ("cls", "distillation")[:prefix]
      tokens = [self.param(n, nn.initializers.normal(0.02), (s.width,))
                for n in names]
      x = jnp.concatenate([jnp.broadcast_to(t.astype(x.dtype), (
          x.shape[0], 1, s.width)) for t in tokens] + [x], 1)
      if valid_BxF is not None:
        valid_BxF = jnp.pad(valid_BxF, ((0, 0), (prefix, 0)),
                            constant_values=True)
    n = x.shape[1]
    if self.positions == "conv":
      x = x + ConvPositions(self.conv_pos_kernel, self.conv_pos_groups,
                            self.impl, self.dtype, name="positions")(x)
    elif self.positions == "learned":
      table = self.param("positions", nn.initializers.normal(0.02),
                         (self.max_frames, s.width))
      x = x + table[:n].astype(x.dtype)
    else:
      x = x + jnp.asarray(sinusoidal(n, s.width), x.dtype)
    if self.norm_first:
      x = drop(x)
    else:  # HuBERT's post-LN encoder normalises before its first layer
      x = drop(nn.LayerNorm(epsilon=self.norm_eps, dtype=jnp.float32,
                            name="encoder_norm")(x).astype(self.dtype))
    # transformers' hidden_states: the first layer's input, then each
    # layer's output (a pre-LN encoder's last one before its final norm).
    self.sow("intermediates", "layers", x[:, prefix:])
    for i in range(s.layers):
      y = Layer(s.heads, s.ffn, self.norm_first, self.dropout,
                self.attention_dropout, self.attention_relax, self.dtype,
                self.activation_dropout, self.norm_eps,
                name=f"layer_{i}")(x, train, valid_BxF)
      if train and self.layerdrop:
        keep = jax.random.uniform(self.make_rng("dropout")) >= self.layerdrop
        y = jnp.where(keep, y, x)
      x = y
      self.sow("intermediates", "layers", x[:, prefix:])
    if self.norm_first:
      x = nn.LayerNorm(epsilon=self.norm_eps, dtype=jnp.float32,
                       name="final_norm")(x)
    x = x.astype(jnp.float32)
    return x[:, prefix:], (jnp.mean(x[:, :prefix], axis=1) if prefix
                           else None)


def validate(cfg, fail):
  size = cfg.get("size", "tiny")
  if size not in SIZES:
    fail("model.size", f"unknown; known: {sorted(SIZES)}")
  s = shape_of(size, **{k: cfg.get(k, 0) for k in ("layers", "width",
                                                   "heads", "ffn")})
  if s.width % s.heads:
    fail("model.heads", f"must divide the width {s.width}")
  if cfg.get("positions", "conv") not in POSITIONS:
    fail("model.positions", f"unknown; known: {POSITIONS}")
  if cfg.get("distillation") and cfg.get("pooling", "mean") != "cls":
    fail("model.distillation", "the distillation token pools with the CLS "
         "token: needs model.pooling='cls'")
  if cfg.get("positions", "conv") == "conv" and s.width % cfg.get(
      "conv_pos_groups", 16):
    fail("model.conv_pos_groups", f"must divide the width {s.width}")
