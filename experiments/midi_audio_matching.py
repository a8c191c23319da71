r"""MIDI <-> audio matching with binary codes (Raffel & Ellis, ISMIR 2015),
against DTW over CQT-like frames.

Each of N test tracks has a recording (`waveform`) and its MIDI (the
piano roll, or the multitrack roll where the roll tower reads that; its
first 128 rows are the piano roll). Both become sequences, a window every `--hop` seconds:

  hash      a two-tower run's codes (`two_tower.py:towers=audio+pianoroll,
            hash=32`): the audio tower on each window of the recording,
            the piano-roll tower on the same window of the MIDI, each
            output's signs packed into bits; distances are Hamming
            distances (XOR and popcount)
  cqt       the recording's constant-Q magnitudes (librosa, 84 semitones
            from C1, in dB) against the MIDI's piano roll on the same 84
            pitches, both averaged over each window; distances are
            cosine distances
  chroma    the recording's CQT chroma (librosa) against the piano roll
            folded into 12 pitch classes, both averaged over each window;
            cosine distances (octave-blind, so a note's overtones count
            less against it)

Each MIDI is matched to the recording with the lowest DTW cost (per path
step) over the distance matrix between their sequences, among all N.
Reported per representation: match accuracy (chance 1 / N), the wall time
of all N x N distance matrices and of the whole matching, and the time a
distance (over all matrices); the last line is the per-distance speed-up
of the codes over the CQT frames (after the one over chroma), measured in
the same run. Writes
`results.json` and `report.md` to `--out`.

  python -m jaxmusic.main \
      --config ml_collections_configs/two_tower.py:towers=audio+pianoroll,hash=32,runlocal \
      --workdir /tmp/hash_run
  python -m experiments.midi_audio_matching --run /tmp/hash_run \
      --data ~/.cache/jaxmusic/synthetic --out /tmp/matching
"""

import argparse
import json
import os
import time

import librosa
import numpy as np

from jaxmusic.data import features as feats
from jaxmusic.data import pipeline
from jaxmusic.eval import frozen
from jaxmusic.eval import hashing

CQT_LOW = 24  # C1, librosa.cqt's default fmin, as a MIDI pitch
CQT_BINS = 84


def windows(x_CxT: np.ndarray, width: int, step: int) -> np.ndarray:
  """`N x C x width` windows of `x`, one starting every `step` along its
  last axis (the last window ends at or before the end)."""
  starts = np.arange(0, x_CxT.shape[-1] - width + 1, step)
  return np.stack([x_CxT[..., s:s + width] for s in starts])


def sequences(run: str, data_dir: str, split: str, n: int, hop_s: float):
  """{representation: (MIDI sequences, recording sequences)} of the first
  `n` tracks of `split`."""
  data = pipeline.PreparedData(data_dir)
  audio = frozen.load(run, tower="audio")
  roll = frozen.load(run, tower="pianoroll")
  for feature in (feats.WAVEFORM, roll.feature):
    data.has(feature)
  sr, hop = data.manifest["sample_rate"], data.hop
  frames = audio.crop_samples // hop
  step = max(1, int(round(hop_s * sr / hop)))
  # One compiled function a tower, for every track.
  embed_audio, embed_roll = audio.embed_fn("encoder"), roll.embed_fn(
      "encoder")
  out = {"hash": ([], []), "cqt": ([], []), "chroma": ([], [])}
  for track in data.tracks(split)[:n]:
    length = track["num_segments"] * data.segment_samples
    wav = data.span(split, track, feats.WAVEFORM, 0, length)
    roll_PxF = data.span(split, track, roll.feature, 0, length)
    wav_win = windows(wav[None], frames * hop, step * hop)[:, 0]
    roll_win = windows(roll_PxF, frames, step)
    out["hash"][0].append(hashing.codes(frozen.embed_batched(
        embed_roll, roll_win)))
    out["hash"][1].append(hashing.codes(frozen.embed_batched(
        embed_audio, wav_win)))
    cqt = librosa.amplitude_to_db(np.abs(librosa.cqt(
        wav, sr=sr, hop_length=hop, n_bins=CQT_BINS)), ref=np.max)
    cqt = cqt[:, :roll_PxF.shape[1]] + 80.0
    piano = roll_PxF[CQT_LOW:CQT_LOW + CQT_BINS].astype(np.float32)
    out["cqt"][0].append(windows(piano, frames, step).mean(-1))
    out["cqt"][1].append(windows(cqt, frames, step).mean(-1))
    pitch_class = np.zeros((12, roll_PxF.shape[1]), np.float32)
    np.add.at(pitch_class, np.arange(128) % 12, roll_PxF[:128])
    chroma = librosa.feature.chroma_cqt(y=wav, sr=sr, hop_length=hop)
    out["chroma"][0].append(windows(pitch_class, frames, step).mean(-1))
    out["chroma"][1].append(windows(chroma[:, :roll_PxF.shape[1]], frames,
                                    step).mean(-1))
  return out


