r"""Autoencoders on log-mel, MFCC, chroma or piano-roll crops: Symphony2vec's
and the composer study's AE, contractive AE and VAE baselines, with any
encoder of the contract; or on the waveform.

Args (comma-separated after the colon):
  variant=ae|cae|vae          (default vae); cae adds the encoder's
                              Jacobian norm, weighted by contraction=
  input=mel|mfcc|chroma|pianoroll|waveform   what is encoded and
                              reconstructed: the in-graph log-mel (128
                              bands), its 20 MFCCs, the 12-bin chroma, or
                              the piano roll (default mel;
                              waveform with runlocal, see below); the
                              waveform is encoded and its log-mel
                              reconstructed
  model=cnn|shortchunk|crnn|alicnn|feedforward|lstm|transformer|samplecnn
                              the encoder's backbone (default cnn;
                              samplecnn on the waveform; feedforward is
                              the composer study's 1024-512-256-128 on
                              the flattened crop); the transformer embeds
                              the frames it reconstructs
  size=tiny|base|95m|330m     the transformer's size (tiny with runlocal)
  latent=128                  the code width (model.bottleneck)
  beta=1.0                    the VAE's KL weight (beta-VAE)
  contraction=0.1             the CAE's Jacobian-penalty weight
  runlocal                    small enough to train on the embedded
                              synthetic music in minutes on a CPU

Crops are CLMR's grid crops (116 frames of 512 samples, 2.69 s), or its
59,049 samples for the SampleCNN. The reconstruction is squared error on
log-mel and MFCC (a waveform's log-mel), Bernoulli cross-entropy on the
piano roll; the VAE's KL weight warms up linearly over
`objective.kl_warmup_steps` (Bowman et al. 2016). Adam at 1e-3, as
Symphony2vec's Keras models trained.

  python -m jaxmusic.main \
      --config ml_collections_configs/autoencoder.py:variant=vae,runlocal \
      --workdir /tmp/vae
"""

from jaxmusic import defaults
from jaxmusic.defaults import parse_arg


def get_config(arg=None):
  arg = parse_arg(arg, runlocal=False, variant=("vae", "ae", "cae"),
                  input=("", "mel", "mfcc", "chroma", "pianoroll",
                         "waveform"),
                  model=("", "cnn", "shortchunk", "crnn", "alicnn",
                         "feedforward", "lstm", "transformer", "samplecnn"),
                  latent=128, beta=1.0, contraction=0.1,
                  size=("", "tiny", "base", "95m", "330m"))
  # The runlocal reads the waveform (docs/results.md: on the embedded
  # corpus an untrained mel CNN already probes near what supervised
  # training reaches); the full recipe keeps Symphony2vec's log-mel.
  model = arg.model or ("samplecnn" if arg.input == "waveform" or (
      arg.runlocal and not arg.input) else "cnn")
  arg.input = arg.input or ("waveform" if model == "samplecnn" or (
      arg.runlocal and "waveform" in defaults.BACKBONE_INPUTS[model])
                            else "mel")
  frontend = {"mfcc": "mel"}.get(arg.input, arg.input)
  size = arg.size or ("tiny" if arg.runlocal else "base")
  c = defaults.base(model, frontend, size, arg.runlocal, spec_augment=False)
  if arg.input == "mfcc":
    c.model.frontend.n_mfcc = 20
  c.model.bottleneck = arg.latent
  c.objective = dict(name="autoencoder", variant=arg.variant,
                     reconstruction="", beta=arg.beta, kl_warmup_steps=2000,
                     contraction=arg.contraction,
                     decoder_channels=(64, 32, 16))
  c.optimizer.update(name="adam", learning_rate=1e-3)

  if arg.runlocal:
    defaults.runlocal(c, model)
    c.optimizer.learning_rate = 1e-3
    if model == "samplecnn":
      c.data.crop_samples = defaults.CLMR_CROP_SAMPLES  # 115 mel frames
    c.objective.kl_warmup_steps = 100
    c.objective.decoder_channels = (32, 16, 8)
  return c
