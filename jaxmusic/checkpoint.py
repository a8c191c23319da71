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
