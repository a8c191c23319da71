"""The encoder contract, and the frontend and backbone registries.

An encoder is a frontend composed with a backbone, both chosen by name from
`config.model`:

  model.frontend.name   one of frontends.FRONTENDS (frontends/, one
                        file an input)
  model.name            transformer | samplecnn | cnn | shortchunk | crnn
                        | alicnn | feedforward | lstm | vgg (the backbone)

  encoder(x, *, mask_BxF=None, train=False) -> frames_BxFxD

`x` is the frontend's input, the prepared feature it declares
(`FEATURE`). A backbone reads the kinds of frontend output it names
(`Backbone.reads`: "frames", "bands" or "samples"), so it pairs with every
frontend embedding of those kinds without knowing a frontend by name. The
frame grid is the collection's and the encoder's (see frontends/: an
encoder's hop is a whole multiple of the collection's).
Where `mask_BxF` is given (built with `masked=True`), those frames are
replaced by a learned mask embedding: by the transformer after its input
projection, as fairseq masks, and by the Encoder on the frontend's output
for backbones without a `masked` field. Pooling to
`BxD` is one shared function, `pool`, chosen by `model.pooling`: `mean`
or `max` over frames (over the valid ones, for padded text), or `cls`, the
transformer's CLS token; `model.bottleneck`, when set, projects the pooled
output linearly to that width (an autoencoder's code, a VAE's posterior
mean, a two-tower model's shared space). `apply`
returns one `Output`: the frames, the pooled output, every layer's output,
the frontend's output and its raw frames, from one pass.

A config with several encoders (two-tower models) names them in
`model.towers` and gives each its own `model.<tower>` sub-config, as
big_vision's two-tower configs do; `encoder_config` picks one, and
`params_key` says where its parameters live: the first tower under
"encoder" (what export, the HEAR API and model_init load by default), the
others under "encoder_<tower>".

Every encoder sows each layer's `BxFxC` output as ("intermediates",
"layers"), so export's `--layers all` works without knowing the model.

The encoder's mutable state is whatever collections its modules keep
(`batch_stats` for BatchNorm backbones, none for the transformer). Code
outside this package handles it only as `state`, through `split`, `apply`
and `state_from_checkpoint`. Dropout and SpecAugment draw from the
"dropout" and "augment" rngs, which objectives derive from the step's rng.

A new frontend or backbone is a module plus one line in FRONTENDS or
BACKBONES; its keys are checked against its fields by `validate`.
"""

import dataclasses
from typing import Any, Callable, NamedTuple

import flax.linen as nn
from flax import traverse_util
import jax
import jax.numpy as jnp

from jaxmusic.models import alicnn
from jaxmusic.models import cnn
from jaxmusic.models import crnn
from jaxmusic.models import feedforward
from jaxmusic.models import frontends
from jaxmusic.models import lstm
from jaxmusic.models import samplecnn
from jaxmusic.models import shortchunk
from jaxmusic.models import transformer
from jaxmusic.models import vgg
from jaxmusic.ops import samplecnn_cpu

_STATE_FREE = ("params", "intermediates")
# Keys of config.model that are the encoder's, not the backbone's.
ENCODER_KEYS = ("name", "frontend", "pooling", "dtype", "impl", "bottleneck")
POOLINGS = ("mean", "max", "cls")
IMPLS = ("auto", "xla", "cpu_fast")


def _samplecnn_module(cfg, impl):
  if impl == "cpu_fast":
    return samplecnn_cpu.SampleCNN
  return samplecnn.SampleCNN


def _validate_samplecnn(model_cfg, data_cfg, fail):
  need = samplecnn.receptive_field(model_cfg.get(
      "channels", samplecnn.CLMR_CHANNELS))
  if data_cfg.crop_samples % need:
    fail("data.crop_samples", f"samplecnn with "
         f"{len(model_cfg.get('channels', samplecnn.CLMR_CHANNELS))} conv "
         f"stages takes a multiple of {need} samples")


def _validate_transformer(model_cfg, data_cfg, fail):
  del data_cfg
  transformer.validate(model_cfg, fail)
  if not model_cfg.get("input_proj", True):
    front, fcfg = frontend_of(model_cfg)
    width = transformer.shape_of(model_cfg.get("size", "tiny"), **{
        k: model_cfg.get(k, 0) for k in ("layers", "width", "heads", "ffn")
    }).width
    if front.width(fcfg) != width:
      fail("model.input_proj", f"False needs the frontend's width "
           f"({front.width(fcfg)}) to be the model's ({width})")


