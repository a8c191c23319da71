"""jaxmusic's SampleCNN CLMR train step against the same model in PyTorch.

  pip install -e ".[bench]"
  python -m experiments.benchmarks.bench_step [--batch 16]

Both sides do forward, backward and an Adam update of SampleCNN + projector
with NT-Xent on a batch of B x 2 views of 59,049 samples; PyTorch runs eager
(CLMR's way), with augmentation excluded on both sides. jaxmusic's step with
its in-graph CLMR augmentations is also shown. Target: >= 2x on CPU. The
ratio is printed last. --accel adds examples/s at batch 256 and 1024 in bf16
and the largest NT-Xent batch that fits, for GPU machines.
"""

import argparse
import os

from experiments.benchmarks._timing import best_of, machine
from experiments.benchmarks.clmr_step import make_step
from experiments.benchmarks import hugepages  # pylint: disable=wrong-import-position


def torch_step(batch: int):
  """CLMR's SampleCNN + SimCLR projector + NT-Xent in PyTorch, eager."""
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(os.cpu_count())
  chans = [128, 128, 128, 256, 256, 256, 256, 256, 256, 512]
  layers = [nn.Conv1d(1, 128, 3, stride=3), nn.BatchNorm1d(128), nn.ReLU()]
  for cin, cout in zip(chans[:-1], chans[1:]):
    layers += [nn.Conv1d(cin, cout, 3, padding=1), nn.BatchNorm1d(cout),
               nn.ReLU(), nn.MaxPool1d(3)]
  layers += [nn.Conv1d(512, 512, 3, padding=1), nn.BatchNorm1d(512),
             nn.ReLU(), nn.Flatten()]
  model = nn.Sequential(*layers, nn.Linear(512, 512, bias=False), nn.ReLU(),
                        nn.Linear(512, 64, bias=False))
  n_params = sum(p.numel() for p in model.parameters())
  assert n_params == 2_663_424, n_params
  opt = torch.optim.Adam(model.parameters(), lr=3e-4)
  x = torch.randn(2 * batch, 1, 59049) * 0.1

  def nt_xent(z, t=0.5):
    z = nn.functional.normalize(z, dim=1)
    sim = z @ z.T / t
    sim.fill_diagonal_(float("-inf"))
    n = z.shape[0]
    target = (torch.arange(n) + n // 2) % n
    return nn.functional.cross_entropy(sim, target)

  def run():
    opt.zero_grad()
    loss = nt_xent(model(x))
    loss.backward()
    opt.step()

  return run


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--batch", type=int, default=16)
  parser.add_argument("--accel", action="store_true")
  args = parser.parse_args()
  print(f"machine: {machine()}")
  b = args.batch
  t_aug = best_of(make_step(b, augment=True), repeats=3)
  print(f"jaxmusic step with in-graph CLMR augmentation, batch {b}: "
        f"{t_aug * 1e3:8.1f} ms ({b / t_aug:.1f} examples/s)")
  if args.accel:
    for big in (256, 1024):
      t = best_of(make_step(big, augment=True, dtype="bfloat16"))
      print(f"bf16 batch {big}: {big / t:.0f} examples/s")
    fits = 1024
    while True:
      try:
        best_of(make_step(fits * 2, augment=False, dtype="bfloat16"),
                repeats=1)
        fits *= 2
      except Exception:  # pylint: disable=broad-except
        break
    print(f"largest NT-Xent batch that fits (powers of 2): {fits}")
  t_jax = best_of(make_step(b, augment=False), repeats=3)
  t_torch = best_of(torch_step(b), repeats=3)
  print(f"jaxmusic step, batch {b}: {t_jax * 1e3:8.1f} ms "
        f"({b / t_jax:.1f} examples/s)")
  print(f"pytorch eager step, batch {b}: {t_torch * 1e3:8.1f} ms "
        f"({b / t_torch:.1f} examples/s)")
  print(f"ratio jaxmusic/pytorch: {t_torch / t_jax:.2f}x (target >= 2x)")


if __name__ == "__main__":
  hugepages.reexec_with_hugepages()
  main()
