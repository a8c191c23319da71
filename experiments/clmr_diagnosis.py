r"""Why does the README's small CLMR recipe not beat its random init?

Trains `clmr.py:runlocal` (the tiny SampleCNN on waveform crops) as it was
before this diagnosis ("recipe": CLMR's augmentation chain, both views in
one forward pass) and one change of it per arm, each measured against its own random init with the
10-fold linear genre probe (320 tracks, so one track moves accuracy by
0.3 points, not the fixed test split's 2.5):

  augmentation   none; a light chain (polarity, gain, noise, filter);
                 CLMR's chain (the recipe)
  crop           19,683 samples (the recipe, one frame); 59,049 (CLMR's)
  budget         4x the steps
and then, without augmentation (the first finding):
  BatchNorm      both views in one pass, statistics over the global batch
                 (the recipe); a pass per view, as CLMR's PyTorch code
  optimisation   learning rate 3e-4, 1e-3 (the recipe), 3e-3; batch 64
  budget         4x the steps

  python -m experiments.clmr_diagnosis                # 1 seed, 10 folds
  python -m experiments.clmr_diagnosis --seeds 2 --arms recipe,no_aug

Writes the same report as `representation.py` to
`experiments/results/clmr_diagnosis/`; the reading is in
`experiments/README.md`.
"""

import logging
import os
import time


from experiments import common
from jaxmusic import config as config_lib  # pylint: disable=g-import-not-at-top,wrong-import-position


def arms(steps: int):
  # Every arm starts from CLMR's published augmentation (its chain, both
  # views in one pass) and changes one thing.
  before = (("augment.chain",
             tuple(config_lib.load_config("clmr").augment.chain)),
            ("objective.joint_views", True))

  def arm(name, *overrides):
    return common.Arm(name, "clmr", "runlocal", before + tuple(overrides))
  no_aug = (("augment.chain", ()),)
  x4 = (("total_steps", 4 * steps), ("checkpoint.every", steps),
        ("monitor.every", steps))
  return [
      # One change of the recipe each.
      arm("recipe"),
      arm("no_aug", *no_aug),
      arm("light_aug", ("augment.chain",
                        ("polarity", "gain", "noise", "filter"))),
      arm("crop_59049", ("data.crop_samples", 59049)),
      arm("steps_x4", *x4),
      # Then, without the chain, the rest.
      arm("no_aug_bn_per_view", *no_aug, ("objective.joint_views", False)),
      arm("no_aug_lr_3e-4", *no_aug, ("optimizer.learning_rate", 3e-4)),
      arm("no_aug_lr_3e-3", *no_aug, ("optimizer.learning_rate", 3e-3)),
      arm("no_aug_batch_64", *no_aug, ("batch_size", 64)),
      arm("no_aug_steps_x4", *no_aug, *x4),
  ]


def main():
  p = common.parser(__doc__.splitlines()[0],
                    os.path.join(common.ROOT, "experiments", "results",
                                 "clmr_diagnosis"))
  common.add_arms_flag(p)
  # The genre probe is the question; K-fold tag probes would triple the
  # probing time.
  p.set_defaults(seeds=1, folds=10, tasks="multiclass,retrieval")
  args = p.parse_args()
  logging.basicConfig(level=logging.INFO)
  t0 = time.time()
  chosen = common.choose_arms(p, args, arms(args.steps))
  data_dir = common.prepared_data(args.data, ("waveform",), ())
  common.run_and_report(
      chosen, args, data_dir,
      "CLMR runlocal: what keeps it at its random init",
      "Which of augmentation, crop, BatchNorm, learning rate, batch and "
      "budget moves the small CLMR recipe's embedding above its random "
      "init?", t0)


if __name__ == "__main__":
  main()
