"""Beat tracking as a frame-level probe, MARBLE's GTZAN beat task.

Each track becomes a frame every 1/`fps` s: the encoder on a window of its
input length centred on the frame (the HEAR timestamp embeddings), its
random init the same way, or a log-mel frame with its positive difference
(spectral flux, the classic onset feature) as the baseline. A head on each
frame (logistic, or MARBLE's 512-unit MLP with dropout 0.2) is trained
against the annotated beats with MARBLE's widened targets (1 on a beat's
frame, 0.95 one frame and 0.5 two frames away; exact beats in valid and
test). Its activation is decoded into beats by librosa's dynamic-
programming beat tracker (Ellis 2007; MARBLE uses madmom's DBN, whose
last release fails to import on Python 3.10 and later), and scored by
mir_eval's beat F-measure (70 ms window, beats in the first 5 s left
out). The learning rate and the epoch are chosen on valid's F-measure.

The annotations are GTZAN-Rhythm's JAMS files (`blues.00000.wav.jams`,
anywhere under the GTZAN root), on the fault-filtered split of
`gtzan_filtered`.
"""

import json
import logging
import os
from typing import Any

import jax
import jax.numpy as jnp
import librosa
import numpy as np
import optax

from jaxmusic.data import decode
from jaxmusic.data import listing
from jaxmusic.data import sources
from jaxmusic.eval import frozen
from jaxmusic.eval import marble_probe
from jaxmusic.eval import task_metrics

FPS = 50.0
LRS = (1e-3, 1e-2)
REPRESENTATIONS = ("encoder", "random_init", "logmel_flux")


def jams_beats(path: str) -> np.ndarray:
  """The beat times (s) of a JAMS file's `beat` annotation (the one whose
  sandbox says `annotation_type: beat` where there are several, as
  GTZAN-Rhythm's beat and downbeat)."""
  try:
    with open(path, encoding="utf-8") as f:
      doc = json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise ValueError(f"{path}: not a JAMS file ({e})") from None
  found = [a for a in doc.get("annotations", [])
           if a.get("namespace") == "beat"]
  typed = [a for a in found
           if a.get("sandbox", {}).get("annotation_type") == "beat"]
  if not (typed or found):
    raise ValueError(f"{path}: no beat annotation")
  data = (typed or found)[0]["data"]
  # JAMS 0.3 writes a list of observations, 0.2 a dict of columns.
  times = data["time"] if isinstance(data, dict) else [o["time"]
                                                        for o in data]
  return np.sort(np.asarray(times, np.float64))


def annotations(root: str) -> dict[str, str]:
  """{clip: JAMS path} for every `.jams` file under `root`, the clip its
  name without `.wav.jams`."""
  out = {}
  for path in listing.walk_files(root):
    name = os.path.basename(path)
    if name.endswith(".jams"):
      clip = name[:-len(".jams")]
      for ext in (".wav", ".au"):
        clip = clip[:-len(ext)] if clip.endswith(ext) else clip
      out[clip] = path
  return out


def frame_targets(beats_s, n_frames: int, fps: float,
                  widen: bool) -> np.ndarray:
  """1 on each beat's frame; with `widen`, MARBLE's 0.95 and 0.5 on the
  frames one and two away (a beat's own 1 is never lowered)."""
  y = np.zeros(n_frames, np.float32)
  idx = np.round(np.asarray(beats_s) * fps).astype(int)
  idx = idx[(idx >= 0) & (idx < n_frames)]
  if widen:
    for off, v in ((2, 0.5), (1, 0.95)):
      for j in (idx - off, idx + off):
        j = j[(j >= 0) & (j < n_frames)]
        y[j] = np.maximum(y[j], v)
  y[idx] = 1.0
  return y


def decode_beats(activation, fps: float) -> np.ndarray:
  """Beat times (s) from a frame activation: librosa's dynamic-
  programming tracker on it as the onset envelope."""
  activation = np.asarray(activation, np.float64)
  if activation.max() - activation.min() < 1e-9:
    return np.zeros(0)
  _, beats = librosa.beat.beat_track(onset_envelope=activation, sr=fps,
                                     hop_length=1, units="time")
  return np.asarray(beats, np.float64)


