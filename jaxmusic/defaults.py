"""The defaults the recipe configs share: the encoders (a backbone on a
frontend, at a size), and the data, optimizer and loop blocks of the
recipes on the 22,050 Hz, 512-sample grid. A plain module (no jax), so
configs load fast; each config in ml_collections_configs/ builds from
these and says what its recipe changes.
"""

import ml_collections

def parse_arg(arg: str | None, **defaults) -> ml_collections.ConfigDict:
  """`"runlocal,batch=64"` -> {runlocal: True, batch: 64, ...defaults}.

  A default given as a tuple lists the argument's choices, its first the
  default ("" for one the config picks): any other value stops with one
  line naming the argument and its choices, so `input=mell` never trains
  a default model."""
  choices = {k: v for k, v in defaults.items() if isinstance(v, tuple)}
  out = {k: v[0] if k in choices else v for k, v in defaults.items()}
  for item in filter(None, (arg or "").split(",")):
    key, _, value = item.partition("=")
    if key not in defaults:
      raise ValueError(f"config arg {key!r}: unknown; known: "
                       f"{sorted(defaults)}")
    if key in choices:
      if value not in choices[key]:
        raise ValueError(f"config arg {key}={value!r}: unknown; use one of "
                         f"{[c for c in choices[key] if c]}")
      out[key] = value
    elif isinstance(out[key], bool):
      out[key] = not value or value.lower() in ("1", "true", "yes")
    elif not value:
      raise ValueError(f"config arg {key}: needs a value ({key}=...)")
    else:
      try:
        out[key] = type(out[key])(value)
      except ValueError:
        raise ValueError(f"config arg {key}={value!r}: expects "
                         f"{type(out[key]).__name__}") from None
  return ml_collections.ConfigDict(out)


CLMR_CHANNELS = (128, 128, 128, 256, 256, 256, 256, 256, 256, 512, 512)
# CLMR's SampleCNN crop: 3**10 samples, 2.68 s at 22,050 Hz.
CLMR_CROP_SAMPLES = 59049
# The piano-roll inputs, each a frontend reading the prepared feature of
# its name; with the event tokens, the inputs made from MIDI
# (features.MIDI_FEATURES; not imported: configs load light).
ROLL_INPUTS = ("pianoroll", "multitrack")
MIDI_INPUTS = ROLL_INPUTS + ("tokens",)


