r"""Audio <-> sheet music on a real score collection: Dorfer et al.'s tasks
(`probe --task sheets`, eval/sheets.py) for a trained
`two_tower.py:towers=audio+sheet` run and its random init, beside
chroma-DTW (`sheets.json`, `report.md`), with the figures the report
cites:

  pairs.png       sample test pairs: an excerpt's log-mel (the audio
                  tower's input) above the snippet at its centre
  alignment.png   one test piece's embedding distance matrix (a
                  recording time-stretched by 0.8 against its score), the
                  DTW path over it, and the onsets' true times

  bash experiments/data/score_renders.sh ~/data/score_renders
  python -m jaxmusic.main \
      --config ml_collections_configs/two_tower.py:towers=audio+sheet,runlocal \
      --config.data.dir ~/data/score_renders/prepared --workdir /tmp/audio_sheet
  python -m experiments.audio_sheet --run /tmp/audio_sheet \
      --data ~/data/score_renders/prepared --out experiments/results/audio_sheet
"""

import argparse
import os
import time

import librosa
import matplotlib
import numpy as np

from experiments import common
from jaxmusic.data import features as feats
from jaxmusic.data import pipeline
from jaxmusic.data import samplers
from jaxmusic.eval import frozen
from jaxmusic.eval import hashing
from jaxmusic.eval import sheets

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position


def plot_pairs(data, split, crop, path, n=4, seed=0):
  crops = samplers.Crops(data, split, feats.WAVEFORM, crop)
  rng = np.random.default_rng(seed)
  sr = data.manifest["sample_rate"]
  fig, axes = plt.subplots(2, n, figsize=(3 * n, 4.5))
  for k in range(n):
    track = crops.tracks[rng.integers(len(crops.tracks))]
    start = crops.random_start(track, rng)
    wav = crops.crop_at(track, start)
    mel = librosa.power_to_db(librosa.feature.melspectrogram(
        y=wav, sr=sr, n_fft=2048, hop_length=1024, n_mels=92), top_db=80)
    axes[0, k].imshow(mel, origin="lower", aspect="auto", cmap="magma")
    axes[0, k].set_title(os.path.basename(track["path"])[:24], fontsize=8)
    axes[1, k].imshow(255 - crops.sheet_at(track, start), cmap="gray")
    for ax in axes[:, k]:
      ax.set_xticks([])
      ax.set_yticks([])
  axes[0, 0].set_ylabel("excerpt (92 mel bands)")
  axes[1, 0].set_ylabel("snippet at its centre")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def plot_alignment(run, data, split, path, grid=0.2, rate=0.8):
  audio = frozen.load(run, tower="audio")
  towers = sheets.Towers(audio, frozen.load(run, tower="sheet"),
                         samplers.Crops(data, split, feats.WAVEFORM,
                                        audio.crop_samples))
  piece = sheets.pieces(data, split)[0]
  sr = data.manifest["sample_rate"]
  perf = librosa.effects.time_stretch(piece.wav_T, rate=rate)
  cost = hashing.cosine(
      towers.audio(perf, sheets.centres(len(perf) / sr, grid)),
      towers.sheet(piece.track,
                   sheets.centres(len(piece.wav_T) / sr, grid)))
  _, wp = librosa.sequence.dtw(C=cost)
  fig, ax = plt.subplots(figsize=(6, 5))
  ax.imshow(cost, origin="lower", aspect="auto", cmap="viridis",
            extent=(0, cost.shape[1] * grid, 0, cost.shape[0] * grid))
  ax.plot((wp[:, 1] + 0.5) * grid, (wp[:, 0] + 0.5) * grid, "w-", lw=1,
          label="DTW path")
  ax.plot(piece.onsets, piece.onsets / rate, "r.", ms=3,
          label="onsets (truth)")
  ax.set_xlabel("score time (s)")
  ax.set_ylabel(f"performance time (s), tempo x{rate}")
  ax.set_title(os.path.basename(piece.track["path"]), fontsize=9)
  ax.legend(loc="upper left", fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--run", required=True)
  p.add_argument("--data", required=True)
  p.add_argument("--split", default="test")
  p.add_argument("--out", required=True)
  args = p.parse_args()
  t0 = time.time()
  os.makedirs(args.out, exist_ok=True)
  report = sheets.run(args.run, args.data, args.split, out=args.out)
  data = pipeline.PreparedData(args.data)
  crop = frozen.load(args.run, tower="audio").crop_samples
  plot_pairs(data, args.split, crop, os.path.join(args.out, "pairs.png"))
  plot_alignment(args.run, data, args.split,
                 os.path.join(args.out, "alignment.png"))
  rows = report["rows"]
  ratio = (rows["encoder"]["audio->sheet"]["mrr"]
           / rows["random_init"]["audio->sheet"]["mrr"])
  pieces = rows["encoder"]["identification"]["pieces"]
  text = [f"# Audio <-> sheet music: {len(data.tracks(args.split))} "
          f"{args.split} pieces", "",
          f"Run `{report['workdir']}` at step {report['step']}; data "
          f"`{report['data']}`.", "", sheets.markdown(report), "",
          f"Audio->sheet MRR over random init: {ratio:.1f}x. Piece "
          f"identification chance: top-1 {1 / pieces:.3f}, top-5 "
          f"{min(1.0, 5 / pieces):.3f}.", "",
          f"`{common.command_line()}`", "",
          common.provenance(time.time() - t0)]
  with open(os.path.join(args.out, "report.md"), "w") as f:
    f.write("\n".join(text) + "\n")
  print("\n".join(text))


if __name__ == "__main__":
  main()
