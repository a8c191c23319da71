"""The HEAR 2021 API over a jaxmusic run, for hear-eval-kit and MARBLE-style
suites:

  from jaxmusic import hear
  model = hear.load_model("RUN_DIR")          # or "RUN_DIR:STEP"
  scene = hear.get_scene_embeddings(audio_NxT, model)          # N x D
  emb, ts = hear.get_timestamp_embeddings(audio_NxT, model)    # N x F x D,
                                                               # N x F (ms)

`audio` is mono at `model.sample_rate`, in [-1, 1]. numpy or jax arrays give
numpy arrays; torch tensors (as hear-eval-kit passes) give torch tensors.
A timestamp embedding is the encoder on a window of its input length
centred on the timestamp (zero-padded at the ends), every `hop_ms`; the
scene embedding is their mean, as HEAR's baselines do.
"""

import numpy as np

from jaxmusic.data import features as feats
from jaxmusic.eval import frozen

HOP_MS = 50.0  # HEAR asks for timestamps at most 50 ms apart.


class Model:
  """What `load_model` returns; HEAR reads the attributes below."""

  def __init__(self, encoder: frozen.FrozenEncoder, hop_ms: float = HOP_MS,
               batch_size: int = 64):
    if encoder.feature != feats.WAVEFORM:
      raise ValueError(f"the HEAR API takes audio encoders (waveform or mel "
                       f"frontends); this run's encoder reads "
                       f"{encoder.feature!r}")
    self.encoder = encoder
    self.sample_rate = encoder.sample_rate
    self.hop_ms = hop_ms
    self.windows = frozen.Windows(encoder, batch_size)
    self.scene_embedding_size = self.timestamp_embedding_size = \
        self.windows.size


def load_model(model_file_path: str = "", hop_ms: float = HOP_MS) -> Model:
  """`model_file_path` is a run directory, optionally `:STEP`."""
  return Model(frozen.load_spec(model_file_path), hop_ms)


def _to_numpy(audio):
  if hasattr(audio, "detach"):  # torch
    return audio.detach().cpu().numpy(), True
  return np.asarray(audio), False


def _like(x, torch_out):
  if torch_out:
    import torch  # pylint: disable=g-import-not-at-top
    return torch.from_numpy(np.ascontiguousarray(x))
  return x


def get_timestamp_embeddings(audio, model: Model):
  """(n_sounds x n_timestamps x D embeddings, n_sounds x n_timestamps
  timestamps in milliseconds)."""
  wav_NxT, torch_out = _to_numpy(audio)
  if wav_NxT.ndim != 2:
    raise ValueError(f"audio must be n_sounds x n_samples, got shape "
                     f"{wav_NxT.shape}")
  emb, centres = model.windows(wav_NxT, model.hop_ms / 1000.0
                               * model.sample_rate)
  ts = np.broadcast_to(centres / model.sample_rate * 1000.0,
                       (len(wav_NxT), len(centres))).astype(np.float32)
  return _like(emb, torch_out), _like(ts, torch_out)


def get_scene_embeddings(audio, model: Model):
  """n_sounds x D: the mean of the timestamp embeddings."""
  emb, _ = get_timestamp_embeddings(audio, model)
  emb, torch_out = _to_numpy(emb)
  return _like(emb.mean(axis=1), torch_out)
