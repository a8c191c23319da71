"""Transparent huge pages for the benchmarks' host buffers, by one re-exec
at start-up. This is launch-side tuning: jaxmusic's library never changes
its own process; a user sets the same line in their shell or launch script
(see the README: `GLIBC_TUNABLES=glibc.malloc.hugetlb=1`).

XLA:CPU takes its buffers from malloc, and glibc gives large blocks back to
the kernel when they are freed, so every step writes to fresh 4 KiB pages.
On a VM each first touch of a page is a fault, and memory-bound work
(BatchNorm, pooling, the in-graph augmentations) ran at ~3 GB/s. glibc >=
2.35 can ask the kernel for transparent huge pages, where its THP mode is
`madvise` (the default on Debian and Ubuntu), but it reads the tunable only
when a process starts. Hence the re-exec. On a 2-core EPYC VM the SampleCNN
CLMR step went from 3.3 s to 2.7 s and the augmentation chain 1.2x faster.

Set JAXMUSIC_HUGEPAGES=0 to run a benchmark without it.
"""

import os
import sys

TUNABLE = "glibc.malloc.hugetlb=1"
OPT_OUT = "JAXMUSIC_HUGEPAGES"
_THP_MODE = "/sys/kernel/mm/transparent_hugepage/enabled"


def thp_mode(path: str = _THP_MODE) -> str | None:
  """The kernel's THP mode (`always`, `madvise` or `never`), if it has one."""
  try:
    with open(path, encoding="ascii") as f:
      text = f.read()
  except OSError:
    return None
  start, end = text.find("["), text.find("]")
  return text[start + 1:end] if 0 <= start < end else None


def glibc_version() -> tuple[int, ...]:
  """(major, minor) of the C library, or () when it is not glibc."""
  try:
    name, version = os.confstr("CS_GNU_LIBC_VERSION").split()
  except (AttributeError, OSError, ValueError):
    return ()
  return tuple(int(v) for v in version.split(".")[:2]) if name == "glibc" else ()


def wanted(environ=None, mode=None, glibc=None) -> bool:
  """Whether re-executing with the tunable would turn huge pages on."""
  environ = os.environ if environ is None else environ
  mode = thp_mode() if mode is None else mode
  glibc = glibc_version() if glibc is None else glibc
  return (environ.get(OPT_OUT, "1") != "0"
          and "glibc.malloc.hugetlb" not in environ.get("GLIBC_TUNABLES", "")
          and mode == "madvise" and glibc >= (2, 35))


def reexec_with_hugepages() -> None:
  """Restarts this command once with glibc asking for THP; else returns.

  Call it first in a `__main__` block. The process keeps its pid, argv and
  environment, so launchers and `jax.distributed` see no difference.
  """
  if not wanted():
    return
  env = dict(os.environ)
  env["GLIBC_TUNABLES"] = ":".join(
      t for t in (env.get("GLIBC_TUNABLES"), TUNABLE) if t)
  sys.stdout.flush()
  sys.stderr.flush()
  try:
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
  except OSError:
    return  # Cannot re-exec (e.g. a frozen binary): run with small pages.


def status() -> str:
  """One line for logs and benchmark headers."""
  on = "glibc.malloc.hugetlb" in os.environ.get("GLIBC_TUNABLES", "")
  return f"huge pages {'on' if on else 'off'} (THP mode {thp_mode()})"
