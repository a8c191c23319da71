r"""HuBERT / MERT masked prediction of k-means frame targets.

`hubert.py` is HuBERT-Base's recipe; `mert.py` is `hubert.py:recipe=mert`.

Args (comma-separated after the colon):
  input=waveform|mel|pianoroll   the frontend of the same transformer
                                 (waveform: HuBERT's conv extractor)
  size=tiny|base|95m|330m        default base (hubert), 95m (mert)
  recipe=hubert|mert
  runlocal   a tiny transformer on the embedded synthetic music, 4-10
             minutes on 2 CPU cores
  quality    runlocal's model, loss and optimiser for a 25-minute budget
             on 2 CPU cores and the user's own collection
             (`--config.data.dir`):
             3,000 steps (1,500 on the waveform), linear decay after 200
             warm-up steps (15 training minutes on the mel, measured in
             `experiments/benchmarks/RESULTS.md` run 11);
             `experiments/benchmarks/bench_quality.py`

The full configs (no runlocal or quality) are the published recipes as
fairseq's and MERT's code run them; docs/recipes.md tables every number
beside its config key and source file (fairseq
examples/hubert/config/pretrain/hubert_base_librispeech.yaml, MERT
mert_fairseq/config/pretrain/MERT_RVQ-VAE_CQT_95M.yaml and
MERT_RVQ-VAE_CQT_330M.yaml). In short:
  grid          the waveform recipes read their own grid: HuBERT 16 kHz,
                50 Hz frames, its MFCC labels at 100 Hz (hop 160, 25 ms
                frames) read at every second frame; MERT 24 kHz, 75 Hz
                frames and labels (hop 320). fairseq's valid conv extractor
                (group norm; MERT-330M layer norm). The mel and piano-roll
                inputs are ours and keep the 22,050 Hz, 512-sample grid.
  optimizer     Adam(W) betas (0.9, 0.98), eps 1e-6, weight decay 0.01,
                lr 5e-4 (MERT-330M 1.5e-3), polynomial decay to 0 after
                32,000 warm-up updates, 400,000 updates, clip 10 (MERT-330M
                1.0, update_freq 8: accumulate_steps 8, and the loop counts
                8 times the updates and the warm-up)
  masking       fairseq's compute_mask_indices: mask_prob 0.80, at least 2
                spans, every row trimmed to the same count; mask_length 10
                (HuBERT), 5 (MERT)
  logits        final_dim 256 (HuBERT), 64 (MERT-95M), 128 (MERT-330M, one
                projection shared by its label sets); logit_temp 0.1;
                pred_masked_weight 1, pred_nomask_weight 0; the loss over
                fairseq's sample size
  losses        loss_weights [10] (HuBERT), [10, 1] (MERT): the feature
                penalty (mean square of the conv features) 10, MERT's CQT 1.
                The penalty is for the waveform's conv extractor; the mel
                and piano-roll frontends' linear embeddings go straight
                into a LayerNorm, so it is 0 for them (with it, the tiny mel
                runlocal's kNN fell below random init: 0.64 vs 0.68).
  MERT teacher  the CQT magnitude, 336 bins (48 per octave from 32.7 Hz)
  MERT mixing   mixture_prob 0.5 (an example is mixed with probability
                0.5), 1..3 segments of the batch's other clips,
                12,000..24,000 samples at 24 kHz (0.5..1.0 s; MERT-330M
                12,000..36,000), volume 1
  encoder       post-LN, dropout 0.1, attention dropout 0.1, activation
                dropout 0, dropout_input 0.1, encoder_layerdrop 0.05,
                feature_grad_mult 0.1 (HuBERT-Base, MERT-95M); MERT-330M
                pre-LN, attention_relax 32, all dropouts and layerdrop 0,
                feature_grad_mult 1.0
  crops         HuBERT max_sample_size 250,000 at 16 kHz (15.6 s); MERT
                120,000 at 24 kHz (5 s; 330M: 122,880, 5.12 s); the mel and
                piano-roll inputs the same seconds at 22,050 Hz in whole
                512-sample frames: 672, 215 and 220 frames.
  batch         fairseq batches by tokens: 1.4M samples x 32 GPUs (HuBERT),
                2M x 64 (MERT-95M), 0.9M x 64 x 8 (MERT-330M); as whole
                crops: 176, 1024 and 480 x 8 accumulated.
  targets       HuBERT iteration 1: k-means K=100 on 39-d MFCC; MERT's
                k-means teacher: log-mel K=300 and chroma K=200 (its RVQ-VAE
                teacher, EnCodec's 8 x 1024 codes, needs pretrained codec
                weights: import them with `jaxmusic.targets --import-npy`).
                Piano rolls (ours): k-means K=100 on `roll_texture`, the
                roll's transposition-invariant frames (polyphony, onsets,
                span, loudness, interval classes); MERT adds
                `roll_key_chroma` K=200, its chroma teacher's symbolic
                twin, as pitch classes relative to the track's estimated
                key (Krumhansl-Schmuckler).
fairseq's dropout_features is not here: HuBERT computes it on features
its loss never reads. `runlocal` is ours, not a published recipe: the centred
22,050 Hz grid, pre-LN, no dropout or layerdrop, lr 1e-3 after 60 warm-up steps, clip 1, final_dim
64, mask_length 5, pred_nomask_weight 1 (the probes read unmasked frames),
MERT's CQT target log-standardised,
128-frame crops, batch 32, 900 steps (450 on the waveform, 1,800 on the
mel); MERT's chroma teacher relative to each track's key
(`key_chroma_k200`: the embedded tracks' keys are drawn at random, and
absolute chroma codes teach the key;
`--config.data.targets="('logmel_k300','chroma_k200')"` restores MERT's);
on the mel, MERT's acoustic teacher is HuBERT's `mfcc_z_k100`, not
log-mel codes, which quantise the input itself;
HuBERT's MFCC z-scored before k-means (`mfcc_z_k100`: raw, c0, the
loudness, decides the clusters; `--config.data.targets="('mfcc_k100',)"`
restores fairseq's).

  python -m jaxmusic.main --config ml_collections_configs/hubert.py:runlocal \
      --workdir /tmp/hubert
  python -m jaxmusic.main \
      --config ml_collections_configs/hubert.py:input=mel,runlocal \
      --workdir /tmp/hubert_mel
"""

