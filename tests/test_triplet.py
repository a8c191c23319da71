"""Tile2Vec's triplet loss against a float64 reference, and a pinned
one-step loss through the registered objective."""
import conftest
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmusic import config as config_lib
from jaxmusic.objectives import triplet


@pytest.mark.parametrize("margin,l2", [(10.0, 0.01), (0.5, 0.0)])
def test_loss_matches_float64_reference(margin, l2):
  rng = np.random.default_rng(0)
  z = [rng.standard_normal((6, 5)).astype(np.float32) for _ in range(3)]
  loss, _ = triplet.triplet_loss(*map(jnp.asarray, z), margin, l2)
  a, p, n = (x.astype(np.float64) for x in z)
  d_ap = np.linalg.norm(a - p, axis=1)
  d_an = np.linalg.norm(a - n, axis=1)
  want = np.mean(np.maximum(d_ap - d_an + margin, 0.0)) + l2 * sum(
      np.linalg.norm(x) for x in (a, p, n))
  np.testing.assert_allclose(float(loss), want, rtol=1e-5)


@pytest.mark.parametrize("by", ["temporal", "label"])
def test_pinned_one_step_loss(tiny_corpus, by):
  config = config_lib.load_config("triplet", f"by={by},runlocal")
  config.model.channels = (8, 8, 8, 8, 8, 8, 16)
  config.data.crop_samples = 729
  config.data.radius_seconds = 0.5
  config.batch_size = 8
  loss, metrics = conftest.one_step_loss(config, tiny_corpus)
  assert loss == pytest.approx(PINNED[by], rel=1e-4)
  assert 0.0 <= float(metrics["margin_satisfied"]) <= 1.0


PINNED = {"temporal": 10.317402839660645, "label": 9.929713249206543}
