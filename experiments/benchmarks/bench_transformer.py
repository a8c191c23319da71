"""The `base` transformer's masked-prediction training step against the
same-shape PyTorch eager encoder step, and its MFU.

  pip install -e ".[bench]"
  python -m experiments.benchmarks.bench_transformer [--batch 8 --seconds 5]
  python -m experiments.benchmarks.bench_transformer --full   # MERT's step

`--full` times jaxmusic's whole MERT training step, the registered `mert`
objective as a run uses it (MERT-95M's shape, `base`, on the waveform:
HuBERT's conv extractor, span masks drawn on the device, in-batch noise
mixing, the 336-bin CQT target, codeword logits and the CQT head, AdamW),
against `transformers`' HubertModel (the same conv extractor and encoder)
doing the same work in PyTorch eager: the same masks and mixing, the same
CQT algorithm in torch.fft, the same logits and losses. It also times the
mask, mixing and CQT parts alone, as a fraction of the step (target: under
10%). Targets: >= 1.3x PyTorch eager and >= 45% of the matmul peak.

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
import time

from experiments.benchmarks._timing import best_of, machine
from experiments.benchmarks import hugepages  # pylint: disable=wrong-import-position

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


MERT_K = 500  # one k-means target set, as HuBERT's iteration 2


def mert_config(size, dtype):
  from jaxmusic.config import load_config  # pylint: disable=g-import-not-at-top
  from jaxmusic.models import frontends  # pylint: disable=g-import-not-at-top
  config = load_config("mert", f"size={size}")
  # Both peers do the same arithmetic: no dropout, layerdrop, gradient
  # scaling or feature penalty (HubertModel has none of the last two).
  config.model.update(dropout=0.0, attention_dropout=0.0, input_dropout=0.0,
                      layerdrop=0.0, dtype=dtype)
  config.model.frontend.grad_scale = 1.0
  config.objective.feature_penalty = 0.0
  config.data.targets = ("km",)
  # The step this benchmark has always timed: MERT's shape on the centred
  # 22,050 Hz grid (512-sample frames), its log-standardised CQT target.
  config.data.update(sample_rate=22050, hop_length=512)
  config.model.frontend.update(kernels=frontends.CENTRED_KERNELS,
                               strides=frontends.CENTRED_STRIDES,
                               padding="same")
  config.objective.cqt_target = "log_standardized"
  return config


def mert_batch(batch, frames, seed=0):
  import numpy as np  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  t = np.arange(frames * 512) / 22050
  f0 = rng.uniform(80, 800, (batch, 1))
  wav = (0.3 * np.sin(2 * np.pi * f0 * t)
         + 0.05 * rng.standard_normal((batch, t.size))).astype(np.float32)
  codes = rng.integers(0, MERT_K, (batch, 1, frames)).astype(np.int32)
  return {"inputs": wav, "km": codes}


def jax_mert_step(size, batch, frames, dtype):
  """Returns (run, flops, parts): run() is one training step of the `mert`
  objective; parts() runs only its mask, mixing and CQT target."""
  import jax  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from jaxmusic import objectives  # pylint: disable=g-import-not-at-top
  from jaxmusic import optim  # pylint: disable=g-import-not-at-top
  from jaxmusic.audio import augment  # pylint: disable=g-import-not-at-top
  from jaxmusic.objectives import masked  # pylint: disable=g-import-not-at-top
  config = mert_config(size, dtype)
  config.data.crop_samples = frames * 512
  manifest = {"targets": {"km": {"k": MERT_K, "codebooks": 1}},
              "hop_length": 512}
  obj = objectives.make_objective(config, manifest)
  host = mert_batch(batch, frames)
  b = jax.tree.map(jax.numpy.asarray, host)
  variables = obj.init(jax.random.key(0), b)
  tx, _ = optim.make_optimizer(config.optimizer, 1000)
  state = (variables["params"], tx.init(variables["params"]))

  @jax.jit
  def step(state, b, rng):
    params, opt = state
    (loss, _), grads = jax.value_and_grad(obj.loss_fn, has_aux=True)(
        params, variables["model_state"], b, rng)
    updates, opt = tx.update(grads, opt, params)
    return (optax.apply_updates(params, updates), opt), loss

  o = config.objective

  @jax.jit
  def parts(wav, rng):
    k_mask, k_mix = jax.random.split(rng)
    target = obj._cqt_target(wav, frames)  # pylint: disable=protected-access
    mixed = augment.inbatch_noise_mix(
        k_mix, wav, p=o.mix_prob, min_len=int(o.mix_seconds[0] * 22050),
        max_len=int(o.mix_seconds[1] * 22050))
    mask = masked.span_mask(k_mask, batch, frames, o.mask_prob,
                            o.mask_length)
    return target, mixed, mask

  rng = jax.random.key(1)
  flops = step.lower(state, b, rng).compile().cost_analysis()["flops"]
  holder = [state]

  def run():
    holder[0], loss = step(holder[0], b, rng)
    loss.block_until_ready()

  return run, flops, lambda: jax.block_until_ready(parts(b["inputs"], rng))


def torch_mert_step(size, batch, frames):
  """The same step in PyTorch eager around transformers' HubertModel."""
  import torch  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top
  from jaxmusic.audio import frontend  # pylint: disable=g-import-not-at-top
  from jaxmusic.models import frontends  # pylint: disable=g-import-not-at-top
  from jaxmusic.models import transformer  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(os.cpu_count())
  config = mert_config(size, "float32")
  o = config.objective
  s = transformer.shape_of(size)
  hf = transformers.HubertModel(transformers.HubertConfig(
      hidden_size=s.width, num_hidden_layers=s.layers,
      num_attention_heads=s.heads, intermediate_size=s.ffn,
      conv_dim=(512,) * len(frontends.CENTRED_KERNELS),
      conv_kernel=frontends.CENTRED_KERNELS,
      conv_stride=frontends.CENTRED_STRIDES, feat_extract_norm="group",
      do_stable_layer_norm=config.model.norm_first,
      num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16,
      hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
      feat_proj_dropout=0.0, layerdrop=0.0,
      # Builds masked_spec_embed; the masks themselves are passed in.
      mask_time_prob=o.mask_prob))
  final_proj = torch.nn.Linear(s.width, o.final_dim)
  codewords = torch.nn.Parameter(torch.rand(MERT_K, o.final_dim))
  cqt_head = torch.nn.Linear(s.width, o.cqt_bins)
  params = (list(hf.parameters()) + list(final_proj.parameters())
            + [codewords] + list(cqt_head.parameters()))
  opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.98), eps=1e-6,
                          weight_decay=0.01)
  host = mert_batch(batch, frames)
  wav = torch.from_numpy(host["inputs"])
  n = wav.shape[1]
  with torch.no_grad():
    out_frames = hf(wav[:1, :n]).last_hidden_state.shape[1]
  codes = torch.from_numpy(host["km"][:, 0, :out_frames]).long()
  width, length, m, groups = frontend.cqt_spectral_kernel(
      22050, float(o.cqt_fmin), o.cqt_bins, o.cqt_bins_per_octave, 1.0, 512,
      n, 1e-4)
  groups = [(torch.from_numpy(bins), torch.from_numpy(idx).long(),
             torch.from_numpy(vals)) for bins, idx, vals in groups]
  lo, hi = (int(x * 22050) for x in o.mix_seconds)
  gen = torch.Generator().manual_seed(0)

  def cqt_target():
    padded = torch.nn.functional.pad(wav, (width // 2, width // 2))
    spec = torch.fft.rfft(padded, n=length)
    folded = torch.zeros(batch, o.cqt_bins, m, dtype=torch.complex64)
    for bins, idx, vals in groups:
      band = spec[:, idx].reshape(batch, *vals.shape)
      folded[:, bins] = (band * vals).sum(-2)
    c = (torch.fft.ifft(folded)[..., :out_frames] * (m / length)).abs()
    log_c = torch.log(c.transpose(1, 2) + 1e-5)
    return (log_c - log_c.mean()) / (log_c.std() + 1e-5)

  def mix(x):
    on = torch.rand(batch, generator=gen) < o.mix_prob
    count = torch.randint(1, o.mix_max_segments + 1, (batch,), generator=gen)
    shape = (batch, o.mix_max_segments)
    seg_len = torch.randint(lo, hi + 1, shape, generator=gen)
    start = (torch.rand(shape, generator=gen) * (n - seg_len + 1)).long()
    src = (torch.arange(batch)[:, None]
           + torch.randint(1, batch, shape, generator=gen)) % batch
    active = on[:, None] & (torch.arange(o.mix_max_segments)[None]
                            < count[:, None])
    pos = torch.arange(n)
    inside = ((pos >= start[..., None]) & (pos < (start + seg_len)[..., None])
              & active[..., None])
    return x + torch.where(inside, x[src], 0.0).sum(1)

  def span_mask():
    last = out_frames - o.mask_length + 1
    starts = torch.rand(batch, out_frames, generator=gen) < (
        o.mask_prob / o.mask_length)
    starts[:, last:] = False
    count = torch.cumsum(starts.int(), 1)
    before = torch.nn.functional.pad(count, (o.mask_length, 0))[:,
                                                                :out_frames]
    return (count - before) > 0

  def run():
    opt.zero_grad(set_to_none=True)
    target = cqt_target()
    x = mix(wav)
    mask = span_mask()
    h = hf(x, mask_time_indices=mask).last_hidden_state
    proj = torch.nn.functional.normalize(final_proj(h), dim=-1)
    logits = proj @ torch.nn.functional.normalize(codewords, dim=-1).T / 0.1
    ce = torch.nn.functional.cross_entropy(
        logits.reshape(-1, MERT_K), codes.reshape(-1), reduction="none")
    n_mask = mask.sum()
    loss = (ce * mask.reshape(-1)).sum() / n_mask
    sq = (cqt_head(h) - target).square().mean(-1)
    loss = loss + o.cqt_weight * (sq * mask).sum() / n_mask
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
  parser.add_argument("--full", action="store_true",
                      help="MERT's whole step on the waveform (see above)")
  args = parser.parse_args()
  frames = int(round(args.seconds * 22050 / 512))
  print(machine())
  print(f"{args.size} transformer, batch {args.batch} x {frames} frames, "
        f"{args.dtype}")
  peak = matmul_peak(args.dtype)
  print(f"matmul peak ({args.dtype}, best of 2048-4096^2 jnp.dot): "
        f"{peak / 1e9:.1f} GFLOP/s")
  if args.full:
    run, flops, parts = jax_mert_step(args.size, args.batch, frames,
                                      args.dtype)
  else:
    run, flops = jax_step(args.size, args.batch, frames, args.dtype)
  t0 = time.perf_counter()
  run()
  print(f"jaxmusic: compile + first step {time.perf_counter() - t0:.1f} s")
  t_jax = best_of(run, repeats=args.repeats)
  mfu = flops / t_jax / peak
  print(f"jaxmusic step: {t_jax * 1e3:.0f} ms, {flops / 1e9:.0f} GFLOP, "
        f"{flops / t_jax / 1e9:.1f} GFLOP/s = {100 * mfu:.1f}% of the matmul "
        "peak")
  target_mfu = 45 if args.full else 50
  if args.full:
    t_parts = best_of(parts, repeats=args.repeats)
    print(f"mask + mixing + CQT target alone: {t_parts * 1e3:.0f} ms = "
          f"{100 * t_parts / t_jax:.1f}% of the step (target < 10%)")
  if args.no_torch:
    print(f"MFU {100 * mfu:.1f}%")
    return
  peer = torch_mert_step if args.full else torch_step
  t_torch = best_of(peer(args.size, args.batch, frames),
                    repeats=args.repeats)
  print(f"PyTorch eager step: {t_torch * 1e3:.0f} ms")
  print(f"MFU {100 * mfu:.1f}% (target >= {target_mfu}% on CPU)")
  print(f"ratio (PyTorch eager / jaxmusic): {t_torch / t_jax:.2f}x "
        "(target >= 1.3x)")


if __name__ == "__main__":
  hugepages.reexec_with_hugepages()
  main()
