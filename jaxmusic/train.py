"""The training loop: mesh, input, state, update step, checkpoint, metrics.

Read top to bottom. The objective (loss, augmentations, encoder) comes from
the registry by name; this file knows none of them.
"""

import logging
import math
import signal
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec as P
from tqdm import tqdm

from jaxmusic import checkpoint
from jaxmusic import config as config_lib
from jaxmusic import metrics_writer
from jaxmusic import models
from jaxmusic import monitor as knn_monitor
from jaxmusic import objectives
from jaxmusic import optim
from jaxmusic import parallel
from jaxmusic import storage
from jaxmusic.data import corpus
from jaxmusic.data import pipeline
from jaxmusic.data import records


def make_train_step(objective, tx, lr_at_step, seed: int):
  """Pure `(state, batch) -> (state, metrics)`; randomness from the step."""

  def train_step(state, batch):
    rng = jax.random.fold_in(jax.random.key(seed), state["step"])
    grad_fn = jax.value_and_grad(objective.loss_fn, has_aux=True)
    (loss, (metrics, model_state)), grads = grad_fn(
        state["params"], state["model_state"], batch, rng)
    updates, opt = tx.update(grads, state["opt"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    metrics = {**metrics, "loss": loss,
               "grad_norm": optax.tree.norm(grads),
               "lr": lr_at_step(state["step"])}
    return {"params": params, "model_state": model_state, "opt": opt,
            "step": state["step"] + 1}, metrics

  return train_step


def make_group_step(groups, txs, lr_at_steps, seed: int):
  """The step of a game (`objective.groups`): each group in turn takes its
  `updates` steps on the batch, one `value_and_grad` of its own loss in
  its own params each, the others' params as they stand (after the
  groups before it: alternating updates, as GANs train). Its optimizer
  state is `state["opt"][name]`; its metrics carry its name."""

  def train_step(state, batch):
    rng = jax.random.fold_in(jax.random.key(seed), state["step"])
    params, model_state = state["params"], state["model_state"]
    opt, metrics = dict(state["opt"]), {}
    for i, g in enumerate(groups):
      for u in range(g.updates):
        own = {k: params[k] for k in g.keys}

        def loss_of(own, g=g, params=params, model_state=model_state,
                    rng=jax.random.fold_in(rng, i * 1000 + u)):
          return g.loss_fn({**params, **own}, model_state, batch, rng)

        (loss, (found, model_state)), grads = jax.value_and_grad(
            loss_of, has_aux=True)(own)
        updates, opt[g.name] = txs[g.name].update(grads, opt[g.name], own)
        params = {**params, **optax.apply_updates(own, updates)}
      for k, v in found.items():  # a metric both groups report: the first's
        metrics.setdefault(k, v)
      metrics.update({f"{g.name}_loss": loss,
                      f"{g.name}_grad_norm": optax.tree.norm(grads),
                      f"{g.name}_lr": lr_at_steps[g.name](state["step"])})
    return {"params": params, "model_state": model_state, "opt": opt,
            "step": state["step"] + 1}, metrics

  return train_step


def make_step(objective, config):
  """`(step_fn, init_opt)`: the objective's pure train step and its
  optimizer state's initialiser, one optimizer over one loss or one per
  parameter group (`objective.groups`)."""
  groups = getattr(objective, "groups", None)
  if not groups:
    tx, lr_at_step = optim.make_optimizer(config.optimizer,
                                          config.total_steps)
    return (make_train_step(objective, tx, lr_at_step, config.seed),
            tx.init)
  made = {g.name: optim.make_optimizer(optim.group_config(config, g),
                                       config.total_steps) for g in groups}
  txs = {name: tx for name, (tx, _) in made.items()}
  missing = lambda params: sorted(
      set(params) - {k for g in groups for k in g.keys})

  def init_opt(params):
    if missing(params):
      raise ValueError(f"objective {config.objective.name!r}: params "
                       f"{missing(params)} belong to no parameter group")
    return {g.name: txs[g.name].init({k: params[k] for k in g.keys})
            for g in groups}

  step = make_group_step(groups, txs, {n: f for n, (_, f) in made.items()},
                         config.seed)
  return step, init_opt


def encoder_from_run(state, spec: str, shardings):
  """`state` with its encoder's params and model state replaced by those of
  the run `spec` ("RUN" or "RUN:STEP"), restored to the state's shardings:
  fine-tuning any objective's encoder. Leaves the run has that this
  encoder lacks (a masked run's mask embedding) are left out; a two-tower
  projection the run lacks (models.FRESH) starts anew; any other leaf this
  encoder needs that the run lacks, or of another shape, is an error."""
  workdir, step = checkpoint.parse_spec(spec)
  run_params, run_state, step = checkpoint.restore_run(workdir, step)

  def take(kind, target, source):
    try:
      return models.fit(target, source, fresh=models.FRESH)
    except models.Mismatch as e:
      raise ValueError(
          f"config.model_init={spec!r}: the run's encoder has no {kind} "
          f"{e.path} of shape {e.want} (found "
          f"{'none' if e.have is None else e.have}); it must be the same "
          "encoder as config.model") from None

  params = take("parameter", state["params"]["encoder"], run_params)
  model_state = take("state", state["model_state"]["encoder"],
                     models.state_from_checkpoint(run_state))
  logging.info("encoder initialised from %s at step %d", workdir, step)
  new_params = {**state["params"], "encoder": jax.device_put(
      params, shardings["params"]["encoder"])}
  if "heads" in state["params"]:
    # Masked prediction continues with the run's heads (a converted
    # fairseq checkpoint's final_proj and label embeddings) where they fit
    # this config's label sets; new label sets start new heads.
    heads = checkpoint.restore_subtree(checkpoint.step_dir(workdir, step),
                                       "heads")[0]
    shapes = lambda t: jax.tree.map(lambda a: tuple(a.shape), t)
    if heads is not None and shapes(heads) == shapes(state["params"]["heads"]):
      new_params["heads"] = jax.device_put(
          jax.tree.map(lambda h, w: h.astype(w.dtype), heads,
                       state["params"]["heads"]),
          shardings["params"]["heads"])
      logging.info("heads initialised from %s", workdir)
    elif heads is not None:
      logging.warning("config.model_init=%s: its heads do not fit this "
                      "config's label sets (data.targets); they start anew",
                      spec)
  return {**state, "params": new_params,
          "model_state": {**state["model_state"], "encoder": jax.device_put(
              model_state, shardings["model_state"]["encoder"])}}


def _preemption_check():
  """`step -> bool`: whether to checkpoint and leave the loop after `step`.

  One process: a SIGTERM seen by this process. Several: every process must
  leave at the same step, or the ones still stepping hang in a collective.
  JAX's preemption service (started by `jax.distributed.initialize`) takes
  the SIGTERM that any process receives and names one step at which all of
  them answer true, as MaxText's `reached_preemption` does.
  """
  if jax.process_count() > 1:
    return multihost_utils.reached_preemption_sync_point
  seen = []
  signal.signal(signal.SIGTERM, lambda *_: seen.append(True))
  return lambda step: bool(seen)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str):
  config_lib.validate(config)
  config_lib.check_resume(config, workdir)
  storage.path(workdir).mkdir(parents=True, exist_ok=True)
  if jax.process_index() == 0:
    # Export and the HEAR API rebuild the encoder from this.
    config_lib.save_run_config(config, workdir)

  # ----- Mesh and input ---------------------------------------------------
  mesh = parallel.make_mesh(config.mesh)
  data_dir = parallel.first_process_first(
      lambda: corpus.resolve_data_dir(config), "prepared data ready")
  manifest = records.load_manifest(data_dir)
  records.check_grid(config.data, manifest, data_dir)
  objective = objectives.make_objective(config, manifest)
  make_ds = lambda batch_size, seed: pipeline.from_config(
      data_dir, config.data, config.data.split, objective.data_mode,
      batch_size=batch_size, seed=seed, shard_index=jax.process_index(),
      shard_count=jax.process_count())
  train_iter = iter(make_ds(config.batch_size // jax.process_count(),
                            config.seed))
  example = next(iter(make_ds(2, config.seed + 1)))

  # ----- State, created sharded -------------------------------------------
  step_fn, init_opt = make_step(objective, config)

  def init_state(rng):
    variables = objective.init(rng, example)
    return {"params": variables["params"],
            "model_state": variables["model_state"],
            "opt": init_opt(variables["params"]),
            "step": jnp.zeros((), jnp.int32)}

  init_rng = jax.random.key(config.seed)
  abstract = jax.eval_shape(init_state, init_rng)
  shardings = parallel.tree_shardings(mesh, abstract,
                                      tuple(map(tuple, config.sharding_rules)))
  ckpt = checkpoint.Checkpointer(storage.path(workdir) / "checkpoints",
                                 config.checkpoint.every,
                                 config.checkpoint.keep)
  state, start = ckpt.restore_latest(
      checkpoint.abstract_with_shardings(abstract, shardings), train_iter)
  if state is None:
    state = jax.jit(init_state, out_shardings=shardings)(init_rng)
    if config.get("model_init"):
      state = encoder_from_run(state, config.model_init, shardings)
  else:
    logging.info("resumed from step %d in %s", start, workdir)
  count = lambda tree: sum(x.size for x in jax.tree.leaves(tree))
  logging.info("parameters: %s (encoder %s)", f"{count(state['params']):,}",
               f"{count(state['params']['encoder']):,}")

  # ----- Update step --------------------------------------------------------
  step_fn = jax.jit(
      step_fn, in_shardings=(shardings, parallel.batch_sharding(mesh)),
      out_shardings=(shardings, NamedSharding(mesh, P())),
      donate_argnums=0)

  # ----- Loop ---------------------------------------------------------------
  writer = metrics_writer.MetricsWriter(workdir)
  monitor = knn_monitor.make_monitor(config, data_dir, objective, mesh,
                                     shardings)
  if monitor and start == 0:
    writer.write(0, {"knn_accuracy": monitor(state)})
  should_stop = _preemption_check()
  bar = tqdm(total=config.total_steps, initial=start, unit="step",
             disable=jax.process_index() != 0)
  pending, window, t0 = None, [], time.perf_counter()
  stop = False

  def report(step, metrics):
    # Called one step late: fetching step n-1 while step n runs never
    # stalls the device.
    metrics = jax.device_get(metrics)
    # One loss, or each parameter group's (`NAME_loss`).
    losses = {k: v for k, v in metrics.items()
              if k == "loss" or k.endswith("_loss")}
    for name, value in losses.items():
      if not math.isfinite(value):
        raise FloatingPointError(f"{name} is {value} at step {step}")
    window.append(metrics)
    if step % config.log_every == 0 or step == config.total_steps:
      nonlocal t0
      dt = time.perf_counter() - t0
      mean = {k: float(np.mean([m[k] for m in window])) for k in window[0]}
      for k in metrics:
        if k == "lr" or k.endswith("_lr"):
          mean[k] = float(metrics[k])
      mean["steps_per_sec"] = len(window) / dt
      mean["examples_per_sec"] = len(window) * config.batch_size / dt
      writer.write(step, mean)
      bar.set_postfix({k: f"{mean[k]:.4f}"
                       for k in (["loss"] if "loss" in mean else losses)})
      window.clear()
      t0 = time.perf_counter()

  for step in range(start + 1, config.total_steps + 1):
    batch = parallel.global_batch(mesh, next(train_iter))
    state, metrics = step_fn(state, batch)
    if pending:
      report(*pending)
    pending = (step, metrics)
    bar.update()
    if ckpt.save(step, state, train_iter):
      # A run resumed from this checkpoint reads the bucket's metrics.
      writer.sync()
    if monitor and step % config.monitor.every == 0:
      writer.write(step, {"knn_accuracy": monitor(state)})
    if should_stop(step):
      stop = True
      logging.warning("SIGTERM at step %d: checkpointing and exiting", step)
      break
  if pending:
    report(*pending)
  final = int(jax.device_get(state["step"]))
  if ckpt.manager.latest_step() != final:
    ckpt.save(final, state, train_iter, force=True)
  ckpt.wait()
  ckpt.close()
  if monitor and not stop and final % config.monitor.every:
    writer.write(final, {"knn_accuracy": monitor(state)})
  bar.close()
  writer.close()
  after = getattr(objective, "after_training", None)
  if after and not stop:
    # Every process joins the gather; the first writes.
    variables = multihost_utils.process_allgather(
        {"params": state["params"], "model_state": state["model_state"]},
        tiled=True)
    if jax.process_index() == 0:
      after(variables, next(iter(make_ds(8, config.seed + 7))),
            storage.path(workdir))
  return state