@dataclasses.dataclass(frozen=True)
class Backbone:
  module: Callable[[Any, str], type]  # (model cfg, impl) -> module class
  # The kinds of frontend output it reads (frontends/base.py: EMBEDS).
  reads: tuple[str, ...]
  validate: Callable[[Any, Any, Callable], None] = lambda m, d, fail: None
  # Whether its frames stay on the frontend's grid (frame targets, masked
  # prediction), or are pooled over time.
  on_grid: bool = True


BACKBONES = {
    "transformer": Backbone(lambda cfg, impl: transformer.Transformer,
                            ("frames", "bands"), _validate_transformer),
    "samplecnn": Backbone(_samplecnn_module, ("samples",),
                          _validate_samplecnn),
    "cnn": Backbone(lambda cfg, impl: cnn.CNN, ("bands",)),
    "shortchunk": Backbone(lambda cfg, impl: shortchunk.ShortChunkCNN,
                           ("bands",), on_grid=False),
    "crnn": Backbone(lambda cfg, impl: crnn.CRNN, ("bands",),
                     lambda m, d, fail: crnn.validate(m, fail),
                     on_grid=False),
    "alicnn": Backbone(lambda cfg, impl: alicnn.ALICNN, ("bands",),
                       on_grid=False),
    "feedforward": Backbone(lambda cfg, impl: feedforward.FeedForward,
                            ("bands",), on_grid=False),
    "lstm": Backbone(lambda cfg, impl: lstm.LSTM, ("bands",)),
    "vgg": Backbone(lambda cfg, impl: vgg.VGG, ("bands",), on_grid=False),
}
FRONTENDS = frontends.FRONTENDS


def pool(frames_BxFxD, how: str = "mean", cls_BxD=None, valid_BxF=None):
  """The shared pooling: the frames' mean or max (over `valid_BxF` where
  given), or the CLS token's output."""
  if how == "cls":
    if cls_BxD is None:
      raise ValueError("model.pooling='cls' needs a backbone with a CLS "
                       "token (the transformer)")
    return cls_BxD
  if valid_BxF is None:
    return (jnp.max if how == "max" else jnp.mean)(frames_BxFxD, axis=1)
  valid = valid_BxF[..., None]
  if how == "max":
    top = jnp.max(jnp.where(valid, frames_BxFxD, -jnp.inf), axis=1)
    return jnp.where(jnp.any(valid, axis=1), top, 0.0)  # empty text: 0
  total = jnp.sum(jnp.where(valid, frames_BxFxD, 0.0), axis=1)
  return total / jnp.maximum(jnp.sum(valid, axis=1), 1)


class Encoder(nn.Module):
  """A frontend, an optional mask embedding, and a backbone whose
  parameters sit at the encoder's top level (a SampleCNN's tree is its
  layers, with no backbone scope between them and the encoder)."""
  frontend: nn.Module
  backbone: nn.Module
  pooling: str = "mean"
  mask_dim: int = 0  # the frontend's width, when built with masked=True
  bottleneck: int = 0  # > 0: a linear projection of the pooled output

  def setup(self):
    nn.share_scope(self, self.backbone)
    if self.bottleneck:
      self.bottleneck_proj = nn.Dense(self.bottleneck)
    if self.mask_dim:
      # HuBERT's mask_emb: uniform in [0, 1).
      self.mask_embedding = self.param("mask_embedding",
                                       nn.initializers.uniform(1.0),
                                       (self.mask_dim,))

  def embed(self, x, *, mask_BxF=None, train: bool = False):
    h_BxFxC = self.frontend(x, train=train)
    self.sow("intermediates", "features", h_BxFxC)
    extra = {}
    if mask_BxF is not None and "masked" in _fields(type(self.backbone)):
      extra["mask_BxF"] = mask_BxF  # it masks its own projected frames
    elif mask_BxF is not None:
      if not self.mask_dim:
        raise ValueError("this encoder was built without a mask embedding "
                         "(models.make_encoder(..., masked=True))")
      h_BxFxC = jnp.where(mask_BxF[..., None],
                          self.mask_embedding.astype(h_BxFxC.dtype), h_BxFxC)
    # Padded inputs (text) tell the backbone and the pooling which frames
    # are real.
    valid = self.frontend.valid(x)
    if valid is not None:
      extra["valid_BxF"] = valid
    frames_BxFxD, cls_BxD = self.backbone(h_BxFxC, train=train, **extra)
    pooled = pool(frames_BxFxD, self.pooling, cls_BxD, valid)
    if self.bottleneck:
      pooled = self.bottleneck_proj(pooled)
    return frames_BxFxD, pooled

  def __call__(self, x, *, mask_BxF=None, train: bool = False):
    return self.embed(x, mask_BxF=mask_BxF, train=train)[0]

  def from_features(self, h_BxFxC, *, train: bool = False):
    """The pooled (and bottlenecked) output from the frontend's output:
    the map whose Jacobian a contractive autoencoder penalises."""
    frames_BxFxD, cls_BxD = self.backbone(h_BxFxC, train=train)
    pooled = pool(frames_BxFxD, self.pooling, cls_BxD)
    return self.bottleneck_proj(pooled) if self.bottleneck else pooled


