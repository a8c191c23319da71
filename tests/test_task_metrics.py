"""The benchmark tasks' own metrics, on hand-computed cases and against
mir_eval's evaluators."""
import mir_eval
import numpy as np
import pytest

from jaxmusic.eval import task_metrics


@pytest.mark.parametrize("estimated,score", [
    ("C major", 1.0),     # right
    ("G major", 0.5),     # a fifth above, same mode
    ("F major", 0.0),     # a fifth below: MIREX gives it nothing
    ("A minor", 0.3),     # relative minor
    ("C minor", 0.2),     # parallel
    ("F# major", 0.0)])   # unrelated
def test_mirex_key_weights_by_hand(estimated, score):
  assert task_metrics.key_metrics(["C major"], [estimated]) == {
      "mirex_key": score, "key_accuracy": float(score == 1.0)}


def test_mirex_key_from_a_minor_reference_and_spellings():
  # E minor: a fifth above A minor; C major: its relative major.
  got = task_metrics.key_metrics(
      ["A minor", "a:min", "A min", "Eb major"],
      ["E minor", "C:maj", "A major", "d# major"])
  # d# major is Eb major's enharmonic: mir_eval scores it right.
  assert got["mirex_key"] == pytest.approx((0.5 + 0.3 + 0.2 + 1.0) / 4)
  assert task_metrics.normalize_key("bb:MIN") == "Bb minor"
  with pytest.raises(ValueError, match="'H dorian'"):
    task_metrics.key_metrics(["H dorian"], ["C major"])


def test_beat_f_measure_by_hand_and_against_mir_eval():
  # After the first 5 s: 2 of 3 estimates within 70 ms of 2 of the 4
  # references: P = 2/3, R = 1/2, F = 4/7. Beats before 5 s do not count.
  ref = [1.0, 5.5, 6.0, 6.5, 7.0]
  est = [3.0, 5.52, 6.1, 6.5]
  assert task_metrics.beat_f_measure([ref], [est]) == pytest.approx(4 / 7)
  rng = np.random.default_rng(0)
  refs = [np.sort(rng.uniform(0, 30, 60)) for _ in range(3)]
  ests = [np.sort(r + rng.normal(0, 0.05, len(r))) for r in refs]
  want = np.mean([mir_eval.beat.evaluate(r, e)["F-measure"]
                  for r, e in zip(refs, ests)])
  assert task_metrics.beat_f_measure(refs, ests) == pytest.approx(want)
