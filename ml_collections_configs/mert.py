r"""MERT-95M: HuBERT's masked prediction with MERT's numbers, its CQT
teacher and in-batch noise mixing, as MERT's code runs them (hubert.py's
docstring and docs/recipes.md give every number and its source).

Args (comma-separated after the colon):
  input=waveform|mel|pianoroll   the frontend of the same transformer
  size=tiny|95m                  default 95m (tiny with runlocal)
  runlocal   a tiny transformer on the embedded synthetic music
  quality    runlocal's model for a CPU budget on the user's collection

  python -m jaxmusic.main --config ml_collections_configs/mert.py:runlocal \
      --workdir /tmp/mert
"""

from jaxmusic import defaults

# MERT mert_fairseq/config/pretrain/MERT_RVQ-VAE_CQT_95M.yaml.
RECIPE = dict(
    name="mert", size="95m",
    grid=(24_000, 320, 120_000),  # Hz, the 75 Hz labels' hop, crop
    n_fft=2048,
    crop_frames=215,  # 5 s on the 22,050 Hz grid (mel, piano roll)
    synthetic_seconds=6.0,
    batch_size=1024, update_freq=1, learning_rate=5e-4, clip_norm=10.0,
    extractor_norm="group", feature_grad_mult=0.1, norm_first=False,
    attention_relax=0.0, dropout=0.1, layerdrop=0.05,
    mask_length=5, final_dim=64, untie_final_proj=True,
    mix_seconds=(0.5, 1.0),
    **defaults.MERT_TEACHERS)


def get_config(arg=None):
  return defaults.masked_prediction(RECIPE, arg, sizes=("tiny", "95m"))
