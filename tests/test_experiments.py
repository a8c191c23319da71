"""`experiments/representation.py` and `objectives.py` in smoke mode (a few
steps of a small transformer, one seed) on the tiny corpus: every row of
the report is there, its numbers are finite, and the figures are written;
and `benchmarks/bench_quality.py`'s learning curve on a 4-step run."""
import importlib
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..")


def _smoke(script, data, tmp_path, *extra):
  # A copy: the script adds its k-means target sets to the collection.
  data = shutil.copytree(data, tmp_path / "data")
  out = str(tmp_path / "report")
  proc = subprocess.run(
      [sys.executable, "-m", f"experiments.{script[:-3]}", "--smoke",
       "--steps", "4", "--data", str(data), "--out", out,
       "--workdir", str(tmp_path / "runs"), *extra],
      capture_output=True, text=True, timeout=1200, cwd=ROOT,
      env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert proc.returncode == 0, proc.stderr[-4000:]
  with open(os.path.join(out, "results.json")) as f:
    results = json.load(f)
  with open(os.path.join(out, "report.md")) as f:
    report = f.read()
  for png in ("convergence.png", "clusters.png"):
    assert os.path.getsize(os.path.join(out, png)) > 1000, png
    assert f"]({png})" in report
  return results, report


def _check_rows(results, report, names):
  rows = dict((n, m) for n, m in results["table"])
  for name in names:
    assert name in rows and f"| {name} |" in report, name
    acc = rows[name]["accuracy"]
    assert acc is not None and math.isfinite(acc[0]) and 0 <= acc[0] <= 1
    assert all(v is None or all(math.isfinite(x) for x in v)
               for v in rows[name].values()), name


@pytest.mark.slow
def test_representation_smoke(tiny_targets, tmp_path):
  results, report = _smoke("representation.py", tiny_targets, tmp_path)
  names = [f"{i}{s}" for i in ("waveform", "mel", "pianoroll", "tokens")
           for s in ("", ", random init")]
  _check_rows(results, report, names + ["MFCC mean+std", "log-mel PCA"])
  assert {r["arm"] for r in results["runs"]} == {"waveform", "mel",
                                                 "pianoroll", "tokens"}
  # The same transformer under every input.
  for r in results["runs"]:
    with open(os.path.join(r["workdir"], "config.json")) as f:
      model = json.load(f)["model"]
    assert (model["width"], model["layers"], model["heads"]) == (32, 2, 2)
  # Against the titles too, though the towers' runlocal reads the waveform
  # with the SampleCNN.
  representation = _experiment_module("representation")
  common = _experiment_module("common")
  for arm in representation.arms("two_tower", "tiny"):
    c = common.config_lib.load_config(arm.config, arm.arg)
    tower = c.model[c.model.towers[0]]
    assert (tower.name, tower.frontend.name) == ("transformer", arm.name)


@pytest.mark.slow
def test_objectives_smoke(tiny_targets, tmp_path):
  results, report = _smoke("objectives.py", tiny_targets, tmp_path)
  names = ["clmr", "masked", "triplet_temporal", "triplet_label", "ae", "vae",
           "supervised"]
  _check_rows(results, report, names + [n + ", random init" for n in names]
              + ["MFCC mean+std", "log-mel PCA"])


@pytest.mark.slow
def test_bench_quality_probes_a_learning_curve(tiny_corpus, tmp_path):
  out = tmp_path / "quality"

  def bench(steps, *flags):
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.benchmarks.bench_quality",
         "--data", tiny_corpus, "--recipe", "clmr.py:runlocal", "--steps",
         str(steps), "--curve", "2", "--folds", "3", "--level", "chunk",
         "--out", str(out), "--workdir", str(tmp_path / "runs"), *flags],
        capture_output=True, text=True, timeout=1200, cwd=ROOT,
        env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert proc.returncode == 0, proc.stderr[-4000:]
    with open(out / "results.json") as f:
      return proc, json.load(f)

  # A first run under another recipe (2 steps) in the same workdir: the
  # second must train afresh, not resume it.
  _, first = bench(2)
  marker = os.path.join(first["records"][0]["workdir"], "first_run")
  open(marker, "w").close()
  proc, results = bench(4, "--bar", "10")
  assert not os.path.exists(marker)  # the 2-step run was cleared
  (record,) = results["records"]
  curve = record["curve"]
  # The random init at 0 minutes, then each kept checkpoint.
  assert [p["step"] for p in curve] == [0, 2, 4]
  minutes = [p["minutes"] for p in curve]
  assert minutes[0] == 0 < minutes[1] < minutes[2]
  assert all(0 <= p["accuracy"] <= 1 and p["std"] >= 0 for p in curve)
  assert set(results["baselines"]) == {"mfcc", "logmel_stats"}
  assert os.path.getsize(out / "curve.png") > 1000
  # `--bar`: the gain over the random init and where it would reach +10.
  assert math.isclose(record["crossing"]["gain"], 100 * (
      curve[-1]["accuracy"] - curve[0]["accuracy"]))
  assert "reaches +10 at (train min)" in (out / "report.md").read_text()
  # The last line is the final checkpoint's difference, in points.
  base = max(a for a, _ in results["baselines"].values())
  last = proc.stdout.strip().splitlines()[-1]
  assert last.endswith(f"{100 * (curve[-1]['accuracy'] - base):+.1f} "
                       "points"), last