def match(midi_seqs, audio_seqs, distance) -> dict:
  """Accuracy and timings of matching each MIDI to its recording."""
  n = len(midi_seqs)
  t0 = time.perf_counter()
  matrices, count = {}, 0
  for i in range(n):
    for j in range(n):
      matrices[i, j] = distance(midi_seqs[i], audio_seqs[j])
      count += matrices[i, j].size
  t_dist = time.perf_counter() - t0
  costs = np.array([[hashing.dtw_cost(matrices[i, j]) for j in range(n)]
                    for i in range(n)])
  t_all = time.perf_counter() - t0
  return {"accuracy": float(np.mean(np.argmin(costs, axis=1)
                                    == np.arange(n))),
          "chance": 1.0 / n, "tracks": n, "distances": count,
          "distance_s": t_dist, "total_s": t_all,
          "per_distance_ns": 1e9 * t_dist / count}


def run_bits(run_dir: str) -> int:
  """The code length: the towers' bottleneck width."""
  from jaxmusic import config as config_lib  # pylint: disable=g-import-not-at-top
  return config_lib.load_run_config(run_dir).model.audio.bottleneck


def run(run_dir: str, data_dir: str, split: str = "test", n: int = 50,
        hop_s: float = 0.5, out: str = "") -> dict:
  seqs = sequences(run_dir, data_dir, split, n, hop_s)
  results = {"hash": match(*seqs["hash"], hashing.hamming),
             "cqt": match(*seqs["cqt"], hashing.cosine),
             "chroma": match(*seqs["chroma"], hashing.cosine)}
  for name in ("chroma", "cqt"):
    results[f"speedup_per_distance_{name}"] = (
        results[name]["per_distance_ns"]
        / results["hash"]["per_distance_ns"])
  results["bits"] = int(run_bits(run_dir))
  if out:
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json"), "w") as f:
      json.dump({"run": os.path.abspath(run_dir),
                 "data": os.path.abspath(data_dir), "split": split,
                 "hop_s": hop_s, **results}, f, indent=1)
    with open(os.path.join(out, "report.md"), "w") as f:
      f.write(markdown(results) + "\n")
  return results


def markdown(results: dict) -> str:
  lines = ["| representation | accuracy | chance | distances | distance "
           "time (s) | total time (s) | ns a distance |", "|" + "---|" * 7]
  for name in ("hash", "cqt", "chroma"):
    r = results[name]
    lines.append(f"| {name} | {r['accuracy']:.3f} | {r['chance']:.3f} | "
                 f"{r['distances']} | {r['distance_s']:.3f} | "
                 f"{r['total_s']:.3f} | {r['per_distance_ns']:.1f} |")
  lines.append("")
  for name, what in (("chroma", "chroma frames"), ("cqt", "CQT frames")):
    lines.append(f"per-distance speed-up of {results['bits']}-bit codes over "
                 f"{what}: {results[f'speedup_per_distance_{name}']:.1f}x")
  return "\n".join(lines)


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--run", required=True, help="A two-tower run "
                 "(towers=audio+pianoroll, hash=N).")
  p.add_argument("--data", required=True, help="Its prepared collection "
                 "(waveform and pianoroll).")
  p.add_argument("--split", default="test")
  p.add_argument("-n", type=int, default=50, help="Tracks to match.")
  p.add_argument("--hop", type=float, default=0.5, help="Seconds between "
                 "windows.")
  p.add_argument("--out", default="", help="Report directory.")
  args = p.parse_args()
  results = run(args.run, args.data, args.split, args.n, args.hop, args.out)
  print(markdown(results))


if __name__ == "__main__":
  main()
