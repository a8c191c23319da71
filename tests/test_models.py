"""The encoder contract: frontends x backbones, the shared frame grid, the
mask embedding, the transformer's shapes, model state, sharding."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import librosa
import numpy as np
import pytest

from jaxmusic import models
from jaxmusic import objectives
from jaxmusic import parallel
from jaxmusic.config import load_config
from jaxmusic.data import features as feats
from jaxmusic.models import frontends
from jaxmusic.models import samplecnn
from jaxmusic.models import transformer

HOP = 512
F = 116  # frames of the grid configs' crops (116 x 512 samples)


def test_clmr_contrastive_model_has_clmr_parameter_count():
  config = load_config("clmr")
  objective = objectives.make_objective(config)
  batch = {"views": jnp.zeros((2, 2, 59049))}
  shapes = jax.eval_shape(objective.init, jax.random.key(0), batch)
  n = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes["params"]))
  assert n == 2_663_424
  encoder = sum(int(np.prod(x.shape))
                for x in jax.tree.leaves(shapes["params"]["encoder"]))
  assert encoder == 2_368_512


def test_samplecnn_reduces_59049_samples_to_one_512_frame():
  encoder = models.make_encoder(load_config("clmr").model)
  assert samplecnn.receptive_field(samplecnn.CLMR_CHANNELS) == 59049
  variables = jax.eval_shape(encoder.init, jax.random.key(0),
                             jnp.zeros((2, 59049)))
  out = jax.eval_shape(encoder.apply, variables, jnp.zeros((3, 2 * 59049)))
  assert out.shape == (3, 2, 512)
  # CLMR's checkpoint layout: the layers at the top, no wrapper keys.
  assert sorted(variables["params"])[:2] == ["BatchNorm_0", "BatchNorm_1"]
  assert set(variables) == {"params", "batch_stats"}


def test_batchnorm_uses_batch_statistics_only_in_training():
  model = samplecnn.SampleCNN(channels=(4, 4, 8))
  x = jnp.asarray(np.random.default_rng(0).standard_normal((4, 27, 1)),
                  jnp.float32)
  variables = model.init(jax.random.key(0), x)
  (train_out, _), updated = model.apply(variables, x, train=True,
                                        mutable=["batch_stats"])
  eval_out, _ = model.apply(variables, x)
  assert not np.allclose(train_out, eval_out)
  moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()),
                       variables["batch_stats"], updated["batch_stats"])
  assert max(jax.tree.leaves(moved)) > 0


@pytest.mark.slow
def test_bf16_compute_keeps_float32_params():
  config = load_config("clmr", "runlocal")
  config.model.dtype = "bfloat16"
  objective = objectives.make_objective(config)
  variables = objective.init(jax.random.key(0),
                             {"views": jnp.zeros((2, 2, 19683))})
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(variables))
  h = objective.embed(variables, jnp.zeros((2, 19683)))
  assert h.shape == (2, 128) and h.dtype == jnp.float32




GRID = [("transformer", "waveform", {"embed": "conv", "channels": 32}),
        ("transformer", "mel", {"embed": "frame", "dim": 32}),
        ("transformer", "pianoroll", {"embed": "linear", "dim": 32}),
        ("transformer", "pianoroll", {"embed": "conv", "dim": 32}),
        ("transformer", "multitrack", {"embed": "conv", "dim": 32}),
        ("cnn", "mel", {}), ("cnn", "pianoroll", {})]


def _small(backbone, front, fcfg, **extra):
  cfg = load_config("clmr", f"model={backbone},input={front},runlocal").model
  cfg.frontend.update(fcfg)
  if backbone == "transformer":
    cfg.update(width=32, heads=2, ffn=64, layers=2, conv_pos_kernel=8,
               conv_pos_groups=4)
  else:
    cfg.channels = (4, 8)
  cfg.update(extra)
  return cfg


def _input(front, frames, batch=2, seed=0):
  rng = np.random.default_rng(seed)
  if front in ("pianoroll", "multitrack"):
    rows = 128 if front == "pianoroll" else feats.MULTITRACK_ROWS
    return jnp.asarray(rng.integers(0, 128, (batch, rows, frames)) *
                       (rng.random((batch, rows, frames)) < 0.05), jnp.float32)
  return jnp.asarray(0.1 * rng.standard_normal((batch, frames * HOP)),
                     jnp.float32)


@pytest.mark.slow
@pytest.mark.parametrize("backbone,front,fcfg", GRID)
def test_every_frontend_backbone_pair_gives_frames_on_the_shared_grid(
    backbone, front, fcfg):
  cfg = _small(backbone, front, fcfg)
  encoder = models.make_encoder(cfg)
  x = _input(front, F)
  variables = encoder.init(jax.random.key(0), x)
  frames, (_, pooled) = encoder.apply(variables, x), encoder.apply(
      variables, x, method="embed")
  assert frames.shape[:2] == (2, F) and frames.dtype == jnp.float32
  np.testing.assert_allclose(pooled, frames.mean(1), rtol=1e-6)
  assert models.frames_per_crop(cfg, F * HOP, HOP) == F
  _, state = models.split(variables)
  assert ("batch_stats" in state) == (backbone == "cnn")
  # Every encoder sows each layer's frames, for export's --layers all.
  layers = models.apply(encoder, variables["params"], state, x)[0].layers
  assert len(layers) >= 2 and all(l.shape[:2] == (2, F) for l in layers)


@pytest.mark.slow
def test_ast_patches_sit_on_a_documented_multiple_of_the_grid():
  cfg = _small("transformer", "mel", {"embed": "patch", "patch_frames": 2,
                                      "patch_bands": 16, "dim": 32})
  encoder = models.make_encoder(cfg)
  x = _input("mel", F)
  frames = encoder.apply(encoder.init(jax.random.key(0), x), x)
  assert frames.shape[:2] == (2, F // 2)
  assert models.frames_per_crop(cfg, F * HOP, HOP) == F // 2


@pytest.mark.slow
def test_the_frontends_frames_stand_at_the_same_samples():
  """Frame k of each frontend is centred on sample k * hop: the mel
  frontend is librosa's log-mel of the crop, frame for frame; the piano
  roll is the prepared roll's frames; the waveform conv stack's frame k
  reads samples around k * hop."""
  wav = _input("waveform", 16, batch=1)
  mel = frontends.Mel(embed="none")
  got = mel.apply({}, wav)[0]
  ref = librosa.power_to_db(librosa.feature.melspectrogram(
      y=np.asarray(wav[0]), sr=22050, n_fft=2048, hop_length=HOP,
      n_mels=128), top_db=80.0)
  assert got.shape == (16, 128)
  np.testing.assert_allclose(got, (ref[:, :16].T + 40) / 20, atol=2e-3)
  roll = _input("pianoroll", 16, batch=1)
  np.testing.assert_allclose(frontends.PianoRoll(embed="none").apply(
      {}, roll)[0], roll[0].T / 127.0)
  conv = frontends.Waveform(embed="conv", channels=8)
  variables = conv.init(jax.random.key(0), wav)
  for k in (0, 5, 15):
    g = jax.grad(lambda x: jnp.sum(conv.apply(variables, x)[0, k]))(wav)[0]
    w = np.abs(np.asarray(g))
    support = np.flatnonzero(w > 0.05 * w.max())
    assert support[0] <= k * HOP <= support[-1]
    assert k * HOP - HOP < support[0] and support[-1] < k * HOP + HOP


def test_pianoroll_transpose_moves_each_roll_in_training_only():
  # Notes in the middle of the keyboard, so no shift drops one.
  roll = np.zeros((8, 128, 12), np.float32)
  rng = np.random.default_rng(0)
  roll[:, 50:70] = rng.integers(1, 128, (8, 20, 12)) * (
      rng.random((8, 20, 12)) < 0.3)
  front = frontends.PianoRoll(embed="none", transpose=6)
  np.testing.assert_allclose(front.apply({}, roll), roll.swapaxes(1, 2)
                             / 127.0, rtol=1e-6)
  out = np.asarray(front.apply({}, roll, train=True,
                               rngs={"augment": jax.random.key(3)}))
  shifts = []
  for b in range(len(roll)):
    match = [s for s in range(-6, 7)
             if np.allclose(out[b], np.roll(roll[b], s, 0).T / 127.0,
                            rtol=1e-6, atol=0)]
    assert len(match) == 1, b
    shifts += match
  assert len(set(shifts)) > 2  # one key per example, not one per batch


@pytest.mark.slow
def test_mask_embedding_replaces_exactly_the_masked_frames():
  class Identity(nn.Module):
    @nn.compact
    def __call__(self, x, train=False):
      return x, None

  front = frontends.Mel(embed="frame", dim=8)
  encoder = models.Encoder(front, Identity(), mask_dim=8)
  x = _input("mel", 12)
  variables = encoder.init(jax.random.key(0), x)
  mask = jnp.asarray(np.random.default_rng(1).random((2, 12)) < 0.4)
  out = encoder.apply(variables, x, mask_BxF=mask)
  plain = front.apply({"params": variables["params"]["frontend"]}, x)
  emb = variables["params"]["mask_embedding"]
  np.testing.assert_array_equal(out, jnp.where(mask[..., None], emb, plain))
  assert bool(mask.any()) and not bool(mask.all())
  unmasked = models.make_encoder(_small("transformer", "mel", {}))
  v = unmasked.init(jax.random.key(0), x)
  with pytest.raises(ValueError, match="masked=True"):
    unmasked.apply(v, x, mask_BxF=mask)


def _layer_params(d, f):
  return 4 * (d * d + d) + 2 * 2 * d + (d * f + f) + (f * d + d)


@pytest.mark.parametrize("size", ["base", "95m", "330m"])
def test_transformer_sizes_have_their_parameter_counts(size):
  layers, d, heads, f = transformer.SIZES[size]
  assert (layers, d, heads, f) == {"base": (12, 768, 12, 3072),
                                   "95m": (12, 768, 12, 3072),
                                   "330m": (24, 1024, 16, 4096)}[size]
  model = transformer.Transformer(size=size)
  shapes = jax.eval_shape(model.init, jax.random.key(0),
                          jnp.zeros((1, 8, 512)))
  n = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes))
  c = 512  # the input frames' width
  want = (layers * _layer_params(d, f) + 2 * c + (c * d + d)  # input
          # conv positions: the kernel, a gain per tap, the bias
          + 128 * (d // 16) * d + 128 + d
          + 2 * d)  # the pre-LN stack's final norm
  assert n == want


@pytest.mark.slow
def test_transformer_options():
  x = jax.random.normal(jax.random.key(0), (2, 10, 16))
  outs = {}
  for name, kw in {"pre": {}, "post": {"norm_first": False},
                   "relax": {"attention_relax": 32.0},
                   "learned": {"positions": "learned"},
                   "sin": {"positions": "sinusoidal"},
                   "cls": {"cls": True}}.items():
    model = transformer.Transformer(width=16, heads=2, ffn=32, layers=2,
                                    conv_pos_kernel=4, conv_pos_groups=2,
                                    **kw)
    variables = model.init(jax.random.key(1), x)
    frames, cls = model.apply(variables, x)
    assert frames.shape == (2, 10, 16) and (cls is None) == (name != "cls")
    outs[name] = frames
  # Attention relaxation is the same softmax, computed with smaller values.
  np.testing.assert_allclose(outs["relax"], outs["pre"], rtol=1e-4,
                             atol=1e-5)
  assert not np.allclose(outs["post"], outs["pre"])
  # bf16 compute keeps float32 parameters and returns float32 frames.
  model = transformer.Transformer(width=16, heads=2, ffn=32, layers=1,
                                  conv_pos_kernel=4, conv_pos_groups=2,
                                  dtype=jnp.bfloat16)
  variables = model.init(jax.random.key(1), x)
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables))
  assert model.apply(variables, x)[0].dtype == jnp.float32
  # Dropout draws from the "dropout" rng, only in training.
  model = transformer.Transformer(width=16, heads=2, ffn=32, layers=1,
                                  conv_pos_kernel=4, conv_pos_groups=2,
                                  dropout=0.5)
  variables = model.init(jax.random.key(1), x)
  a = model.apply(variables, x, train=True,
                  rngs={"dropout": jax.random.key(2)})[0]
  b = model.apply(variables, x, train=True,
                  rngs={"dropout": jax.random.key(3)})[0]
  assert not np.allclose(a, b)
  np.testing.assert_array_equal(model.apply(variables, x)[0],
                                model.apply(variables, x)[0])


def _clmr_no_aug(backbone, front, fcfg, **extra):
  config = load_config("clmr", f"model={backbone},input={front},runlocal")
  config.model = _small(backbone, front, fcfg, **extra)
  config.augment.chain = ()
  config.objective.projection_dims = (16, 8)
  return config


@pytest.mark.slow
def test_transformer_on_8_devices_equals_one_device():
  """Loss and gradients of the sharded step (data axis; fsdp=2; fsdp=8)
  equal the single-device ones within 1e-5."""
  config = _clmr_no_aug("transformer", "mel", {"embed": "frame", "dim": 32},
                        dropout=0.0, attention_dropout=0.0)
  del config.model.frontend.spec_augment  # random, as dropout would be
  objective = objectives.make_objective(config)
  batch = {"views": jnp.stack([_input("mel", 16, 8, s) for s in (0, 1)], 1)}
  variables = objective.init(jax.random.key(0), batch)
  grad_fn = jax.value_and_grad(objective.loss_fn, has_aux=True)
  run = lambda p, b: grad_fn(p, variables["model_state"], b,
                             jax.random.key(1))
  (loss, _), grads = jax.jit(run)(variables["params"], batch)
  assert jax.device_count() == 8
  for mesh_axes in ([("data", -1), ("fsdp", 1)], [("data", 4), ("fsdp", 2)],
                    [("data", 1), ("fsdp", 8)]):
    mesh = parallel.make_mesh(mesh_axes)
    shardings = parallel.tree_shardings(mesh, variables["params"])
    params = jax.device_put(variables["params"], shardings)
    sharded = jax.device_put(batch, parallel.batch_sharding(mesh))
    (loss_s, _), grads_s = jax.jit(run, in_shardings=(
        shardings, parallel.batch_sharding(mesh)))(params, sharded)
    np.testing.assert_allclose(loss_s, loss, rtol=1e-5, atol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5,
                                                         atol=1e-5),
                 grads_s, grads)


@pytest.mark.slow
def test_feature_grad_scale_scales_only_the_extractors_gradient():
  """fairseq's feature_grad_mult: the same forward pass, the conv
  extractor's gradient times the scale, the rest unchanged."""
  wav = jax.random.normal(jax.random.key(0), (2, 8 * 512))
  outs = {}
  for scale in (1.0, 0.1):
    enc = models.Encoder(
        frontends.Waveform(embed="conv", channels=8, grad_scale=scale),
        transformer.Transformer(size="tiny", width=16, heads=2, ffn=32,
                                layers=1, conv_pos_kernel=4,
                                conv_pos_groups=4, dropout=0.0,
                                attention_dropout=0.0))
    params = enc.init(jax.random.key(1), wav)["params"]
    loss = lambda p: jnp.sum(jnp.square(enc.apply({"params": p}, wav)))
    outs[scale] = (float(loss(params)), jax.grad(loss)(params))
  assert outs[0.1][0] == outs[1.0][0]
  g1, g01 = outs[1.0][1], outs[0.1][1]
  np.testing.assert_allclose(g01["frontend"]["conv_0"]["kernel"],
                             0.1 * g1["frontend"]["conv_0"]["kernel"],
                             rtol=1e-5, atol=1e-9)
  np.testing.assert_allclose(g01["layer_0"]["ffn_in"]["kernel"],
                             g1["layer_0"]["ffn_in"]["kernel"], rtol=1e-6)


