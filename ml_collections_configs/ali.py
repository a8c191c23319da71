r"""ALI (adversarially learned inference, Dumoulin et al. 2017) on 32 x 32
crops of log-mel, MFCC or chroma: the composer-embedding study's
adversarial embedding.

Args (comma-separated after the colon):
  input=mel|mfcc|chroma       the frames E encodes and G generates: 32
                              log-mel bands, 20 MFCCs or 12 chroma bins,
                              32 frames (0.74 s) a crop (default mel)
  model=alicnn|cnn|feedforward|transformer   the encoder (default alicnn:
                              Table 3's G_z(x)); the transformer embeds
                              the frames linearly
  latent=40                   the latent width LD (the study's 40, 128,
                              256): model.bottleneck
  size=tiny|base              the transformer's size (tiny with runlocal)
  runlocal                    300 steps on the embedded synthetic music

Two parameter groups, "discriminator" (D) and "generator" (E, its
log-sigma map and G), each with its own Adam: the study's 1e-5 with
betas (0.9, 0.999), batch 96 (the paper's 100 on 8 devices). runlocal
takes the ALI code's CIFAR-10 Adam (1e-4, beta1 0.5), so that 300 steps move.
`--config.objective.groups.discriminator.updates=2` gives D two steps a
batch.

  python -m jaxmusic.main --config ml_collections_configs/ali.py:runlocal \
      --workdir /tmp/ali
"""

from jaxmusic import defaults
from jaxmusic.defaults import parse_arg

# Bins a crop: the study's 32 x 32 mel image; MFCC and chroma keep their
# own counts.
MEL_BANDS = 32
CROP_FRAMES = 32


def get_config(arg=None):
  arg = parse_arg(arg, runlocal=False, input=("mel", "mfcc", "chroma"),
                  model=("alicnn", "cnn", "feedforward", "transformer"),
                  latent=40, size=("", "tiny", "base"))
  frontend = "chroma" if arg.input == "chroma" else "mel"
  size = arg.size or ("tiny" if arg.runlocal else "base")
  c = defaults.base(arg.model, frontend, size, arg.runlocal,
                    spec_augment=False)
  if arg.model == "transformer":
    c.model.frontend.embed = "frame"
  if arg.input == "mel":
    c.model.frontend.n_mels = MEL_BANDS
  if arg.input == "mfcc":
    c.model.frontend.n_mfcc = 20
  c.data.crop_samples = CROP_FRAMES * defaults.HOP
  c.model.bottleneck = arg.latent
  c.batch_size = 96  # the paper's 100, a multiple of 8 devices
  c.total_steps = 20_000
  c.objective = dict(
      name="ali", leak=0.01, dropout=0.2,
      groups=dict(discriminator=dict(updates=1), generator=dict(updates=1)))
  c.optimizer.update(name="adam", learning_rate=1e-5, b1=0.9, b2=0.999,
                     weight_decay=0.0, grad_clip_norm=0.0, warmup_steps=0)
  if arg.runlocal:
    defaults.runlocal(c, arg.model)
    c.optimizer.update(learning_rate=1e-4, b1=0.5, warmup_steps=0)
  return c
