"""Binary codes, Hamming distances and DTW costs (eval/hashing.py), the
two-tower `hash` option, and the MIDI <-> audio matching experiment."""

import os

import numpy as np
import pytest

from jaxmusic import config as config_lib
from jaxmusic.eval import hashing


@pytest.mark.parametrize("bits", [16, 64, 100])
def test_hamming_counts_differing_signs(bits):
  rng = np.random.default_rng(bits)
  a, b = rng.normal(size=(7, bits)), rng.normal(size=(5, bits))
  want = ((a[:, None] > 0) != (b[None] > 0)).sum(-1)
  np.testing.assert_array_equal(
      hashing.hamming(hashing.codes(a), hashing.codes(b)), want)


def test_cosine_distance_matches_sklearn():
  from sklearn.metrics.pairwise import cosine_distances  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=(4, 9)), rng.normal(size=(6, 9))
  np.testing.assert_allclose(hashing.cosine(a, b), cosine_distances(a, b),
                             atol=1e-5)


def test_dtw_cost_is_zero_on_a_stretched_copy_and_not_elsewhere():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(20, 8))
  slow = np.repeat(x, 2, axis=0)
  assert hashing.dtw_cost(hashing.cosine(x, slow)) < 1e-6
  other = rng.normal(size=(30, 8))
  assert hashing.dtw_cost(hashing.cosine(x, other)) > 0.3


def test_hash_needs_each_towers_bottleneck():
  c = config_lib.load_config("two_tower",
                             "towers=audio+pianoroll,hash=16,runlocal")
  assert c.objective.hash and c.model.audio.bottleneck == 16
  c.model.pianoroll.bottleneck = 0
  with pytest.raises(ValueError, match="config.objective.hash"):
    config_lib.validate(c)


@pytest.mark.slow
def test_hash_run_and_matching(tiny_corpus, tmp_path):
  from experiments import midi_audio_matching  # pylint: disable=g-import-not-at-top
  from jaxmusic import train  # pylint: disable=g-import-not-at-top
  c = config_lib.load_config("two_tower",
                             "towers=audio+pianoroll,hash=16,runlocal")
  c.data.dir = tiny_corpus
  c.data.crop_samples = 16 * 512
  c.batch_size = 8
  c.total_steps = 20
  c.optimizer.warmup_steps = 5
  c.checkpoint.every = 20
  c.monitor.every = 0
  c.log_every = 10
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(c, workdir)
  out = str(tmp_path / "out")
  res = midi_audio_matching.run(workdir, tiny_corpus, "test", n=5,
                                hop_s=0.25, out=out)
  assert res["bits"] == 16
  for name in ("hash", "cqt", "chroma"):
    assert 0.0 <= res[name]["accuracy"] <= 1.0
    assert res[name]["distances"] > 25
  # The CQT frames, from the very audio and notes being matched, find
  # most of their tracks.
  assert res["cqt"]["accuracy"] >= 0.6
  assert res["chroma"]["accuracy"] >= 0.6
  assert res["speedup_per_distance_cqt"] > 0
  assert res["speedup_per_distance_chroma"] > 0
  assert os.path.exists(os.path.join(out, "report.md"))
