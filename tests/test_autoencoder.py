"""AE and VAE: the KL against the closed form, the reconstruction losses
against numpy, the KL warm-up, pinned one-step losses; and the time-pooling
backbones (short-chunk CNN, CRNN) they and the other objectives can use."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import one_step_loss
from jaxmusic import config as config_lib
from jaxmusic import defaults
from jaxmusic import models
from jaxmusic import objectives
from jaxmusic.data import pipeline
from jaxmusic.data import records
from jaxmusic.objectives import autoencoder


def test_kl_matches_the_closed_form_and_monte_carlo():
  rng = np.random.default_rng(0)
  mu = rng.standard_normal((3, 5))
  logvar = rng.standard_normal((3, 5)) * 0.5
  got = np.asarray(autoencoder.gaussian_kl(jnp.asarray(mu, jnp.float32),
                                           jnp.asarray(logvar, jnp.float32)))
  for i in range(3):
    # KL(N(mu, S) || N(0, I)) = (tr S + mu'mu - k - log det S) / 2.
    cov = np.diag(np.exp(logvar[i]))
    want = 0.5 * (np.trace(cov) + mu[i] @ mu[i] - 5
                  - np.log(np.linalg.det(cov)))
    assert got[i] == pytest.approx(want, rel=1e-5)
    # E_q[log q(z) - log p(z)] by sampling.
    z = mu[i] + np.exp(0.5 * logvar[i]) * rng.standard_normal((200_000, 5))
    log_q = -0.5 * np.sum((z - mu[i]) ** 2 / np.exp(logvar[i]) + logvar[i],
                          axis=1)
    log_p = -0.5 * np.sum(z ** 2, axis=1)
    assert got[i] == pytest.approx(np.mean(log_q - log_p), abs=0.03)


def test_reconstruction_losses_match_numpy():
  rng = np.random.default_rng(1)
  x = rng.uniform(size=(2, 4, 3))
  out = rng.standard_normal((2, 4, 3))
  mse = autoencoder.reconstruction_loss(jnp.asarray(x), jnp.asarray(out),
                                        "mse")
  np.testing.assert_allclose(mse, ((out - x) ** 2).sum((1, 2)), rtol=1e-5)
  p = 1 / (1 + np.exp(-out))
  bce = -(x * np.log(p) + (1 - x) * np.log(1 - p)).sum((1, 2))
  np.testing.assert_allclose(
      autoencoder.reconstruction_loss(jnp.asarray(x), jnp.asarray(out),
                                      "bce"), bce, rtol=1e-5)


def _tiny(arg):
  c = config_lib.load_config("autoencoder", arg + ",runlocal")
  c.data.crop_samples = 32 * 512
  c.model.bottleneck = 16
  c.objective.kl_warmup_steps = 10
  return c


@pytest.mark.slow
def test_vae_kl_weight_warms_up_in_its_own_state(tiny_corpus):
  config = _tiny("variant=vae,input=pianoroll")
  config.data.dir = tiny_corpus
  obj = objectives.make_objective(config, records.load_manifest(tiny_corpus))
  batch = next(iter(pipeline.from_config(tiny_corpus, config.data, "train",
                                         obj.data_mode, batch_size=4)))
  v = obj.init(jax.random.key(0), batch)
  loss_fn = jax.jit(obj.loss_fn)
  weights = []
  for step in (0, 5, 10, 30):
    state = {**v["model_state"], "step": jnp.int32(step)}
    loss, (metrics, new_state) = loss_fn(v["params"], state, batch,
                                         jax.random.key(1))
    weights.append(float(metrics["kl_weight"]))
    assert int(new_state["step"]) == step + 1
    assert float(loss) == pytest.approx(
        float(metrics["reconstruction"]) + weights[-1] * float(metrics["kl"]),
        rel=1e-5)
  assert weights == [0.0, 0.5, 1.0, 1.0]


@pytest.mark.parametrize("arg,want", [
    ("variant=ae,input=mel", 8744.02734375),
    ("variant=vae,input=mfcc", 8276.400390625),
    ("variant=vae,input=pianoroll,model=crnn", 4050.38916015625)])
@pytest.mark.slow
def test_pinned_one_step_loss(tiny_corpus, arg, want):
  loss, _ = one_step_loss(_tiny(arg), tiny_corpus)
  assert loss == pytest.approx(want, rel=1e-4), loss


def test_the_embedding_is_the_bottleneck(tiny_corpus):
  config = _tiny("variant=vae,input=mel")
  obj = objectives.make_objective(config, records.load_manifest(tiny_corpus))
  batch = next(iter(pipeline.from_config(tiny_corpus, config.data, "train",
                                         obj.data_mode, batch_size=4)))
  v = obj.init(jax.random.key(0), batch)
  assert obj.embed(v, batch["inputs"]).shape == (4, 16)
  assert v["params"]["encoder"]["bottleneck_proj"]["kernel"].shape[-1] == 16


@pytest.mark.slow
def test_the_transformer_reconstructs_the_frames_it_embeds(tiny_corpus):
  """With an embedding frontend the decoder targets the log-mel frames
  before the embedding (128 bands), not the transformer's width."""
  config = _tiny("variant=ae,input=mel,model=transformer")
  config.model.update(width=32, heads=2, ffn=64, layers=2, conv_pos_kernel=8,
                      conv_pos_groups=4)
  config.model.frontend.dim = 32
  config.data.dir = tiny_corpus
  config_lib.validate(config)
  obj = objectives.make_objective(config, records.load_manifest(tiny_corpus))
  batch = next(iter(pipeline.from_config(tiny_corpus, config.data, "train",
                                         obj.data_mode, batch_size=4)))
  v = obj.init(jax.random.key(0), batch)
  raw = models.apply(obj.encoder, v["params"]["encoder"],
                     v["model_state"]["encoder"], batch["inputs"])[0].raw
  assert raw.shape == (4, 32, 128)
  loss, (metrics, _) = jax.jit(obj.loss_fn)(
      v["params"], v["model_state"], batch, jax.random.key(1))
  assert np.isfinite(float(loss)) and float(loss) == pytest.approx(
      float(metrics["reconstruction"]))


