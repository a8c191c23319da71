"""The benchmarks' huge-page re-exec (launch-side tuning, outside the
library): when it happens, and that it sets the tunable."""

import os
import subprocess
import sys

from experiments.benchmarks import hugepages

ROOT = os.path.join(os.path.dirname(__file__), "..")

NEW_GLIBC = (2, 36)


def test_wanted_only_when_it_would_change_something():
  assert hugepages.wanted({}, "madvise", NEW_GLIBC)
  assert not hugepages.wanted({hugepages.OPT_OUT: "0"}, "madvise", NEW_GLIBC)
  assert not hugepages.wanted({"GLIBC_TUNABLES": hugepages.TUNABLE},
                              "madvise", NEW_GLIBC)
  assert not hugepages.wanted({}, "always", NEW_GLIBC)  # already huge
  assert not hugepages.wanted({}, "never", NEW_GLIBC)
  assert not hugepages.wanted({}, "madvise", (2, 31))  # no such tunable
  assert not hugepages.wanted({}, "madvise", ())  # not glibc


def test_thp_mode_reads_the_bracketed_choice(tmp_path):
  path = tmp_path / "enabled"
  path.write_text("always [madvise] never\n")
  assert hugepages.thp_mode(str(path)) == "madvise"
  assert hugepages.thp_mode(str(tmp_path / "missing")) is None


def _child_tunables(env):
  code = ("from experiments.benchmarks import hugepages;"
          "hugepages.reexec_with_hugepages();"
          "import os; print(os.environ.get('GLIBC_TUNABLES', ''))")
  return subprocess.run([sys.executable, "-c", code],
                        env={**env, "PYTHONPATH": ROOT}, check=True,
                        capture_output=True, text=True).stdout.strip()


def test_reexec_adds_the_tunable_once_and_keeps_others():
  env = {k: v for k, v in os.environ.items()
         if k not in ("GLIBC_TUNABLES", hugepages.OPT_OUT)}
  env["GLIBC_TUNABLES"] = "glibc.malloc.check=0"
  will = hugepages.wanted(env)
  got = _child_tunables(env)
  if will:
    assert got == "glibc.malloc.check=0:" + hugepages.TUNABLE
  else:  # this kernel or libc cannot use it: the command runs unchanged
    assert got == "glibc.malloc.check=0"
  assert _child_tunables({**env, hugepages.OPT_OUT: "0"}) == (
      "glibc.malloc.check=0")
