"""HuBERT / MERT masked prediction of frame targets.

HuBERT (Hsu et al., 2021): spans of the encoder's projected frames are
replaced by a learned mask embedding, and the transformer predicts each
masked frame's k-means code. The logits are the cosine similarity between
the frame's projection (`final_dim`, one chunk per target set: fairseq's
`untie_final_proj`) and a learned embedding per code, over a temperature
of 0.1, with cross-entropy over the K codes. MERT (Li et al., 2023) adds a
musical teacher, a linear head regressing the CQT magnitude of each
masked frame (336 bins, 48 per octave, from 32.7 Hz), and in-batch noise
mixing: a mixed example gets 1..3 segments of the batch's other clips
added, so the encoder must find the main source in a mixture. The CQT is
computed from the clean crop, before mixing. Both add fairseq's feature
penalty, the mean square of the frontend's output (weight 10).

The masks are fairseq's `compute_mask_indices` (`span_mask`). Targets are
made on the collection's frames and read at the encoder's, every
(encoder hop / collection hop)-th frame, as fairseq reads labels at
`label_rate`. Everything random is drawn on the device from the step's rng
with static shapes, over the global batch, so the masks do not depend on
how many devices or hosts share the batch. The loss is normalised by the
global batch's sample size as fairseq's hubert_criterion counts it: the
masked frames, plus the unmasked ones where they are predicted too.

The targets are the batch's target sets, named by `config.data.targets`
and made by `python -m jaxmusic.targets`; each set's K and codebook count
come from the prepared data's manifest. MERT's 8 codebooks are one set
with C = 8, or several sets: each codebook is predicted on its own.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxmusic import models
from jaxmusic.audio import augment
from jaxmusic.audio import frontend as audio_frontend
from jaxmusic.data import features as feats


def span_mask(key, batch: int, frames: int, mask_prob: float,
              mask_length: int, min_masks: int = 2,
              same_count: bool = True):
  """`BxF` bool, as fairseq's `compute_mask_indices` draws it (static
  spans, overlap allowed, no padding): each row draws
  `max(min_masks, int(mask_prob * F / mask_length + U))` distinct span
  starts, U uniform in [0, 1), uniformly among the first
  F - mask_length frames, and masks `mask_length` frames from each
  (overlapping spans merge). With `same_count` (fairseq's
  `require_same_masks`) every row then keeps a uniform random subset of
  its masked frames, as many as the row with fewest has. Static shapes:
  the starts are the first n of a random permutation of the candidates."""
  k_n, k_perm, k_keep = jax.random.split(key, 3)
  n_max = max(min_masks, int(mask_prob * frames / mask_length + 1.0))
  n_BxO = jnp.maximum(min_masks, jnp.floor(
      mask_prob * frames / mask_length
      + jax.random.uniform(k_n, (batch, 1))).astype(jnp.int32))
  # fairseq's candidates: F - mask_length starts, or n + 1 when that
  # leaves fewer than the starts it draws.
  candidates = jnp.where(frames - mask_length <= n_BxO, n_BxO + 1,
                         frames - mask_length)
  score = jnp.where(jnp.arange(frames)[None] < candidates,
                    jax.random.uniform(k_perm, (batch, frames)), 2.0)
  starts_BxN = jnp.argsort(score, axis=1)[:, :n_max]
  use_BxN = jnp.arange(n_max)[None] < n_BxO
  idx = (starts_BxN[..., None] + jnp.arange(mask_length)).reshape(batch, -1)
  mask = jnp.zeros((batch, frames + mask_length), bool)
  mask = mask.at[jnp.arange(batch)[:, None], idx].max(
      jnp.repeat(use_BxN, mask_length, axis=1))[:, :frames]
  if not same_count:
    return mask
  keep = jnp.min(jnp.sum(mask, axis=1))
  score = jnp.where(mask, jax.random.uniform(k_keep, (batch, frames)), 2.0)
  rank = jnp.argsort(jnp.argsort(score, axis=1), axis=1)
  return mask & (rank < keep)


def codeword_logits(proj_xD, codewords_KxD, temperature: float):
  """Cosine similarity of each projection to each codeword over the
  temperature, in float32 (fairseq's `compute_nce` with every other code
  as a negative)."""
  x = proj_xD.astype(jnp.float32)
  c = codewords_KxD.astype(jnp.float32)
  x = x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-8)
  c = c / jnp.maximum(jnp.linalg.norm(c, axis=-1, keepdims=True), 1e-8)
  return jnp.einsum("...d,kd->...k", x, c,
                    precision=jax.lax.Precision.HIGHEST) / temperature


def sample_size(mask_BxF, masked_weight: float, unmasked_weight: float):
  """fairseq's hubert_criterion sample size: the masked frames when they
  are predicted, plus the unmasked frames when they are."""
  n_masked = jnp.sum(mask_BxF)
  return ((n_masked if masked_weight > 0 else 0)
          + (mask_BxF.size - n_masked if unmasked_weight > 0 else 0))


def masked_prediction_loss(logits_sets, targets_sets, mask_BxF,
                           masked_weight: float = 1.0,
                           unmasked_weight: float = 0.0):
  """Cross-entropy summed over target sets and weighted frames, over the
  whole batch's `sample_size`."""
  w_BxF = jnp.where(mask_BxF, masked_weight, unmasked_weight)
  total = 0.0
  for logits_BxFxK, t_BxF in zip(logits_sets, targets_sets):
    logp = jax.nn.log_softmax(logits_BxFxK.astype(jnp.float32), axis=-1)
    nll = -jnp.take_along_axis(logp, t_BxF[..., None], axis=-1)[..., 0]
    total = total + jnp.sum(w_BxF * nll)
  return total / jnp.maximum(
      sample_size(mask_BxF, masked_weight, unmasked_weight), 1)


