"""MARBLE's probe (`--protocol marble`): an MLP of one 512-unit hidden layer
with dropout 0.2 on the clip features (a softmax-normalised weighted sum of
the layers when the layers are there, the last layer otherwise), trained
with Adam at batch 64 for at most 100 epochs. After each epoch the valid
split's track-averaged metric drives ReduceLROnPlateau (halving the rate
after `lr_patience` epochs without a gain) and early stopping (after
`stop_patience`); the best valid epoch's weights are kept. The learning
rate is MARBLE's grid, chosen on valid; test is scored once, with the clip
predictions averaged per track.

The settings are those of MARBLE's task configs and prober
(benchmark/tasks/*/*_base_config.yaml, benchmark/models/probers.py). The
features are not standardised, as MARBLE's are not.
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmusic.eval import probes

LRS = (1e-2, 5e-3, 1e-3, 5e-4, 1e-4)


def _head(task, train: probes.Split):
  """(classes, integer or float targets, outputs, loss, scores from
  logits) for `task`."""
  if task == "multiclass":
    classes = np.unique(train.y)
    return (classes, np.searchsorted(classes, train.y), len(classes),
            lambda out, y: optax.softmax_cross_entropy_with_integer_labels(
                out, y).mean(), jax.nn.softmax)
  if task == "multilabel":
    return (None, train.y.astype(np.float32), train.y.shape[1],
            lambda out, y: optax.sigmoid_binary_cross_entropy(out, y).mean(),
            jax.nn.sigmoid)
  return (None, train.y.astype(np.float32), 1,
          lambda out, y: jnp.mean((out[:, 0] - y) ** 2),
          lambda out: out[:, 0])


def mlp(dim: int, n_out: int, hidden: int = 512, dropout: float = 0.2,
        n_layers: int = 0):
  """MARBLE's head as (init(key), forward(params, x, key=None)): a
  softmax-weighted sum of `n_layers` layers first where there are layers,
  then one `hidden`-unit ReLU layer with dropout (a key turns dropout on),
  or a linear map when `hidden` is 0."""

  def forward(p, x, key=None):
    if n_layers:
      x = jnp.einsum("l,nld->nd", jax.nn.softmax(p["layers"]), x)
    if hidden:
      x = jax.nn.relu(x @ p["w1"] + p["b1"])
      if key is not None:
        keep = jax.random.bernoulli(key, 1.0 - dropout, x.shape)
        x = jnp.where(keep, x / (1.0 - dropout), 0.0)
    return x @ p["w2"] + p["b2"]

  def init(key):
    k1, k2 = jax.random.split(key)
    # PyTorch's nn.Linear initialisation, as MARBLE's MLP has.
    width = hidden or dim
    b1, b2 = 1.0 / np.sqrt(dim), 1.0 / np.sqrt(width)
    p = {"w2": jax.random.uniform(k2, (width, n_out), minval=-b2, maxval=b2),
         "b2": jnp.zeros(n_out)}
    if hidden:
      p["w1"] = jax.random.uniform(k1, (dim, hidden), minval=-b1, maxval=b1)
      p["b1"] = jnp.zeros(hidden)
    if n_layers:
      p["layers"] = jnp.zeros(n_layers)
    return p

  return init, forward


def adam_epochs(init, forward, loss_fn):
  """`run(x, y, lr, batch, seed)`: a generator of the params and optimizer
  state after each epoch of Adam over shuffled minibatches, from `init`.
  The caller may set `opt.hyperparams["learning_rate"]` between epochs
  (the rate is state, so a changed rate reuses the compiled step)."""
  tx = optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)

  @jax.jit
  def step(p, opt, x, y, key):
    grads = jax.grad(lambda p: loss_fn(forward(p, x, key), y))(p)
    updates, opt = tx.update(grads, opt, p)
    return optax.apply_updates(p, updates), opt

  def run(x, y, lr, batch, seed):
    key, sub = jax.random.split(jax.random.key(seed))
    p = init(sub)
    opt = tx.init(p)
    opt.hyperparams["learning_rate"] = jnp.asarray(lr)
    rng = np.random.default_rng(seed)
    while True:
      order = rng.permutation(len(x))
      for start in range(0, len(x), batch):
        idx = order[start:start + batch]
        key, sub = jax.random.split(key)
        p, opt = step(p, opt, x[idx], y[idx], sub)
      yield p, opt

  return run


def fit(task, train: probes.Split, valid: probes.Split, test: probes.Split,
        seed: int = 0, lrs=LRS, epochs: int = 100, batch: int = 64,
        hidden: int = 512, dropout: float = 0.2, lr_patience: int = 5,
        stop_patience: int = 20) -> dict[str, Any]:
  """The test metrics of the learning rate whose best epoch scored best on
  valid, with that rate, the epochs it ran and (layered input) the learned
  layer weights."""
  classes, target, n_out, loss_fn, output = _head(task, train)
  layered = train.x.ndim == 3
  init, forward = mlp(train.x.shape[-1], n_out, hidden, dropout,
                      train.x.shape[1] if layered else 0)
  train_run = adam_epochs(init, forward, loss_fn)
  select = probes.SELECT_BY[task]
  predict = jax.jit(lambda p, x: output(forward(p, x)))
  x_tr = jnp.asarray(train.x, jnp.float32)
  best = None
  for lr in lrs:
    run_best, since_best, since_gain, plateau_best = None, 0, 0, None
    for ran, (p, opt) in enumerate(
        train_run(x_tr, target, lr, batch, seed), start=1):
      val = probes.evaluate(task, valid, np.asarray(
          predict(p, jnp.asarray(valid.x, jnp.float32))), classes)
      if run_best is None or val[select] > run_best[0][select]:
        run_best, since_best = (val, p), 0
      else:
        since_best += 1
      if plateau_best is None or val[select] > plateau_best:
        plateau_best, since_gain = val[select], 0
      else:
        since_gain += 1
        if since_gain > lr_patience:
          opt.hyperparams["learning_rate"] = (
              opt.hyperparams["learning_rate"] * 0.5)
          since_gain = 0
      if since_best >= stop_patience or ran == epochs:
        break
    if best is None or run_best[0][select] > best[0][select]:
      best = (run_best[0], run_best[1], lr, ran)
  val, p, lr, ran = best
  out = {"metrics": probes.evaluate(task, test, np.asarray(
      predict(p, jnp.asarray(test.x, jnp.float32))), classes),
         "valid": val, "hyperparameters": {"lr": lr, "epochs": ran}}
  if layered:
    out["layer_weights"] = np.asarray(jax.nn.softmax(p["layers"])).round(
        4).tolist()
  return out