def model_config(backbone: str, frontend: str, size: str, runlocal: bool,
                 spec_augment: bool = True):
  """`config.model` for a backbone on a frontend (shared by the configs of
  every objective); `spec_augment` adds SpecAugment to a mel frontend."""
  if backbone == "samplecnn":
    return dict(name="samplecnn", frontend=dict(name="waveform"),
                channels=(16, 16, 32, 32, 32, 32, 64, 64, 64, 128)
                if runlocal else CLMR_CHANNELS,
                dtype="float32", impl="auto", pooling="mean")
  if backbone == "cnn":
    return dict(name="cnn", frontend=dict(name=frontend, embed="none"),
                channels=(16, 32, 64, 64) if runlocal
                else (64, 128, 128, 256, 256),
                dtype="float32", pooling="mean")
  if backbone == "shortchunk":  # Won et al. 2020: a global max over time
    return dict(name="shortchunk", frontend=dict(name=frontend, embed="none"),
                channels=(16, 16, 32, 32, 32, 32, 64) if runlocal
                else (128, 128, 256, 256, 256, 256, 512),
                dtype="float32", pooling="max")
  if backbone == "crnn":  # Choi et al. 2017
    return dict(name="crnn", frontend=dict(name=frontend, embed="none"),
                channels=(16, 32, 32, 32) if runlocal else (64, 128, 128, 128),
                gru=(32, 32), dtype="float32", pooling="mean")
  if backbone == "alicnn":  # Dumoulin et al. 2017, Table 3's G_z(x)
    return dict(name="alicnn", frontend=dict(name=frontend, embed="none"),
                leak=0.01, dtype="float32", pooling="mean")
  if backbone == "feedforward":  # the composer study's 1024-512-256-128
    return dict(name="feedforward", frontend=dict(name=frontend,
                                                  embed="none"),
                hidden=(256, 128, 64, 32) if runlocal
                else (1024, 512, 256, 128),
                dropout=0.0, dtype="float32", pooling="mean")
  if backbone == "vgg":  # Dorfer et al. 2018's audio-sheet pathway
    return dict(name="vgg", frontend=dict(name=frontend, embed="none"),
                channels=(12, 24, 48, 48) if runlocal else (24, 48, 96, 96),
                convs_per_block=2, out_channels=32, dtype="float32",
                pooling="mean")
  if backbone == "lstm":
    return dict(name="lstm", frontend=dict(name=frontend, embed="none"),
                units=(32, 32) if runlocal else (128, 128),
                dtype="float32", pooling="mean")
  front = dict(name=frontend)
  width = {"tiny": 128}.get(size, 512)
  if frontend in ("mel", "chroma"):
    front.update(embed="frame", dim=width)
    if spec_augment and frontend == "mel":
      front.update(spec_augment=dict(n_freq_masks=2, max_freq_width=16,
                                     n_time_masks=2, max_time_width=10))
  elif frontend in ROLL_INPUTS:
    front.update(embed="linear", dim=width)
  elif frontend in ("text", "tag", "tokens"):
    # Bytes and events are no time grid: learned positions, one a frame.
    front.update(embed="tokens" if frontend == "tokens" else "bytes",
                 dim=width)
    return dict(name="transformer", frontend=front, size=size,
                positions="learned", max_frames=256, dropout=0.1,
                attention_dropout=0.1, dtype="float32", pooling="mean")
  else:
    # The conv extractor dominates a small model's step (its cost grows
    # with channels squared at 1/2..1/256 of the sample rate).
    front.update(embed="conv", channels=32 if runlocal else 512)
  return dict(name="transformer", frontend=front, size=size,
              positions="conv", conv_pos_kernel=16 if size == "tiny" else 128,
              conv_pos_groups=16, norm_first=True, dropout=0.1,
              attention_dropout=0.1, attention_relax=0.0, dtype="float32",
              impl="auto", pooling="mean")

# The collection's hop on the default grid (22,050 Hz, 43 frames a second).
HOP = 512
# fairseq's conv extractor (frontends.FAIRSEQ_KERNELS / _STRIDES).
FAIRSEQ_KERNELS = (10, 3, 3, 3, 3, 2, 2)
FAIRSEQ_STRIDES = (5, 2, 2, 2, 2, 2, 2)