def tower_names(model_cfg) -> tuple[str, ...]:
  """The towers a multi-encoder config names; () for one encoder."""
  return tuple(model_cfg.get("towers", ()))


def encoder_config(model_cfg, tower: str | None = None):
  """The encoder config of `tower` (default: the first), or `model_cfg`
  itself for a one-encoder config."""
  names = tower_names(model_cfg)
  if not names:
    if tower:
      raise ValueError(f"--tower={tower}: this run has one encoder; its "
                       "config names no model.towers")
    return model_cfg
  tower = tower or names[0]
  if tower not in names:
    raise ValueError(f"--tower={tower}: unknown; this run's towers are "
                     f"{list(names)}")
  return model_cfg[tower]


def params_key(model_cfg, tower: str | None = None) -> str:
  """Where `tower`'s parameters and state live in a train state."""
  names = tower_names(model_cfg)
  if not tower or not names or tower == names[0]:
    return "encoder"
  return f"encoder_{tower}"


def _embeds(front, backbone: str) -> list[str]:
  """The embeddings of `front` that `backbone` reads, its default
  first."""
  entry = BACKBONES.get(backbone)
  return [e for e, kind in front.EMBEDS.items()
          if entry and kind in entry.reads]


def frontend_config(model_cfg) -> dict:
  """`model.frontend` with its name and the backbone's default embedding
  (the frontend's first that the backbone reads)."""
  cfg = dict(model_cfg.get("frontend", None) or {"name": "waveform"})
  cfg.setdefault("name", "waveform")
  front = FRONTENDS.get(cfg["name"])
  embeds = _embeds(front, model_cfg.name) if front else []
  if embeds:
    cfg.setdefault("embed", embeds[0])
  return cfg


def frontend_of(model_cfg):
  """`(frontend class, its config)`: what the objectives and export ask
  about the encoder's input (frontends/base.py)."""
  cfg = frontend_config(model_cfg)
  return FRONTENDS[cfg["name"]], cfg


def input_feature(model_cfg) -> str:
  """The prepared feature the encoder reads."""
  return frontend_of(model_cfg)[0].FEATURE


def frame_hop(model_cfg, collection_hop: int) -> int | None:
  """Samples between the encoder's input frames (None: no time grid)."""
  front, cfg = frontend_of(model_cfg)
  return front.frame_hop(cfg, collection_hop)


def frames_per_crop(model_cfg, crop_samples: int, collection_hop: int) -> int:
  """The frontend's frames for a crop of `crop_samples`."""
  front, cfg = frontend_of(model_cfg)
  return front.frames_per_crop(cfg, crop_samples, collection_hop)


def resolve_impl(model_cfg) -> str:
  """`auto`: the CPU kernels of jaxmusic/ops on CPU in float32 (SampleCNN's
  convs, the transformer's positional conv), XLA's own ops elsewhere."""
  impl = model_cfg.get("impl", "auto")
  if impl != "auto":
    return impl
  fast = (jax.default_backend() == "cpu"
          and model_cfg.get("dtype", "float32") == "float32")
  return "cpu_fast" if fast else "xla"


def make_encoder(model_cfg, masked: bool = False) -> Encoder:
  """The encoder `config.model` describes; `masked` adds the mask
  embedding that masked prediction needs."""
  dtype = jnp.dtype(model_cfg.get("dtype", "float32"))
  # Nested settings (SpecAugment's) become sorted pairs: module fields
  # must be hashable.
  fcfg = {k: tuple(sorted(dict(v).items())) if hasattr(v, "items") else v
          for k, v in frontend_config(model_cfg).items()}
  name = fcfg.pop("name")
  front = FRONTENDS[name](dtype=dtype, **fcfg)
  kwargs = {k: v for k, v in model_cfg.items() if k not in ENCODER_KEYS}
  pooling = model_cfg.get("pooling", "mean")
  if pooling == "cls":
    kwargs["cls"] = True
  impl = resolve_impl(model_cfg)
  back_cls = BACKBONES[model_cfg.name].module(model_cfg, impl)
  if "impl" in _fields(back_cls):
    kwargs["impl"] = impl
  # A backbone with a `masked` field keeps the mask embedding itself (the
  # transformer, after its projection, as fairseq); others get the
  # frontend's frames masked.
  own_mask = "masked" in _fields(back_cls)
  if own_mask:
    kwargs["masked"] = masked
  return Encoder(front, back_cls(dtype=dtype, **kwargs), pooling,
                 FRONTENDS[name].width({"embed": "none", **fcfg})
                 if masked and not own_mask else 0,
                 model_cfg.get("bottleneck", 0))


