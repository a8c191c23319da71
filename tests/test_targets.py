"""Frame targets: k-means against scikit-learn, storage, resume, import,
the CLI, and alignment with the input crop through the `frames` mode."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from jaxmusic import targets as targets_cli
from jaxmusic.data import pipeline
from jaxmusic.data import records
from jaxmusic.data import targets

ROOT = os.path.join(os.path.dirname(__file__), "..")


def test_assignment_equals_sklearn_predict():
  from sklearn.cluster import MiniBatchKMeans
  rng = np.random.default_rng(0)
  x = rng.standard_normal((5000, 39)).astype(np.float32) * rng.uniform(
      0.5, 5, 39).astype(np.float32)
  km = MiniBatchKMeans(n_clusters=50, random_state=0, n_init=3).fit(x[:2000])
  np.testing.assert_array_equal(
      targets.assign(x, km.cluster_centers_.astype(np.float32), chunk=777),
      km.predict(x))


def test_roll_texture_ignores_transposition_and_reads_chords():
  rng = np.random.default_rng(0)
  roll = np.zeros((128, 40), np.float32)
  for t in range(0, 40, 4):  # random chords in the middle register
    notes = rng.choice(np.arange(50, 80), size=rng.integers(1, 5),
                       replace=False)
    roll[notes, t:t + rng.integers(1, 5)] = rng.uniform(0.3, 1.0)
  for shift in (-7, 5):
    np.testing.assert_allclose(targets.roll_texture(np.roll(roll, shift, 0)),
                               targets.roll_texture(roll))
  # A C major triad held two frames, then a tritone (C, F#) struck.
  chord = np.zeros((128, 3), np.float32)
  chord[[60, 64, 67], :2] = 0.5
  chord[[72, 78], 2] = 1.0
  x = targets.roll_texture(chord)
  np.testing.assert_allclose(x[:, :4], [[3, 3, 7 / 12, 0.5],
                                         [3, 0, 7 / 12, 0.5],
                                         [2, 2, 0.5, 1.0]])
  # Interval classes 1..6: the triad's 3, 4 and 5; the tritone's 6.
  np.testing.assert_array_equal(x[:, 4:], [[0, 0, 1, 1, 1, 0],
                                            [0, 0, 1, 1, 1, 0],
                                            [0, 0, 0, 0, 0, 1]])


def test_key_relative_chroma_finds_the_tonic_and_ignores_transposition():
  # A C major melody (scale degrees 1 3 5 1 4 6 5 7 1), its tonic held
  # longest, over a C bass: the key is C; moved to A (+9), the key is A and
  # the key-relative classes are the same.
  roll = np.zeros((128, 36), np.float32)
  for i, pitch in enumerate((60, 64, 67, 72, 65, 69, 67, 71, 72)):
    roll[pitch, 4 * i:4 * i + (8 if pitch in (60, 72) else 3)] = 0.8
  roll[48, :] = 0.5
  assert targets.estimate_tonic(targets.pitch_classes(roll)) == 0
  up = np.roll(roll, 9, axis=0)
  assert targets.estimate_tonic(targets.pitch_classes(up)) == 9
  key_chroma = lambda r: targets.key_relative(targets.pitch_classes(r))
  np.testing.assert_array_equal(key_chroma(up), key_chroma(roll))
  # Class 0 is the tonic: sounding (the bass) in every frame.
  assert (key_chroma(roll)[0] > 0).all()
  assert not key_chroma(np.zeros((128, 4), np.float32)).any()


def test_reservoir_is_bounded_and_uniform():
  res = targets.Reservoir(1000, seed=0)
  for lo in range(0, 100_000, 3000):
    res.add(np.arange(lo, min(lo + 3000, 100_000), dtype=np.float32)[:, None])
  sample = res.sample()[:, 0]
  assert len(sample) == 1000 and len(np.unique(sample)) == 1000
  # Uniform over the stream: each tenth of it holds about a tenth.
  counts = np.bincount((sample // 10_000).astype(int), minlength=10)
  assert counts.min() > 60 and counts.max() < 140


def test_standardized_fit_clusters_what_the_loudest_dimension_hides():
  """z-scored first, k=2 splits the frames on the informative dimension
  (two tight modes at +-1); raw, on the dimension 100 times wider (noise),
  as raw MFCC k-means splits on c0. The scale is the sample's own."""
  rng = np.random.default_rng(0)
  mode_N = rng.integers(0, 2, 4000)
  x = np.stack([rng.uniform(-100, 100, 4000),
                2.0 * mode_N - 1 + 0.01 * rng.standard_normal(4000)], 1)
  stream = np.split(x.astype(np.float32), 8)

  def agreement(standardize):
    spec = targets.KMeansSpec(k=2, fit_fraction=1.0, standardize=standardize)
    centroids, scale, n = targets.fit_kmeans(iter(stream), spec,
                                             progress=False)
    assert n == 4000 and (scale is None) != standardize
    codes = targets.assign(targets.standardize(x, scale), centroids)
    return max(np.mean(codes == mode_N), np.mean(codes != mode_N)), scale

  z, scale = agreement(True)
  raw, _ = agreement(False)
  assert z == 1.0 and raw < 0.7
  np.testing.assert_allclose(scale, [x.mean(0), x.std(0)], rtol=1e-4,
                             atol=1e-4)


