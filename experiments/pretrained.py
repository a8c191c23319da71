r"""A published encoder on your collection: convert, export every layer,
probe with MARBLE's layer weighting.

  # MERT-v1-95M, downloaded by you (e.g. `git clone` of its model page):
  python -m jaxmusic.prepare --source gtzan --input ~/gtzan \
      --output ~/prepared/gtzan_24k --sample_rate 24000 --hop_length 320
  python -m experiments.pretrained --from ~/MERT-v1-95M \
      --data ~/prepared/gtzan_24k --out /tmp/mert95m_gtzan
  # The same path on a random 2-layer model in MERT's release layout, built
  # here with transformers (pip install -e .[test]), and the embedded corpus
  # prepared at its 24 kHz grid:
  python -m experiments.pretrained --runlocal --out /tmp/pretrained_runlocal

Writes OUT/run (the converted run directory), OUT/emb (every layer of
every split, mean-pooled over frames, as MARBLE pools) and OUT/probe
(`results.json`: each layer's probe and the softmax-weighted sum of
layers with its weights).
"""

import argparse
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# pylint: disable=g-import-not-at-top,wrong-import-position
from jaxmusic import config as config_lib
from jaxmusic.eval import embeddings
from jaxmusic.eval import report as report_lib
from jaxmusic.data import corpus
from jaxmusic.interop import runs
# pylint: enable=g-import-not-at-top,wrong-import-position

# MERT-v1's release, shrunk: its config keys and preprocessor, 2 layers of
# width 32 over a narrow fairseq extractor.
RUNLOCAL_MERT = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
    intermediate_size=64, conv_dim=(32,) * 7,
    conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2),
    num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
    feat_extract_norm="group", do_stable_layer_norm=False)


def build_random_mert(directory: str, seed: int = 0) -> str:
  """Saves a random-init model in MERT-v1's release layout (HubertModel
  weights, `model_type` mert_model, a 24 kHz preprocessor)."""
  import torch  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top
  torch.manual_seed(seed)
  model = transformers.HubertModel(transformers.HubertConfig(**RUNLOCAL_MERT))
  model.save_pretrained(directory)
  path = os.path.join(directory, "config.json")
  with open(path) as f:
    cfg = json.load(f)
  cfg.update(model_type="mert_model", architectures=["MERTModel"],
             feature_extractor_cqt=False, deepnorm=False,
             attention_relax=-1.0)
  with open(path, "w") as f:
    json.dump(cfg, f, indent=2)
  with open(os.path.join(directory, "preprocessor_config.json"), "w") as f:
    json.dump({"feature_extractor_type": "Wav2Vec2FeatureExtractor",
               "feature_size": 1, "sampling_rate": 24000,
               "do_normalize": False, "padding_value": 0.0,
               "return_attention_mask": True}, f, indent=2)
  return directory


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--from", dest="source", default="",
                 help="a transformers checkpoint directory or fairseq .pt")
  p.add_argument("--runlocal", action="store_true",
                 help="a random MERT-layout model built here, the embedded "
                 "corpus")
  p.add_argument("--data", default="",
                 help="a prepared collection at the model's grid (default: "
                 "the embedded corpus, prepared at it on first use)")
  p.add_argument("--out", required=True)
  p.add_argument("--folds", type=int, default=0,
                 help="K-fold probes over tracks instead of the fixed split")
  args = p.parse_args(argv)
  if bool(args.source) == args.runlocal:
    p.error("give --from DIR or --runlocal")
  source = args.source or build_random_mert(os.path.join(args.out, "hf"))
  run = os.path.join(args.out, "run")
  convert = runs.import_fairseq if os.path.isfile(source) else runs.import_hf
  convert(source, run)
  config = config_lib.load_run_config(run)
  config.data.targets = ()  # export reads no frame targets
  if args.runlocal:
    config.data.synthetic.update(num_tracks=60, seconds=6.0)
  data = args.data or corpus.resolve_data_dir(config)
  emb = os.path.join(args.out, "emb")
  embeddings.run(run, emb, data_dir=data, layers="all", pooling="mean",
                 baseline_names=("mfcc",), batch_size=8)
  report = report_lib.run(emb, task="multiclass", kinds=("linear",),
                          out=os.path.join(args.out, "probe"), folds=args.folds)
  for row in report["rows"]:
    acc = row["metrics"].get("accuracy")
    print(f"{row['representation']:>12} {str(row['layer']):>9} "
          f"accuracy {acc:.3f}" if acc is not None else row)
  return report


if __name__ == "__main__":
  main()
