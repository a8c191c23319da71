"""Probe metrics against scikit-learn and brute force, the layer-weighting
probe, the probe CLI on an export, and the HEAR API's shapes."""

import json
import os

import numpy as np
import pytest
from sklearn import metrics as skm

from jaxmusic.eval import embeddings
from jaxmusic import hear
from jaxmusic.eval import report as report_lib
from jaxmusic.eval import marble_probe
from jaxmusic.eval import probes


def test_retrieval_metrics_equal_sklearn_and_brute_force():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(30, 8))
  labels = rng.integers(0, 4, size=30)
  k = 5
  got = probes.retrieval_metrics(x, labels, k)
  z = x / np.linalg.norm(x, axis=1, keepdims=True)
  mrr, prec, y_true, y_score = [], [], [], []
  for i in range(30):
    others = [j for j in range(30) if j != i]
    sims = z[others] @ z[i]
    rel = (labels[others] == labels[i]).astype(float)
    if not rel.any():
      continue
    ranked = rel[np.argsort(-sims)]
    mrr.append(1.0 / (np.argmax(ranked) + 1))
    prec.append(ranked[:k].mean())
    y_true.append(rel)
    y_score.append(sims)
  assert got["mrr"] == pytest.approx(np.mean(mrr), abs=1e-12)
  assert got["precision@5"] == pytest.approx(np.mean(prec), abs=1e-12)
  assert got["ndcg@5"] == pytest.approx(
      skm.ndcg_score(np.array(y_true), np.array(y_score), k=k), abs=1e-12)


def test_chunk_predictions_are_averaged_per_track_before_scoring():
  rng = np.random.default_rng(1)
  track = np.repeat(np.arange(12), 3)
  y_tracks = rng.integers(0, 2, size=(12, 5)).astype(float)
  y_tracks[0], y_tracks[1] = 1.0, 0.0  # every tag has both classes
  scores = rng.random((36, 5))
  split = probes.Split(np.zeros((36, 1)), y_tracks[track], track)
  got = probes.evaluate("multilabel", split, scores)  # pylint: disable=protected-access
  mean = scores.reshape(12, 3, 5).mean(1)
  assert got["roc_auc"] == pytest.approx(
      skm.roc_auc_score(y_tracks, mean, average="macro"), abs=1e-12)
  assert got["pr_auc"] == pytest.approx(
      skm.average_precision_score(y_tracks, mean, average="macro"),
      abs=1e-12)
  y = rng.integers(0, 3, size=12)
  proba = rng.random((36, 3))
  got = probes.evaluate("multiclass", probes.Split(None, y[track], track),  # pylint: disable=protected-access
                         proba, classes=np.array([0, 1, 2]))
  pred = proba.reshape(12, 3, 3).mean(1).argmax(1)
  assert got == {"accuracy": pytest.approx(skm.accuracy_score(y, pred)),
                 "macro_f1": pytest.approx(skm.f1_score(y, pred,
                                                        average="macro"))}
  values = rng.normal(size=12)
  got = probes.evaluate("regression", probes.Split(None, values[track],  # pylint: disable=protected-access
                                                    track), rng.random(36))
  assert set(got) == {"r2"}


def _layered_split(rng, n):
  """n rows of 4 layers, 3 classes carried by layer 2 alone."""
  y = rng.integers(0, 3, size=n)
  x = rng.normal(size=(n, 4, 6))
  x[:, 2, :3] += 3.0 * np.eye(3)[y]
  return probes.Split(x.astype(np.float32), y, np.arange(n))


def test_weighted_layers_find_the_informative_layer():
  """Layer 2 of 4 carries the class; the learned weights must pick it."""
  rng = np.random.default_rng(2)
  split = lambda n: _layered_split(rng, n)
  result = probes.fit_weighted_layers("multiclass", split(300), split(100),
                                      split(100))
  assert np.argmax(result["layer_weights"]) == 2
  assert result["layer_weights"][2] > 0.5
  assert result["metrics"]["accuracy"] > 0.85


@pytest.fixture(scope="module")
def exported(tiny_run, tiny_corpus, tmp_path_factory):
  out = str(tmp_path_factory.mktemp("probe_emb"))
  embeddings.run(tiny_run, out, data_dir=tiny_corpus, layers="all",
                 baseline_names=("random_init", "mfcc"), progress=False)
  return out


@pytest.mark.parametrize("task,target,metric", [
    ("multiclass", None, "accuracy"), ("multilabel", None, "roc_auc"),
    ("regression", "tempo", "r2"), ("retrieval", "artist", "ndcg@10")])
