"""Run and data directories that may be bucket URIs (`gs://`, `s3://`).

Every file a run writes or reads goes through `etils.epath`, the path API
Orbax itself uses, so a `--workdir gs://bucket/run` works wherever the
bucket's fsspec filesystem is installed (`pip install jaxmusic[cloud]`
adds `gcsfs` and `google-cloud-storage`). Local paths stay plain paths.

ArrayRecord reads local files only (google/array_record#120), so a
prepared collection named by URI is copied to local disk once per host
(`stage`); a collection larger than a host's disk is read from a gcsfuse
mount instead (`tpu_scripts/pod.sh mount`), which is a local path here.
"""

import hashlib
import logging
import os
import shutil

from etils import epath


def is_remote(path) -> bool:
  return "://" in os.fspath(path)


def path(p) -> epath.Path:
  """`p` as an epath: a URI as given, a local path made absolute (Orbax
  needs absolute paths)."""
  p = os.fspath(p)
  return epath.Path(p if is_remote(p) else os.path.abspath(p))


def copy_file(src: epath.Path, dst: epath.Path) -> None:
  """Streams one file across filesystems (epath's own `copy` stays within
  one backend)."""
  with src.open("rb") as fin, dst.open("wb") as fout:
    shutil.copyfileobj(fin, fout, 1 << 20)


def _files(root: epath.Path, rel: str = ""):
  """(relative path, path) of every file under `root`; a walk by
  `iterdir` because fsspec's `glob` answers with backend-local names."""
  for child in sorted((root / rel).iterdir() if rel else root.iterdir(),
                      key=lambda c: c.name):
    name = os.path.join(rel, child.name) if rel else child.name
    if child.is_dir():
      yield from _files(root, name)
    else:
      yield name, child


def stage(uri: str, cache_dir: str) -> str:
  """A local copy of the directory `uri` under `cache_dir`, made once and
  resumed after an interruption (files already copied at their full size
  are kept); returns its path. A local `uri` is returned unchanged."""
  if not is_remote(uri):
    return uri
  src = path(uri)
  tag = hashlib.sha1(os.fspath(src).rstrip("/").encode()).hexdigest()[:10]
  local = epath.Path(os.path.join(cache_dir, f"staged-{tag}"))
  done = local / ".staged"
  if done.exists():
    return os.fspath(local)
  copied = 0
  for rel, f in _files(src):
    dst = local / rel
    if dst.exists() and dst.stat().length == f.stat().length:
      continue
    dst.parent.mkdir(parents=True, exist_ok=True)
    # Per-process temporary names: processes sharing a host may stage the
    # same collection at once, and the last atomic replace wins.
    tmp = dst.parent / f"{dst.name}.part-{os.getpid()}"
    copy_file(f, tmp)
    tmp.replace(dst)
    copied += 1
  done.write_text(os.fspath(src))
  logging.info("staged %s to %s (%d files copied)", uri, local, copied)
  return os.fspath(local)
