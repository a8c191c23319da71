"""Orbax checkpoints of everything a run needs to resume exactly: params,
optimizer state, model state, step, and the Grain iterator, in one step.
"""

import logging
import os

import grain
import jax
import orbax.checkpoint as ocp


class Checkpointer:
  """Async saves every `every` steps (keep `keep`), restore with fallback."""

  def __init__(self, directory: str, every: int, keep: int):
    self.manager = ocp.CheckpointManager(
        os.path.abspath(directory),
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
    for step in sorted(self.manager.all_steps(), reverse=True):
      try:
        restored = self.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state),
            data_iter=grain.checkpoint.CheckpointRestore(data_iter)))
        return restored["state"], step
      except Exception as e:  # pylint: disable=broad-except
        logging.warning("checkpoint %s is unreadable (%s: %s); falling back "
                        "to the previous one",
                        os.path.join(str(self.manager.directory), str(step)),
                        type(e).__name__, str(e).splitlines()[0][:200])
    return None, 0

  def wait(self):
    self.manager.wait_until_finished()

  def close(self):
    self.manager.close()


def abstract_with_shardings(abstract_tree, shardings):
  return jax.tree.map(
      lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
      abstract_tree, shardings)