def test_standardized_targets_are_named_stored_and_assigned(tiny_targets):
  assert targets.default_name("mfcc", 100, True) == "mfcc_z_k100"
  assert targets.parse_default_name("mfcc_z_k100") == ("mfcc", 100, True)
  assert targets.parse_default_name("mfcc_k100") == ("mfcc", 100, False)
  assert targets.parse_default_name("roll_key_chroma_k200") == (
      "roll_key_chroma", 200, False)
  assert targets.parse_default_name("notafeature_z_k8") is None
  data = pipeline.PreparedData(tiny_targets)
  feature, k, standardize = targets.parse_default_name("mfcc_z_k16")
  entry = targets.acoustic_targets(
      data, "mfcc_z_k16", feature,
      targets.KMeansSpec(k=k, fit_fraction=0.5, standardize=standardize),
      progress=False)
  assert entry["standardize"] is True
  # A set made without the option records none, so its stored codes keep
  # their meaning.
  assert "standardize" not in data.manifest["targets"]["mfcc_k16"]
  store = targets.store_dir(tiny_targets, "mfcc_z_k16")
  scale = np.load(os.path.join(store, "scale.npy"))
  centroids = np.load(os.path.join(store, "centroids.npy"))
  track = data.tracks("test")[0]
  frames = targets.acoustic_frames("mfcc", data, "test", track)
  data = pipeline.PreparedData(tiny_targets)  # its manifest names the set
  stored = np.concatenate([data.segment("test", track["first_record"] + s,
                                        "mfcc_z_k16")
                           for s in range(track["num_segments"])], axis=-1)
  np.testing.assert_array_equal(
      stored[0], targets.assign(targets.standardize(frames, scale),
                                centroids))
  assert scale.shape == (2, 39) and (scale[1] > 0).all()


def test_acoustic_targets_stored_named_and_aligned(tiny_targets):
  data = pipeline.PreparedData(tiny_targets)
  entry = data.manifest["targets"]["mfcc_k16"]
  assert (entry["k"], entry["codebooks"], entry["source"]) == (16, 1, "mfcc")
  assert entry["usage"]["used"] <= 16 and entry["usage"]["entropy_bits"] > 2
  centroids = np.load(os.path.join(targets.store_dir(tiny_targets,
                                                     "mfcc_k16"),
                                   "centroids.npy"))
  # Every frame of a test track is its MFCC frame's nearest centroid, on
  # the frame grid, across the segment records.
  track = data.tracks("test")[0]
  frames = targets.acoustic_frames("mfcc", data, "test", track)
  assert frames.shape == (track["num_segments"] * data.frames_per_segment,
                          39)
  stored = np.concatenate([data.segment("test", track["first_record"] + s,
                                        "mfcc_k16")
                           for s in range(track["num_segments"])], axis=-1)
  np.testing.assert_array_equal(stored[0], targets.assign(frames, centroids))
  # The key-relative chroma is the track's chroma turned to its tonic.
  chroma = targets.acoustic_frames("chroma", data, "test", track)
  tonic = targets.estimate_tonic(chroma.T)
  np.testing.assert_array_equal(
      targets.acoustic_frames("key_chroma", data, "test", track),
      np.roll(chroma, -tonic, axis=1))


