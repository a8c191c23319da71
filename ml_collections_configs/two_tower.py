r"""Two-tower contrastive learning (CLIP's symmetric InfoNCE) between two
encoders: audio <-> piano roll, piano roll <-> title text, audio <-> text.

Args (comma-separated after the colon):
  towers=audio+pianoroll|pianoroll+text|audio+text|tokens+text|audio+sheet|audio+tags
                          the pair (default audio+pianoroll); the first
                          tower is the one export, the HEAR API and the
                          kNN monitor read by default; tokens+text is
                          melody<->title on event tokens (prepare
                          --features tokens; a tune book's titles);
                          audio+sheet and audio+tags below
  audio=mel|waveform      the audio tower's frontend (default mel; waveform
                          for the SampleCNN)
  audio_model=transformer|cnn|shortchunk|crnn|samplecnn   the audio
                          backbone (default transformer; samplecnn in
                          runlocal against the titles, see below); the
                          SampleCNN reads CLMR's 59,049-sample crops
  roll=pianoroll|multitrack   what the piano-roll tower reads: the piano
                          roll (128 pitches, instruments merged, no
                          drums), or the multitrack roll (those pitches
                          plus a lane per GM instrument family and per GM
                          drum key; features.multitrack; the transformer
                          only); default multitrack in runlocal with an
                          audio partner and the transformer, else
                          pianoroll
  roll_model=transformer|cnn|shortchunk|crnn   the piano-roll backbone
  size=tiny|small|base    the transformers' size (default base; tiny with
                          runlocal); the text tower is always a byte-level
                          transformer of that size, no tokenizer
  projection=N            each tower's bottleneck: the shared space
                          (default 128; 32 for audio+sheet)
  roll_transpose=N        move the piano roll (or the tokens' pitches) by
                          up to N semitones in training (default 6 in
                          runlocal with an audio partner, else 0; CLIP
                          has no such thing)
  tokens=256              a token crop's length (data.tokens)
  hash=N                  N > 0: train the towers for N-bit codes (the
                          signs of their bottlenecks, which get N units;
                          tanh and a bit-balance term in training): Raffel
                          & Ellis's MIDI <-> audio hashing, matched by
                          experiments/midi_audio_matching.py
  holdout=A+B             audio+tags: the tags held out of training for
                          probe --task zeroshot (data.zeroshot_holdout;
                          default: every 4th of the collection's sorted
                          tags, data.zeroshot_every)
  runlocal                small enough to train on the embedded synthetic
                          music (with its titles) in minutes on a CPU

Each tower is an encoder under `model.<tower>`, as big_vision's two-tower
configs put theirs, and `data.features` lists their inputs in tower order
(audio towers read "waveform", text towers the source's `text`/`title`
column, cut to `data.text_bytes` UTF-8 bytes). Defaults follow CLIP
(Radford et al. 2021): temperature 0.07 as a learned logit scale clamped
at 100, AdamW with betas (0.9, 0.98), eps 1e-6, weight decay 0.2 on matrices only, warm-up
then cosine decay.

  python -m jaxmusic.main \
      --config ml_collections_configs/two_tower.py:towers=pianoroll+text,runlocal \
      --workdir /tmp/two_tower
  python -m jaxmusic.export --workdir /tmp/two_tower --tower text --out /tmp/emb_text

audio+tags is zero-shot tagging (Choi, Lee, Park & Nam 2019): each
example pairs an audio crop with the name of one of its track's tags
(data/tags.py), drawn afresh each time, through the byte-level text
tower; the held-out tags never appear, so `probe --task zeroshot` can
query with words the towers never saw (eval/zeroshot.py):

  python -m jaxmusic.main \
      --config ml_collections_configs/two_tower.py:towers=audio+tags,runlocal \
      --workdir /tmp/zeroshot
  python -m jaxmusic.probe --task zeroshot --run /tmp/zeroshot

audio+sheet follows Dorfer, Hajič, Arzt, Frostel & Widmer (2018, TISMIR):
both towers are its VGG-style pathway (models/vgg.py) into a 32-d space;
the audio excerpt is 92 log-mel bands x 42 frames (a 1,024-sample hop at
22,050 Hz: 21.5 frames a second, 1.95 s; the paper's 92 log-frequency
bins at 20 frames a second), the sheet snippet 180 x 200 pixels centred
where the excerpt's centre stands on the page (prepare --features
waveform,sheet; data/sheet.py); the loss is the pairwise ranking hinge
with the sheet as anchor, margin 0.7, every other pair of the batch of
100 as a contrastive example, Adam at 2e-3. Augmentations in the graph:
sheet zoom (5 %) and translation (10 px), audio tempo (up to 10 %); with
several soundfonts at prepare time, a random rendering per example.
It needs a prepared score collection (no scores in the embedded corpus):

  python -m jaxmusic.prepare --source score --input SCORES \
      --features waveform,sheet --output /tmp/sheets \
      --soundfonts /usr/share/sounds/sf2/FluidR3_GM.sf2,/usr/share/sounds/sf3/MuseScore_General.sf3
  python -m jaxmusic.main --config ml_collections_configs/two_tower.py:towers=audio+sheet \
      --config.data.dir /tmp/sheets --workdir /tmp/audio_sheet
"""

