"""Objectives by name. Each module registers a class with:

  data_mode                      the pipeline mode it reads ("views", ...)
  init(rng, batch) -> variables  {"params": ..., "batch_stats": ...}
  loss_fn(params, model_state, batch, rng)
      -> (loss, (metrics, new_model_state))
  embed(variables, x) -> BxD     the frozen encoder, for monitors and export

The train step calls these and knows no objective by name. The encoder's
params and batch statistics live under the "encoder" key of params and
model state (`init`'s "batch_stats"), rebuilt from `config.model`: export
and the HEAR API load just that key from any objective's checkpoint.
"""

from jaxmusic.objectives import ntxent

OBJECTIVES = {"clmr": ntxent.CLMR}


def make_objective(config):
  name = config.objective.name
  if name not in OBJECTIVES:
    raise ValueError(f"config.objective.name={name!r}: unknown; known: "
                     f"{sorted(OBJECTIVES)}")
  return OBJECTIVES[name](config)
