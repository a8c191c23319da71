r"""Autoencoders on log-mel, MFCC or piano-roll crops: Symphony2vec's AE and
VAE baselines, with any 2-D encoder of the contract.

Args (comma-separated after the colon):
  variant=ae|vae              (default vae)
  input=mel|mfcc|pianoroll    what is encoded and reconstructed: the
                              in-graph log-mel (128 bands), its 20 MFCCs,
                              or the piano roll (default mel)
  model=cnn|shortchunk|crnn|transformer   the encoder's backbone (default
                              cnn); the transformer embeds the frames it
                              reconstructs
  size=tiny|base|95m|330m     the transformer's size (tiny with runlocal)
  latent=128                  the code width (model.bottleneck)
  beta=1.0                    the VAE's KL weight (beta-VAE)
  runlocal                    small enough to train on the embedded
                              synthetic music in minutes on a CPU

Crops are CLMR's grid crops (116 frames of 512 samples, 2.69 s). The
reconstruction is squared error on log-mel and MFCC, Bernoulli
cross-entropy on the piano roll; the VAE's KL weight warms up linearly over
`objective.kl_warmup_steps` (Bowman et al. 2016). Adam at 1e-3, as
Symphony2vec's Keras models trained.

  python -m jaxmusic.main \
      --config ml_collections_configs/autoencoder.py:variant=vae,runlocal \
      --workdir /tmp/vae
"""

from jaxmusic.config import load_config
from jaxmusic.config import model_config
from jaxmusic.config import parse_arg


def get_config(arg=None):
  arg = parse_arg(arg, runlocal=False, variant="vae", input="mel",
                  model="cnn", latent=128, beta=1.0, size="")
  if arg.input not in ("mel", "mfcc", "pianoroll"):
    raise ValueError(f"config arg input={arg.input!r}: use mel, mfcc or "
                     "pianoroll")
  frontend = "pianoroll" if arg.input == "pianoroll" else "mel"
  c = load_config("clmr", f"model=cnn,input={frontend}" +
                  (",runlocal" if arg.runlocal else ""))
  del c.augment
  c.model = model_config(arg.model, frontend,
                         arg.size or ("tiny" if arg.runlocal else "base"),
                         arg.runlocal, spec_augment=False)
  if arg.input == "mfcc":
    c.model.frontend.n_mfcc = 20
  c.model.bottleneck = arg.latent
  c.objective = dict(name="autoencoder", variant=arg.variant,
                     reconstruction="", beta=arg.beta, kl_warmup_steps=2000,
                     decoder_channels=(64, 32, 16))
  c.optimizer.update(name="adam", learning_rate=1e-3)
  if arg.runlocal:
    c.total_steps = 300
    c.objective.kl_warmup_steps = 100
    c.objective.decoder_channels = (32, 16, 8)
  return c
