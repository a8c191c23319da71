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
                features=("waveform", "logmel", "cqt", "pianoroll",
                          "multitrack", "tokens"),
                segment_seconds=1.0, progress=False)
  return out


@pytest.fixture(scope="session")
def tiny_targets(tiny_corpus):
  """`mfcc_k16`: k-means (K=16) targets on the tiny corpus's MFCC."""
  from jaxmusic.data import pipeline, targets
  targets.acoustic_targets(pipeline.PreparedData(tiny_corpus), "mfcc_k16",
                           "mfcc", targets.KMeansSpec(k=16, fit_fraction=0.5),
                           progress=False)
  return tiny_corpus


@pytest.fixture(scope="session")
def tiny_run(tiny_corpus, tmp_path_factory):
  """A 4-step CLMR run on the tiny corpus (tiny SampleCNN, 729-sample
  crops), trained in this process on the 8 fake devices."""
  from jaxmusic import config as config_lib
  from jaxmusic import train
  config = config_lib.load_config("clmr", "runlocal")
  config.data.dir = tiny_corpus
  config.total_steps = 4
  config.model.channels = (8, 8, 8, 8, 8, 8, 16)
  config.data.crop_samples = 729
  config.batch_size = 8
  config.objective.projection_dims = (16, 8)
  config.checkpoint.every = 2
  config.monitor.every = 0
  workdir = str(tmp_path_factory.mktemp("tiny_run"))
  train.train_and_evaluate(config, workdir)
  return workdir


def small_transformer(config):
  """Shrinks a transformer config in place to the tests' size: 2 layers of
  width 32, 32-frame crops, batch 8, 4 steps, checkpoints and the kNN
  monitor every 2."""
  config.total_steps = 4
  config.optimizer.warmup_steps = 2
  config.data.crop_samples = 32 * 512
  config.batch_size = 8
  config.model.update(width=32, heads=2, ffn=64, layers=2, conv_pos_kernel=8,
                      conv_pos_groups=4)
  if config.model.frontend.name != "waveform":
    config.model.frontend.dim = 32
  config.checkpoint.every = 2
  config.monitor.every = 2
  return config


def _grid_run(data_dir, workdir, name, arg, **data):
  """A 4-step run of a small transformer (`small_transformer`) from
  `NAME.py:ARG`, trained in this process."""
  from jaxmusic import config as config_lib
  from jaxmusic import train
  config = small_transformer(config_lib.load_config(name, arg))
  config.data.dir = data_dir
  config.data.update(data)
  if name == "clmr":
    config.objective.projection_dims = (16, 8)
  train.train_and_evaluate(config, workdir)
  return workdir


@pytest.fixture(scope="session")
def mel_run(tiny_corpus, tmp_path_factory):
  return _grid_run(tiny_corpus, str(tmp_path_factory.mktemp("mel_run")),
                   "clmr", "model=transformer,input=mel,runlocal")


@pytest.fixture(scope="session")
def pianoroll_run(tiny_corpus, tmp_path_factory):
  return _grid_run(tiny_corpus, str(tmp_path_factory.mktemp("roll_run")),
                   "clmr", "model=transformer,input=pianoroll,runlocal")


@pytest.fixture(scope="session")
def hubert_run(tiny_targets, tmp_path_factory):
  """A 4-step HuBERT run of a small mel transformer on `mfcc_k16`."""
  return _grid_run(tiny_targets, str(tmp_path_factory.mktemp("hubert_run")),
                   "hubert", "input=mel,runlocal", targets=("mfcc_k16",))


def one_step_loss(config, data_dir, batch_size=8):
  """The registered objective's loss (and metrics) on the first training
  batch of `data_dir`, from the init at key 0, with step rng key 1: the
  number the tests pin."""
  import jax
  from jaxmusic import config as config_lib
  from jaxmusic import objectives
  from jaxmusic.data import pipeline, records
  config.data.dir = data_dir
  config_lib.validate(config)
  obj = objectives.make_objective(config, records.load_manifest(data_dir))
  batch = next(iter(pipeline.from_config(data_dir, config.data, "train",
                                         obj.data_mode,
                                         batch_size=batch_size, seed=0)))
  variables = obj.init(jax.random.key(0), batch)
  loss, (metrics, _) = jax.jit(obj.loss_fn)(
      variables["params"], variables["model_state"], batch,
      jax.random.key(1))
  return float(loss), jax.device_get(metrics)
