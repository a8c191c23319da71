"""The `base` transformer's masked-prediction training step against the
same-shape PyTorch eager encoder step, and its MFU.

  pip install -e ".[bench]"
  python experiments/benchmarks/bench_transformer.py [--batch 8 --seconds 5]

Both sides: B x F log-mel frames (5 s at 43 Hz: F = 215, 128 bands), 8% of
frames replaced by a learned mask embedding, input LayerNorm + projection,
HuBERT's convolutional positions (kernel 128, 16 groups), 12 pre-LN layers
(768 wide, 12 heads, FFN 3072, GELU), final LayerNorm, a 500-way frame
classifier trained with cross-entropy on the masked frames (HuBERT's
targets), and an AdamW update. Dropout is off on both sides, so both do the
same arithmetic. jaxmusic's side is its own Transformer module in one
jitted step; PyTorch runs eager, as fairseq does.

MFU: the step's FLOPs (XLA's count of the compiled step) per second over
this machine's float32 matmul peak, measured in the same run as the fastest
of 2048², 3072² and 4096² `jnp.dot`s. Targets on CPU: >= 1.3x PyTorch eager and >= 50% of the peak. On
a GPU, `--dtype bfloat16 --size 95m` gives bf16 MFU against the bf16 peak
(target >= 45%). The ratio is printed last.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _timing import best_of, machine  # pylint: disable=g-import-not-at-top,wrong-import-position
import hugepages  # pylint: disable=wrong-import-position

CLASSES, MASK_PROB, BANDS = 500, 0.08, 128


def data(batch, frames, seed=0):
  import numpy as np  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  x = rng.standard_normal((batch, frames, BANDS)).astype(np.float32)
  mask = rng.random((batch, frames)) < MASK_PROB
  mask[:, 0] = True  # never an empty mask
  targets = rng.integers(0, CLASSES, (batch, frames)).astype(np.int32)
  return x, mask, targets


def matmul_peak(dtype: str, sizes=(2048, 3072, 4096)) -> float:
  """FLOP/s of large square jnp.dots on this device: the best size, best
  of 5 each (the strictest denominator for MFU)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  dot = jax.jit(jnp.dot)
  best = 0.0
  for n in sizes:
    a = jax.random.normal(jax.random.key(0), (n, n), dtype)
    b = jax.random.normal(jax.random.key(1), (n, n), dtype)
    t = best_of(lambda: dot(a, b).block_until_ready(), repeats=5)
    best = max(best, 2 * n ** 3 / t)
  return best


def jax_step(size, batch, frames, dtype):
  """Returns (run, flops): run() does one step and blocks."""
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  import ml_collections  # pylint: disable=g-import-not-at-top
  from jaxmusic import models  # pylint: disable=g-import-not-at-top
  from jaxmusic.models import transformer  # pylint: disable=g-import-not-at-top
  # As a run's config would choose it: `auto`.
  impl = models.resolve_impl(ml_collections.ConfigDict(
      dict(name="transformer", dtype=dtype, impl="auto")))
  print(f"jaxmusic impl: {impl}")

  class Model(nn.Module):
    @nn.compact
    def __call__(self, x, mask):
      emb = self.param("mask_embedding", nn.initializers.uniform(1.0),
                       (x.shape[-1],))
      x = jnp.where(mask[..., None], emb, x)
      frames_BxFxD, _ = transformer.Transformer(
          size=size, dropout=0.0, attention_dropout=0.0, impl=impl,
          dtype=jnp.dtype(dtype))(x)
      return nn.Dense(CLASSES, dtype=jnp.dtype(dtype))(frames_BxFxD)

  model = Model()
  x, mask, targets = (jnp.asarray(a) for a in data(batch, frames))
  params = model.init(jax.random.key(0), x, mask)
  tx = optax.adamw(1e-4, weight_decay=0.01)
  state = (params, tx.init(params))

  def loss_fn(p):
    logits = model.apply(p, x, mask).astype(jnp.float32)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    return jnp.sum(ce * mask) / jnp.sum(mask)

  @jax.jit
  def step(state):
    p, opt = state
    loss, grads = jax.value_and_grad(loss_fn)(p)
    updates, opt = tx.update(grads, opt, p)
    return (optax.apply_updates(p, updates), opt), loss

  flops = step.lower(state).compile().cost_analysis()["flops"]
  holder = [state]

  def run():
    holder[0], loss = step(holder[0])
    loss.block_until_ready()

  return run, flops


