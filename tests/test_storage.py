"""Bucket paths: a run with `--workdir gs://...` and a prepared collection at
`gs://...`, through the same path API the code uses for a real bucket.

The bucket is a local directory behind the two storage layers a real one
goes through: fsspec's `gcs` filesystem (what etils.epath calls for
`gs://`, hence jaxmusic and Orbax's metadata) and TensorStore's GCS kvstore
(what Orbax writes arrays with). Everything above them sees `gs://` paths.
"""
import importlib
import json
import os
import shutil

import pytest
from etils import epath
from fsspec.implementations.dirfs import DirFileSystem
from fsspec.implementations.local import LocalFileSystem
from orbax.checkpoint._src.path import gcs_utils

from jaxmusic import config as config_lib
from jaxmusic import metrics_writer
from jaxmusic import storage
from jaxmusic import train
from jaxmusic.eval import frozen


@pytest.fixture
def bucket(tmp_path, monkeypatch):
  root = str(tmp_path / "gcs")
  os.makedirs(root)

  def local(uri):
    return os.path.join(root, uri.split("://", 1)[1]).rstrip("/")

  class FakeGCS(DirFileSystem):
    """gs://BUCKET/KEY as ROOT/BUCKET/KEY, named `BUCKET/KEY` in listings
    as gcsfs names them (epath puts the `gs://` back); writes make their
    parents, as a bucket has no directories to make."""
    protocol = ("gs", "gcs")

    def __init__(self, *args, **kwargs):
      del args, kwargs  # gcsfs's options (finalize_on_close)
      super().__init__(path=root, fs=LocalFileSystem(auto_mkdir=True))

  for name in ("gs", "gcs"):
    # fsspec's registry of loaded classes (`fsspec.registry` is a read-only
    # view of it).
    monkeypatch.setitem(importlib.import_module("fsspec.registry")._registry,
                        name, FakeGCS)
  cache = epath.backend.fsspec_backend._get_filesystem
  cache.cache_clear()
  monkeypatch.setattr(gcs_utils, "get_kvstore_for_gcs", lambda path: {
      "driver": "file", "path": local(path)})
  monkeypatch.setattr(gcs_utils, "is_hierarchical_namespace_enabled",
                      lambda path: False)
  yield local
  cache.cache_clear()


def _config(data_dir, cache_dir, steps):
  config = config_lib.load_config("clmr", "runlocal")
  config.data.update(dir=data_dir, cache_dir=cache_dir, crop_samples=729)
  config.total_steps = steps
  config.model.channels = (8, 8, 8, 8, 8, 8, 16)
  config.batch_size = 8
  config.objective.projection_dims = (16, 8)
  config.log_every = 1
  config.checkpoint.every = 2
  config.monitor.every = 0
  return config


def _losses(text):
  rows = [json.loads(line) for line in text.splitlines()]
  return {r["step"]: r["loss"] for r in rows if "loss" in r}


@pytest.mark.slow
def test_a_run_on_a_bucket_saves_resumes_and_loads(bucket, tiny_corpus,
                                                   tmp_path):
  shutil.copytree(tiny_corpus, bucket("gs://data/tiny"))
  cache = str(tmp_path / "cache")
  run = "gs://runs/clmr"
  train.train_and_evaluate(_config("gs://data/tiny", cache, 4), run)
  written = bucket(run)
  assert os.path.exists(os.path.join(written, "config.json"))
  assert os.listdir(os.path.join(written, "tensorboard"))
  assert {"2", "4"} <= set(os.listdir(os.path.join(written, "checkpoints")))
  # The collection was read from a local copy of the bucket's.
  staged = [d for d in os.listdir(cache) if d.startswith("staged-")]
  assert len(staged) == 1 and os.path.exists(
      os.path.join(cache, staged[0], "manifest.json"))

  # Resumed from the bucket's step-4 checkpoint: the same losses as one
  # uninterrupted local run, and the metrics series continues.
  train.train_and_evaluate(_config("gs://data/tiny", cache, 6), run)
  resumed = _losses(open(os.path.join(written, "metrics.jsonl")).read())
  local = str(tmp_path / "local")
  train.train_and_evaluate(_config(tiny_corpus, cache, 6), local)
  straight = _losses(open(os.path.join(local, "metrics.jsonl")).read())
  assert sorted(resumed) == list(range(1, 7))
  for step in straight:
    assert resumed[step] == pytest.approx(straight[step], rel=1e-5), step

  loaded = frozen.load(run)
  assert loaded.step == 6 and loaded.workdir == run
  assert config_lib.load_run_config(run).total_steps == 6


def test_stage_resumes_and_names_a_missing_collection(bucket, tiny_corpus,
                                                      tmp_path):
  shutil.copytree(tiny_corpus, bucket("gs://data/tiny"))
  cache = str(tmp_path / "cache")
  first = storage.stage("gs://data/tiny", cache)
  # An interrupted copy (a file cut short, the done-marker gone) is redone.
  os.remove(os.path.join(first, ".staged"))
  with open(os.path.join(first, "manifest.json"), "w") as f:
    f.write("{")
  assert storage.stage("gs://data/tiny", cache) == first
  with open(os.path.join(first, "manifest.json")) as a, \
      open(os.path.join(tiny_corpus, "manifest.json")) as b:
    assert a.read() == b.read()
  config = _config("gs://data/missing", cache, 2)
  with pytest.raises(ValueError, match="data.dir"):
    config_lib.validate(config)


def test_metrics_reach_a_bucket_per_interval_and_sync_not_per_write(
    bucket, monkeypatch):
  copies, copy = [], storage.copy_file
  monkeypatch.setattr(storage, "copy_file", lambda src, dst: (
      copies.append(os.path.basename(str(dst))), copy(src, dst)))
  now = [0.0]
  writer = metrics_writer.MetricsWriter("gs://runs/m", upload_every_s=60,
                                        clock=lambda: now[0])
  remote = os.path.join(bucket("gs://runs/m"), "metrics.jsonl")

  def steps():
    with open(remote) as f:
      return [json.loads(line)["step"] for line in f]

  writer.write(1, {"loss": 1.0})  # the first write copies
  writer.write(2, {"loss": 0.9})  # within the interval: staged only
  assert steps() == [1]
  now[0] = 61.0
  writer.write(3, {"loss": 0.8})
  assert steps() == [1, 2, 3]
  copies.clear()
  # The series did not change since its last copy: not copied again
  # (tensorboardX writes its events from a thread, so they may lag).
  writer.sync()
  assert "metrics.jsonl" not in copies
  writer.write(4, {"loss": 0.7})
  writer.sync()  # what a checkpoint calls, inside the interval
  assert steps() == [1, 2, 3, 4] and "metrics.jsonl" in copies
  writer.write(5, {"loss": 0.6})
  writer.close()
  assert steps() == [1, 2, 3, 4, 5]
  assert os.listdir(os.path.join(bucket("gs://runs/m"), "tensorboard"))
