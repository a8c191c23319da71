"""A track's tags as text, for zero-shot tagging (Choi et al. 2019's
setting; two_tower.py:towers=audio+tags): a training example pairs an
audio crop with the name of one of its track's tags, read by a byte-level
text tower, and a set of tags is held out of every pair, so that
probe --task zeroshot can query the towers with words they never saw.

The held-out set is `data.zeroshot_holdout` (tag names) where given, else
every `data.zeroshot_every`-th tag of the collection's sorted vocabulary
(the 1st of each `every`, counted from 0: tags every-1, 2*every-1, ...),
so that the same rule picks the same words in training and in the probe.
"""

FEATURE = "tag"


def text(name: str) -> str:
  """The words a tag is written as: its name, underscores as spaces
  ("synth_lead" reads "synth lead", as a user would type it)."""
  return name.replace("_", " ")


def held_out(vocab: list[str], names=(), every: int = 4) -> list[int]:
  """The ids of `vocab` (the manifest's tag names) held out of training:
  `names`, else every `every`-th (none for `every` 0). An unknown name is
  an error naming it."""
  if names:
    index = {v: i for i, v in enumerate(vocab)}
    unknown = [n for n in names if n not in index]
    if unknown:
      raise ValueError(f"data.zeroshot_holdout: tag {unknown[0]!r} is not in "
                       f"the collection's tags {vocab}")
    return sorted(index[n] for n in names)
  if every < 0:
    raise ValueError(f"data.zeroshot_every={every}: must be >= 0 (0: none)")
  return list(range(every - 1, len(vocab), every)) if every else []


def split(vocab: list[str], names=(), every: int = 4):
  """(seen ids, held-out ids) of `vocab`; at least one must be seen."""
  unseen = held_out(vocab, names, every)
  seen = [i for i in range(len(vocab)) if i not in set(unseen)]
  if not seen:
    raise ValueError(f"data.zeroshot_holdout holds out all of the "
                     f"collection's {len(vocab)} tags: none is left to "
                     "train on")
  return seen, unseen