def logmel_flux(wav, sr: int, fps: float) -> np.ndarray:
  """F x 2M: log-mel frames centred every 1/fps s and their positive
  first difference."""
  hop = int(round(sr / fps))
  mel = librosa.power_to_db(librosa.feature.melspectrogram(
      y=wav, sr=sr, n_fft=2048, hop_length=hop, n_mels=64), ref=1.0)
  flux = np.maximum(np.diff(mel, axis=1, prepend=mel[:, :1]), 0.0)
  return np.concatenate([mel, flux]).T.astype(np.float32)


def fit(train, valid, test, fps: float = FPS, hidden: int = 0,
        dropout: float = 0.2, lrs=LRS, epochs: int = 20,
        batch: int = 1024, seed: int = 0) -> dict[str, Any]:
  """`train`, `valid`, `test`: lists of (frames FxD, beat times). A
  logistic head (`hidden` 0) or an MLP; returns test's beat F-measure at
  the learning rate and epoch best on valid."""
  x_tr = np.concatenate([x for x, _ in train])
  y_tr = np.concatenate([frame_targets(b, len(x), fps, widen=True)
                         for x, b in train])
  mean, std = x_tr.mean(0), x_tr.std(0) + 1e-6
  norm = lambda x: jnp.asarray((x - mean) / std, jnp.float32)
  init, forward = marble_probe.mlp(x_tr.shape[1], 1, hidden, dropout)
  loss = lambda out, y: optax.sigmoid_binary_cross_entropy(out[:, 0],
                                                           y).mean()
  train_run = marble_probe.adam_epochs(init, forward, loss)
  act = jax.jit(lambda p, x: jax.nn.sigmoid(forward(p, x)[:, 0]))

  def score(p, tracks):
    return task_metrics.beat_f_measure(
        [b for _, b in tracks],
        [decode_beats(act(p, norm(x)), fps) for x, _ in tracks])

  best = None
  for lr in lrs:
    for epoch, (p, _) in enumerate(
        train_run(norm(x_tr), y_tr, lr, batch, seed), start=1):
      f = score(p, valid)
      if best is None or f > best[0]:
        best = (f, p, lr, epoch)
      if epoch == epochs:
        break
  f_valid, p, lr, epoch = best
  return {"metrics": {"beat_f_measure": score(p, test)},
          "valid": {"beat_f_measure": f_valid},
          "hyperparameters": {"lr": lr, "epochs": epoch}}


def _tracks(root: str):
  """{split: [(clip, audio path, beat times)]} of the fault-filtered
  GTZAN clips that have a beat annotation."""
  found = annotations(root)
  if not found:
    raise FileNotFoundError(f"{root}: no beat annotations (*.jams)")
  out = {"train": [], "valid": [], "test": []}
  for t in sources.read_source("gtzan_filtered", root).tracks:
    if t.track_id in found:
      out[t.split].append((t.track_id, t.audio, jams_beats(
          found[t.track_id])))
  for split, items in out.items():
    if not items:
      raise ValueError(f"{root}: no annotated clip in {split}")
  return out


def run(encoder: frozen.FrozenEncoder, root: str, fps: float = FPS,
        hidden: int = 0, seed: int = 0,
        reps=REPRESENTATIONS) -> dict[str, dict[str, Any]]:
  """{representation: fit result} for a run's `encoder` (frozen.load),
  its random init and the log-mel flux baseline on the annotated GTZAN
  under `root`."""
  tracks = _tracks(root)
  sr = encoder.sample_rate
  windows = {"encoder": frozen.Windows(encoder)}
  if "random_init" in reps:
    windows["random_init"] = frozen.Windows(frozen.random_init(
        encoder.config, np.zeros((1, encoder.crop_samples), np.float32),
        seed))
  frames = {r: {s: [] for s in tracks} for r in reps}
  for split, items in tracks.items():
    for clip, path, beats in items:
      try:
        wav = decode.load_audio(path, sr)
      except (ValueError, OSError) as e:
        logging.error("beats: %s: %s; left out", path, e)
        continue
      for rep in reps:
        if rep == "logmel_flux":
          x = logmel_flux(wav, sr, fps)
        else:
          x = windows[rep](wav[None], sr / fps)[0][0]
        frames[rep][split].append((np.asarray(x, np.float32), beats))
      logging.debug("beats: %s framed", clip)
  return {rep: fit(frames[rep]["train"], frames[rep]["valid"],
                   frames[rep]["test"], fps, hidden=hidden, seed=seed)
          for rep in reps}
