"""The device mesh, parameter and batch shardings, global batches.

The mesh comes from the config, e.g. `[("data", -1), ("fsdp", 1)]`; -1 takes
the remaining devices. Data parallel versus FSDP is therefore a config
change: a parameter matching an "fsdp" rule is split along its largest axis
divisible by the fsdp size, everything else is replicated, and the batch is
split over both axes.
"""

import re

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

BATCH_AXES = ("data", "fsdp")


def make_mesh(axes) -> Mesh:
  names = tuple(name for name, _ in axes)
  if set(names) != set(BATCH_AXES):
    raise ValueError(f"config.mesh axes {names} must be exactly {BATCH_AXES}")
  sizes = [size for _, size in axes]
  n = jax.device_count()
  if sizes.count(-1) > 1:
    raise ValueError("config.mesh: at most one axis may be -1")
  known = int(np.prod([s for s in sizes if s != -1]))
  if n % known:
    raise ValueError(f"config.mesh {axes} does not divide {n} devices")
  sizes = [n // known if s == -1 else s for s in sizes]
  if int(np.prod(sizes)) != n:
    raise ValueError(f"config.mesh {axes} covers {np.prod(sizes)} devices, "
                     f"not the {n} present")
  # Auto axes: GSPMD propagates shardings through the step, as in big_vision.
  return jax.make_mesh(sizes, names, (AxisType.Auto,) * len(names))


def _path_str(path) -> str:
  return "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


def tree_shardings(mesh: Mesh, abstract_tree, rules=((".*", "fsdp"),)):
  """NamedShardings for a tree of ShapeDtypeStructs, by regex rules over
  the "/"-joined path; the first matching rule wins."""
  fsdp = mesh.shape["fsdp"]

  def spec(path, leaf):
    name = _path_str(path)
    for pattern, strategy in rules:
      if re.fullmatch(pattern, name):
        break
    else:
      strategy = "replicate"
    shape = getattr(leaf, "shape", ())
    if strategy == "fsdp" and fsdp > 1 and shape:
      for axis in np.argsort(shape)[::-1]:
        if shape[axis] % fsdp == 0:
          parts = [None] * len(shape)
          parts[axis] = "fsdp"
          return NamedSharding(mesh, P(*parts))
    return NamedSharding(mesh, P())

  return jax.tree_util.tree_map_with_path(spec, abstract_tree)


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(BATCH_AXES))


def global_batch(mesh: Mesh, local_batch):
  """This host's numpy batch -> global arrays sharded on the batch axis."""
  sharding = batch_sharding(mesh)
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)),
      local_batch)


def first_process_first(fn, what: str):
  """`fn()` on process 0, then on the others once it has finished (a
  cache process 0 builds and the others find); one process: just `fn()`."""
  if jax.process_count() == 1:
    return fn()
  out = fn() if jax.process_index() == 0 else None
  multihost_utils.sync_global_devices(what)
  return out if jax.process_index() == 0 else fn()
