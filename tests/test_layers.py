"""Layers point one way: data <- models <- objectives <- train, with eval
beside train, and the command lines on top. No import, at module level or
inside a function, climbs a layer or crosses between train and eval, and
the modules import one another without a cycle."""

import ast
import os

ROOT = os.path.join(os.path.dirname(__file__), "..", "jaxmusic")

# Longest prefix wins. Modules of one layer may import one another.
LAYERS = {
    "storage": 0, "defaults": 0, "parallel": 0, "audio": 0,
    "data": 1,
    "ops": 2,
    "models": 3,
    "objectives": 4, "optim": 4,
    "config": 5, "checkpoint": 5, "metrics_writer": 5, "monitor": 5,
    "train": 6, "eval": 6,
    "interop": 7, "hear": 7,
    "main": 8, "prepare": 8, "targets": 8, "export": 8, "probe": 8,
    "convert": 8, "benchmark": 8,
}
SIBLINGS = {"train", "eval"}


def _modules():
  out = {}
  for directory, _, files in os.walk(ROOT):
    for f in files:
      if f.endswith(".py"):
        path = os.path.join(directory, f)
        rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
        rel = "" if rel == "__init__" else rel.removesuffix(".__init__")
        out["jaxmusic" + ("." + rel if rel else "")] = path
  return out


def _imports(path):
  """`[(imported module, at module level)]` of jaxmusic's modules."""
  tree = ast.parse(open(path).read())
  top = {id(node) for node in tree.body}
  found = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module:
      names = [f"{node.module}.{a.name}" for a in node.names]
    else:
      continue
    found += [(n, id(node) in top) for n in names if n.startswith("jaxmusic.")]
  return found


def _resolve(name, modules):
  """The module an import names (`from a import b`: a.b if a module, else
  a)."""
  while name not in modules:
    name = name.rpartition(".")[0]
  return name


def _group(module):
  parts = module.split(".")[1:]
  return parts[0] if parts else ""


def test_every_module_has_a_layer():
  missing = {m for m in _modules() if m != "jaxmusic"
             and _group(m) not in LAYERS}
  assert not missing, f"give these modules a layer in LAYERS: {missing}"


def test_no_import_climbs_a_layer_or_crosses_train_and_eval():
  modules = _modules()
  bad = []
  for module, path in modules.items():
    if module == "jaxmusic":
      continue
    mine = _group(module)
    for name, _ in _imports(path):
      theirs = _group(_resolve(name, modules))
      if LAYERS[theirs] > LAYERS[mine] or (
          mine != theirs and {mine, theirs} == SIBLINGS):
        bad.append(f"{module} imports {name}")
  assert not bad, bad


def test_no_module_level_cycle():
  modules = _modules()
  graph = {m: {_resolve(n, modules) for n, top in _imports(p) if top}
           for m, p in modules.items()}
  state = {}

  def visit(m, stack):
    state[m] = "open"
    for n in graph[m]:
      if n == m or n.startswith(m + "."):
        continue  # a package importing its own modules
      if state.get(n) == "open":
        raise AssertionError(" -> ".join(stack + [m, n]))
      if n not in state:
        visit(n, stack + [m])
    state[m] = "done"

  for m in graph:
    if m not in state:
      visit(m, [])


def test_the_checker_sees_a_climbing_import(tmp_path, monkeypatch):
  """The walk finds function-level imports too."""
  src = tmp_path / "m.py"
  src.write_text("def f():\n  from jaxmusic import train\n")
  assert _imports(str(src)) == [("jaxmusic.train", False)]


def test_the_objectives_loop_and_eval_name_no_input():
  """They ask a frontend's declared properties (frontends/base.py), so a
  new input is a file and a registry line: no string naming a registered
  frontend appears in them."""
  from jaxmusic.models import frontends
  names = set(frontends.FRONTENDS)
  modules = _modules()
  found = []
  for module, path in modules.items():
    if _group(module) not in ("objectives", "train", "monitor", "eval",
                              "export", "probe", "hear"):
      continue
    for node in ast.walk(ast.parse(open(path).read())):
      if isinstance(node, ast.Constant) and node.value in names:
        found.append(f"{module}:{node.lineno} {node.value!r}")
  assert not found, found
