"""The optimizer and its learning-rate schedule, from `config.optimizer`.

`total_steps` and `warmup_steps` count loop steps. With gradient
accumulation (`accumulate_steps` = k) the optimizer inside
`optax.MultiSteps` takes one update every k steps and its schedule reads
its own update count, so the schedule is built over updates (total / k,
warm-up / k): warm-up and decay end where the loop says, not k times later.
"""

import optax

OPTIMIZERS = ("adam", "adamw", "lars", "sgd")
SCHEDULES = ("constant", "cosine")


def schedule_in_updates(cfg, total_steps: int):
  """The learning rate as a function of the optimizer's update count."""
  k = cfg.accumulate_steps
  total, warmup = max(total_steps // k, 1), cfg.warmup_steps // k
  if cfg.schedule == "cosine":
    return optax.warmup_cosine_decay_schedule(
        0.0, cfg.learning_rate, max(warmup, 1), total)
  if warmup:
    return optax.join_schedules(
        [optax.linear_schedule(0.0, cfg.learning_rate, warmup),
         optax.constant_schedule(cfg.learning_rate)], [warmup])
  return optax.constant_schedule(cfg.learning_rate)


def make_optimizer(cfg, total_steps: int):
  """Returns (tx, lr_at_step): `lr_at_step(step)` is the learning rate of
  the update that loop step `step` (0-based) contributes to."""
  schedule = schedule_in_updates(cfg, total_steps)
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
  k = cfg.accumulate_steps
  if k > 1:
    tx = optax.MultiSteps(tx, k)
  return tx, lambda step: schedule(step // k)


def validate(config, fail):
  opt = config.optimizer
  if opt.name not in OPTIMIZERS:
    fail("optimizer.name", f"unknown; known: {OPTIMIZERS}")
  if opt.schedule not in SCHEDULES:
    fail("optimizer.schedule", f"unknown; known: {SCHEDULES}")
  if opt.learning_rate <= 0:
    fail("optimizer.learning_rate", "must be positive")
  if opt.warmup_steps >= config.total_steps and opt.warmup_steps:
    fail("optimizer.warmup_steps", "must be below total_steps")
  if opt.accumulate_steps < 1:
    fail("optimizer.accumulate_steps", "must be >= 1")
