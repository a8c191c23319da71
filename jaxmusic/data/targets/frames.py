"""The frames k-means clusters: acoustic features of the waveform, the
piano roll's transposition-invariant texture, pitch classes relative to
each track's estimated key (Krumhansl-Schmuckler)."""

import numpy as np

from jaxmusic.data import features as feats
from jaxmusic.data.targets.names import SYMBOLIC

def _whole_track(data, split, track, feature):
  """A track's whole `feature`, through the same `span` that cuts training
  crops (so dequantised and scaled as the encoder reads it)."""
  return data.span(split, track, feature, 0,
                   track["num_segments"] * data.segment_samples)


def acoustic_frames(feature: str, data, split, track) -> np.ndarray:
  """`N x D` frames of `feature` over one track, on the frame grid."""
  n = track["num_segments"] * data.frames_per_segment
  if feature in SYMBOLIC:
    # Velocities 0..127 to [0, 1], the scale the frontend gives encoders.
    roll = _whole_track(data, split, track, "pianoroll")[:, :n] / 127.0
    if feature == "roll_texture":
      return roll_texture(roll)
    if feature == "roll_key_chroma":
      return key_relative(pitch_classes(roll)).T
    if feature == "roll_chroma":
      roll = pitch_classes(roll)
    return roll.T
  cfg = feats.FeatureConfig(**data.manifest["feature_config"])
  wav = _whole_track(data, split, track, "waveform")
  if feature == "mfcc":
    import librosa  # pylint: disable=g-import-not-at-top
    m = librosa.feature.mfcc(y=wav, sr=cfg.sample_rate, n_mfcc=13,
                             n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                             n_mels=cfg.n_mels)[:, :n]
    # librosa's 9-frame regression needs 9 frames; a segment has more.
    out = np.concatenate([m, librosa.feature.delta(m),
                          librosa.feature.delta(m, order=2)])
  elif feature == "key_chroma":
    out = key_relative(feats.audio_feature("chroma", wav, cfg)[:, :n])
  else:
    out = feats.audio_feature(feature, wav, cfg)[:, :n]
    if feature == "cqt":
      import librosa  # pylint: disable=g-import-not-at-top
      out = librosa.amplitude_to_db(out, ref=1.0, top_db=80.0)
  return out.T.astype(np.float32)


def roll_texture(roll_PxN: np.ndarray) -> np.ndarray:
  """`N x 10` transposition-invariant frames of a `128 x N` piano roll in
  [0, 1]: sounding notes, note onsets, pitch span in octaves, mean
  velocity and the interval-class vector (how many pairs of sounding
  pitch classes lie 1..6 semitones apart). Absolute-pitch codes
  (`pianoroll`, `roll_chroma`) cluster chord shapes at their root; when
  roots vary from piece to piece, predicting them teaches key, not style,
  while these codes carry rhythm, density and chord quality."""
  on_PxN = roll_PxN > 0
  before_PxN = np.pad(on_PxN[:, :-1], ((0, 0), (1, 0)))
  sounding_N = on_PxN.sum(0)
  onsets_N = (on_PxN & ~before_PxN).sum(0)
  pitch_P = np.arange(len(on_PxN))[:, None]
  top_N = np.where(on_PxN, pitch_P, -1).max(0)
  bottom_N = np.where(on_PxN, pitch_P, len(on_PxN)).min(0)
  span_N = np.maximum(top_N - bottom_N, 0) / 12.0
  velocity_N = roll_PxN.sum(0) / np.maximum(sounding_N, 1)
  classes_12xN = np.zeros((12, on_PxN.shape[1]), np.float32)
  for p in range(12):
    classes_12xN[p] = on_PxN[p::12].any(0)
  # Pairs of sounding pitch classes at each interval class 1..6.
  intervals_6xN = np.stack([
      (classes_12xN * np.roll(classes_12xN, -d, axis=0)).sum(0)
      / (2.0 if d == 6 else 1.0) for d in range(1, 7)])
  return np.concatenate(
      [np.stack([sounding_N, onsets_N, span_N, velocity_N]),
       intervals_6xN]).T.astype(np.float32)


def pitch_classes(roll_PxN: np.ndarray) -> np.ndarray:
  """`12 x N`: the loudest note of each pitch class (C first)."""
  return np.stack([roll_PxN[p::12].max(axis=0) for p in range(12)])


# Krumhansl & Kessler's (1982) probe-tone ratings, tonic first.
KK_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29,
            2.88)
KK_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34,
            3.17)


def estimate_tonic(chroma_12xN: np.ndarray) -> int:
  """The tonic pitch class of the key whose Krumhansl-Kessler profile
  correlates best with the track's pitch-class weights (Krumhansl and
  Schmuckler's key finding); 0 for a silent track."""
  weights_12 = chroma_12xN.sum(axis=1)
  if not weights_12.any():
    return 0
  best, tonic = -np.inf, 0
  for profile in (KK_MAJOR, KK_MINOR):
    for t in range(12):
      r = np.corrcoef(weights_12, np.roll(profile, t))[0, 1]
      if r > best:
        best, tonic = r, t
  return tonic


def key_relative(chroma_12xN: np.ndarray) -> np.ndarray:
  """`12 x N` pitch classes rotated so the track's estimated tonic is
  class 0: scale degrees, which carry mode and harmony, where the chroma
  itself carries the key the track happens to be in. The key is estimated
  over the whole track, so a frame's codes do not depend on its crop."""
  return np.roll(chroma_12xN, -estimate_tonic(chroma_12xN), axis=0)
