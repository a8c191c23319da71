r"""HuBERT: masked prediction of k-means frame targets, HuBERT-Base's
recipe as fairseq runs it. mert.py and mert_330m.py are MERT's, on the
same objective (jaxmusic/defaults.py: masked_prediction).

Args (comma-separated after the colon):
  input=waveform|mel|pianoroll   the frontend of the same transformer
                                 (waveform: HuBERT's conv extractor)
  size=tiny|base|95m             default base (tiny with runlocal)
  runlocal   a tiny transformer on the embedded synthetic music, 4-10
             minutes on 2 CPU cores
  quality    runlocal's model, loss and optimiser for a 25-minute budget
             on 2 CPU cores and the user's own collection
             (`--config.data.dir`): 3,000 steps (1,500 on the
             waveform), linear decay after 200 warm-up steps

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
                into a LayerNorm, so it is 0 for them.
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
22,050 Hz grid, pre-LN, no dropout or layerdrop, one update a step, lr 1e-3 after
60 warm-up steps, clip 1, final_dim
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

from jaxmusic import defaults

# fairseq examples/hubert/config/pretrain/hubert_base_librispeech.yaml.
RECIPE = dict(
    name="hubert", size="base",
    grid=(16_000, 160, 250_000),  # Hz, the 100 Hz labels' hop, crop
    n_fft=400,  # 25 ms MFCC frames
    crop_frames=672,  # 15.6 s on the 22,050 Hz grid (mel, piano roll)
    synthetic_seconds=16.0,  # embedded tracks long enough for the crops
    batch_size=176, update_freq=1, learning_rate=5e-4, clip_norm=10.0,
    extractor_norm="group", feature_grad_mult=0.1, norm_first=False,
    attention_relax=0.0, dropout=0.1, layerdrop=0.05,
    mask_length=10, final_dim=256, untie_final_proj=True,
    mix_seconds=(0.5, 1.0),
    targets={"waveform": ("mfcc_k100",),
             "pianoroll": ("roll_texture_k100",)},
    runlocal_targets={"waveform": ("mfcc_z_k100",),
                      "pianoroll": ("roll_texture_k100",)})


def get_config(arg=None):
  return defaults.masked_prediction(RECIPE, arg, sizes=("tiny", "base", "95m"))