def test_bench_quality_crossing_reads_the_curve_against_the_bar():
  crossing = _experiment_module("benchmarks.bench_quality").crossing
  curve = [{"minutes": m, "accuracy": a}
           for m, a in ((0, .60), (2, .66), (4, .68))]
  # +8 at 4 min, rising 1 point a minute on the last segment: +10 at 6.
  gain, rate, at, measured = crossing(curve, 10)
  assert (round(gain, 6), round(rate, 6), round(at, 6), measured) == (
      8, 1, 6, False)
  # A checkpoint that reached the bar is the answer, not an extrapolation.
  assert crossing(curve, 6)[2:] == (2, True)
  # A falling last segment never reaches it.
  curve[-1]["accuracy"] = .65
  assert crossing(curve, 10)[2] == math.inf


def _experiment_module(name):
  return importlib.import_module(f"experiments.{name}")


def test_runlocals_covers_every_config_at_its_own_budget():
  """`runlocals.py` trains every config's `runlocal` (a new config must
  join it), each at its own steps and schedule unless `--steps` is given;
  its gain table is each arm's trained minus random-init accuracy."""
  runlocals = _experiment_module("runlocals")
  common = _experiment_module("common")
  arms = runlocals.arms()
  configs = {f[:-3] for f in os.listdir(os.path.join(
      ROOT, "ml_collections_configs")) if f.endswith(".py")}
  assert configs == {a.config for a in arms}
  assert {a.arg for a in arms if a.config == "mert"} == {
      f"runlocal,input={i}" for i in ("waveform", "mel", "pianoroll")}
  # The data is prepared with the target sets the recipes name.
  assert common.target_sets(arms) == (
      "key_chroma_k200", "logmel_k300", "mfcc_z_k100",
      "roll_key_chroma_k200", "roll_texture_k100")
  # MERT on the mel predicts no k-means codes of its own input frames; on
  # the waveform, log-mel codes are no readout of the input.
  mert = {i: common.config_lib.load_config("mert", f"runlocal,input={i}")
          .data.targets for i in ("mel", "waveform")}
  assert mert == {"mel": ("mfcc_z_k100", "key_chroma_k200"),
                  "waveform": ("logmel_k300", "key_chroma_k200")}
  # ... with each arm's overrides.
  objectives = _experiment_module("objectives")
  assert common.target_sets(objectives.arms("pianoroll", "tiny")) == (
      "roll_texture_k100",)
  pinned = common.Arm("masked", "hubert", "input=pianoroll,runlocal",
                      (("data.targets", ("pianoroll_k100",)),))
  assert common.target_sets([pinned]) == ("pianoroll_k100",)
  arm = next(a for a in arms if a.name == "hubert_mel")
  args = common.parser("", "").parse_args(["--steps", "0"])
  own = common.make_config(arm, args, 0, "DATA")
  recipe = common.config_lib.load_config("hubert", "runlocal,input=mel")
  assert own.total_steps == recipe.total_steps
  assert own.optimizer.warmup_steps == recipe.optimizer.warmup_steps
  assert own.checkpoint.every == recipe.total_steps // 4
  args.steps = 100
  short = common.make_config(arm, args, 0, "DATA")
  assert (short.total_steps, short.optimizer.warmup_steps) == (100, 10)
  # One step has no room to warm up: the config stays valid.
  args.steps = 1
  one = common.make_config(arm, args, 0, "")
  assert one.optimizer.warmup_steps == 0
  common.config_lib.validate(one)
  runs = [{"arm": "hubert_mel", "metrics": {
      "encoder": {"accuracy": 0.8, "knn_accuracy": 0.7},
      "random_init": {"accuracy": 0.65, "knn_accuracy": 0.72}}}]
  table = runlocals.gains(runs, [arm])
  assert "| `hubert.py:runlocal,input=mel` | +15.0 | -2.0 | yes |" in table


def test_a_changed_arm_does_not_resume_the_old_run(tmp_path):
  """Training resumes any checkpoint in its workdir: an arm rerun under a
  changed config must start afresh, an interrupted one under the same
  config must keep its checkpoints."""
  common = _experiment_module("common")
  config = common.config_lib.load_config("hubert", "runlocal,input=mel")
  workdir = tmp_path / "hubert_mel-s0"
  (workdir / "checkpoints").mkdir(parents=True)
  common.config_lib.save_run_config(config, str(workdir))
  common.clear_if_other_config(str(workdir), config)
  assert (workdir / "checkpoints").exists()
  config.objective.unmasked_weight = 0.0
  common.clear_if_other_config(str(workdir), config)
  assert not workdir.exists()
  common.clear_if_other_config(str(workdir), config)  # nothing there: fine


