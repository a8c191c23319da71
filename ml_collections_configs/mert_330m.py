r"""MERT-330M: MERT's large recipe, pre-LN with attention relaxation, no
dropout, a layer-normed extractor, 400,000 updates of 8 accumulated
micro-batches (hubert.py's docstring and docs/recipes.md give every number
and its source).

Args (comma-separated after the colon):
  input=waveform|mel|pianoroll   the frontend of the same transformer
  size=tiny|330m                 default 330m (tiny with runlocal)
  runlocal   a tiny transformer on the embedded synthetic music
  quality    runlocal's model for a CPU budget on the user's collection

  python -m jaxmusic.main --config ml_collections_configs/mert_330m.py \
      --workdir gs://bucket/mert_330m
"""

from jaxmusic import defaults

# MERT mert_fairseq/config/pretrain/MERT_RVQ-VAE_CQT_330M.yaml.
RECIPE = dict(
    name="mert", size="330m",
    grid=(24_000, 320, 122_880),  # Hz, the 75 Hz labels' hop, crop
    n_fft=2048,
    crop_frames=220,  # 5.12 s on the 22,050 Hz grid (mel, piano roll)
    synthetic_seconds=6.0,
    batch_size=480, update_freq=8, learning_rate=1.5e-3, clip_norm=1.0,
    extractor_norm="layer", feature_grad_mult=1.0, norm_first=True,
    attention_relax=32.0, dropout=0.0, layerdrop=0.0,
    # One projection shared by the label sets.
    mask_length=5, final_dim=128, untie_final_proj=False,
    mix_seconds=(0.5, 1.5),
    **defaults.MERT_TEACHERS)


def get_config(arg=None):
  return defaults.masked_prediction(RECIPE, arg, sizes=("tiny", "330m"))