CQT_TARGETS = ("magnitude", "log_standardized")


def label_ratio(config, collection_hop: int) -> int | None:
  """Collection frames per encoder frame (fairseq's feat2tar_ratio, label
  rate over frame rate); None where the encoder's hop is no whole
  multiple of the collection's."""
  step = models.frame_hop(config.model, collection_hop)
  if not step or step % collection_hop:
    return None
  return step // collection_hop


class Heads(nn.Module):
  """The projection (fairseq's `final_proj`: one `final_dim` chunk per
  target set with `untie`, fairseq's `untie_final_proj`, else one shared by
  every set), the codeword embeddings of every set (`label_embs_concat`),
  and MERT's CQT regression head."""
  ks: tuple[int, ...]
  final_dim: int
  cqt_bins: int = 0
  temperature: float = 0.1
  untie: bool = True

  @nn.compact
  def __call__(self, frames_BxFxD):
    chunks = len(self.ks) if self.untie else 1
    proj = nn.Dense(self.final_dim * chunks, name="final_proj")(
        frames_BxFxD.astype(jnp.float32))
    # fairseq's label_embs_concat: uniform in [0, 1).
    codewords = self.param("codewords", nn.initializers.uniform(1.0),
                           (sum(self.ks), self.final_dim))
    offsets = np.cumsum((0,) + self.ks)
    chunk = lambda i: proj[..., (i if self.untie else 0) * self.final_dim:
                           ((i if self.untie else 0) + 1) * self.final_dim]
    logits = [codeword_logits(chunk(i), codewords[offsets[i]:offsets[i + 1]],
                              self.temperature)
              for i in range(len(self.ks))]
    cqt = (nn.Dense(self.cqt_bins, name="cqt_head")(frames_BxFxD)
           if self.cqt_bins else None)
    return logits, cqt