@pytest.mark.slow
def test_a_waveform_encoder_reconstructs_its_crops_log_mel(tiny_corpus):
  """SampleCNN reads the waveform; the decoder targets the log-mel that the
  mel autoencoder reconstructs from the same crop (19,683 samples: 38
  frames of 128 bands)."""
  config = config_lib.load_config("autoencoder",
                                  "variant=vae,input=waveform,runlocal")
  assert config.model.name == "samplecnn"
  config.data.update(dir=tiny_corpus, crop_samples=19683)
  config.model.bottleneck = 16
  config_lib.validate(config)
  obj = objectives.make_objective(config, records.load_manifest(tiny_corpus))
  batch = next(iter(pipeline.from_config(tiny_corpus, config.data, "train",
                                         obj.data_mode, batch_size=4)))
  v = obj.init(jax.random.key(0), batch)
  (_, code, _), _, target = obj.encode(v["params"]["encoder"],
                                    v["model_state"]["encoder"],
                                    batch["inputs"])
  assert code.shape == (4, 16) and target.shape == (4, 38, 128)
  mel = _tiny("variant=ae,input=mel")
  enc = models.make_encoder(mel.model)
  params, state, _ = models.init(enc, jax.random.key(0), batch["inputs"])
  raw = models.apply(enc, params, state, batch["inputs"])[0].raw
  np.testing.assert_allclose(np.asarray(target), np.asarray(raw), atol=1e-5)
  loss, (metrics, _) = jax.jit(obj.loss_fn)(
      v["params"], v["model_state"], batch, jax.random.key(1))
  assert np.isfinite(float(loss)) and float(metrics["reconstruction"]) > 0
  assert "logvar" in v["params"]


def test_bad_autoencoder_configs_name_the_key(tiny_corpus):
  config = _tiny("variant=ae,input=mel")
  config.data.dir = tiny_corpus
  config.model.frontend.embed = "patch"
  with pytest.raises(ValueError, match="model.frontend"):
    config_lib.validate(config)
  config = _tiny("variant=ae,input=mel")
  config.data.dir = tiny_corpus
  config.model.bottleneck = 0
  with pytest.raises(ValueError, match="model.bottleneck"):
    config_lib.validate(config)


@pytest.mark.parametrize("name,frames", [("shortchunk", 1), ("crnn", 2)])
def test_time_pooling_backbones(name, frames):
  """Won et al.'s short-chunk CNN halves time seven times (stopping at one
  frame); the CRNN's pools divide it by 16 before its GRUs."""
  enc = models.make_encoder(config_lib.load_config(
      "supervised", f"model={name},input=mel,runlocal").model)
  x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 32 * 512)),
                  jnp.float32)
  _, _, out = models.init(enc, jax.random.key(0), x)
  assert out.frames.shape[:2] == (2, frames)
  assert out.pooled.shape == (2, out.frames.shape[-1])
  assert len(out.layers) == {"shortchunk": 7, "crnn": 6}[name]


def test_masked_prediction_rejects_backbones_off_the_grid(tiny_targets):
  config = config_lib.load_config("hubert", "input=mel,runlocal")
  config.data.dir = tiny_targets
  config.data.targets = ("mfcc_k16",)
  config.model = defaults.model_config("crnn", "mel", "", True)
  with pytest.raises(ValueError, match="model.name"):
    config_lib.validate(config)
