"""FSDP and bf16, proven on 8 fake devices: the base transformer's
parameters and optimizer state split over `fsdp` as the regex rules say;
bf16 compute keeps parameters, optimizer state, softmaxes, logits and norms
in float32; a bf16 runlocal's losses stay near float32's."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from jaxmusic import objectives
from jaxmusic import optim
from jaxmusic import parallel
from jaxmusic import train
from jaxmusic.config import load_config


def _abstract_state(config):
  objective = objectives.make_objective(config)
  crop = config.data.crop_samples
  batch = {"views": np.zeros((2, 2, crop), np.float32)}
  tx, _ = optim.make_optimizer(config.optimizer, config.total_steps)

  def init(rng):
    v = objective.init(rng, batch)
    return {"params": v["params"], "opt": tx.init(v["params"])}

  return jax.eval_shape(init, jax.random.key(0))


def _path(path):
  return "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


def test_base_transformer_params_and_adam_state_split_over_fsdp():
  config = load_config("clmr", "model=transformer,input=mel,size=base")
  abstract = _abstract_state(config)
  mesh = parallel.make_mesh([("data", 1), ("fsdp", 8)])
  rules = ((".*positions.*", "replicate"), (".*", "fsdp"))
  shardings = parallel.tree_shardings(mesh, abstract, rules)
  specs = {_path(p): s.spec for p, s in
           jax.tree_util.tree_leaves_with_path(shardings)}
  leaves = {_path(p): x for p, x in
            jax.tree_util.tree_leaves_with_path(abstract)}
  sharded_bytes = total_bytes = 0
  for name, leaf in leaves.items():
    spec = specs[name]
    if "positions" in name:
      assert spec == P(), name  # the replicate rule
      continue
    total_bytes += leaf.size * leaf.dtype.itemsize
    if not any(d % 8 == 0 for d in leaf.shape):
      assert spec == P(), name  # nothing divides
      continue
    # The largest dimension that 8 divides carries the fsdp axis.
    axis = max((d, i) for i, d in enumerate(leaf.shape) if d % 8 == 0)[1]
    want = [None] * leaf.ndim
    want[axis] = "fsdp"
    assert spec == P(*want), name
    sharded_bytes += leaf.size * leaf.dtype.itemsize
  assert specs["params/encoder/layer_0/ffn_in/kernel"] == P(None, "fsdp")
  # Adam's moments follow their parameters.
  mu = [n for n in specs if n.endswith("layer_0/ffn_in/kernel")
        and n.startswith("opt")]
  assert mu and all(specs[n] == P(None, "fsdp") for n in mu)
  # Everything but the replicated positions and the biases of odd widths.
  assert sharded_bytes / total_bytes > 0.99
  # Placed on the mesh, each device holds 1/8 of an FFN kernel.
  kernel = jax.device_put(
      jnp.zeros(leaves["params/encoder/layer_0/ffn_in/kernel"].shape),
      shardings["params"]["encoder"]["layer_0"]["ffn_in"]["kernel"])
  assert {s.data.shape for s in kernel.addressable_shards} == {(768, 384)}


def _float_ops(jaxpr, names=("exp", "log", "rsqrt", "logistic", "log1p")):
  """Output dtypes of every `names` primitive, sub-jaxprs included."""
  out = []
  for eqn in jaxpr.eqns:
    if eqn.primitive.name in names:
      out += [(eqn.primitive.name, v.aval.dtype) for v in eqn.outvars]
    for param in eqn.params.values():
      subs = param if isinstance(param, (list, tuple)) else [param]
      for sub in subs:
        inner = getattr(sub, "jaxpr", None)
        if inner is not None:
          out += _float_ops(getattr(inner, "jaxpr", inner), names)
  return out


@pytest.mark.slow
def test_bf16_keeps_params_softmax_logits_and_norms_in_float32():
  config = load_config("hubert", "input=mel,runlocal")
  config.model.dtype = "bfloat16"
  config.model.update(layers=1)
  config.objective.cqt_weight = 0.0
  frames = config.data.crop_samples // 512
  batch = {"inputs": np.random.default_rng(0).standard_normal(
      (4, config.data.crop_samples)).astype(np.float32),
           "track": np.arange(4, dtype=np.int32)}
  for name in config.data.targets:
    batch[name] = np.zeros((4, 1, frames), np.int32)
  manifest = {"hop_length": 512, "targets": {
      n: {"k": 100, "codebooks": 1} for n in config.data.targets}}
  objective = objectives.make_objective(config, manifest)
  v = objective.init(jax.random.key(0), batch)
  tx, _ = optim.make_optimizer(config.optimizer, config.total_steps)
  opt = tx.init(v["params"])
  for leaf in jax.tree.leaves((v["params"], opt)):
    if jnp.issubdtype(leaf.dtype, jnp.floating):
      assert leaf.dtype == jnp.float32
  jaxpr = jax.make_jaxpr(lambda p: objective.loss_fn(
      p, v["model_state"], batch, jax.random.key(1))[0])(v["params"])
  ops = _float_ops(jaxpr.jaxpr)
  assert {n for n, _ in ops} >= {"exp", "log", "rsqrt"}
  assert all(d == jnp.float32 for _, d in ops), sorted(set(ops))
  # The matmuls do run in bf16.
  dots = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "dot_general"]
  assert dots or _float_ops(jaxpr.jaxpr, ("dot_general",))
  assert any(d == jnp.bfloat16 for _, d in
             _float_ops(jaxpr.jaxpr, ("dot_general",)))


@pytest.mark.slow
def test_bf16_runlocal_stays_near_float32(tiny_corpus, tmp_path):
  """50 steps of the mel transformer's CLMR runlocal: the bf16 run's losses
  stay within 2% of the float32 run's on average and end within 5%."""
  runs = {}
  for dtype in ("float32", "bfloat16"):
    config = load_config("clmr", "model=transformer,input=mel,runlocal")
    config.data.dir = tiny_corpus
    config.data.crop_samples = 32 * 512
    config.total_steps = 50
    config.batch_size = 16
    config.model.update(dtype=dtype, layers=2, width=64, ffn=128, heads=4)
    config.model.frontend.dim = 64
    config.log_every = 10
    config.checkpoint.every = 50
    config.monitor.every = 0
    workdir = tmp_path / dtype
    train.train_and_evaluate(config, str(workdir))
    rows = [l for l in (workdir / "metrics.jsonl").read_text().splitlines()
            if '"loss"' in l]
    runs[dtype] = np.array([float(l.split('"loss": ')[1].split(",")[0])
                            for l in rows])
  f32, bf16 = runs["float32"], runs["bfloat16"]
  rel = np.abs(bf16 - f32) / f32
  assert rel.mean() < 0.02 and rel[-1] < 0.05, (f32, bf16)