import ml_collections

from jaxmusic import defaults
from jaxmusic.defaults import parse_arg

FEATURES = {"audio": "waveform", "pianoroll": "pianoroll", "text": "text",
            "tokens": "tokens", "sheet": "sheet", "tags": "tag"}
TOWERS = ("audio+pianoroll", "pianoroll+text", "audio+text", "tokens+text",
          "audio+sheet", "audio+tags")
# Dorfer et al.'s excerpt: 42 frames of 92 bands.
SHEET_AUDIO = dict(n_mels=92, hop=1024, frames=42)


def get_config(arg=None):
  arg = parse_arg(arg, runlocal=False, towers=TOWERS,
                  audio=("", "mel", "waveform"),
                  audio_model=("", "transformer", "cnn", "shortchunk", "crnn",
                               "samplecnn", "vgg"),
                  roll=("", "pianoroll", "multitrack"),
                  roll_model=("transformer", "cnn", "shortchunk", "crnn"),
                  size=("", "tiny", "small", "base"), projection=0,
                  roll_transpose=-1, tokens=256, hash=0, holdout="")
  towers = tuple(arg.towers.split("+"))
  if "sheet" in towers:
    return _audio_sheet(arg)
  arg.projection = arg.projection or 128
  with_audio = set(towers) == {"audio", "pianoroll"}
  size = arg.size or ("tiny" if arg.runlocal else "base")
  # The runlocal's choices below are docs/results.md's (two-tower rows):
  # the roll moved by up to a tritone, so that the audio tower cannot match
  # on the key alone; CLMR's SampleCNN against the titles; the multitrack
  # roll's instrument and drum lanes against audio.
  if arg.roll_transpose < 0:
    arg.roll_transpose = 6 if arg.runlocal and with_audio else 0
  if not arg.audio_model:
    arg.audio_model = "samplecnn" if arg.runlocal and set(towers) == {
        "audio", "text"} else "transformer"
  if arg.holdout and "tags" not in towers:
    raise ValueError(f"config arg holdout={arg.holdout!r}: only audio+tags "
                     "holds tags out")
  arg.audio = arg.audio or ("waveform" if arg.audio_model == "samplecnn"
                            else "mel")
  if arg.audio_model == "samplecnn" and arg.audio != "waveform":
    raise ValueError(f"config arg audio={arg.audio!r}: the SampleCNN reads "
                     "the waveform")
  if not arg.roll:
    arg.roll = "multitrack" if arg.runlocal and with_audio and \
        arg.roll_model == "transformer" else "pianoroll"
  c = defaults.base("transformer", "mel", size, arg.runlocal)
  features = dict(FEATURES, pianoroll=arg.roll)
  c.data.features = tuple(features[t] for t in towers)
  c.data.text_bytes = 64
  c.data.tokens = arg.tokens
  if "audio" in towers and arg.audio_model == "samplecnn":
    c.data.crop_samples = defaults.CLMR_CROP_SAMPLES
  # The pair's crop starts where the input's does (CLIP's pairs). False
  # draws its start anywhere in the track: positives across the two
  # features, as CLMR's across two crops, for collections whose MIDI is
  # not aligned to the audio.
  c.data.pair_aligned = True
  c.data.zeroshot_holdout = tuple(filter(None, arg.holdout.split("+")))
  c.data.zeroshot_every = 4
  frontend = {"audio": arg.audio, "pianoroll": arg.roll, "text": "text",
              "tokens": "tokens", "tags": "tag"}
  backbone = {"audio": arg.audio_model, "pianoroll": arg.roll_model,
              "text": "transformer", "tokens": "transformer",
              "tags": "transformer"}
  c.model = ml_collections.ConfigDict({"towers": towers})
  for t in towers:
    tower = defaults.model_config(backbone[t], frontend[t], size,
                                  arg.runlocal)
    if t in ("text", "tags"):
      tower["max_frames"] = c.data.text_bytes
    if t == "tokens":
      tower["max_frames"] = c.data.tokens
    tower["bottleneck"] = arg.projection
    if t in ("pianoroll", "tokens"):
      tower["frontend"]["transpose"] = arg.roll_transpose
    c.model[t] = tower
  c.objective = dict(name="two_tower", temperature=0.07,
                     max_logit_scale=100.0, hash=arg.hash > 0,
                     bit_balance=0.1)
  if arg.hash > 0:
    for t in towers:
      c.model[t]["bottleneck"] = arg.hash
  c.optimizer.update(name="adamw", learning_rate=5e-4, b1=0.9, b2=0.98,
                     eps=1e-6, weight_decay=0.2, schedule="cosine",
                     weight_decay_on="matrices", warmup_steps=2000,
                     grad_clip_norm=1.0)
  c.batch_size = 256

  if arg.runlocal:
    defaults.runlocal(c, "transformer")
    # The embedded corpus's 228 training tracks: the towers start to
    # memorise the pairs after about 300 steps.
    c.total_steps = 400
    c.optimizer.update(learning_rate=1e-3, warmup_steps=40)
  return c