def test_layerdrop_and_frontend_features():
  """Layerdrop 1 skips every layer in training (each sown layer is the
  input to the first) and none in evaluation; `features=True` returns the
  frontend's output before masking."""
  x = jax.random.normal(jax.random.key(0), (2, 128, 12))
  enc = models.Encoder(
      frontends.PianoRoll(embed="linear", dim=16),
      transformer.Transformer(size="tiny", width=16, heads=2, ffn=32,
                              layers=3, conv_pos_kernel=4, conv_pos_groups=4,
                              dropout=0.0, attention_dropout=0.0,
                              layerdrop=1.0, masked=True))
  params, state = models.split(enc.init(jax.random.key(1), x,
                                        method="embed"))
  rngs = {"dropout": jax.random.key(2)}
  layers = models.apply(enc, params, state, x, train=True,
                        rngs=rngs)[0].layers
  for h in layers[1:]:
    np.testing.assert_array_equal(h, layers[0])
  layers = models.apply(enc, params, state, x)[0].layers
  assert not np.allclose(layers[1], layers[0])
  mask = jnp.zeros((2, 12), bool).at[:, 3].set(True)
  feats = models.apply(enc, params, state, x, mask_BxF=mask)[0].features
  direct = enc.apply({"params": params}, x,
                     method=lambda m, x: m.frontend(x))
  np.testing.assert_allclose(feats, direct, rtol=1e-6)