def _fields(module_cls) -> set[str]:
  return {f.name for f in dataclasses.fields(module_cls)} - {"parent",
                                                             "name"}


def validate(model_cfg, data_cfg, fail) -> None:
  """Checks `config.model` against the registries and the data config;
  `fail(key, why)` raises, naming the key."""
  if model_cfg.get("name") not in BACKBONES:
    fail("model.name", f"unknown backbone; known: {sorted(BACKBONES)}")
  entry = BACKBONES[model_cfg.name]
  fcfg = frontend_config(model_cfg)
  name = fcfg["name"]
  if name not in FRONTENDS:
    fail("model.frontend.name", f"unknown; known: {sorted(FRONTENDS)}")
  front = FRONTENDS[name]
  embeds = _embeds(front, model_cfg.name)
  if not embeds:
    readable = sorted(n for n, f in FRONTENDS.items()
                      if _embeds(f, model_cfg.name))
    fail("model.frontend.name", f"{model_cfg.name} reads {readable}, not "
         f"{name}")
  if fcfg["embed"] not in embeds:
    fail("model.frontend.embed", f"{model_cfg.name} on {name} takes "
         f"{tuple(embeds)}")
  bad = set(fcfg) - {"name"} - _fields(front)
  if bad:
    fail(f"model.frontend.{sorted(bad)[0]}", f"not a key of the {name} "
         f"frontend; known: {sorted(_fields(front) - {'dtype'})}")
  hop = data_cfg.get("hop_length", 512)  # the collection's
  front.validate(fcfg, hop, fail)
  if model_cfg.get("impl", "auto") not in IMPLS:
    fail("model.impl", f"use one of {IMPLS}")
  if model_cfg.get("dtype", "float32") not in ("float32", "bfloat16"):
    fail("model.dtype", "use float32 or bfloat16")
  if model_cfg.get("pooling", "mean") not in POOLINGS:
    fail("model.pooling", f"use one of {POOLINGS}")
  if model_cfg.get("pooling", "mean") == "cls" and \
      model_cfg.name != "transformer":
    fail("model.pooling", "cls needs the transformer backbone")
  module = entry.module(model_cfg, "xla")
  bad = set(model_cfg) - set(ENCODER_KEYS) - (_fields(module) - {"masked"})
  if bad:
    fail(f"model.{sorted(bad)[0]}", f"not a key of the {model_cfg.name} "
         f"backbone; known: "
         f"{sorted(_fields(module) - {'dtype', 'cls', 'impl', 'masked'})}")
  feature = front.FEATURE
  if tuple(data_cfg.features)[:1] != (feature,):
    fail("data.features", f"the {name} frontend reads {feature!r}: list it "
         "first")
  if model_cfg.get("bottleneck", 0) < 0:
    fail("model.bottleneck", "must be >= 0 (0: none)")
  step = front.frame_hop(fcfg, hop)
  centred = front.centred(fcfg)
  if step and step > 1 and centred and data_cfg.crop_samples % step:
    fail("data.crop_samples", f"the {name} frontend's frames need a "
         f"multiple of its hop {step}")
  if not centred and front.frames_per_crop(
      fcfg, data_cfg.crop_samples, hop) < 1:
    fail("data.crop_samples", f"shorter than the {name} frontend's first "
         "frame")
  entry.validate(model_cfg, data_cfg, fail)


class Output(NamedTuple):
  """One pass of an encoder."""
  frames: jax.Array  # BxFxD, the backbone's frames
  pooled: jax.Array  # BxD, `pool` of them (and the bottleneck)
  layers: tuple  # the input embedding and each layer's BxFxC output
  features: jax.Array  # the frontend's output before masking
  raw: jax.Array | None  # the frontend's frames before its embedding


