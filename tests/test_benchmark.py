"""`python -m jaxmusic.benchmark`: every dataset of a suite found under the
data root prepared in its layout, exported and probed into one table."""
import json
import os
import shutil

import pytest

from jaxmusic import benchmark
from jaxmusic.data.layouts import fixtures


@pytest.mark.slow
def test_marble_suite_on_the_fixtures(tiny_run, tmp_path):
  """The fixtures of every MARBLE dataset but MTT: each task's metric
  for every representation (the beat probe's on frames), MTT named as absent, a broken layout named
  in one line while the others are scored, and a rerun served from the
  caches."""
  root = tmp_path / "data"
  fixtures.write(str(root), ["GTZAN", "GS", "NSynth", "VocalSet"])
  shutil.rmtree(root / "GS" / "giantsteps-key-dataset-c8cb8aa" / "md5")
  out = str(tmp_path / "bench")
  report = benchmark.run("marble", tiny_run, str(root), out=out,
                         segment_seconds=0.5)
  assert report["protocol"] == "marble"
  assert set(report["results"]) == {"GTZAN", "GTZANBT", "NSynthI",
                                    "NSynthP", "VocalSetT", "VocalSetS"}
  beat_rows = report["results"]["GTZANBT"]
  assert set(beat_rows) == {"encoder", "random_init", "logmel_flux"}
  # The fixtures' clicks are the beats: the flux baseline finds them.
  assert beat_rows["logmel_flux"]["beat_f_measure"] > 0.5
  assert "GS" in report["errors"] and "md5" in report["errors"]["GS"]
  assert {"MTT", "EMO arousal", "MTGTop50"} <= set(report["absent"])
  for name, rows in report["results"].items():
    if name == "GTZANBT":
      continue
    assert set(rows) == {"encoder", "random_init", "mfcc", "logmel_stats",
                         "logmel_pca"}, name
    for metrics in rows.values():
      assert 0.0 <= metrics["accuracy"] <= 1.0
  table = open(os.path.join(out, "marble.md")).read()
  assert ("| representation | GTZAN Acc | GTZANBT F1^beat | NSynthI Acc |"
          in table)
  assert "GS failed:" in table and "Not found under the data root: MTT" \
      in table
  assert json.load(open(os.path.join(out, "marble.json"))) == json.loads(
      json.dumps(report))
  # NSynth's two tasks share one prepared set and one export.
  assert sorted(os.listdir(os.path.join(out, "embeddings"))) == [
      "gtzan_filtered-0.5s", "nsynth-0.5s", "vocalset_singer-0.5s",
      "vocalset_technique-0.5s"]
  stamp = os.path.getmtime(os.path.join(out, "embeddings", "nsynth-0.5s",
                                        "export.json"))
  benchmark.run("marble", tiny_run, str(root), out=out, segment_seconds=0.5,
                protocol="default")
  assert os.path.getmtime(os.path.join(
      out, "embeddings", "nsynth-0.5s", "export.json")) == stamp


@pytest.mark.slow
def test_dcase_suite_macro_f1_over_the_official_folds(tiny_run, tmp_path):
  root = tmp_path / "data"
  fixtures.write(str(root), ["DCASE2018-task5-dev"])
  report = benchmark.run("dcase2018t5", tiny_run, str(root),
                         out=str(tmp_path / "bench"), channel="mean",
                         segment_seconds=0.5)
  rows = report["results"]["DCASE2018T5"]
  assert 0.0 <= rows["encoder"]["macro_f1"] <= 1.0
  assert "channel `mean`" in open(tmp_path / "bench" / "dcase2018t5.md").read()


def test_benchmark_refuses_unknown_suite_and_channel(tmp_path):
  with pytest.raises(ValueError, match="--suite=marbel"):
    benchmark.run("marbel", str(tmp_path), str(tmp_path))
  with pytest.raises(ValueError, match="--channel=left"):
    benchmark.run("dcase2018t5", str(tmp_path), str(tmp_path),
                  channel="left")