def _audio_sheet(arg) -> ml_collections.ConfigDict:
  """Dorfer et al.'s audio <-> sheet-music recipe (the module docstring)."""
  if arg.audio_model not in ("", "vgg", "cnn", "shortchunk", "crnn"):
    raise ValueError(f"config arg audio_model={arg.audio_model!r}: "
                     "audio+sheet reads mel bands with a 2-D CNN (vgg, cnn, "
                     "shortchunk, crnn)")
  c = defaults.base("cnn", "mel", "tiny", arg.runlocal, spec_augment=False)
  c.data.features = ("waveform", "sheet")
  c.data.crop_samples = SHEET_AUDIO["frames"] * SHEET_AUDIO["hop"]
  c.data.pair_aligned = True
  c.model = ml_collections.ConfigDict({"towers": ("audio", "sheet")})
  audio = defaults.model_config(arg.audio_model or "vgg", "mel", "tiny",
                                arg.runlocal)
  audio["frontend"].update(n_mels=SHEET_AUDIO["n_mels"],
                           hop=SHEET_AUDIO["hop"], tempo=0.1)
  sheet = defaults.model_config("vgg", "image", "tiny", arg.runlocal)
  sheet["frontend"].update(scale=0.05, shift=10)
  for tower, cfg in (("audio", audio), ("sheet", sheet)):
    cfg["bottleneck"] = arg.projection or 32
    c.model[tower] = cfg
  c.objective = dict(name="two_tower", loss="hinge", margin=0.7,
                     negatives=0, anchor="sheet", temperature=0.07,
                     max_logit_scale=100.0, hash=False, bit_balance=0.1)
  c.optimizer.update(name="adam", learning_rate=2e-3)
  c.batch_size = 100
  if arg.runlocal:
    defaults.runlocal(c, "cnn")
    c.batch_size = 32
    c.total_steps = 600
  return c
