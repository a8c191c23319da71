"""The kNN monitor embeds with the state as it is sharded (FSDP over 8
fake devices, never gathered) and returns what the unsharded encoder
gives; its kNN agrees with scikit-learn's on track means."""

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from conftest import small_transformer
from jaxmusic import monitor
from jaxmusic import objectives
from jaxmusic import parallel
from jaxmusic.config import load_config


@pytest.mark.slow
def test_the_sharded_embedder_equals_the_unsharded_encoder():
  config = small_transformer(load_config(
      "clmr", "model=transformer,input=mel,runlocal"))
  objective = objectives.make_objective(config)
  x = np.random.default_rng(0).standard_normal(
      (13, config.data.crop_samples)).astype(np.float32)
  variables = objective.init(jax.random.key(0), {"views": np.stack(
      [x[:2], x[:2]], axis=1)})
  mesh = parallel.make_mesh([("data", 2), ("fsdp", 4)])
  shardings = parallel.tree_shardings(mesh, variables, ((".*", "fsdp"),))
  state = jax.device_put(variables, shardings)
  split = [s.spec for s in jax.tree.leaves(shardings["params"])]
  assert any(spec != P() for spec in split)  # the state is FSDP-sharded
  got = monitor.make_embedder(objective, mesh, shardings)(state, x)
  want = objective.embed(variables, x)
  assert got.shape == (13, want.shape[-1])  # 13 rows: padded to 16, cut
  np.testing.assert_allclose(got, np.asarray(want), rtol=1e-4, atol=1e-5)


def test_track_embeddings_and_knn():
  batches = [{"inputs": np.array([[0.0], [2.0]]), "track": np.array([0, 0]),
              "label": np.array([1, 1])},
             {"inputs": np.array([[10.0], [12.0]]), "track": np.array([1, 1]),
              "label": np.array([0, 0])}]
  means, labels = monitor.track_embeddings(lambda x: x, batches)
  np.testing.assert_allclose(means, [[1.0], [11.0]])
  assert list(labels) == [1, 0]
  assert monitor.knn_accuracy(means, labels, np.array([[0.5], [12.0]]),
                              np.array([1, 0]), k=1) == 1.0
  assert monitor.knn_accuracy(means, labels, np.array([[0.5], [12.0]]),
                              np.array([0, 1]), k=1) == 0.0