def test_the_mask_embedding_replaces_the_projected_frames():
  """fairseq's (and MERT's) order: LayerNorm, projection, input dropout,
  then the mask embedding, before the positions are added; sinusoidal
  positions make layer 0's input readable."""
  tr = transformer.Transformer(size="tiny", width=16, heads=2, ffn=32,
                               layers=1, positions="sinusoidal",
                               dropout=0.0, attention_dropout=0.0,
                               input_dropout=0.5, masked=True)
  x = jax.random.normal(jax.random.key(0), (2, 10, 6))
  mask = jnp.zeros((2, 10), bool).at[:, 2:5].set(True)
  variables = tr.init(jax.random.key(1), x)
  (_, _), sown = tr.apply(variables, x, train=True, mask_BxF=mask,
                          rngs={"dropout": jax.random.key(2)},
                          mutable=["intermediates"])
  first = sown["intermediates"]["layers"][0] - transformer.sinusoidal(10, 16)
  p = variables["params"]
  np.testing.assert_allclose(first[:, 2:5], jnp.broadcast_to(
      p["mask_embedding"], (2, 3, 16)), rtol=1e-5, atol=1e-6)
  proj = nn.Dense(16).apply({"params": p["input_proj"]}, nn.LayerNorm(
      epsilon=1e-5).apply({"params": p["input_norm"]}, x))
  unmasked = np.asarray(first)[:, [0, 1, 5, 6, 7, 8, 9]]
  want = np.asarray(proj)[:, [0, 1, 5, 6, 7, 8, 9]]
  # Input dropout (0.5) zeroes or doubles each projected value; the
  # masked frames show none of it.
  kept = unmasked != 0
  np.testing.assert_allclose(unmasked[kept], 2 * want[kept], rtol=1e-5,
                             atol=1e-5)
  assert 0.3 < kept.mean() < 0.7


