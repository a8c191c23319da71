"""Objectives by name. Each module registers a class with:

  __init__(config, manifest)     manifest: the prepared data's, for class
                                 counts, tag counts and frame rates
  validate(config, fail)         static; checks its own keys, `fail(key,
                                 why)` raises naming the key
  data_mode                      the pipeline mode it reads ("views", ...)
  init(rng, batch) -> {"params": ..., "model_state": ...}
  loss_fn(params, model_state, batch, rng)
      -> (loss, (metrics, new_model_state))
  embed(variables, x) -> BxD     the frozen encoder, for monitors; variables
                                 holds "params" and "model_state"
  groups (optional)              a game's players, optim.Group each: its
                                 own loss, top-level params, optimizer
                                 keys and updates a step; the step then
                                 runs one value_and_grad a group and
                                 ignores loss_fn (ali.py)
  after_training(variables, batch, workdir) (optional)
                                 writes what the finished run shows
                                 (ALI's figures), from its final params
                                 and model state and a batch of 8

The train step calls these and knows no objective by name. The encoder's
params and mutable state live under the "encoder" key of params and
model state, rebuilt from `config.model` (see jaxmusic/models): export and
the HEAR API load just that key from any objective's checkpoint. A
two-tower objective keeps its first tower there and the others under
`models.params_key` ("encoder_<tower>"). An objective that needs a step
count (the VAE's KL warm-up) keeps it in its own model state. A new
objective is a new module plus one line in OBJECTIVES.
"""

from jaxmusic.objectives import ali
from jaxmusic.objectives import autoencoder
from jaxmusic.objectives import masked
from jaxmusic.objectives import masked_tokens
from jaxmusic.objectives import ntxent
from jaxmusic.objectives import supervised
from jaxmusic.objectives import triplet
from jaxmusic.objectives import two_tower

OBJECTIVES = {"ali": ali.ALI, "autoencoder": autoencoder.Autoencoder, "clmr": ntxent.CLMR,
              "hubert": masked.MaskedPrediction,
              "mert": masked.MaskedPrediction,
              "masked_tokens": masked_tokens.MaskedTokens,
              "supervised": supervised.Supervised,
              "triplet": triplet.Triplet,
              "two_tower": two_tower.TwoTower}


def make_objective(config, manifest=None):
  name = config.objective.name
  if name not in OBJECTIVES:
    raise ValueError(f"config.objective.name={name!r}: unknown; known: "
                     f"{sorted(OBJECTIVES)}")
  return OBJECTIVES[name](config, manifest)
