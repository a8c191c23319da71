"""The training loop: mesh, input, state, update step, checkpoint, metrics.

Read top to bottom. The objective (loss, augmentations, encoder) comes from
the registry by name; this file knows none of them.
"""

import logging
import math
import os
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
from jaxmusic import objectives
from jaxmusic import parallel
from jaxmusic.data import pipeline
from jaxmusic.data import synthetic
from jaxmusic.eval import knn


def make_optimizer(cfg: ml_collections.ConfigDict, total_steps: int):
  """optax chain from the config; returns (tx, schedule)."""
  if cfg.schedule == "cosine":
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, cfg.learning_rate, max(cfg.warmup_steps, 1), total_steps)
  elif cfg.warmup_steps:
    schedule = optax.linear_schedule(0.0, cfg.learning_rate, cfg.warmup_steps)
    schedule = optax.join_schedules(
        [schedule, optax.constant_schedule(cfg.learning_rate)],
        [cfg.warmup_steps])
  else:
    schedule = optax.constant_schedule(cfg.learning_rate)
  make = {
      "adam": lambda: optax.adam(schedule, b1=cfg.b1, b2=cfg.b2),
      "adamw": lambda: optax.adamw(schedule, b1=cfg.b1, b2=cfg.b2,
                                   weight_decay=cfg.weight_decay),
      "lars": lambda: optax.lars(schedule, weight_decay=cfg.weight_decay,
                                 momentum=cfg.momentum),
      "sgd": lambda: optax.sgd(schedule, momentum=cfg.momentum),
  }[cfg.name]
  parts = [optax.clip_by_global_norm(cfg.grad_clip_norm)] \
      if cfg.grad_clip_norm else []
  tx = optax.chain(*parts, make())
  if cfg.accumulate_steps > 1:
    tx = optax.MultiSteps(tx, cfg.accumulate_steps)
  return tx, schedule


def resolve_data_dir(config) -> str:
  """The prepared directory: config.data.dir, or the embedded synthetic
  corpus prepared on first use (process 0 builds it, others wait)."""
  if config.data.dir:
    return config.data.dir
  syn = config.data.synthetic
  cfg = synthetic.SyntheticConfig(num_tracks=syn.num_tracks,
                                  seconds=syn.seconds, seed=syn.seed,
                                  sample_rate=config.data.sample_rate)
  build = lambda: synthetic.ensure_prepared(
      cfg, tuple(config.data.features), config.data.segment_seconds,
      config.data.get("cache_dir") or None, workers=syn.workers)
  if jax.process_index() == 0:
    path = build()
  multihost_utils.sync_global_devices("synthetic data ready")
  return path if jax.process_index() == 0 else build()


