"""Every config argument its docstring names loads and validates; a bad
argument, value or override key stops with one line."""
import os
import re
import subprocess
import sys

import jax
import ml_collections
import pytest

from jaxmusic import config as config_lib

CONFIGS = sorted(f[:-3] for f in os.listdir(config_lib.CONFIG_DIR)
                 if f.endswith(".py"))


def _documented_args(name):
  """`[(key, value)]` for each `key=a|b` choice and each bare flag in the
  docstring's Args block."""
  doc = open(os.path.join(config_lib.CONFIG_DIR, f"{name}.py")).read()
  block = doc.split("Args (comma-separated after the colon):\n", 1)[1]
  block = block.split("\n\n", 1)[0]
  args = []
  for m in re.finditer(r"^  (\w+)(?:=(\S+))?\s", block, re.M):
    key, values = m.group(1), m.group(2)
    if values is None:
      args.append((key, None))
    else:
      args += [(key, "3" if v == "N" else v) for v in values.split("|")]
  return args


def test_every_config_documents_its_args():
  for name in CONFIGS:
    assert len(_documented_args(name)) >= 3, name


@pytest.mark.parametrize("name", CONFIGS)
def test_every_documented_arg_validates(name):
  for key, value in _documented_args(name):
    arg = key if value is None else f"{key}={value}"
    for extra in ("", ",runlocal"):
      if arg == "runlocal" and extra:
        continue
      try:
        config = config_lib.load_config(name, arg + extra)
      except ValueError as e:
        # A documented value may exclude another (audio=mel with the
        # SampleCNN): the config says so in one line naming the argument.
        assert "config arg" in str(e) and "\n" not in str(e), (name, arg)
        continue
      # A paper's batch is kept as published (Dorfer et al.'s 100 pairs),
      # though 8 devices do not divide it: the rest must validate.
      config.batch_size -= config.batch_size % jax.device_count()
      config_lib.validate(config)


@pytest.mark.parametrize("arg, match", [
    ("input=mell", r"config arg input='mell': unknown; use one of "
     r"\['waveform'"),
    ("model=transfomer", r"config arg model='transfomer'"),
    ("size=huge", r"config arg size='huge'"),
    ("inptu=mel", r"config arg 'inptu': unknown"),
])
def test_an_unknown_argument_or_value_is_one_line(arg, match):
  with pytest.raises(ValueError, match=match):
    config_lib.load_config("clmr", arg)


def test_hubert_and_mert_reject_each_others_sizes():
  with pytest.raises(ValueError, match="size='330m'"):
    config_lib.load_config("hubert", "size=330m")
  with pytest.raises(ValueError, match="size='base'"):
    config_lib.load_config("mert", "size=base")


def test_no_config_loads_another():
  for name in CONFIGS:
    src = open(os.path.join(config_lib.CONFIG_DIR, f"{name}.py")).read()
    assert "load_config" not in src, name


def test_a_misspelt_override_names_the_nearest_key():
  argv = ["main", "--config", os.path.join(config_lib.CONFIG_DIR,
                                           "clmr.py:runlocal"),
          "--config.optimizer.learning_rat=1e-3"]
  assert config_lib.flag_error(argv, ValueError("x")) == (
      "--config.optimizer.learning_rat: no such key; did you mean "
      "--config.optimizer.learning_rate?")


@pytest.mark.slow
def test_the_cli_says_a_bad_key_or_value_in_one_line(tmp_path):
  spec = os.path.join(config_lib.CONFIG_DIR, "clmr.py:runlocal")
  for argv, want in (
      ([f"--config={spec},input=mell"], "config arg input='mell'"),
      ([f"--config={spec}", "--config.optimizer.learning_rat=1e-3"],
       "did you mean --config.optimizer.learning_rate?")):
    out = subprocess.run(
        [sys.executable, "-m", "jaxmusic.main", *argv,
         f"--workdir={tmp_path}"], capture_output=True, text=True,
        timeout=300)
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and want in lines[0], out.stderr
    assert not os.listdir(tmp_path)


def test_the_configs_backbone_inputs_are_the_registrys():
  """defaults.BACKBONE_INPUTS restates, without jax, which inputs each
  backbone reads; it must say what models.BACKBONES and the frontends'
  EMBEDS derive."""
  from jaxmusic import defaults
  from jaxmusic import models
  from jaxmusic.models import frontends
  for backbone in models.BACKBONES:
    reads = {n for n, f in frontends.FRONTENDS.items()
             if models.frontend_config(ml_collections.ConfigDict(
                 {"name": backbone, "frontend": {"name": n}})).get("embed")}
    assert reads == set(defaults.BACKBONE_INPUTS[backbone]), backbone