@pytest.mark.slow
def test_probe_reports_every_representation(exported, tmp_path, task, target,
                                            metric):
  report = report_lib.run(exported, task=task, target=target, kinds=("linear",),
                          out=str(tmp_path), make_plots=task == "multiclass")
  rows = report["rows"]
  assert [r["representation"] for r in rows if r["layer"] in ("last",)] == [
      "encoder", "random_init", "mfcc"]
  for r in rows:
    assert np.isfinite(r["metrics"][metric])
  assert all("knn_accuracy" in r["metrics"] for r in rows
             if r["layer"] == "last")
  if task != "retrieval":
    # 7 single layers and the weighted sum, for both SampleCNNs.
    layered = [r for r in rows if r["representation"] == "encoder"]
    assert [r["layer"] for r in layered] == ["last", *map(str, range(7)),
                                             "all"]
    assert len(layered[-1]["layer_weights"]) == 7
  saved = json.load(open(tmp_path / "results.json"))
  assert saved["rows"] == json.loads(json.dumps(rows))
  probe_name = "cosine" if task == "retrieval" else "linear"
  assert f"| encoder | {probe_name} | last |" in (
      tmp_path / "results.md").read_text()
  if task == "multiclass":
    assert sorted(os.listdir(tmp_path / "plots")) == sorted(
        f"{r}_{m}.png" for r in ("encoder", "random_init", "mfcc")
        for m in ("pca", "tsne"))


def test_folds_are_sklearns_stratified_group_kfold():
  """Rows of 30 tracks (2..4 chunks each, 3 classes): the folds are
  StratifiedGroupKFold's, each track's rows in one fold, every row tested
  once; k-fold probes report mean ± std over them."""
  from sklearn.model_selection import StratifiedGroupKFold  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  counts = rng.integers(2, 5, size=30)
  track = np.repeat(np.arange(30), counts)
  label = np.repeat(np.arange(30) % 3, counts)
  x = rng.standard_normal((len(track), 4)) + label[:, None]
  data = probes.Split(x, label, track)
  folds = probes.track_folds(data, 5, stratify=True, seed=3)
  want = [t for _, t in StratifiedGroupKFold(5, shuffle=True, random_state=3)
          .split(x, label, groups=track)]
  assert [f.tolist() for f in folds] == [w.tolist() for w in want]
  assert sorted(np.concatenate(folds).tolist()) == list(range(len(track)))
  for f in folds:
    rest = np.setdiff1d(np.arange(len(track)), f)
    assert not set(track[f]) & set(track[rest])
    assert len(set(label[f])) == 3  # stratified: every class in every fold
  result = probes.fit_kfold("multiclass", "linear", data, folds)
  accs = [m["accuracy"] for m in result["folds"]]
  assert result["metrics"]["accuracy"] == pytest.approx(np.mean(accs))
  assert result["metrics"]["accuracy_std"] == pytest.approx(np.std(accs))
  assert result["metrics"]["accuracy"] > 0.8
  with pytest.raises(ValueError, match="--folds=31"):
    probes.track_folds(data, 31, stratify=True)
  # Two folds would leave no train fold beside test and valid.
  with pytest.raises(ValueError, match=r"--folds=2: use 3\.\.30"):
    probes.track_folds(data, 2, stratify=True)


def test_probe_cli_folds_pool_the_splits(exported, tmp_path):
  report = report_lib.run(exported, task="multiclass", kinds=("linear",),
                          folds=3,
                          out=str(tmp_path))
  assert report["folds"] == 3
  assert [r["representation"] for r in report["rows"]
          if r["layer"] == "last"] == ["encoder", "random_init", "mfcc"]
  # Each of the SampleCNNs' 7 layers on the same folds.
  layered = [r for r in report["rows"] if r["representation"] == "encoder"]
  assert [r["layer"] for r in layered] == ["last", *map(str, range(7))]
  for r in report["rows"]:
    assert {"accuracy", "accuracy_std", "knn_accuracy_std"} <= set(
        r["metrics"]) and len(r["folds"]) == 3
  md = (tmp_path / "results.md").read_text()
  assert "3-fold cross-validation over tracks" in md and " ± " in md
  with pytest.raises(ValueError, match="--folds"):
    report_lib.run(exported, task="retrieval", kinds=("linear",), folds=3)


def test_probe_refuses_a_track_in_two_splits(exported, tmp_path):
  import shutil  # pylint: disable=g-import-not-at-top
  bad = tmp_path / "emb"
  shutil.copytree(exported, bad)
  ids_path = bad / "test" / "encoder" / "track" / "ids.npy"
  ids = np.load(ids_path)
  ids[0] = np.load(bad / "train" / "encoder" / "track" / "ids.npy")[0]
  np.save(ids_path, ids)
  with pytest.raises(ValueError, match="in both train and test"):
    report_lib.run(str(bad), task="multiclass", kinds=("linear",))