def test_target_codes_bags_each_tracks_codes(tiny_targets, tmp_path):
  target_codes = _experiment_module("target_codes")
  # Two tracks: records 0-1 and record 2; one codebook of K=4.
  codes = np.array([[[0, 0, 1]], [[1, 1, 1]], [[3, 3, 2]]])
  tracks = [{"first_record": 0, "num_segments": 2},
            {"first_record": 2, "num_segments": 1}]
  np.testing.assert_allclose(target_codes.bags(codes, tracks, 4),
                             [[2 / 6, 4 / 6, 0, 0], [0, 0, 1 / 3, 2 / 3]])
  proc = subprocess.run(
      [sys.executable, "-m", "experiments.target_codes",
       "--data", tiny_targets, "--sets", "mfcc_k16", "--folds", "3",
       "--out", str(tmp_path)], capture_output=True, text=True, timeout=300,
      cwd=ROOT, env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert proc.returncode == 0, proc.stderr[-2000:]
  row = proc.stdout.strip().splitlines()[-1]
  assert row.startswith("| `mfcc_k16` | ")
  assert 0.0 <= float(row.split("|")[2].split("±")[0]) <= 1.0
  with open(tmp_path / "report.md") as f:
    assert row in f.read()


@pytest.mark.slow
def test_pretrained_runlocal_converts_exports_and_weights_layers(
    tmp_path, monkeypatch):
  """The MERT user's path end to end on a random model in MERT's release
  layout: converted, its 24 kHz collection prepared, every layer exported
  (input embedding + 2 layers), probed per layer and as MARBLE's weighted
  sum."""
  pytest.importorskip("transformers")
  monkeypatch.setenv("JAXMUSIC_CACHE", str(tmp_path / "cache"))
  pretrained = _experiment_module("pretrained")
  report = pretrained.main(["--runlocal", "--out", str(tmp_path / "out")])
  config = json.loads((tmp_path / "out" / "run" / "config.json").read_text())
  assert config["data"]["sample_rate"] == 24000
  layers = {row["layer"] for row in report["rows"]
            if row["representation"] == "encoder"}
  assert {"0", "1", "2", "all"} <= layers
  weighted = [row for row in report["rows"] if row["layer"] == "all"][0]
  weights = np.asarray(weighted["layer_weights"])
  assert weights.shape == (3,) and abs(weights.sum() - 1) < 1e-3


@pytest.mark.slow
def test_composers_smoke(tiny_corpus, tmp_path):
  """experiments/composers.py end to end on the tiny corpus (one input,
  every kind of arm): PCA, AE, CAE, VAE and ALI rows, the classifiers, the
  ordering against the study, ALI's convergence plot and figures."""
  out = str(tmp_path / "report")
  proc = subprocess.run(
      [sys.executable, "-m", "experiments.composers", "--smoke", "--steps",
       "4", "--data", tiny_corpus, "--out", out,
       "--workdir", str(tmp_path / "runs")],
      capture_output=True, text=True, timeout=1200, cwd=ROOT,
      env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert proc.returncode == 0, proc.stderr[-4000:]
  with open(os.path.join(out, "results.json")) as f:
    results = json.load(f)
  assert set(results["embeddings"]) == {"pca_mel", "ae_mel", "cae_mel",
                                        "vae_mel", "ali_40_mel",
                                        "ali_random_mel"}
  assert results["embeddings"]["ali_random_mel"][2] == "ali_40"
  assert set(results["classifiers"]) == {"ff_mel", "cnn_mel", "lstm_mel"}
  for acc, std, *_ in [*results["embeddings"].values(),
                       *results["classifiers"].values()]:
    assert 0 <= acc <= 1 and std >= 0
  assert len(results["ali_losses"]["ali_40_mel"]) > 0
  with open(os.path.join(out, "report.md")) as f:
    report = f.read()
  assert "| ali_40 |" in report and "ALI below its baselines" in report
  assert "VAE on MFCC the best embedding (against the best other): not run" \
      in report
  for png in ("convergence.png", "ali_samples.png", "ali_interpolation.png",
              "ali_reconstructions.png"):
    assert os.path.getsize(os.path.join(out, png)) > 1000, png
  # --merge: one arm again, the other rows and ALI's losses kept.
  proc = subprocess.run(
      [sys.executable, "-m", "experiments.composers", "--smoke", "--steps",
       "4", "--data", tiny_corpus, "--out", out, "--merge", "--arms",
       "ff_mel", "--workdir", str(tmp_path / "runs")],
      capture_output=True, text=True, timeout=600, cwd=ROOT,
      env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert proc.returncode == 0, proc.stderr[-4000:]
  with open(os.path.join(out, "results.json")) as f:
    merged = json.load(f)
  assert merged["embeddings"] == results["embeddings"]
  assert merged["ali_losses"] == results["ali_losses"]
  assert set(merged["classifiers"]) == set(results["classifiers"])
