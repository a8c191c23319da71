"""Test setup: 8 fake CPU devices, set before jax is imported anywhere."""
import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
  """A small embedded corpus (60 tracks x 3 s), prepared with every feature
  the pipelines use, 1 s segments."""
  from jaxmusic.data import build, synthetic
  root = tmp_path_factory.mktemp("tiny")
  csv_path = synthetic.generate(
      str(root / "raw"), synthetic.SyntheticConfig(num_tracks=60, seconds=3.0,
                                                   seed=1))
  out = str(root / "prepared")
  build.prepare("csv", csv_path, out,
                features=("waveform", "logmel", "cqt", "pianoroll"),
                segment_seconds=1.0, progress=False)
  return out