def torch_step(size, batch, frames):
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  from jaxmusic.models import transformer  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(os.cpu_count())
  s = transformer.shape_of(size)

  class ConvPositions(nn.Module):
    def __init__(self, d):
      super().__init__()
      self.conv = nn.utils.parametrizations.weight_norm(
          nn.Conv1d(d, d, 128, padding=64, groups=16), dim=2)

    def forward(self, x):
      return nn.functional.gelu(self.conv(x.transpose(1, 2))[..., :-1]
                                .transpose(1, 2))

  class Model(nn.Module):
    def __init__(self):
      super().__init__()
      self.mask_embedding = nn.Parameter(torch.rand(BANDS))
      self.norm = nn.LayerNorm(BANDS)
      self.proj = nn.Linear(BANDS, s.width)
      self.pos = ConvPositions(s.width)
      self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(
          s.width, s.heads, s.ffn, dropout=0.0, activation="gelu",
          batch_first=True, norm_first=True), s.layers,
          norm=nn.LayerNorm(s.width), enable_nested_tensor=False)
      self.head = nn.Linear(s.width, CLASSES)

    def forward(self, x, mask):
      x = torch.where(mask[..., None], self.mask_embedding, x)
      x = self.proj(self.norm(x))
      return self.head(self.encoder(x + self.pos(x)))

  model = Model()
  x, mask, targets = (torch.from_numpy(a) for a in data(batch, frames))
  targets = targets.long()
  opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)

  def run():
    opt.zero_grad(set_to_none=True)
    logits = model(x, mask)
    ce = nn.functional.cross_entropy(logits.reshape(-1, CLASSES),
                                     targets.reshape(-1), reduction="none")
    loss = (ce * mask.reshape(-1)).sum() / mask.sum()
    loss.backward()
    opt.step()

  return run


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--size", default="base")
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--seconds", type=float, default=5.0)
  parser.add_argument("--dtype", default="float32")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--no_torch", action="store_true")
  args = parser.parse_args()
  frames = int(round(args.seconds * 22050 / 512))
  print(machine())
  print(f"{args.size} transformer, batch {args.batch} x {frames} frames, "
        f"{args.dtype}")
  peak = matmul_peak(args.dtype)
  print(f"matmul peak ({args.dtype}, best of 2048-4096^2 jnp.dot): "
        f"{peak / 1e9:.1f} GFLOP/s")
  run, flops = jax_step(args.size, args.batch, frames, args.dtype)
  t0 = time.perf_counter()
  run()
  print(f"jaxmusic: compile + first step {time.perf_counter() - t0:.1f} s")
  t_jax = best_of(run, repeats=args.repeats)
  mfu = flops / t_jax / peak
  print(f"jaxmusic step: {t_jax * 1e3:.0f} ms, {flops / 1e9:.0f} GFLOP, "
        f"{flops / t_jax / 1e9:.1f} GFLOP/s = {100 * mfu:.1f}% of the matmul "
        "peak")
  if args.no_torch:
    print(f"MFU {100 * mfu:.1f}%")
    return
  t_torch = best_of(torch_step(args.size, args.batch, frames),
                    repeats=args.repeats)
  print(f"PyTorch eager step: {t_torch * 1e3:.0f} ms")
  print(f"MFU {100 * mfu:.1f}% (target >= 50% on CPU)")
  print(f"ratio (PyTorch eager / jaxmusic): {t_torch / t_jax:.2f}x "
        "(target >= 1.3x)")


if __name__ == "__main__":
  hugepages.reexec_with_hugepages()
  main()