def make_train_step(objective, tx, schedule, seed: int):
  """Pure `(state, batch) -> (state, metrics)`; randomness from the step."""

  def train_step(state, batch):
    rng = jax.random.fold_in(jax.random.key(seed), state["step"])
    grad_fn = jax.value_and_grad(objective.loss_fn, has_aux=True)
    (loss, (metrics, model_state)), grads = grad_fn(
        state["params"], state["model_state"], batch, rng)
    updates, opt = tx.update(grads, state["opt"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    metrics = {**metrics, "loss": loss,
               "grad_norm": optax.global_norm(grads),
               "lr": schedule(state["step"])}
    return {"params": params, "model_state": model_state, "opt": opt,
            "step": state["step"] + 1}, metrics

  return train_step


def make_monitor(config, data_dir, objective):
  """kNN accuracy on the eval split's labels from train-split embeddings;
  None when the data has no labels."""
  data = pipeline.PreparedData(data_dir)
  if not data.manifest["vocab"]["label"] or not config.monitor.every:
    return None
  embed = jax.jit(objective.embed)

  def run(state) -> float:
    variables = {"params": state["params"],
                 "batch_stats": state["model_state"]}
    if jax.process_count() > 1:
      variables = multihost_utils.process_allgather(variables, tiled=True)
    variables = jax.device_get(variables)
    fn = lambda x: embed(variables, x)
    sets = [knn.track_embeddings(fn, pipeline.make_dataset(
        data, split, "sequential", batch_size=config.monitor.batch_size,
        feature=config.data.features[0],
        crop_samples=config.data.crop_samples))
            for split in (config.data.split, config.data.eval_split)]
    return knn.knn_accuracy(*sets[0], *sets[1], k=config.monitor.k)

  return run


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str):
  config_lib.validate(config)
  os.makedirs(workdir, exist_ok=True)
  if jax.process_index() == 0:
    # Export and the HEAR API rebuild the encoder from this.
    config_lib.save_run_config(config, workdir)

  # ----- Mesh and input ---------------------------------------------------
  mesh = parallel.make_mesh(config.mesh)
  objective = objectives.make_objective(config)
  data_dir = resolve_data_dir(config)
  make_ds = lambda batch_size, seed: pipeline.make_dataset(
      data_dir, config.data.split, objective.data_mode,
      batch_size=batch_size, feature=config.data.features[0],
      crop_samples=config.data.crop_samples, seed=seed,
      shard_index=jax.process_index(), shard_count=jax.process_count(),
      workers=config.data.workers)
  train_iter = iter(make_ds(config.batch_size // jax.process_count(),
                            config.seed))
  example = next(iter(make_ds(2, config.seed + 1)))

  # ----- State, created sharded -------------------------------------------
  tx, schedule = make_optimizer(config.optimizer, config.total_steps)

  def init_state(rng):
    variables = objective.init(rng, example)
    return {"params": variables["params"],
            "model_state": variables["batch_stats"],
            "opt": tx.init(variables["params"]),
            "step": jnp.zeros((), jnp.int32)}

  init_rng = jax.random.key(config.seed)
  abstract = jax.eval_shape(init_state, init_rng)
  shardings = parallel.tree_shardings(mesh, abstract,
                                      tuple(map(tuple, config.sharding_rules)))
  ckpt = checkpoint.Checkpointer(os.path.join(workdir, "checkpoints"),
                                 config.checkpoint.every,
                                 config.checkpoint.keep)
  state, start = ckpt.restore_latest(
      checkpoint.abstract_with_shardings(abstract, shardings), train_iter)
  if state is None:
    state = jax.jit(init_state, out_shardings=shardings)(init_rng)
  else:
    logging.info("resumed from step %d in %s", start, workdir)
  count = lambda tree: sum(x.size for x in jax.tree.leaves(tree))
  logging.info("parameters: %s (encoder %s)", f"{count(state['params']):,}",
               f"{count(state['params']['encoder']):,}")

  # ----- Update step --------------------------------------------------------
  step_fn = jax.jit(
      make_train_step(objective, tx, schedule, config.seed),
      in_shardings=(shardings, parallel.batch_sharding(mesh)),
      out_shardings=(shardings, NamedSharding(mesh, P())),
      donate_argnums=0)

  # ----- Loop ---------------------------------------------------------------
  writer = metrics_writer.MetricsWriter(workdir)
  monitor = make_monitor(config, data_dir, objective)
  if monitor and start == 0:
    writer.write(0, {"knn_accuracy": monitor(state)})
  stop = []
  signal.signal(signal.SIGTERM, lambda *_: stop.append("SIGTERM"))
  bar = tqdm(total=config.total_steps, initial=start, unit="step",
             disable=jax.process_index() != 0)
  pending, window, t0 = None, [], time.perf_counter()

  def report(step, metrics):
    # Called one step late: fetching step n-1 while step n runs never
    # stalls the device.
    metrics = jax.device_get(metrics)
    if not math.isfinite(metrics["loss"]):
      raise FloatingPointError(f"loss is {metrics['loss']} at step {step}")
    window.append(metrics)
    if step % config.log_every == 0 or step == config.total_steps:
      nonlocal t0
      dt = time.perf_counter() - t0
      mean = {k: float(np.mean([m[k] for m in window])) for k in window[0]}
      mean["lr"] = float(metrics["lr"])
      mean["steps_per_sec"] = len(window) / dt
      mean["examples_per_sec"] = len(window) * config.batch_size / dt
      writer.write(step, mean)
      bar.set_postfix(loss=f"{mean['loss']:.4f}")
      window.clear()
      t0 = time.perf_counter()

  for step in range(start + 1, config.total_steps + 1):
    batch = parallel.global_batch(mesh, next(train_iter))
    state, metrics = step_fn(state, batch)
    if pending:
      report(*pending)
    pending = (step, metrics)
    bar.update()
    ckpt.save(step, state, train_iter)
    if monitor and step % config.monitor.every == 0:
      writer.write(step, {"knn_accuracy": monitor(state)})
    if stop:
      logging.warning("%s at step %d: checkpointing and exiting", stop[0],
                      step)
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
  return state