@pytest.mark.parametrize("crop", [250_000, 120_000, 400, 8000])
def test_fairseq_extractor_gives_its_frame_count(crop):
  cfg = {"name": "waveform", "embed": "conv", "channels": 4,
         "kernels": frontends.FAIRSEQ_KERNELS,
         "strides": frontends.FAIRSEQ_STRIDES, "padding": "valid"}
  assert frontends.receptive_field(frontends.FAIRSEQ_KERNELS,
                                   frontends.FAIRSEQ_STRIDES) == 400
  want = (crop - 400) // 320 + 1
  assert frontends.Waveform.frames_per_crop(cfg, crop, 160) == want
  if crop <= 8000:
    front = frontends.Waveform(**{k: v for k, v in cfg.items()
                                  if k != "name"})
    x = jnp.zeros((1, crop))
    assert front.apply(front.init(jax.random.key(0), x), x).shape[1] == want


def test_an_encoder_hop_off_the_collection_grid_is_named():
  cfg = load_config("hubert")  # fairseq's 320-sample frames
  cfg.data.hop_length = 512
  with pytest.raises(ValueError, match=r"model\.frontend\.strides.*320.*512"):
    from jaxmusic import config as config_lib
    config_lib.validate(cfg)


def test_the_published_configs_use_fairseqs_extractor():
  for name in ("hubert", "mert", "mert_330m"):
    front = load_config(name).model.frontend
    assert (tuple(front.kernels), tuple(front.strides), front.padding) == (
        frontends.FAIRSEQ_KERNELS, frontends.FAIRSEQ_STRIDES, "valid")