import ml_collections

from jaxmusic.config import model_config
from jaxmusic.config import parse_arg

HOP = 512
CROP_FRAMES = {"hubert": 672, "mert": 215, "mert330m": 220}
# The published waveform recipes' grids: (sample rate, the collection's hop
# = the labels' rate, crop samples). HuBERT's iteration-1 MFCC labels are
# at 100 Hz, read at its 50 Hz frames; MERT's at its 75 Hz frames.
PUBLISHED_GRID = {"hubert": (16_000, 160, 250_000),
                  "mert": (24_000, 320, 120_000),
                  "mert330m": (24_000, 320, 122_880)}
# fairseq's conv extractor (frontends.FAIRSEQ_KERNELS / _STRIDES; configs
# load without jax).
FAIRSEQ_KERNELS = (10, 3, 3, 3, 3, 2, 2)
FAIRSEQ_STRIDES = (5, 2, 2, 2, 2, 2, 2)


def get_config(arg=None):
  arg = parse_arg(arg, runlocal=False, quality=False, input="waveform",
                  size="", recipe="hubert")
  arg.runlocal = arg.runlocal or arg.quality
  mert = arg.recipe == "mert"
  if arg.recipe not in ("hubert", "mert"):
    raise ValueError(f"config arg recipe={arg.recipe!r}: use hubert or mert")
  size = arg.size or ("tiny" if arg.runlocal else "95m" if mert else "base")
  big = size == "330m"
  roll = arg.input == "pianoroll"
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.batch_size = (480 if big else 1024) if mert else 176
  c.log_every = 200

  crop = CROP_FRAMES["mert330m" if big else "mert" if mert else "hubert"]
  if roll:
    # Transposition-invariant codes; MERT adds its chroma teacher's
    # symbolic twin, relative to each track's key (absolute pitch classes
    # would teach the key a track happens to be in).
    targets = ("roll_texture_k100",) + (("roll_key_chroma_k200",) if mert
                                        else ())
  elif mert:
    # runlocal's chroma teacher is relative to each track's key; the
    # published one (absolute) is what MARBLE's key detection reads. On
    # the mel, runlocal's acoustic teacher is HuBERT's z-scored MFCC codes:
    # log-mel codes quantise the very frames the model reads, and carry
    # less genre as a bag (experiments/README.md, runlocals).
    acoustic = ("mfcc_z_k100" if arg.runlocal and arg.input == "mel"
                else "logmel_k300")
    targets = (acoustic, "key_chroma_k200" if arg.runlocal else "chroma_k200")
  else:
    # runlocal's MFCC are z-scored before k-means: raw, c0 (the frame's
    # loudness) spreads 45 times wider than the median dimension and
    # decides the clusters, and the deltas barely count.
    targets = ("mfcc_z_k100" if arg.runlocal else "mfcc_k100",)
  c.data = dict(
      dir="",  # empty: the embedded synthetic corpus and its targets
      split="train", eval_split="valid", sample_rate=22050, hop_length=HOP,
      crop_samples=crop * HOP,
      features=("pianoroll" if roll else "waveform",),
      targets=targets, segment_seconds=3.0, workers=0, cache_dir="",
      # HuBERT's 15.6 s crops need tracks longer than the corpus's usual 6 s.
      synthetic=dict(num_tracks=320, seconds=6.0 if mert else 16.0, seed=0,
                     workers=2))
  c.model = model_config("transformer", arg.input, size, arg.runlocal,
                         spec_augment=False)
  if arg.input == "waveform" and not arg.runlocal:
    recipe = "mert330m" if big else arg.recipe
    rate, hop, crop_samples = PUBLISHED_GRID[recipe]
    # Export cuts a track's crops within its prepared segments. HuBERT's
    # MFCC frames are 25 ms (fairseq's), the embedded corpus's too.
    c.data.update(sample_rate=rate, hop_length=hop, crop_samples=crop_samples,
                  segment_seconds=float(-(-crop_samples // rate)),
                  n_fft=400 if arg.recipe == "hubert" else 2048)
    # fairseq's extractor: valid convs; MERT-330M's is layer-normed
    # (extractor_mode=layer_norm, HuBERT Large's).
    c.model.frontend.update(kernels=FAIRSEQ_KERNELS, strides=FAIRSEQ_STRIDES,
                            padding="valid",
                            norm="layer" if big else "group")
  drop = 0.0 if big else 0.1
  c.model.update(norm_first=big, attention_relax=32.0 if big else 0.0,
                 dropout=drop, attention_dropout=drop, activation_dropout=0.0,
                 input_dropout=drop, layerdrop=0.0 if big else 0.05)
  if arg.input == "waveform":
    c.model.frontend.grad_scale = 1.0 if big else 0.1
  audio = not roll
  c.objective = dict(
      name=arg.recipe, mask_prob=0.8, mask_length=5 if mert else 10,
      feature_penalty=10.0 if arg.input == "waveform" else 0.0,
      final_dim=(128 if big else 64) if mert else 256, logit_temp=0.1,
      # MERT-95M predicts each codebook from its own chunk; MERT-330M from
      # one shared projection (HuBERT's one set: the same either way).
      untie_final_proj=not big,
      min_masks=2, same_mask_count=True,
      masked_weight=1.0, unmasked_weight=0.0,
      cqt_weight=1.0 if mert and audio else 0.0, cqt_bins=336,
      cqt_bins_per_octave=48, cqt_fmin=32.7, cqt_target="magnitude",
      mix_prob=0.5 if mert and audio else 0.0,
      mix_seconds=(0.5, 1.5 if big else 1.0), mix_max_segments=3,
      mix_volume=1.0)
  # The loop counts micro-steps: MERT-330M's 400,000 updates and 32,000
  # warm-up updates at update_freq 8 are 8 times as many loop steps.
  accumulate = 8 if big else 1
  c.total_steps = 400_000 * accumulate
  c.optimizer = dict(name="adamw", learning_rate=1.5e-3 if big else 5e-4,
                     schedule="linear", warmup_steps=32_000 * accumulate,
                     b1=0.9,
                     b2=0.98, eps=1e-6, weight_decay=0.01, momentum=0.9,
                     grad_clip_norm=1.0 if big else 10.0,
                     accumulate_steps=accumulate)
  c.model_init = ""  # "RUN[:STEP]": start the encoder from that run
  # Tuples: `--config.mesh="(('data', 4), ('fsdp', 2))"` overrides them.
  c.mesh = (("data", -1), ("fsdp", 1))
  c.sharding_rules = ((".*", "fsdp"),)
  c.checkpoint = dict(every=5000, keep=3)
  c.monitor = dict(every=10_000, k=5, batch_size=64)

  if arg.runlocal:
    # The waveform's conv extractor makes its step 2x slower: half the
    # steps. On the mel the masked prediction still learns at 900 steps
    # (experiments/README.md, "twice the budget"): twice that.
    c.total_steps = {"waveform": 450, "mel": 1800}.get(arg.input, 900)
    c.batch_size = 32
    c.log_every = 50
    c.data.crop_samples = 128 * HOP
    c.data.synthetic.seconds = 6.0
    c.model.update(norm_first=True, dropout=0.0, attention_dropout=0.0,
                   input_dropout=0.0, layerdrop=0.0)
    if arg.input == "waveform":
      c.model.frontend.grad_scale = 1.0
    # The probes pool the last layer over unmasked inputs, which a loss on
    # masked frames alone leaves unconstrained (HuBERT's
    # pred_nomask_weight); with weight 1 every frame predicts its code.
    c.objective.update(mask_length=5, final_dim=64, unmasked_weight=1.0,
                       cqt_target="log_standardized")
    c.optimizer.update(learning_rate=1e-3, warmup_steps=60,
                       grad_clip_norm=1.0)
    c.checkpoint.every = c.total_steps // 3
    c.monitor.every = c.total_steps // 3
  if arg.quality:
    c.total_steps = 1500 if arg.input == "waveform" else 3000
    c.optimizer.warmup_steps = 200
    c.log_every = 100
    c.checkpoint.every = 500
    c.monitor.every = 500
  return c