def base(backbone: str, frontend: str, size: str, runlocal: bool,
         spec_augment: bool = True) -> ml_collections.ConfigDict:
  """A recipe's loop, data, encoder and optimizer before its objective:
  the embedded corpus on the 22,050 Hz grid, crops of CLMR's 3**10
  samples for the SampleCNN and 116 frames otherwise, Adam at 3e-4 (AdamW
  with warm-up and clipping for the transformer)."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.total_steps = 100_000
  c.batch_size = 48
  c.log_every = 50
  grid = backbone != "samplecnn"
  feature = frontend if frontend in MIDI_INPUTS else "waveform"
  c.data = dict(
      dir="",  # empty: the embedded synthetic corpus, prepared on first use
      split="train", eval_split="valid", sample_rate=22050, hop_length=HOP,
      crop_samples=116 * HOP if grid else CLMR_CROP_SAMPLES,
      features=(feature,),
      segment_seconds=3.0, workers=0, cache_dir="",
      synthetic=dict(num_tracks=320, seconds=6.0, seed=0, workers=2))
  c.model = model_config(backbone, frontend, size, runlocal, spec_augment)
  c.optimizer = dict(name="adam", learning_rate=3e-4, schedule="constant",
                     warmup_steps=0, b1=0.9, b2=0.999, weight_decay=0.0,
                     momentum=0.9, grad_clip_norm=0.0, accumulate_steps=1)
  if backbone == "transformer":
    c.optimizer.update(name="adamw", weight_decay=0.01, grad_clip_norm=1.0,
                       warmup_steps=1000)
  c.model_init = ""  # "RUN[:STEP]": start the encoder from that run
  # Tuples: `--config.mesh="(('data', 4), ('fsdp', 2))"` overrides them.
  c.mesh = (("data", -1), ("fsdp", 1))
  c.sharding_rules = ((".*", "fsdp"),)
  c.checkpoint = dict(every=1000, keep=3)
  c.monitor = dict(every=5000, k=5, batch_size=64)
  return c


def runlocal(c: ml_collections.ConfigDict, backbone: str) -> None:
  """`base`'s runlocal: 300 steps of 32 crops (19,683 samples for the
  SampleCNN), checkpointed and monitored every 100."""
  c.total_steps = 300
  c.batch_size = 32
  c.log_every = 20
  if backbone == "samplecnn":
    c.data.crop_samples = 19683
  if backbone == "transformer":
    c.optimizer.warmup_steps = 30
  else:
    c.optimizer.learning_rate = 1e-3
  c.checkpoint.every = 100
  c.monitor.every = 100


# MERT's k-means teachers (MERT-95M and -330M alike). runlocal's chroma
# teacher is relative to each track's key (the embedded tracks' keys are
# random); on the mel its acoustic teacher is HuBERT's MFCC codes, as
# log-mel codes quantise the input itself.
MERT_TEACHERS = dict(
    targets={"waveform": ("logmel_k300", "chroma_k200"),
             "pianoroll": ("roll_texture_k100", "roll_key_chroma_k200")},
    runlocal_targets={
        "waveform": ("logmel_k300", "key_chroma_k200"),
        "mel": ("mfcc_z_k100", "key_chroma_k200"),
        "pianoroll": ("roll_texture_k100", "roll_key_chroma_k200")})


def masked_prediction(recipe: dict, arg: str | None,
                      sizes: tuple[str, ...]) -> ml_collections.ConfigDict:
  """A masked-prediction recipe (hubert.py, mert.py, mert_330m.py: each
  holds its published numbers in `recipe`) on the input, size and budget
  its config argument `arg` names: `input=waveform|mel|pianoroll`,
  `size=` one of `sizes`, `runlocal`, `quality`."""
  arg = parse_arg(arg, runlocal=False, quality=False,
                  input=("waveform", "mel", "pianoroll"),
                  size=("",) + tuple(sizes))
  arg.runlocal = arg.runlocal or arg.quality
  size = arg.size or ("tiny" if arg.runlocal else recipe["size"])
  roll = arg.input in ROLL_INPUTS
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.batch_size = recipe["batch_size"]
  c.log_every = 200
  targets = recipe["runlocal_targets" if arg.runlocal else "targets"]
  c.data = dict(
      dir="",  # empty: the embedded synthetic corpus and its targets
      split="train", eval_split="valid", sample_rate=22050, hop_length=HOP,
      crop_samples=recipe["crop_frames"] * HOP,
      features=(arg.input if roll else "waveform",),
      targets=targets.get(arg.input, targets["waveform"]),
      segment_seconds=3.0, workers=0, cache_dir="",
      synthetic=dict(num_tracks=320, seconds=recipe["synthetic_seconds"],
                     seed=0, workers=2))
  c.model = model_config("transformer", arg.input, size, arg.runlocal,
                         spec_augment=False)
  if arg.input == "waveform" and not arg.runlocal:
    # The published grid and fairseq's valid extractor. Export cuts a
    # track's crops within its prepared segments.
    rate, hop, crop = recipe["grid"]
    c.data.update(sample_rate=rate, hop_length=hop, crop_samples=crop,
                  segment_seconds=float(-(-crop // rate)),
                  n_fft=recipe["n_fft"])
    c.model.frontend.update(kernels=FAIRSEQ_KERNELS, strides=FAIRSEQ_STRIDES,
                            padding="valid", norm=recipe["extractor_norm"])
  drop = recipe["dropout"]
  c.model.update(norm_first=recipe["norm_first"],
                 attention_relax=recipe["attention_relax"], dropout=drop,
                 attention_dropout=drop, activation_dropout=0.0,
                 input_dropout=drop, layerdrop=recipe["layerdrop"])
  if arg.input == "waveform":
    c.model.frontend.grad_scale = recipe["feature_grad_mult"]
  mert = recipe["name"] == "mert" and not roll
  c.objective = dict(
      name=recipe["name"], mask_prob=0.8, mask_length=recipe["mask_length"],
      feature_penalty=10.0 if arg.input == "waveform" else 0.0,
      final_dim=recipe["final_dim"], logit_temp=0.1,
      untie_final_proj=recipe["untie_final_proj"],
      min_masks=2, same_mask_count=True,
      masked_weight=1.0, unmasked_weight=0.0,
      cqt_weight=1.0 if mert else 0.0, cqt_bins=336,
      cqt_bins_per_octave=48, cqt_fmin=32.7, cqt_target="magnitude",
      mix_prob=0.5 if mert else 0.0, mix_seconds=recipe["mix_seconds"],
      mix_max_segments=3, mix_volume=1.0)
  # The loop counts micro-steps: updates and warm-up updates at update_freq
  # N are N times as many loop steps.
  accumulate = recipe["update_freq"]
  c.total_steps = 400_000 * accumulate
  c.optimizer = dict(name="adamw", learning_rate=recipe["learning_rate"],
                     schedule="linear", warmup_steps=32_000 * accumulate,
                     b1=0.9, b2=0.98, eps=1e-6, weight_decay=0.01,
                     momentum=0.9, grad_clip_norm=recipe["clip_norm"],
                     accumulate_steps=accumulate)
  c.model_init = ""  # "RUN[:STEP]": start the encoder from that run
  c.mesh = (("data", -1), ("fsdp", 1))
  c.sharding_rules = ((".*", "fsdp"),)
  c.checkpoint = dict(every=5000, keep=3)
  c.monitor = dict(every=10_000, k=5, batch_size=64)

  if arg.runlocal:
    # The waveform's conv extractor makes its step 2x slower: half the
    # steps; the mel learns on (docs/results.md): twice the steps.
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
    # One update a step: the large recipe's accumulation leaves a
    # laptop's budget a handful of updates.
    c.optimizer.update(learning_rate=1e-3, warmup_steps=60,
                       grad_clip_norm=1.0, accumulate_steps=1)
    c.checkpoint.every = c.total_steps // 3
    c.monitor.every = c.total_steps // 3
  if arg.quality:
    c.total_steps = 1500 if arg.input == "waveform" else 3000
    c.optimizer.warmup_steps = 200
    c.log_every = 100
    c.checkpoint.every = 500
    c.monitor.every = 500
  return c


# The inputs each backbone reads (models.BACKBONES, by the kinds of
# frontend output; listed here so that configs load without jax).
BACKBONE_INPUTS = {
    "samplecnn": ("waveform",),
    "transformer": ("waveform", "mel", "chroma", "pianoroll", "multitrack",
                    "text", "tag", "tokens", "image"),
    "cnn": ("mel", "chroma", "pianoroll", "image"),
    "shortchunk": ("mel", "chroma", "pianoroll", "image"),
    "crnn": ("mel", "chroma", "pianoroll", "image"),
    "alicnn": ("mel", "chroma", "pianoroll", "image"),
    "feedforward": ("mel", "chroma", "pianoroll", "image"),
    "lstm": ("mel", "chroma", "pianoroll", "image"),
    "vgg": ("mel", "chroma", "pianoroll", "image"),
}


def encoder_args(model: str, frontend: str) -> tuple[str, str]:
  """`(backbone, frontend)` from a config's `model=` and `input=`, either
  possibly empty: the SampleCNN on the waveform by default, the
  transformer on any other input; a backbone's default input is the first
  it reads. A
  pair no backbone reads stops with one line."""
  model = model or ("samplecnn" if frontend in ("", "waveform")
                    else "transformer")
  frontend = frontend or BACKBONE_INPUTS[model][0]
  if frontend not in BACKBONE_INPUTS[model]:
    raise ValueError(f"config arg input={frontend!r}: model={model} reads "
                     f"{list(BACKBONE_INPUTS[model])}")
  return model, frontend
