"""The optimizer's schedule counts updates, so gradient accumulation does
not stretch warm-up and decay, and the logged lr is the one applied."""
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxmusic import optim


def _cfg(**kw):
  base = dict(name="sgd", learning_rate=0.5, schedule="cosine",
              warmup_steps=8, b1=0.9, b2=0.999, weight_decay=0.0,
              momentum=0.0, grad_clip_norm=0.0, accumulate_steps=1)
  return ml_collections.ConfigDict({**base, **kw})


@pytest.mark.slow
@pytest.mark.parametrize("k", [1, 4])
def test_schedule_under_accumulation_ends_where_the_loop_does(k):
  total = 40
  tx, lr_at_step = optim.make_optimizer(_cfg(accumulate_steps=k), total)
  params = {"w": jnp.zeros(())}
  state = tx.init(params)
  applied = {}
  for step in range(total):
    # sgd without momentum on a gradient of 1: the update is -lr.
    updates, state = tx.update({"w": jnp.ones(())}, state, params)
    if (step + 1) % k == 0:
      applied[step] = -float(updates["w"])
    else:
      assert float(updates["w"]) == 0.0
  assert len(applied) == total // k
  for step, lr in applied.items():
    assert lr == pytest.approx(float(lr_at_step(step)), rel=1e-6)
  # Warm-up ends at loop step 8 and the cosine has decayed by the last step,
  # whatever k is.
  assert float(lr_at_step(8)) == pytest.approx(0.5)
  assert float(lr_at_step(4)) < 0.5
  assert float(lr_at_step(total - 1)) < 0.05
  lrs = np.array([float(lr_at_step(s)) for s in range(8, total)])
  assert np.all(np.diff(lrs) <= 1e-9)


def test_linear_schedule_is_fairseq_polynomial_decay():
  """Warm-up to the peak, then a straight line to 0 at the last step
  (polynomial_decay, power 1, end 0: HuBERT's and MERT's schedule)."""
  total, warmup, peak = 100, 20, 5e-4
  _, lr_at_step = optim.make_optimizer(
      _cfg(name="adam", schedule="linear", warmup_steps=warmup,
           learning_rate=peak), total)
  lr = np.array([float(lr_at_step(s)) for s in range(total + 1)])
  np.testing.assert_allclose(lr[:warmup + 1], peak * np.arange(warmup + 1)
                             / warmup, rtol=1e-5, atol=1e-12)
  np.testing.assert_allclose(lr[warmup:], peak * (total - np.arange(
      warmup, total + 1)) / (total - warmup), rtol=1e-5, atol=1e-10)
