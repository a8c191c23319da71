"""Pretrained weights in and out: random-init `transformers` models saved
locally, converted, and run on the same samples through both."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import soundfile as sf

from jaxmusic import checkpoint
from jaxmusic import config as config_lib
from jaxmusic.eval import embeddings
from jaxmusic import models
from jaxmusic.eval import frozen
from jaxmusic.interop import runs
from jaxmusic.interop import transformers as hf_interop

torch = pytest.importorskip("torch")
hf = pytest.importorskip("transformers")

# fairseq's conv layout (320 samples a frame), narrow.
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=64, conv_dim=(16,) * 7,
            conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2),
            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)


def _hf_model(cls_name="HubertModel", seed=0, **overrides):
  """A random-init model whose norms and biases are moved off their init
  (1 and 0), so that a mapping that drops one shows."""
  torch.manual_seed(seed)
  config_cls = getattr(hf, cls_name.replace("Model", "Config"))
  model = getattr(hf, cls_name)(config_cls(**{**TINY, **overrides})).eval()
  with torch.no_grad():
    for _, p in model.named_parameters():
      if p.ndim == 1:
        p.add_(0.1 * torch.randn_like(p))
  return model


def _hidden_states(model, wav_BxT):
  with torch.no_grad():
    out = model(torch.from_numpy(wav_BxT), output_hidden_states=True)
  return [h.numpy() for h in out.hidden_states], out.last_hidden_state.numpy()


def _ours(run, wav_BxT):
  encoder = frozen.load(run)
  out, _ = models.apply(encoder.module, encoder.params, encoder.state,
                        jnp.asarray(wav_BxT))
  return [np.asarray(l) for l in out.layers], np.asarray(out.frames)


def _heads(run, step):
  return checkpoint.restore_subtree(checkpoint.step_dir(run, step),
                                    "heads")[0]


def _assert_close(got, want, rtol=1e-4):
  scale = np.max(np.abs(want))
  np.testing.assert_allclose(got, want, rtol=0, atol=rtol * scale)


def _wav(batch=2, samples=8000, seed=0):
  return (0.1 * np.random.default_rng(seed).standard_normal(
      (batch, samples))).astype(np.float32)


@pytest.mark.parametrize("cls_name,overrides", [
    ("HubertModel", dict(do_stable_layer_norm=False, feat_extract_norm="group")),
    ("HubertModel", dict(do_stable_layer_norm=True, feat_extract_norm="layer",
                         conv_bias=True)),
    ("HubertModel", dict(do_stable_layer_norm=False, feat_extract_norm="layer",
                         feat_proj_layer_norm=False)),
    ("Wav2Vec2Model", dict(do_stable_layer_norm=False,
                           feat_extract_norm="group")),
    ("Wav2Vec2Model", dict(do_stable_layer_norm=True,
                           feat_extract_norm="layer", conv_bias=True)),
])
@pytest.mark.slow
def test_every_layer_matches_transformers(tmp_path, cls_name, overrides):
  model = _hf_model(cls_name, **overrides)
  model.save_pretrained(tmp_path / "hf")
  runs.import_hf(str(tmp_path / "hf"), str(tmp_path / "run"))
  wav = _wav()
  want, want_last = _hidden_states(model, wav)
  got, got_last = _ours(str(tmp_path / "run"), wav)
  assert len(got) == len(want) == TINY["num_hidden_layers"] + 1
  for g, w in zip(got, want):
    assert g.shape == w.shape
    _assert_close(g, w)
  _assert_close(got_last, want_last)
  config = config_lib.load_run_config(str(tmp_path / "run"))
  assert config.data.sample_rate == 16000
  assert config.model.frontend.padding == "valid"


@pytest.mark.slow
def test_pytorch_bin_and_task_head_prefixes_convert(tmp_path):
  """A `pytorch_model.bin` of a task model (keys under `hubert.`) reads as
  its base model."""
  model = _hf_model()
  (tmp_path / "hf").mkdir()
  model.config.save_pretrained(tmp_path / "hf")
  torch.save({f"hubert.{k}": v for k, v in model.state_dict().items()},
             tmp_path / "hf" / "pytorch_model.bin")
  runs.import_hf(str(tmp_path / "hf"), str(tmp_path / "run"))
  wav = _wav()
  for g, w in zip(_ours(str(tmp_path / "run"), wav)[0],
                  _hidden_states(model, wav)[0]):
    _assert_close(g, w)


def test_mert_release_layout_converts_at_24khz_with_its_normalisation(
    tmp_path):
  """MERT's release: its own model_type and config keys, HuBERT's key
  names, and a preprocessor that reads 24 kHz and normalises each input."""
  model = _hf_model(do_stable_layer_norm=False, feat_extract_norm="group")
  model.save_pretrained(tmp_path / "hf")
  cfg = json.loads((tmp_path / "hf" / "config.json").read_text())
  cfg.update(model_type="mert_model", architectures=["MERTModel"],
             feature_extractor_cqt=False, feature_extractor_cqt_bins=336,
             deepnorm=False, attention_relax=-1.0)
  (tmp_path / "hf" / "config.json").write_text(json.dumps(cfg))
  (tmp_path / "hf" / "preprocessor_config.json").write_text(json.dumps(
      {"feature_extractor_type": "Wav2Vec2FeatureExtractor",
       "sampling_rate": 24000, "do_normalize": True}))
  runs.import_hf(str(tmp_path / "hf"), str(tmp_path / "run"))
  config = config_lib.load_run_config(str(tmp_path / "run"))
  assert (config.data.sample_rate, config.data.hop_length) == (24000, 320)
  assert config.objective.name == "mert"
  wav = _wav() * 3 + 0.05
  extractor = hf.Wav2Vec2FeatureExtractor(sampling_rate=24000,
                                          do_normalize=True)
  normalised = np.stack([extractor(w, sampling_rate=24000)["input_values"][0]
                         for w in wav]).astype(np.float32)
  for g, w in zip(_ours(str(tmp_path / "run"), wav)[0],
                  _hidden_states(model, normalised)[0]):
    _assert_close(g, w)
  cfg["feature_extractor_cqt"] = True
  (tmp_path / "hf" / "config.json").write_text(json.dumps(cfg))
  with pytest.raises(hf_interop.ConversionError,
                     match="feature_extractor_cqt=True"):
    runs.import_hf(str(tmp_path / "hf"), str(tmp_path / "run2"))


@pytest.mark.slow
def test_export_cli_gives_the_hidden_states_frame_means(tmp_path):
  """`export --audio FILE --layers all --pooling mean` on a file one crop
  long: each layer's row is that layer's hidden states averaged over
  frames."""
  model = _hf_model(do_stable_layer_norm=True, feat_extract_norm="layer")
  model.save_pretrained(tmp_path / "hf")
  run = str(tmp_path / "run")
  runs.import_hf(str(tmp_path / "hf"), run)
  config = json.loads((tmp_path / "run" / "config.json").read_text())
  rate, crop = config["data"]["sample_rate"], config["data"]["crop_samples"]
  wav = _wav(1, crop, seed=3)
  sf.write(tmp_path / "one_crop.wav", wav[0], rate, subtype="FLOAT")
  embeddings.run(run, str(tmp_path / "emb"),
                 audio=[str(tmp_path / "one_crop.wav")],
                 layers="all", pooling="mean", baseline_names=(), batch_size=4,
                 progress=False)
  layers = np.load(tmp_path / "emb" / "audio" / "encoder" / "segment" /
                   "layers.npy")
  want, _ = _hidden_states(model, wav)
  assert layers.shape == (1, len(want), TINY["hidden_size"])
  for i, h in enumerate(want):
    np.testing.assert_allclose(layers[0, i], h[0].mean(0), rtol=1e-4,
                               atol=1e-4 * np.abs(h).max())


def test_round_trip_is_exact_and_transformers_loads_it(tmp_path):
  model = _hf_model(do_stable_layer_norm=False, feat_extract_norm="group")
  model.save_pretrained(tmp_path / "hf")
  runs.import_hf(str(tmp_path / "hf"), str(tmp_path / "run"))
  runs.export_hf(str(tmp_path / "run"), str(tmp_path / "out"))
  runs.import_hf(str(tmp_path / "out"), str(tmp_path / "run2"))
  a = frozen.load(str(tmp_path / "run")).params
  b = frozen.load(str(tmp_path / "run2")).params
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  loaded = hf.HubertModel.from_pretrained(tmp_path / "out").eval()
  wav = _wav()
  for g, w in zip(_hidden_states(loaded, wav)[0],
                  _hidden_states(model, wav)[0]):
    np.testing.assert_array_equal(g, w)


def _native_run(tmp_path, norm_first):
  """A jaxmusic-made run of the published HuBERT recipe's encoder, shrunk,
  at random init (no transformers anywhere)."""
  config = config_lib.load_config("hubert")
  config.model.update(size="tiny", layers=2, width=32, heads=4, ffn=64,
                      conv_pos_kernel=16, conv_pos_groups=4,
                      norm_first=norm_first)
  config.model.frontend.channels = 16
  encoder = models.make_encoder(config.model, masked=True)
  params, _, _ = models.init(encoder, jax.random.key(0),
                             jnp.zeros((1, 4000)))
  params = jax.tree.map(
      lambda p: p + 0.1 * jax.random.normal(jax.random.key(1), p.shape),
      params)
  run = tmp_path / "native"
  run.mkdir()
  config_lib.save_run_config(config, str(run))
  checkpoint.save_params(str(run / "checkpoints"), {"encoder": params})
  return str(run)


@pytest.mark.slow
@pytest.mark.parametrize("norm_first", [False, True])
def test_jaxmusic_encoder_out_to_transformers(tmp_path, norm_first):
  run = _native_run(tmp_path, norm_first)
  runs.export_hf(run, str(tmp_path / "out"))
  loaded = hf.HubertModel.from_pretrained(tmp_path / "out").eval()
  pre = json.loads((tmp_path / "out" / "preprocessor_config.json")
                   .read_text())
  assert pre["sampling_rate"] == 16000 and not pre["do_normalize"]
  wav = _wav()
  want, want_last = _hidden_states(loaded, wav)
  got, got_last = _ours(run, wav)
  for g, w in zip(got, want):
    _assert_close(g, w)
  _assert_close(got_last, want_last)
  with torch.no_grad():
    masked_spec_embed = loaded.masked_spec_embed.numpy()
  np.testing.assert_array_equal(
      masked_spec_embed, np.asarray(frozen.load(run).params["mask_embedding"]))


@pytest.mark.slow
def test_conversion_errors_name_the_key(tmp_path):
  model = _hf_model(hidden_act="relu")
  model.save_pretrained(tmp_path / "relu")
  with pytest.raises(hf_interop.ConversionError, match="hidden_act='relu'"):
    runs.import_hf(str(tmp_path / "relu"), str(tmp_path / "run"))
  model = _hf_model()
  model.save_pretrained(tmp_path / "cut")
  cfg = json.loads((tmp_path / "cut" / "config.json").read_text())
  cfg["num_hidden_layers"] = 3  # the weights hold 2
  (tmp_path / "cut" / "config.json").write_text(json.dumps(cfg))
  with pytest.raises(hf_interop.ConversionError, match="encoder.layers.2"):
    runs.import_hf(str(tmp_path / "cut"), str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")
  centred = config_lib.load_config("hubert", "runlocal")
  (tmp_path / "centred").mkdir()
  config_lib.save_run_config(centred, str(tmp_path / "centred"))
  encoder = models.make_encoder(centred.model)
  params, _, _ = models.init(encoder, jax.random.key(0),
                             jnp.zeros((1, 65536)))
  checkpoint.save_params(str(tmp_path / "centred" / "checkpoints"),
                         {"encoder": params})
  with pytest.raises(hf_interop.ConversionError, match="padding"):
    runs.export_hf(str(tmp_path / "centred"), str(tmp_path / "out"))


def _fairseq_checkpoint(path, model, final_dim=8, label_sizes=(16,),
                        untie=True, cqt_bins=0, sample_rate=16000,
                        conv_layers="[(16,10,5)] + [(16,3,2)] * 4 + "
                        "[(16,2,2)] * 2"):
  """A fairseq-format HuBERT checkpoint holding `model`'s weights under
  fairseq's names (hubert.py, wav2vec2.py's ConvFeatureExtractionModel and
  TransformerEncoder), with random pre-training heads."""
  cfg = model.config
  rename = [
      (r"feature_extractor\.conv_layers\.(\d+)\.conv\.", r"feature_extractor.conv_layers.\1.0."),
      (r"feature_extractor\.conv_layers\.(\d+)\.layer_norm\.",
       r"feature_extractor.conv_layers.\1.2.1." if cfg.feat_extract_norm == "layer"
       else r"feature_extractor.conv_layers.\1.2."),
      (r"feature_projection\.layer_norm\.", "layer_norm."),
      (r"feature_projection\.projection\.", "post_extract_proj."),
      (r"masked_spec_embed", "mask_emb"),
      (r"encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original0", "encoder.pos_conv.0.weight_g"),
      (r"encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original1", "encoder.pos_conv.0.weight_v"),
      (r"encoder\.pos_conv_embed\.conv\.bias", "encoder.pos_conv.0.bias"),
      (r"\.attention\.", ".self_attn."),
      (r"(layers\.\d+)\.layer_norm\.", r"\1.self_attn_layer_norm."),
      (r"feed_forward\.intermediate_dense", "fc1"),
      (r"feed_forward\.output_dense", "fc2"),
  ]
  import re
  state = {}
  for key, value in model.state_dict().items():
    for pattern, repl in rename:
      key = re.sub(pattern, repl, key)
    state[key] = value.clone()
  gen = torch.Generator().manual_seed(5)
  sets = len(label_sizes)
  state["final_proj.weight"] = torch.randn(
      final_dim * (sets if untie else 1), cfg.hidden_size, generator=gen)
  state["final_proj.bias"] = torch.randn(final_dim * (sets if untie else 1),
                                         generator=gen)
  state["label_embs_concat"] = torch.rand(sum(label_sizes), final_dim,
                                          generator=gen)
  if cqt_bins:
    state["encoder_cqt_model.fc.weight"] = torch.randn(
        cqt_bins, cfg.hidden_size, generator=gen)
    state["encoder_cqt_model.fc.bias"] = torch.randn(cqt_bins, generator=gen)
  model_cfg = {
      "_name": "mert" if cqt_bins else "hubert",
      "encoder_layers": cfg.num_hidden_layers,
      "encoder_embed_dim": cfg.hidden_size,
      "encoder_ffn_embed_dim": cfg.intermediate_size,
      "encoder_attention_heads": cfg.num_attention_heads,
      "activation_fn": "gelu", "conv_feature_layers": conv_layers,
      "conv_bias": cfg.conv_bias,
      "extractor_mode": "layer_norm" if cfg.feat_extract_norm == "layer"
                        else "default",
      "conv_pos": cfg.num_conv_pos_embeddings,
      "conv_pos_groups": cfg.num_conv_pos_embedding_groups,
      "layer_norm_first": cfg.do_stable_layer_norm, "final_dim": final_dim,
      "untie_final_proj": untie, "logit_temp": 0.1, "label_rate": 50.0}
  if cqt_bins:
    model_cfg.update(audio_cqt_loss_m=True, audio_cqt_bins=cqt_bins)
  torch.save({"cfg": {"model": model_cfg, "task": {
      "sample_rate": sample_rate, "normalize": False,
      "labels": [f"km{i}" for i in range(sets)]}}, "model": state}, path)
  return state


@pytest.mark.parametrize("norm,untie,cqt", [("group", True, 0),
                                            ("layer", False, 12)])
def test_fairseq_checkpoint_converts_with_its_heads(tmp_path, norm, untie,
                                                    cqt):
  model = _hf_model(do_stable_layer_norm=norm == "layer",
                    feat_extract_norm=norm, conv_bias=norm == "layer")
  sizes = (16,) if cqt == 0 else (16, 16)
  state = _fairseq_checkpoint(tmp_path / "it1.pt", model, untie=untie,
                              label_sizes=sizes, cqt_bins=cqt)
  run = str(tmp_path / "run")
  runs.import_fairseq(str(tmp_path / "it1.pt"), run)
  wav = _wav()
  got, _ = _ours(run, wav)
  for g, w in zip(got, _hidden_states(model, wav)[0]):
    _assert_close(g, w)
  config = config_lib.load_run_config(run)
  assert config.objective.name == ("mert" if cqt else "hubert")
  assert config.objective.untie_final_proj == untie
  assert [int(n.rsplit("_k", 1)[1]) for n in config.data.targets] == \
      list(sizes)
  # The heads give fairseq's logits: cosine of final_proj's chunk and each
  # label embedding, over logit_temp.
  from jaxmusic.objectives import masked
  heads = _heads(run, 0)
  frames = got[-1] if not config.model.norm_first else _ours(run, wav)[1]
  logits, cqt_pred = masked.Heads(sizes, 8, cqt, 0.1, untie).apply(
      {"params": heads}, jnp.asarray(frames))
  proj = frames @ state["final_proj.weight"].numpy().T + \
      state["final_proj.bias"].numpy()
  codes = state["label_embs_concat"].numpy()
  for i, k in enumerate(sizes):
    p = proj[..., i * 8:(i + 1) * 8] if untie else proj
    c = codes[sum(sizes[:i]):sum(sizes[:i]) + k]
    cos = (p / np.linalg.norm(p, axis=-1, keepdims=True)) @ (
        c / np.linalg.norm(c, axis=-1, keepdims=True)).T
    np.testing.assert_allclose(np.asarray(logits[i]), cos / 0.1, rtol=1e-4,
                               atol=1e-4)
  if cqt:
    np.testing.assert_allclose(
        np.asarray(cqt_pred), frames @ state[
            "encoder_cqt_model.fc.weight"].numpy().T + state[
                "encoder_cqt_model.fc.bias"].numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_masked_pretraining_continues_from_a_fairseq_checkpoint(
    tmp_path, tiny_targets):
  """`config.model_init` on a converted fairseq run starts masked
  prediction from its encoder and its heads, on a collection at its
  grid."""
  from jaxmusic import train
  model = _hf_model(conv_dim=(16,) * 8, conv_kernel=(8,) + (3,) * 7,
                    conv_stride=(4,) + (2,) * 7)
  _fairseq_checkpoint(tmp_path / "it1.pt", model, sample_rate=22050,
                      conv_layers="[(16,8,4)] + [(16,3,2)] * 7")
  run = str(tmp_path / "run")
  runs.import_fairseq(str(tmp_path / "it1.pt"), run)
  config = config_lib.load_run_config(run)
  assert (config.data.sample_rate, config.data.hop_length) == (22050, 512)
  config.update(model_init=run, total_steps=2, batch_size=8, log_every=1)
  config.data.update(dir=tiny_targets, targets=("mfcc_k16",),
                     crop_samples=16 * 512)
  config.objective.update(mix_prob=0.0, cqt_weight=0.0, mask_length=2)
  config.optimizer.update(warmup_steps=0, learning_rate=1e-12)
  config.checkpoint.every = 1
  config.monitor.every = 0
  workdir = str(tmp_path / "continued")
  train.train_and_evaluate(config, workdir)
  first = frozen.load(workdir, 1).params
  converted = frozen.load(run).params
  for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(converted)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
  heads = _heads(workdir, 1)
  np.testing.assert_allclose(heads["codewords"], _heads(run, 0)["codewords"],
                             atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("overrides", [
    {},  # HuBERT Base: post-LN, group-norm extractor
    dict(num_hidden_layers=4, hidden_size=1024, num_attention_heads=16,
         intermediate_size=4096, do_stable_layer_norm=True,
         feat_extract_norm="layer", conv_bias=True),  # MERT-330M's layers
])
@pytest.mark.slow
def test_base_size_parity(tmp_path, overrides):
  """The published widths (HuBERT Base and MERT-95M: 12 x 768; MERT-330M's
  1024-wide pre-LN layers, 4 of its 24), 1 s of audio, every hidden state
  within 1e-4."""
  torch.manual_seed(0)
  model = hf.HubertModel(hf.HubertConfig(**overrides)).eval()
  model.save_pretrained(tmp_path / "hf")
  runs.import_hf(str(tmp_path / "hf"), str(tmp_path / "run"))
  wav = _wav(1, 16000)
  want, want_last = _hidden_states(model, wav)
  got, got_last = _ours(str(tmp_path / "run"), wav)
  assert len(got) == model.config.num_hidden_layers + 1
  for g, w in zip(got, want):
    _assert_close(g, w)
  _assert_close(got_last, want_last)


def test_ast_converts_with_its_kaldi_fbank(tmp_path):
  """ASTModel behind its feature extractor (Kaldi fbank, AudioSet
  normalisation) against jaxmusic's mel frontend (`spectrum="kaldi"`,
  `embed="ast"`) on the same waveform: every layer's patch tokens and the
  pooled (CLS + distillation) output."""
  torch.manual_seed(0)
  cfg = hf.ASTConfig(hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=4, intermediate_size=64,
                     num_mel_bins=32, max_length=64)
  model = hf.ASTModel(cfg).eval()
  with torch.no_grad():
    for _, p in model.named_parameters():
      p.add_(0.1 * torch.randn_like(p))
  model.save_pretrained(tmp_path / "hf")
  extractor = hf.ASTFeatureExtractor(num_mel_bins=32, max_length=64)
  extractor.save_pretrained(tmp_path / "hf")
  run = str(tmp_path / "run")
  runs.import_hf(str(tmp_path / "hf"), run)
  config = config_lib.load_run_config(run)
  assert config.data.crop_samples == 400 + 63 * 160
  wav = _wav(2, config.data.crop_samples, seed=4)
  inputs = np.stack([extractor(w, sampling_rate=16000)["input_values"][0]
                     for w in wav]).astype(np.float32)
  with torch.no_grad():
    out = model(torch.from_numpy(inputs), output_hidden_states=True)
  encoder = frozen.load(run)
  (frames, pooled, layers, _, _), _ = models.apply(
      encoder.module, encoder.params, encoder.state, jnp.asarray(wav))
  assert len(layers) == len(out.hidden_states) == 3
  for g, w in zip(layers, out.hidden_states):
    _assert_close(np.asarray(g), w.numpy()[:, 2:])
  _assert_close(np.asarray(frames), out.last_hidden_state.numpy()[:, 2:])
  _assert_close(np.asarray(pooled), out.pooler_output.numpy())


@pytest.mark.slow
def test_the_hear_api_reads_a_converted_run(tmp_path):
  """The HEAR model of a converted run embeds a window as transformers'
  frame mean of the last hidden state (a post-LN model's last layer), and
  gives scene embeddings from it."""
  from jaxmusic import hear
  model = _hf_model(do_stable_layer_norm=False, feat_extract_norm="group")
  model.save_pretrained(tmp_path / "hf")
  runs.import_hf(str(tmp_path / "hf"), str(tmp_path / "run"))
  heard = hear.load_model(str(tmp_path / "run"))
  assert heard.sample_rate == 16000
  crop = config_lib.load_run_config(str(tmp_path / "run")).data.crop_samples
  wav = _wav(1, crop, seed=7)
  _, last = _hidden_states(model, wav)
  _assert_close(np.asarray(heard.windows.embed(wav))[0], last[0].mean(0))
  scene = np.asarray(hear.get_scene_embeddings(wav[:, :16000], heard))
  assert scene.shape == (1, TINY["hidden_size"]) and np.isfinite(scene).all()


def test_convert_cli_names_a_missing_checkpoint_in_one_line(tmp_path):
  import subprocess
  import sys
  out = subprocess.run(
      [sys.executable, "-m", "jaxmusic.convert", "--from",
       str(tmp_path / "none"), "--out", str(tmp_path / "run")],
      capture_output=True, text=True, timeout=300)
  assert out.returncode != 0
  assert out.stderr.strip().splitlines() == [
      f"error: {tmp_path / 'none'}/config.json: missing; --from needs a "
      "transformers checkpoint directory (config.json + weights)"]
  assert not (tmp_path / "run").exists()