def test_frames_mode_crops_targets_with_the_input(tiny_corpus, tmp_path):
  """Codes that count frames (code j = frame j of its track) make every
  target crop name its own start: at random offsets, across segment
  borders, the crop must be exactly the input crop's frames."""
  data = pipeline.PreparedData(tiny_corpus)
  codes_dir = tmp_path / "codes"
  codes_dir.mkdir()
  n_max = 0
  for split in records.SPLITS:
    for t in data.tracks(split):
      n = t["num_segments"] * data.frames_per_segment
      n_max = max(n_max, n)
      np.save(codes_dir / f"{t['id']}.npy", np.arange(n)[None])
  targets.import_targets(data, "frame_index", str(codes_dir), k=n_max,
                         progress=False)
  data = pipeline.PreparedData(tiny_corpus)
  crop = 24 * data.hop
  ds = pipeline.make_dataset(data, "train", "frames", batch_size=8,
                             crop_samples=crop, targets=("frame_index",),
                             seed=3)
  batch = next(iter(ds))
  assert batch["frame_index"].shape == (8, 1, 24)
  assert batch["frame_index"].dtype == np.int32
  starts = set()
  for b in range(8):
    codes = batch["frame_index"][b, 0]
    start = int(codes[0])
    starts.add(start)
    np.testing.assert_array_equal(codes, np.arange(start, start + 24))
    track = data.tracks("train")[int(batch["track"][b])]
    np.testing.assert_array_equal(
        batch["inputs"][b], data.span("train", track, "waveform", start,
                                      crop))
  assert len(starts) > 1


def test_import_resamples_encodec_codes(tiny_corpus, tmp_path):
  """8 codebooks x 1024 at 75 Hz onto the 43 Hz frame grid, by the time of
  each frame."""
  data = pipeline.PreparedData(tiny_corpus)
  rng = np.random.default_rng(0)
  src = {}
  for split in records.SPLITS:
    for t in data.tracks(split):
      seconds = t["num_segments"] * data.segment_samples / 22050
      src[t["id"]] = rng.integers(0, 1024, (8, int(np.ceil(seconds * 75))))
      np.save(tmp_path / f"{t['id']}.npy", src[t["id"]])
  entry = targets.import_targets(data, "encodec", str(tmp_path), k=1024,
                                 rate=75.0, progress=False)
  assert (entry["codebooks"], entry["k"]) == (8, 1024)
  data = pipeline.PreparedData(tiny_corpus)
  track = data.tracks("valid")[1]
  got = data.span("valid", track, "encodec", 0,
                  track["num_segments"] * data.segment_samples)
  j = np.arange(got.shape[1])
  want = src[track["id"]][:, (j / data.manifest["frame_rate"] * 75)
                          .astype(int)]
  np.testing.assert_array_equal(got, want)


def test_bad_codes_name_the_track(tiny_corpus, tmp_path):
  data = pipeline.PreparedData(tiny_corpus)
  for split in records.SPLITS:
    for t in data.tracks(split):
      np.save(tmp_path / f"{t['id']}.npy", np.full((1, 500), 7))
  with pytest.raises(ValueError, match="outside 0..4"):
    targets.import_targets(data, "bad", str(tmp_path), k=5, progress=False)


def test_assignment_resumes_where_it_stopped(tiny_corpus):
  data = pipeline.PreparedData(tiny_corpus)
  calls = []
  n_train = len(data.tracks("train"))

  def codes(split, track, fail_at=None):
    calls.append((split, track["id"]))
    if fail_at is not None and len(calls) == fail_at:
      raise KeyboardInterrupt
    return np.zeros((1, track["num_segments"] * data.frames_per_segment),
                    np.int64)

  assert n_train > 13
  with pytest.raises(KeyboardInterrupt):
    targets.write_codes(data, "resume", lambda s, t: codes(s, t, 13), 1, 4,
                        {"source": "test"}, progress=False, flush_every=4)
  calls.clear()
  targets.write_codes(data, "resume", codes, 1, 4, {"source": "test"},
                      progress=False, flush_every=4)
  total = sum(len(data.tracks(s)) for s in records.SPLITS)
  assert len(calls) == total - 12  # the first 12 train tracks were saved
  assert calls[0] == ("train", data.tracks("train")[12]["id"])