class MaskedPrediction:
  """HuBERT (`hubert`) and MERT (`mert`): the same objective, configured."""

  data_mode = "frames"

  def __init__(self, config, manifest=None):
    obj = config.objective
    self.names = tuple(config.data.targets)
    sets = (manifest or {}).get("targets", {})
    for name in self.names:
      if name not in sets:
        raise ValueError(
            f"config.data.targets: {name!r} is not a target set of the "
            f"data (has {sorted(sets) or 'none'}); make it with `python -m "
            f"jaxmusic.targets --data DIR --name {name}`")
    # One entry per predicted codebook: (target name, codebook, K).
    self.sets = [(name, c, sets[name]["k"]) for name in self.names
                 for c in range(sets[name]["codebooks"])]
    self.encoder = models.make_encoder(config.model, masked=True)
    self.heads = Heads(tuple(k for _, _, k in self.sets), obj.final_dim,
                       obj.cqt_bins if obj.cqt_weight else 0,
                       obj.logit_temp, obj.get("untie_final_proj", True))
    self.obj = obj
    self.sample_rate = config.data.sample_rate
    self.hop = manifest["hop_length"] if manifest else \
        config.data.get("hop_length", 512)
    self.model_cfg = config.model
    # Samples per step of the input's last axis.
    self.unit = feats.unit(models.input_feature(config.model), self.hop)
    # fairseq's feat2tar_ratio: collection frames (label_rate) per encoder
    # frame.
    self.ratio = label_ratio(config, self.hop)

  @staticmethod
  def validate(config, fail):
    obj = config.objective
    if not tuple(config.data.get("targets", ())):
      fail("data.targets", "masked prediction needs at least one target "
           "set (python -m jaxmusic.targets)")
    if not 0 < obj.mask_prob <= 1:
      fail("objective.mask_prob", "must be in (0, 1]")
    backbone = models.BACKBONES.get(config.model.name)
    if backbone is not None and not backbone.on_grid:
      fail("model.name", f"{config.model.name} pools over time; masked "
           "prediction needs a backbone whose frames stay on the hop grid "
           f"({sorted(k for k, v in models.BACKBONES.items() if v.on_grid)})")
    hop = config.data.get("hop_length", 512)
    frames = models.frames_per_crop(config.model, config.data.crop_samples,
                                    hop)
    ratio = label_ratio(config, hop)
    if ratio is None or frames > config.data.crop_samples // hop // ratio:
      fail("model.frontend", "masked prediction reads one target frame per "
           "encoder frame, every (encoder hop / collection hop) collection "
           f"frames; this frontend gives {frames} frames for "
           f"{config.data.crop_samples // hop} collection frames")
    if obj.get("cqt_target", "magnitude") not in CQT_TARGETS:
      fail("objective.cqt_target", f"use one of {CQT_TARGETS}")
    if not 1 <= obj.mask_length < frames:
      fail("objective.mask_length", f"must be in 1..{frames - 1} (frames "
           "per crop)")
    if obj.get("feature_penalty", 0.0) < 0:
      fail("objective.feature_penalty", "must be >= 0")
    if obj.final_dim <= 0:
      fail("objective.final_dim", "must be positive")
    if obj.logit_temp <= 0:
      fail("objective.logit_temp", "must be positive")
    if models.input_feature(config.model) != feats.WAVEFORM:
      for key in ("cqt_weight", "mix_prob"):
        if obj.get(key, 0.0):
          fail(f"objective.{key}", "needs a waveform or mel input (the CQT "
               "target and in-batch mixing are computed from audio); set 0 "
               "for piano rolls")
    if obj.get("mix_prob", 0.0):
      lo, hi = obj.mix_seconds
      if not 0 < lo <= hi or hi * config.data.sample_rate > \
          config.data.crop_samples:
        fail("objective.mix_seconds", "needs 0 < min <= max <= the crop")

  def init(self, rng, batch):
    k_enc, k_heads = jax.random.split(rng)
    x = batch["inputs"][:2]
    params, state, out = models.init(self.encoder, k_enc, x)
    heads = self.heads.init(k_heads, out.frames)
    return {"params": {"encoder": params, "heads": heads["params"]},
            "model_state": {"encoder": state}}

  def _cqt_target(self, wav_BxT, frames):
    """MERT's musical target from the clean crop, `BxFxK`, at the encoder's
    frames (hop: sample rate / label rate, as MERT's `model_cqt_pred`):
    the CQT magnitude (`cqt_target="magnitude"`, MERT's), or its log
    standardised over the whole batch (`"log_standardized"`, the treatment
    MERT gives its mel head)."""
    obj = self.obj
    cqt_BxKxN = audio_frontend.cqt(
        wav_BxT, self.sample_rate, self.hop * self.ratio, fmin=obj.cqt_fmin,
        n_bins=obj.cqt_bins, bins_per_octave=obj.cqt_bins_per_octave)
    cqt_BxFxK = jnp.swapaxes(cqt_BxKxN, 1, 2)[:, :frames]
    if obj.get("cqt_target", "magnitude") == "magnitude":
      return jax.lax.stop_gradient(cqt_BxFxK)
    log_cqt = jnp.log(cqt_BxFxK + 1e-5)
    return jax.lax.stop_gradient(
        (log_cqt - jnp.mean(log_cqt)) / (jnp.std(log_cqt) + 1e-5))

  def encoder_frames(self, x) -> int:
    """Frames the encoder gives for the input `x` (a waveform crop, or a
    roll's frames)."""
    return models.frames_per_crop(self.model_cfg, x.shape[-1] * self.unit,
                                  self.hop)

  def loss_fn(self, params, model_state, batch, rng):
    obj = self.obj
    x = batch["inputs"]
    k_mask, k_mix, k_drop, k_aug = jax.random.split(rng, 4)
    b, frames = x.shape[0], self.encoder_frames(x)
    cqt_target = self._cqt_target(x, frames) if obj.cqt_weight else None
    if obj.get("mix_prob", 0.0):
      lo, hi = (int(s * self.sample_rate) for s in obj.mix_seconds)
      x = augment.inbatch_noise_mix(k_mix, x, p=obj.mix_prob, min_len=lo,
                                    max_len=hi,
                                    max_segments=obj.mix_max_segments,
                                    volume=obj.mix_volume)
    mask_BxF = span_mask(k_mask, b, frames, obj.mask_prob, obj.mask_length,
                         obj.get("min_masks", 2),
                         obj.get("same_mask_count", True))
    out, state = models.apply(
        self.encoder, params["encoder"], model_state["encoder"], x,
        train=True, mask_BxF=mask_BxF,
        rngs={"dropout": k_drop, "augment": k_aug})
    features_BxFxC = out.features
    logits, cqt_pred = self.heads.apply({"params": params["heads"]},
                                        out.frames)
    # fairseq's forward_targets: every ratio-th collection frame.
    targets = [batch[name][:, c, ::self.ratio][:, :frames]
               for name, c, _ in self.sets]
    loss = masked_prediction_loss(logits, targets, mask_BxF,
                                  obj.masked_weight, obj.unmasked_weight)
    metrics = self._metrics(logits, targets, mask_BxF)
    if obj.feature_penalty:
      # fairseq's features_pen: the mean square of the frontend's output,
      # which keeps the conv extractor's activations from growing.
      penalty = jnp.mean(jnp.square(features_BxFxC.astype(jnp.float32)))
      metrics["feature_penalty"] = penalty
      loss = loss + obj.feature_penalty * penalty
    if cqt_pred is not None:
      sq = jnp.mean(jnp.square(cqt_pred.astype(jnp.float32) - cqt_target),
                    axis=-1)
      # MERT's nn.MSELoss over the masked frames' bins.
      cqt_loss = jnp.sum(sq * mask_BxF) / jnp.maximum(jnp.sum(mask_BxF), 1)
      metrics["cqt_mse"] = cqt_loss
      loss = loss + obj.cqt_weight * cqt_loss
    return loss, (metrics, {"encoder": state})

  @staticmethod
  def _metrics(logits, targets, mask_BxF):
    masked = mask_BxF.astype(jnp.float32)
    out = {"mask_fraction": jnp.mean(masked)}
    acc_m, acc_u, ppl = [], [], []
    for logits_BxFxK, t_BxF in zip(logits, targets):
      hit = (jnp.argmax(logits_BxFxK, axis=-1) == t_BxF).astype(jnp.float32)
      acc_m.append(jnp.sum(hit * masked) / jnp.maximum(jnp.sum(masked), 1))
      acc_u.append(jnp.sum(hit * (1 - masked))
                   / jnp.maximum(jnp.sum(1 - masked), 1))
      # How many codes the masked predictions spread over: exp(entropy) of
      # their mean distribution.
      p = jax.nn.softmax(logits_BxFxK.astype(jnp.float32), axis=-1)
      mean_p = (jnp.sum(p * masked[..., None], axis=(0, 1))
                / jnp.maximum(jnp.sum(masked), 1))
      ppl.append(jnp.exp(-jnp.sum(mean_p * jnp.log(mean_p + 1e-9))))
    out["masked_top1"] = jnp.mean(jnp.stack(acc_m))
    out["unmasked_top1"] = jnp.mean(jnp.stack(acc_u))
    out["prediction_perplexity"] = jnp.mean(jnp.stack(ppl))
    return out

  def embed(self, variables, x):
    """The pooled encoder output `BxD`, unmasked."""
    return models.pooled(self.encoder, variables, x)
