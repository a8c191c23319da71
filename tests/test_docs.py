"""The docs say what the code does: docs/recipes.md's table of published
numbers against the configs it names."""
import os

from jaxmusic.config import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_recipes_table_matches_the_configs():
  configs = [load_config("hubert"), load_config("mert"),
             load_config("mert_330m")]
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


def test_the_manual_builds_strict(tmp_path):
  """mkdocs --strict: a broken link, a missing page or a page left out of
  the nav fails."""
  import subprocess
  import sys
  out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                        "-q", "-d", str(tmp_path / "site")], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  assert (tmp_path / "site" / "results" / "index.html").exists()
