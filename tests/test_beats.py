"""The frame-level beat probe: JAMS beats, MARBLE's targets, the decoder
and the probe itself against mir_eval's F-measure."""
import json

import numpy as np
import pytest

from jaxmusic.data.layouts import fixtures
from jaxmusic.eval import beats
from jaxmusic.eval import task_metrics


def test_jams_beats_reads_both_jams_versions_and_skips_downbeats(tmp_path):
  new = tmp_path / "blues.00000.wav.jams"
  fixtures._jams(str(new), np.array([0.5, 1.0, 1.5, 2.0, 2.5]), 3.0)  # pylint: disable=protected-access
  np.testing.assert_allclose(beats.jams_beats(str(new)),
                             [0.5, 1.0, 1.5, 2.0, 2.5])
  old = tmp_path / "jazz.00001.wav.jams"
  old.write_text(json.dumps({"annotations": [{
      "namespace": "beat", "data": {"time": [1.0, 0.25],
                                    "duration": [0, 0]}}]}))
  np.testing.assert_allclose(beats.jams_beats(str(old)), [0.25, 1.0])
  assert beats.annotations(str(tmp_path)) == {
      "blues.00000": str(new), "jazz.00001": str(old)}
  (tmp_path / "bad.jams").write_text(json.dumps({"annotations": []}))
  with pytest.raises(ValueError, match="bad.jams: no beat annotation"):
    beats.jams_beats(str(tmp_path / "bad.jams"))


def test_frame_targets_are_marbles_widened_labels():
  y = beats.frame_targets([0.1, 0.16], 12, 50.0, widen=True)
  # Beats on frames 5 and 8: 0.5, 0.95, 1, 0.95, ... never lowering a 1.
  np.testing.assert_allclose(
      y, [0, 0, 0, 0.5, 0.95, 1, 0.95, 0.95, 1, 0.95, 0.5, 0])
  np.testing.assert_array_equal(
      np.flatnonzero(beats.frame_targets([0.1, 0.16], 12, 50.0, False)),
      [5, 8])


def test_decoder_recovers_a_steady_pulse():
  fps, period = 50.0, 0.5
  truth = np.arange(0.3, 30.0, period)
  act = beats.frame_targets(truth, int(30 * fps), fps, widen=True)
  got = beats.decode_beats(act, fps)
  assert task_metrics.beat_f_measure([truth], [got]) > 0.95
  assert beats.decode_beats(np.zeros(100), fps).size == 0


def test_probe_learns_beats_from_the_flux_baseline():
  """Click tracks at 70-150 BPM: a logistic head on log-mel flux finds
  the beats (F > 0.8 on held-out tracks); on noise frames it cannot."""
  sr, fps, seconds = 22050, 50.0, 10.0
  rng = np.random.default_rng(0)

  def track(bpm):
    truth = np.arange(0.2, seconds - 0.1, 60.0 / bpm)
    wav = fixtures.clicks(truth, sr, seconds) + 0.01 * rng.standard_normal(
        int(sr * seconds))
    return beats.logmel_flux(wav, sr, fps), truth

  train = [track(b) for b in (72, 95, 110, 128, 140)]
  valid, test = [track(b) for b in (88, 120)], [track(b) for b in (100, 135)]
  got = beats.fit(train, valid, test, fps, epochs=5)
  assert got["metrics"]["beat_f_measure"] > 0.8
  noise = lambda items: [(rng.standard_normal(x.shape).astype(np.float32), b)
                         for x, b in items]
  blind = beats.fit(noise(train), noise(valid), noise(test), fps, epochs=5)
  assert blind["metrics"]["beat_f_measure"] < got["metrics"][
      "beat_f_measure"] - 0.3
