"""Orbax checkpoints of everything a run needs to resume exactly: params,
optimizer state, model state, step, and the Grain iterator, in one step.
"""

import logging
import os

import grain
import jax
import orbax.checkpoint as ocp

from jaxmusic import storage


class Checkpointer:
  """Async saves every `every` steps (keep `keep`), restore with fallback."""

  def __init__(self, directory: str, every: int, keep: int):
    self.manager = ocp.CheckpointManager(
        storage.path(directory),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=keep, save_interval_steps=every,
            enable_async_checkpointing=True))

  def save(self, step: int, state, data_iter, force: bool = False) -> bool:
    return self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        data_iter=grain.checkpoint.CheckpointSave(data_iter)), force=force)

  def restore_latest(self, abstract_state, data_iter):
    """Restores the newest readable checkpoint into `abstract_state`'s
    shardings and `data_iter`; returns (state, step), or (None, 0) if none.

    A checkpoint that fails to read is reported by name and skipped for the
    one before it, so a run killed mid-save still resumes.
    """
    def read(step):
      return self.manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract_state),
          data_iter=grain.checkpoint.CheckpointRestore(data_iter)))["state"]

    steps = sorted(self.manager.all_steps(), reverse=True)
    if not steps:
      return None, 0
    try:
      return newest_readable(str(self.manager.directory), steps, read)
    except FileNotFoundError as e:
      logging.warning("%s; starting from step 0", e)
      return None, 0

  def wait(self):
    self.manager.wait_until_finished()

  def close(self):
    self.manager.close()


def newest_readable(directory: str, steps, read):
  """`(read(step), step)` for the first of `steps` (newest first) that
  reads. Each unreadable one is named in a warning and skipped for the one
  before it, so a run killed mid-save still resumes and exports; raises
  FileNotFoundError when none reads."""
  for i, step in enumerate(steps):
    try:
      return read(step), step
    except Exception as e:  # pylint: disable=broad-except
      path = os.path.join(directory, str(step))
      why = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}" if str(
          e) else type(e).__name__
      if len(steps) == 1:
        raise FileNotFoundError(f"{path}: unreadable checkpoint ({why})") \
            from e
      logging.warning("checkpoint %s is unreadable (%s)%s", path, why,
                      "; falling back to the previous one"
                      if i + 1 < len(steps) else "")
  raise FileNotFoundError(f"{directory}: no readable checkpoint")


def abstract_with_shardings(abstract_tree, shardings):
  return jax.tree.map(
      lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
      abstract_tree, shardings)


def save_params(directory: str, params, step: int = 0) -> None:
  """Writes a checkpoint holding only `params` (`{"encoder": ...}`, and
  the objective's `"heads"` where there are any) at `step`, in the layout
  train writes (`DIR/STEP/state`), which export, the HEAR API and
  `config.model_init` read: converted weights."""
  manager = ocp.CheckpointManager(storage.path(directory))
  manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(
      {"params": params})), force=True)
  manager.wait_until_finished()
  manager.close()


def latest_steps(workdir: str) -> list[int]:
  """The run's readable-looking checkpoint steps, newest first."""
  directory = storage.path(workdir) / "checkpoints"
  if not directory.is_dir():
    return []
  return sorted((int(d.name) for d in directory.iterdir()
                 if d.name.isdigit() and (d / "state").exists()),
                reverse=True)


def restore_subtree(path, key: str = "encoder"):
  """`(params[key], model_state[key])` of a checkpoint's state item, read
  alone (Orbax partial restore) onto one device; `(None, {})` where the
  checkpoint has no params[key] (a converted encoder has no heads)."""
  checkpointer = ocp.PyTreeCheckpointer()
  absl_logger = logging.getLogger("absl")
  level = absl_logger.level
  # The state item has no metadata file of its own (the step has); Orbax
  # warns about it on every read.
  absl_logger.setLevel(logging.ERROR)
  try:
    tree = checkpointer.metadata(path).item_metadata.tree
  finally:
    absl_logger.setLevel(level)
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  if key not in tree["params"]:
    return None, {}
  wanted = {"params": {key: tree["params"][key]}}
  # A stateless encoder (the transformer) may leave no model_state node.
  state_tree = (tree.get("model_state") or {}).get(key) or {}
  if state_tree:
    wanted["model_state"] = {key: state_tree}
  item = jax.tree.map(
      lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
      wanted)
  restored = checkpointer.restore(path, args=ocp.args.PyTreeRestore(
      item=item, restore_args=ocp.checkpoint_utils.construct_restore_args(
          item), partial_restore=True))
  return (restored["params"][key],
          restored.get("model_state", {}).get(key) or {})


def parse_spec(spec: str) -> tuple[str, int | None]:
  """"RUN" or "RUN:STEP" -> (workdir, step or None); a suffix that is not
  a step number stays part of the path, so `gs://...` run directories
  read too."""
  workdir, sep, step = spec.rpartition(":")
  if not (sep and step.isdigit()):
    return spec, None
  return workdir, int(step)


def step_dir(workdir: str, step: int):
  return storage.path(workdir) / "checkpoints" / str(step) / "state"


def restore_run(workdir: str, step: int | None = None,
                key: str = "encoder"):
  """`(params[key], model_state[key], step)` of the run in `workdir` at
  `step` (default: the newest readable checkpoint; an unreadable newest
  one is named and skipped)."""
  steps = latest_steps(workdir)
  if step is not None:
    if step not in steps:
      raise FileNotFoundError(
          f"{os.path.join(workdir, 'checkpoints', str(step))}: no such "
          f"checkpoint; have steps {sorted(steps) or 'none'}")
    steps = [step]
  if not steps:
    raise FileNotFoundError(f"{os.path.join(workdir, 'checkpoints')}: no "
                            "checkpoint to load")
  (params, state), step = newest_readable(
      os.fspath(storage.path(workdir) / "checkpoints"), steps,
      lambda s: restore_subtree(step_dir(workdir, s), key))
  return params, state, step