def test_cli_hyphenated_flags_and_usage_line(tiny_corpus):
  assert targets_cli.underscored("--from-run=/a-b") == "--from_run=/a-b"
  assert targets_cli.underscored("-v") == "-v"
  out = subprocess.run(
      [sys.executable, "-m", "jaxmusic.targets", "--data", tiny_corpus,
       "--feature", "roll_chroma", "--k", "8", "--fit-fraction", "0.5"],
      capture_output=True, text=True, cwd=ROOT, check=True)
  last = out.stdout.strip().splitlines()[-1]
  assert last.startswith("targets roll_chroma_k8: 1 x K=8 from roll_chroma;")
  assert "of 8 codes, entropy" in last
  with open(os.path.join(tiny_corpus, "manifest.json")) as f:
    assert "roll_chroma_k8" in json.load(f)["targets"]


@pytest.mark.slow
def test_beam_assignment_is_byte_identical_to_local(tiny_corpus):
  """`--runner beam` (the DirectRunner, 2 worker processes) stores the same
  codes as the local pass, and leaves no work files."""
  data = pipeline.PreparedData(tiny_corpus)
  spec = targets.KMeansSpec(k=8, fit_fraction=0.5)
  targets.acoustic_targets(data, "chroma_local", "roll_chroma", spec,
                           progress=False)
  out = subprocess.run(
      [sys.executable, "-m", "jaxmusic.targets", "--data", tiny_corpus,
       "--feature", "roll_chroma", "--k", "8", "--fit-fraction", "0.5",
       "--name", "chroma_beam", "--runner", "beam", "--workers", "2"],
      capture_output=True, text=True, cwd=ROOT, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  local = targets.store_dir(tiny_corpus, "chroma_local")
  beam = targets.store_dir(tiny_corpus, "chroma_beam")
  assert sorted(os.listdir(beam)) == sorted(os.listdir(local))
  for split in records.SPLITS:
    with open(os.path.join(local, f"{split}.npy"), "rb") as a, \
        open(os.path.join(beam, f"{split}.npy"), "rb") as b:
      assert a.read() == b.read(), split
  bad = subprocess.run(
      [sys.executable, "-m", "jaxmusic.targets", "--data", tiny_corpus,
       "--feature", "roll_chroma", "--", "--runner=DirectRunner"],
      capture_output=True, text=True, cwd=ROOT, timeout=300)
  assert bad.returncode == 1 and "need --runner=beam" in bad.stderr


def test_missing_target_set_says_how_to_make_it(tiny_corpus):
  with pytest.raises(ValueError, match="python -m jaxmusic.targets .* "
                     "--feature mfcc --k 7`"):
    pipeline.make_dataset(tiny_corpus, "train", "frames", batch_size=2,
                          crop_samples=4096, targets=("mfcc_k7",))
  with pytest.raises(ValueError, match="--feature mfcc --k 7 --standardize`"):
    pipeline.make_dataset(tiny_corpus, "train", "frames", batch_size=2,
                          crop_samples=4096, targets=("mfcc_z_k7",))


def test_run_layer_frames_read_inputs_as_training_does(pianoroll_run,
                                                        tiny_corpus):
  """Iteration 2 feeds the run's encoder each segment cut by the training
  pipeline's `span` (a piano roll scaled as in training, not the stored
  velocities)."""
  import jax.numpy as jnp
  from jaxmusic import models
  from jaxmusic.eval import frozen
  from jaxmusic.eval import layer_targets
  data = pipeline.PreparedData(tiny_corpus)
  encoder = frozen.load(pianoroll_run)
  track = data.tracks("test")[0]
  got = layer_targets.run_layer_frames(encoder, data, 1)("test", track)
  x = data.span("test", track, "pianoroll", data.frames_per_segment,
                data.segment_samples)
  layers = models.apply(encoder.module, encoder.params, encoder.state,
                        jnp.asarray(x[None]))[0].layers
  fps = data.frames_per_segment
  np.testing.assert_allclose(got[fps:2 * fps], np.asarray(layers[1][0]),
                             rtol=1e-5, atol=1e-5)
