"""Encoders by name: `make_encoder(config.model)`.

Every encoder is a Linen module `__call__(x, train=False) -> BxD` that also
sows each layer's `BxFxC` output (F frames) as ("intermediates", "layers"),
so export can pool any layer over time without knowing the architecture.
"""

import jax.numpy as jnp
import ml_collections

from jaxmusic.models import samplecnn

ENCODERS = {"samplecnn": samplecnn.SampleCNN}


def make_encoder(cfg: ml_collections.ConfigDict):
  if cfg.name not in ENCODERS:
    raise ValueError(f"config.model.name={cfg.name!r}: unknown; known: "
                     f"{sorted(ENCODERS)}")
  kwargs = {k: v for k, v in cfg.items() if k not in ("name", "dtype")}
  return ENCODERS[cfg.name](dtype=jnp.dtype(cfg.get("dtype", "float32")),
                            **kwargs)


def input_length(cfg: ml_collections.ConfigDict) -> int | None:
  """The input length an encoder needs, where its architecture fixes one."""
  if cfg.name == "samplecnn":
    return samplecnn.receptive_field(cfg.get("channels",
                                             samplecnn.CLMR_CHANNELS))
  return None
