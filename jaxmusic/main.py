r"""Trains a model: `python -m jaxmusic.main --config CONFIG[:ARGS] --workdir DIR`.

  python -m jaxmusic.main --config ml_collections_configs/clmr.py:runlocal \
      --workdir /tmp/clmr --config.batch_size=32

On a TPU pod or a SLURM cluster, `--distributed` (tpu_scripts/ passes it);
elsewhere, `--coordinator_address`, `--num_processes` and `--process_id`.
"""

import logging

import jax
from absl import app
from absl import flags
from ml_collections import config_flags

from jaxmusic import config as config_lib
from jaxmusic import train

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory.",
                               required=True)
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None,
    "host:port of process 0, for multi-process runs outside TPU/SLURM.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process.")
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False,
    "Call jax.distributed.initialize() with what the cluster says: a Cloud "
    "TPU pod's workers or a SLURM job's tasks find each other on their own "
    "(tpu_scripts/).")


def _quiet_libraries(record: logging.LogRecord) -> bool:
  # Orbax and Grain log every save and restore step at INFO.
  return record.levelno >= logging.WARNING or not any(
      lib in record.pathname for lib in ("/orbax/", "/grain/"))


def main(argv):
  del argv
  logging.getLogger().setLevel(logging.INFO)
  for handler in logging.getLogger().handlers:
    handler.addFilter(_quiet_libraries)
  if _COORDINATOR.value or _NUM_PROCESSES.value or _DISTRIBUTED.value:
    jax.distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value,
                               _PROCESS_ID.value)
  logging.info("process %d/%d, devices: %s", jax.process_index(),
               jax.process_count(), jax.devices())
  try:
    train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  except (ValueError, FloatingPointError, FileNotFoundError) as e:
    # Bad config, bad data or a diverged run: one line, no traceback.
    raise SystemExit(f"error: {e}") from None


def _parse_flags(argv):
  """absl's flag parsing, with a bad config argument or a misspelt
  `--config.` key said in one line instead of a traceback."""
  try:
    return flags.FLAGS(argv)
  except Exception as e:  # pylint: disable=broad-except
    raise SystemExit(f"error: {config_lib.flag_error(argv, e)}") from None


if __name__ == "__main__":
  flags.mark_flags_as_required(["config"])
  app.run(main, flags_parser=_parse_flags)
