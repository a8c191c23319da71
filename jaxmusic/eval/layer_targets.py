"""HuBERT's second iteration: frame targets from a trained run, k-means on
one layer's frame outputs streamed segment by segment (`python -m
jaxmusic.targets --from-run RUN --layer L`)."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxmusic import models
from jaxmusic.data import targets


def run_layer_frames(encoder, data, layer: int, batch: int = 8):
  """`(split, track) -> N x D`: a frozen run's layer-`layer` frames, one
  segment record per encoder call. Layers count as `export --layers all`
  and `transformers`' hidden_states do: for the transformer 0 is its input
  embedding and L its L-th layer's output (fairseq's `output_layer`)."""
  feature = encoder.feature
  data.has(feature)

  @jax.jit
  def layer_frames(x):
    layers = models.apply(encoder.module, encoder.params, encoder.state,
                          x)[0].layers
    if not 0 <= layer < len(layers):
      raise ValueError(f"--layer={layer}: the encoder has layers "
                       f"0..{len(layers) - 1}")
    return layers[layer].astype(jnp.float32)

  def frames(split, track):
    # Each segment as the training pipeline cuts it (the same `span`), so
    # the encoder sees inputs scaled as it was trained on.
    xs = [data.span(split, track, feature, s * data.frames_per_segment,
                    data.segment_samples)
          for s in range(track["num_segments"])]
    outs = []
    for lo in range(0, len(xs), batch):
      chunk = np.stack(xs[lo:lo + batch])
      n = len(chunk)
      if n < batch:  # one compiled shape
        chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - n, 0)])
      out = np.asarray(layer_frames(jnp.asarray(chunk)))[:n]
      if out.shape[1] != data.frames_per_segment:
        raise ValueError(f"the run's encoder gives {out.shape[1]} frames per "
                         f"segment, not the data's {data.frames_per_segment}"
                         ": iteration-2 targets need a frame-grid encoder")
      outs.append(out.reshape(-1, out.shape[-1]))
    return np.concatenate(outs)

  return frames


def run_targets(data, name: str, encoder, layer: int,
                spec: targets.KMeansSpec,
                progress: bool = True) -> dict:
  """Iteration 2: k-means on a trained run's layer-`layer` frames."""
  return targets.kmeans_targets(
      data, name, run_layer_frames(encoder, data, layer), spec,
      {"source": f"layer {layer}", "run": encoder.workdir,
       "step": encoder.step, "layer": layer}, progress)