def test_hear_api_shapes_and_scene_is_mean(tiny_run):
  model = hear.load_model(tiny_run)
  assert model.sample_rate == 22050
  assert model.scene_embedding_size == model.timestamp_embedding_size == 16
  audio = np.random.default_rng(0).normal(size=(2, 11025)).astype(
      np.float32) * 0.1
  emb, ts = hear.get_timestamp_embeddings(audio, model)
  assert emb.shape == (2, 11, 16) and ts.shape == (2, 11)
  np.testing.assert_allclose(ts[0, :3], [0.0, 50.0, 100.0], atol=0.03)
  scene = hear.get_scene_embeddings(audio, model)
  assert scene.shape == (2, 16)
  np.testing.assert_allclose(scene, emb.mean(1), rtol=1e-6)
  # A timestamp's window is the encoder's crop centred on it.
  centre = int(np.round(5 * 1102.5))  # 250 ms; 50 ms is 1102.5 samples
  window = audio[:1, centre - 364:centre + 365]
  direct = model.encoder.embed_fn()(window)[0]
  np.testing.assert_allclose(emb[0, 5], np.asarray(direct)[0], atol=1e-5)
  step_model = hear.load_model(f"{tiny_run}:2")
  assert step_model.encoder.step == 2


@pytest.mark.slow
def test_hear_api_serves_mel_encoders_and_refuses_piano_rolls(
    mel_run, pianoroll_run):
  model = hear.load_model(mel_run)
  assert model.scene_embedding_size == 32
  audio = np.random.default_rng(0).normal(size=(2, 22050)).astype(
      np.float32) * 0.1
  emb, ts = hear.get_timestamp_embeddings(audio, model)
  assert emb.shape == (2, 21, 32) and ts.shape == (2, 21)
  np.testing.assert_allclose(hear.get_scene_embeddings(audio, model),
                             emb.mean(1), rtol=1e-5)
  with pytest.raises(ValueError, match="audio encoders.*'pianoroll'"):
    hear.load_model(pianoroll_run)


def test_probe_cli_names_a_missing_export_in_one_line(tmp_path):
  import subprocess
  import sys
  out = subprocess.run(
      [sys.executable, "-m", "jaxmusic.probe",
       f"--embeddings={tmp_path / 'none'}"], capture_output=True, text=True,
      timeout=300)
  assert out.returncode != 0
  assert out.stderr.strip().splitlines() == [
      f"error: {tmp_path / 'none'}/export.json: missing; run python -m "
      "jaxmusic.export first"]


def test_marble_probe_weights_the_informative_layer_and_stops_early():
  """MARBLE's MLP probe on 4 layers, the class in layer 2 only: it learns
  that layer's weight, reaches the accuracy, chooses its rate from
  MARBLE's grid on valid, and stops before 100 epochs once valid stops
  rising."""
  rng = np.random.default_rng(3)
  split = lambda n: _layered_split(rng, n)
  result = marble_probe.fit("multiclass", split(300), split(100),
                            split(100), lrs=(1e-2, 1e-3), stop_patience=5)
  assert result["metrics"]["accuracy"] > 0.85
  assert np.argmax(result["layer_weights"]) == 2
  assert result["hyperparameters"]["lr"] in (1e-2, 1e-3)
  assert result["hyperparameters"]["epochs"] < 100


def test_marble_probe_regression_and_tags():
  rng = np.random.default_rng(4)
  x = rng.normal(size=(400, 8)).astype(np.float32)
  value = x[:, 0] * 2.0 + 0.1 * rng.normal(size=400)
  tags = (x[:, :3] > 0).astype(np.int32)
  cut = lambda a: (a[:250], a[250:325], a[325:])
  split = lambda y: [probes.Split(xs, ys, np.arange(len(ys)))
                     for xs, ys in zip(cut(x), cut(y))]
  reg = marble_probe.fit("regression", *split(value), lrs=(1e-3,),
                         epochs=40)
  assert reg["metrics"]["r2"] > 0.8
  tag = marble_probe.fit("multilabel", *split(tags), lrs=(1e-3,), epochs=40)
  assert tag["metrics"]["roc_auc"] > 0.9


def test_key_vocabulary_adds_the_mirex_key_score():
  """Class names that are keys add mirex_key: a fifth scores 0.5, a
  relative 0.3, a parallel 0.2, as mir_eval weighs them."""
  names = ("C major", "G major", "A minor", "C minor")
  y = np.array([0, 0, 0, 0])
  proba = np.eye(4)[[0, 1, 2, 3]]
  got = probes.multiclass_metrics(y, proba, np.arange(4), names)
  assert got["mirex_key"] == pytest.approx((1 + 0.5 + 0.3 + 0.2) / 4)
  assert "mirex_key" not in probes.multiclass_metrics(
      y, proba, np.arange(4), ("rock", "pop", "jazz", "folk"))


@pytest.mark.slow
def test_probe_protocol_marble_on_an_export(exported, tmp_path):
  """--protocol marble: one MLP row a representation, on the weighted
  layers where export wrote them; an unknown protocol is one line."""
  report = report_lib.run(exported, protocol="marble", out=str(tmp_path))
  rows = {r["representation"]: r for r in report["rows"]}
  assert [r["probe"] for r in report["rows"]] == ["marble_mlp"] * 3
  assert rows["encoder"]["layer"] == "all"
  assert len(rows["encoder"]["layer_weights"]) == 7
  assert rows["mfcc"]["layer"] == "last"
  assert report["protocol"] == "marble"
  with pytest.raises(ValueError, match="--protocol=marbel"):
    report_lib.run(exported, protocol="marbel", out=str(tmp_path))
