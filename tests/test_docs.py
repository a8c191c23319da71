"""The docs say what the code does: docs/recipes.md's table of published
numbers against the configs it names."""
import os

from jaxmusic.config import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_recipes_table_matches_the_configs():
  configs = [load_config("hubert"), load_config("mert"),
             load_config("mert", "size=330m")]
  rows = 0
  for line in open(os.path.join(ROOT, "docs", "recipes.md")):
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) != 6 or not cells[1].startswith("`"):
      continue
    key = cells[1].strip("`")
    for config, want in zip(configs, cells[2:5]):
      value = config
      for part in key.split("."):
        value = value[part]
      assert str(value) == want, (key, value, want)
    rows += 1
  assert rows >= 40
