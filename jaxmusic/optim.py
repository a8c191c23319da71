"""The optimizer and its learning-rate schedule, from `config.optimizer`.

`total_steps` and `warmup_steps` count loop steps. With gradient
accumulation (`accumulate_steps` = k) the optimizer inside
`optax.MultiSteps` takes one update every k steps and its schedule reads
its own update count, so the schedule is built over updates (total / k,
warm-up / k): warm-up and decay end where the loop says, not k times later.
"""

import dataclasses
from typing import Callable

import jax
import ml_collections
import optax

OPTIMIZERS = ("adam", "adamw", "lars", "sgd")
# "linear": warm-up, then linear decay to 0 at the last step (fairseq's
# polynomial_decay with power 1, HuBERT's and MERT's schedule).
SCHEDULES = ("constant", "cosine", "linear")


def schedule_in_updates(cfg, total_steps: int):
  """The learning rate as a function of the optimizer's update count."""
  k = cfg.accumulate_steps
  total, warmup = max(total_steps // k, 1), cfg.warmup_steps // k
  if cfg.schedule == "cosine":
    return optax.warmup_cosine_decay_schedule(
        0.0, cfg.learning_rate, max(warmup, 1), total)
  if cfg.schedule == "linear":
    return optax.join_schedules(
        [optax.linear_schedule(0.0, cfg.learning_rate, max(warmup, 1)),
         optax.linear_schedule(cfg.learning_rate, 0.0,
                               max(total - warmup, 1))], [max(warmup, 1)])
  if warmup:
    return optax.join_schedules(
        [optax.linear_schedule(0.0, cfg.learning_rate, warmup),
         optax.constant_schedule(cfg.learning_rate)], [warmup])
  return optax.constant_schedule(cfg.learning_rate)


DECAY = ("all", "matrices")


def _decay_mask(cfg):
  """`weight_decay_on`: "all" parameters, or "matrices" only (kernels and
  embeddings; not biases, norms' gains or a logit scale), as CLIP and
  big_vision decay."""
  if cfg.get("weight_decay_on", "all") == "all":
    return None
  return lambda params: jax.tree.map(lambda p: p.ndim >= 2, params)


def make_optimizer(cfg, total_steps: int):
  """Returns (tx, lr_at_step): `lr_at_step(step)` is the learning rate of
  the update that loop step `step` (0-based) contributes to."""
  schedule = schedule_in_updates(cfg, total_steps)
  eps = cfg.get("eps", 1e-8)
  make = {
      "adam": lambda: optax.adam(schedule, b1=cfg.b1, b2=cfg.b2, eps=eps),
      "adamw": lambda: optax.adamw(schedule, b1=cfg.b1, b2=cfg.b2, eps=eps,
                                   weight_decay=cfg.weight_decay,
                                   mask=_decay_mask(cfg)),
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
  if opt.get("weight_decay_on", "all") not in DECAY:
    fail("optimizer.weight_decay_on", f"use one of {DECAY}")
  if opt.accumulate_steps < 1:
    fail("optimizer.accumulate_steps", "must be >= 1")


@dataclasses.dataclass(frozen=True)
class Group:
  """One player of a game: the top-level params it owns (`keys`), the loss
  it descends, and how it steps.

  `loss_fn(params, model_state, batch, rng) -> (loss, (metrics,
  model_state))` reads every group's params and is differentiated in its
  own only. Its optimizer is `config.optimizer` with the keys in
  `optimizer` replaced (its own learning rate or Adam betas); `updates`
  is how many times it steps on each batch (a discriminator's k steps a
  generator step)."""
  name: str
  keys: tuple[str, ...]
  loss_fn: Callable
  optimizer: dict = dataclasses.field(default_factory=dict)
  updates: int = 1


def group_config(config, group: Group) -> ml_collections.ConfigDict:
  """`config.optimizer` with the group's own keys."""
  cfg = ml_collections.ConfigDict(config.optimizer.to_dict())
  for key, value in group.optimizer.items():
    if key not in cfg:
      raise ValueError(f"config.objective.groups.{group.name}.{key}: no such "
                       f"optimizer key; known: {sorted(cfg)}")
    cfg[key] = value
  return cfg


def validate_groups(config, groups, fail) -> None:
  """Each group's optimizer passes `validate`, and the groups name their
  keys once each."""
  seen = {}
  for g in groups:
    if g.updates < 1:
      fail(f"objective.groups.{g.name}.updates", "must be >= 1")
    for key in g.keys:
      if key in seen:
        fail(f"objective.groups.{g.name}", f"params key {key!r} is also "
             f"group {seen[key]!r}'s")
      seen[key] = g.name
    view = ml_collections.ConfigDict(config.to_dict())
    view.optimizer = group_config(config, g)
    validate(view, lambda key, why, g=g: fail(
        key.replace("optimizer.", f"objective.groups.{g.name}.", 1), why))