def init(encoder: Encoder, rng, x):
  """`(params, state, output)`: the encoder initialised on `x`, and its
  `Output` there, which sizes the heads an objective adds."""
  params, state = split(encoder.init(rng, x, method="embed"))
  out, _ = apply(encoder, params, state, x)
  return params, state, out


def jacobian_sq_norm(encoder: Encoder, params, state, h_BxFxC):
  """Mean over the batch of ||d code / d h||_F^2: the encoder's Jacobian
  from the frontend's output `h` to its pooled code, in evaluation mode
  (so each example's code depends on its own frames alone), exactly: one
  vector-Jacobian product a code dimension."""
  code = lambda h: encoder.apply({"params": params, **state}, h,
                                 method="from_features")
  z_BxD, vjp = jax.vjp(code, h_BxFxC)
  rows_DxBxFxC = jax.vmap(lambda e: vjp(jnp.broadcast_to(e, z_BxD.shape))[0])(
      jnp.eye(z_BxD.shape[-1], dtype=z_BxD.dtype))
  return jnp.sum(jnp.square(rows_DxBxFxC)) / h_BxFxC.shape[0]


def pooled(encoder: Encoder, variables, x):
  """The pooled `BxD` output in evaluation mode, from a train state's
  layout: `variables["params"]["encoder"]` and its model state."""
  return apply(encoder, variables["params"]["encoder"],
               variables["model_state"]["encoder"], x)[0].pooled


def split(variables) -> tuple[Any, dict]:
  """`(params, state)`: state is every mutable collection but the sown
  intermediates."""
  return variables["params"], {k: v for k, v in variables.items()
                               if k not in _STATE_FREE}


def apply(encoder: Encoder, params, state, x, *, train: bool = False,
          mask_BxF=None, rngs=None) -> tuple[Output, dict]:
  """`(Output, new_state)`: the state updated in training (BatchNorm's
  running statistics) and as given otherwise. `Output.features` is the
  frontend's output before masking (HuBERT's feature penalty reads it);
  `Output.raw` the mel or piano-roll frontend's frames before its
  embedding (what an autoencoder reconstructs), None for other frontends.
  Under jit, the parts a caller does not use cost nothing."""
  mutable = (list(state) if train else []) + ["intermediates"]
  (frames, pooled_BxD), updates = encoder.apply(
      {"params": params, **state}, x, mask_BxF=mask_BxF, train=train,
      rngs=rngs, method="embed", mutable=mutable)
  updates = dict(updates)
  sown = updates.pop("intermediates", {})
  raw = sown.get("frontend", {}).get("raw")
  return Output(frames, pooled_BxD, tuple(sown.get("layers", ())),
                sown["features"][0], raw[0] if raw else None), \
      {**state, **updates}


class Mismatch(ValueError):
  """A parameter tree that does not fit an encoder: `path` is missing or
  of another shape."""

  def __init__(self, path: str, want, have):
    super().__init__(f"{path}: the encoder needs shape {tuple(want)}, found "
                     f"{'none' if have is None else tuple(have)}")
    self.path, self.want, self.have = path, tuple(want), have


# Encoder parts a run may lack and a fine-tuning keeps at their init: the
# projection into a two-tower's shared space, which a pretraining run
# (masked tokens, CLMR) has none of.
FRESH = ("bottleneck_proj",)


def fit(want, have, fresh=()):
  """`have`'s leaves at `want`'s paths, cast to `want`'s dtypes (leaves
  `want` lacks, a masked run's mask embedding, are left out); raises
  Mismatch for the first path `have` lacks or holds at another shape: a
  checkpoint of another architecture. Leaves under a top-level name in
  `fresh` that `have` lacks keep `want`'s."""
  want = traverse_util.flatten_dict(want, sep="/")
  have = traverse_util.flatten_dict(have, sep="/")
  out = {}
  for key, leaf in want.items():
    if key not in have and key.split("/")[0] in fresh:
      out[key] = leaf
      continue
    if key not in have or tuple(have[key].shape) != tuple(leaf.shape):
      raise Mismatch(key, leaf.shape, getattr(have.get(key), "shape", None))
    out[key] = have[key].astype(leaf.dtype)
  return traverse_util.unflatten_dict(out, sep="/")


def state_from_checkpoint(tree) -> dict:
  """A checkpoint's `model_state["encoder"]` as collections. A bare tree
  of `BatchNorm_i` keys (SampleCNN's statistics, as CLMR checkpoints
  store them) is the `batch_stats` collection."""
  tree = dict(tree or {})
  if tree and all(k.startswith("BatchNorm_") for k in tree):
    return {"batch_stats": tree}
  return tree
