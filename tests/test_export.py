"""Export: embeddings equal the encoder applied directly, splits stay
disjoint, `--audio` skips bad files, bad input gets a one-line error."""

import json
import os
import subprocess
import sys

import numpy as np
import orbax.checkpoint as ocp
import pytest
import soundfile

from jaxmusic import config as config_lib
from jaxmusic.eval import embeddings
from jaxmusic.eval import frozen
from jaxmusic import models
from jaxmusic.data import pipeline

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def exported(tiny_run, tiny_corpus, tmp_path_factory):
  out = str(tmp_path_factory.mktemp("emb"))
  embeddings.run(tiny_run, out, data_dir=tiny_corpus, layers="all",
                 baseline_names=("random_init", "mfcc", "logmel_stats",
                                 "logmel_pca", "roll_stats"),
                 batch_size=32, progress=False)
  return out


def _direct_embeddings(tiny_run, tiny_corpus, split):
  """The encoder applied to the split's crops, with variables from a full
  (not partial) restore of the newest checkpoint."""
  config = config_lib.load_run_config(tiny_run)
  state = ocp.StandardCheckpointer().restore(
      os.path.join(tiny_run, "checkpoints", "4", "state"))
  module = models.make_encoder(config.model)
  params = state["params"]["encoder"]
  model_state = models.state_from_checkpoint(state["model_state"]["encoder"])
  assert list(model_state) == ["batch_stats"]
  ds = pipeline.make_dataset(tiny_corpus, split, "sequential", batch_size=50,
                             crop_samples=config.data.crop_samples)
  return np.concatenate([np.asarray(models.apply(
      module, params, model_state, b["inputs"])[0].pooled) for b in ds])


@pytest.mark.slow
def test_embeddings_equal_the_encoder_applied_directly(exported, tiny_run,
                                                       tiny_corpus):
  seg = os.path.join(exported, "test", "encoder", "segment")
  emb = np.load(os.path.join(seg, "embeddings.npy"))
  assert emb.dtype == np.float32
  np.testing.assert_allclose(
      emb, _direct_embeddings(tiny_run, tiny_corpus, "test"), atol=1e-5)
  # Per-layer N x L x D: the last layer (mean-pooled) is the embedding.
  layers = np.load(os.path.join(seg, "layers.npy"))
  info = json.load(open(os.path.join(exported, "export.json")))
  assert info["layer_widths"]["encoder"] == [8] * 6 + [16]
  assert layers.shape == (len(emb), 7, 16)
  np.testing.assert_allclose(layers[:, -1], emb, atol=1e-6)
  assert not layers[:, 0, 8:].any()  # narrower layers are zero-padded


def test_track_level_averages_segments_with_ids_and_labels(exported,
                                                           tiny_corpus):
  seg = os.path.join(exported, "valid", "mfcc", "segment")
  trk = os.path.join(exported, "valid", "mfcc", "track")
  load = lambda d, n: np.load(os.path.join(d, f"{n}.npy"))
  tracks = pipeline.PreparedData(tiny_corpus).tracks("valid")
  assert load(trk, "ids").tolist() == [t["id"] for t in tracks]
  assert load(trk, "label").tolist() == [t["label"] for t in tracks]
  emb, track = load(seg, "embeddings"), load(seg, "track")
  for i in range(len(tracks)):
    np.testing.assert_allclose(load(trk, "embeddings")[i],
                               emb[track == i].mean(0), rtol=1e-5, atol=1e-4)
  # 3 one-second segments of 729-sample crops per track, in order.
  assert (load(trk, "num_chunks") == 3 * (22016 // 729)).all()
  assert load(seg, "segment")[:35].tolist() == [0] * 30 + [1] * 5
  tempo = load(trk, "values")[:, 0]
  assert np.all((tempo > 50) & (tempo < 200))


def test_no_track_in_two_splits(exported):
  ids = {s: set(np.load(os.path.join(exported, s, "encoder", "track",
                                     "ids.npy")).tolist())
         for s in ("train", "valid", "test")}
  assert ids["train"] and ids["valid"] and ids["test"]
  assert not ids["train"] & ids["valid"]
  assert not ids["train"] & ids["test"]
  assert not ids["valid"] & ids["test"]


def test_baselines_beside_the_encoder(exported):
  dims = {rep: np.load(os.path.join(exported, "test", rep, "track",
                                    "embeddings.npy")).shape[1]
          for rep in ("encoder",) + embeddings.DEFAULT_BASELINES}
  # mfcc 20 and log-mel 128 bands, mean+std; PCA 64 components; the
  # piano roll's 5 statistics and 25 interval bins; random init has the
  # encoder's width.
  assert dims == {"encoder": 16, "random_init": 16, "mfcc": 40,
                  "logmel_stats": 256, "logmel_pca": 64, "roll_stats": 30}
  enc, rnd = (np.load(os.path.join(exported, "test", r, "segment",
                                   "embeddings.npy"))
              for r in ("encoder", "random_init"))
  assert not np.allclose(enc, rnd)


def test_input_pca_needs_an_encoder_with_frames_of_its_own(tiny_run,
                                                          tmp_path):
  with pytest.raises(ValueError, match="input_pca: the encoder's frontend "
                     "has no frames"):
    embeddings.run(tiny_run, str(tmp_path / "emb"),
                   baseline_names=("input_pca",), progress=False)


def test_pooling_meanstd_and_audio_files_with_a_bad_one(tiny_run, tmp_path):
  t = np.arange(22050 * 2) / 22050
  soundfile.write(tmp_path / "tone.wav", 0.5 * np.sin(2 * np.pi * 440 * t),
                  22050)
  soundfile.write(tmp_path / "silent.wav", np.zeros(22050), 22050)
  (tmp_path / "broken.wav").write_bytes(b"RIFF not really a wave file")
  out = str(tmp_path / "emb")
  info = embeddings.run(tiny_run, out, audio=[str(tmp_path)], pooling="meanstd",
                        baseline_names=("mfcc",), progress=False)
  assert info["splits"] == ["audio"] and info["rejected"] == 2
  rejected = [json.loads(l) for l in open(os.path.join(out,
                                                       "rejected.jsonl"))]
  assert sorted(os.path.basename(r["path"]) for r in rejected) == [
      "broken.wav", "silent.wav"]
  emb = np.load(os.path.join(out, "audio", "encoder", "track",
                             "embeddings.npy"))
  assert emb.shape == (1, 32)  # mean and std of the 16-wide last layer
  seg = np.load(os.path.join(out, "audio", "encoder", "segment",
                             "embeddings.npy"))
  assert len(seg) == -(-44100 // 729)  # the last crop zero-padded


def _cli(*args):
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT, XLA_FLAGS="")
  return subprocess.run([sys.executable, "-m", "jaxmusic.export", *args],
                        capture_output=True, text=True, timeout=300, env=env)


def test_missing_checkpoint_and_workdir_are_one_line_errors(tiny_run,
                                                            tmp_path):
  proc = _cli(f"--workdir={tiny_run}", "--step=999", f"--out={tmp_path}")
  assert proc.returncode != 0
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith("error: ") and "checkpoints/999" in last
  assert "have steps [" in last and "4]" in last
  proc = _cli(f"--workdir={tmp_path / 'nope'}", f"--out={tmp_path}")
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith("error: ") and "config.json" in last


@pytest.mark.slow
def test_mel_run_exports_from_prepared_data_and_audio_files(
    mel_run, tiny_corpus, tmp_path):
  """A mel transformer's run: the kNN monitor ran, export from the
  prepared splits equals the encoder applied to the same crops, and
  `--audio` files are cut into the same waveform crops."""
  rows = [json.loads(l) for l in open(os.path.join(mel_run,
                                                   "metrics.jsonl"))]
  assert [r["step"] for r in rows if "knn_accuracy" in r] == [0, 2, 4]
  out = str(tmp_path / "emb")
  info = embeddings.run(mel_run, out, data_dir=tiny_corpus, splits=("valid",),
                        layers="all", baseline_names=("random_init", "mfcc"),
                        batch_size=16, progress=False)
  # The transformer's input embedding, then its two layers.
  assert info["feature"] == "waveform" and info["layer_widths"]["encoder"] \
      == [32, 32, 32]
  seg = os.path.join(out, "valid", "encoder", "segment")
  emb = np.load(os.path.join(seg, "embeddings.npy"))
  encoder = frozen.load(mel_run)
  ds = pipeline.make_dataset(tiny_corpus, "valid", "sequential",
                             batch_size=16, crop_samples=32 * 512)
  direct = np.concatenate([np.asarray(models.apply(
      encoder.module, encoder.params, encoder.state, b["inputs"])[0].pooled)
                           for b in ds])
  np.testing.assert_allclose(emb, direct, atol=1e-4)
  t = np.arange(22050 * 2) / 22050
  soundfile.write(tmp_path / "tone.wav", 0.5 * np.sin(2 * np.pi * 440 * t),
                  22050)
  info = embeddings.run(mel_run, str(tmp_path / "files"),
                        audio=[str(tmp_path / "tone.wav")],
                        baseline_names=("mfcc",), progress=False)
  files = np.load(tmp_path / "files" / "audio" / "encoder" / "segment" /
                  "embeddings.npy")
  assert files.shape == (-(-44100 // (32 * 512)), 32)
  with pytest.raises(ValueError, match="use --audio"):
    embeddings.run(mel_run, str(tmp_path / "bad"), midi=[str(tmp_path)],
                   progress=False)


def test_midi_files_are_cut_into_the_encoders_own_roll(tmp_path):
  """`--midi` cuts each file into what the encoder reads: the piano roll,
  or the multitrack roll with its instrument and drum lanes."""
  import pretty_midi
  from jaxmusic.data import features as feats
  pm = pretty_midi.PrettyMIDI()
  inst = pretty_midi.Instrument(33)
  inst.notes += [pretty_midi.Note(90, 40 + i, i * 0.3, i * 0.3 + 0.2)
                 for i in range(8)]
  kit = pretty_midi.Instrument(0, is_drum=True)
  kit.notes += [pretty_midi.Note(100, 36, i * 0.5, i * 0.5 + 0.1)
                for i in range(5)]
  pm.instruments += [inst, kit]
  path = str(tmp_path / "a.mid")
  pm.write(path)
  fc = feats.FeatureConfig()
  pm = pretty_midi.PrettyMIDI(path)
  for feature, rows in (("pianoroll", 128), ("multitrack", 191)):
    crops, tracks, rejected = embeddings._file_crops([path], "midi", 32 * 512,
                                                 fc, feature)
    assert len(tracks) == 1 and not rejected
    first = np.asarray(crops[0]["inputs"])
    assert first.shape == (rows, 32)
    np.testing.assert_array_equal(
        first, feats.midi_feature(feature, pm, 32, fc))
  assert first[128 + 4].any() and first[144 + 36 - 35].any()


@pytest.mark.slow
def test_pianoroll_run_exports_from_prepared_data_and_midi_files(
    pianoroll_run, tiny_corpus, tmp_path):
  import pretty_midi
  out = str(tmp_path / "emb")
  info = embeddings.run(pianoroll_run, out, data_dir=tiny_corpus,
                        splits=("test",), batch_size=16, progress=False)
  assert info["feature"] == "pianoroll"
  assert info["representations"] == ["encoder", "random_init", "mfcc",
                                     "logmel_stats", "logmel_pca",
                                     "roll_stats"]
  pm = pretty_midi.PrettyMIDI()
  inst = pretty_midi.Instrument(0)
  inst.notes += [pretty_midi.Note(90, 60 + i, i * 0.25, i * 0.25 + 0.2)
                 for i in range(12)]
  pm.instruments.append(inst)
  pm.write(str(tmp_path / "scale.mid"))
  (tmp_path / "broken.mid").write_bytes(b"MThd no")
  info = embeddings.run(pianoroll_run, str(tmp_path / "files"),
                        midi=[str(tmp_path)], progress=False)
  assert info["splits"] == ["midi"] and info["rejected"] == 1
  assert info["representations"] == ["encoder", "random_init"]
  seg = tmp_path / "files" / "midi" / "encoder" / "segment"
  emb = np.load(seg / "embeddings.npy")
  # 2.95 s of notes at 43 frames/s, in 32-frame crops.
  assert emb.shape == (-(-int(np.ceil(2.95 * 22050 / 512)) // 32), 32)
  # The crop equals the prepared piano roll's frames, so the embedding
  # is the encoder applied to the roll pretty_midi gives.
  encoder = frozen.load(pianoroll_run)
  roll = np.zeros((128, 32), np.float32)
  full = pm.get_piano_roll(fs=22050 / 512)
  roll[:, :min(32, full.shape[1])] = full[:, :32]
  want = models.apply(encoder.module, encoder.params, encoder.state,
                      roll[None])[0].pooled
  np.testing.assert_allclose(emb[0], np.asarray(want)[0], atol=1e-4)
  with pytest.raises(ValueError, match="use --midi"):
    embeddings.run(pianoroll_run, str(tmp_path / "bad"),
                   audio=[str(tmp_path)], progress=False)
