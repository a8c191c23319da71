"""Probe reports over exported embeddings: every representation probed the
same way, per layer where export wrote layers, on splits or k folds, and
the two-tower crossmodal ranking (`python -m jaxmusic.probe` is its
command line; its docstring says what each option does)."""


import dataclasses
import json
import logging
import os
import warnings

import numpy as np

from jaxmusic.eval import marble_probe
from jaxmusic.eval import probes
from jaxmusic.data import tracks as per_track


SPLITS = ("train", "valid", "test")
# jaxmusic's probes (scikit-learn grids) or MARBLE's MLP probe.
PROTOCOLS = ("default", "marble")
ORDER = ("encoder", "random_init", "mfcc", "logmel_stats", "logmel_pca",
         "roll_stats", "input_pca")


def _load(directory, rep, split, level, layers=False):
  d = os.path.join(directory, split, rep,
                   "segment" if level == "chunk" else "track")
  name = "layers" if layers else "embeddings"
  arrays = {k: np.load(os.path.join(d, f"{k}.npy"))
            for k in (name, "track", "label", "artist", "tags", "values",
                      "labels") if k != "labels"
            or os.path.exists(os.path.join(d, f"{k}.npy"))}
  arrays["x"] = arrays.pop(name)
  return arrays


def _target(arrays, task, target, value_names, label_names=()):
  """(y, rows with a known target); a classification target is `label`,
  `artist` or one of the collection's extra labels (a tune's `key`,
  `mode`, `meter`)."""
  if task == "multilabel":
    if target != "tags":
      raise ValueError(f"--target={target}: multilabel probes use tags")
    return arrays["tags"], np.ones(len(arrays["tags"]), bool)
  if task == "regression":
    if target not in value_names:
      raise ValueError(f"--target={target}: not a numeric track value; "
                       f"have {value_names or 'none'}")
    y = arrays["values"][:, value_names.index(target)]
    return y, np.isfinite(y)
  if target in label_names and "labels" in arrays:
    y = arrays["labels"][:, list(label_names).index(target)]
    return y, y >= 0
  if target not in ("label", "artist"):
    raise ValueError(f"--target={target}: use label, artist"
                     + "".join(f", {n}" for n in label_names))
  y = arrays[target]
  return y, y >= 0


def load_splits(directory, rep, task, target, level, value_names,
                layers=False, group=None):
  """{split: Split} of `rep`'s rows with a `target`; `group` names a label
  each row must also have (the collection's own folds), kept as
  Split.group."""
  out = {}
  vocab = _info(directory)["vocab"]
  label_names = tuple(vocab.get("labels", {}))
  names = (vocab.get("labels", {}).get(target) or vocab.get(target)
           if task == "multiclass" else None)
  for split in SPLITS:
    a = _load(directory, rep, split, level, layers)
    y, keep = _target(a, task, target, value_names, label_names)
    groups = None
    if group is not None:
      groups, has = _target(a, "multiclass", group, value_names, label_names)
      if not has[keep].all():
        raise ValueError(f"--folds={group}: {int((~has[keep]).sum())} rows "
                         f"of {directory}/{split} have no {group}")
      groups = groups[keep]
    out[split] = probes.Split(a["x"][keep], y[keep], a["track"][keep],
                              tuple(names) if names else None, groups)
    if not keep.any():
      raise ValueError(f"{directory}/{split}: no row has a {target} target")
  return out


def _check_disjoint(directory, rep):
  ids = {s: set(np.load(os.path.join(directory, s, rep, "track", "ids.npy"))
                .tolist()) for s in SPLITS}
  for a, b in (("train", "valid"), ("train", "test"), ("valid", "test")):
    if ids[a] & ids[b]:
      raise ValueError(f"{directory}: track {sorted(ids[a] & ids[b])[0]} is "
                       f"in both {a} and {b}")


def _rows_for(directory, rep, info, task, target, level, kinds, k, seed,
              protocol="default"):
  """Every probe of one representation: its last layer, each layer and
  the weighted sum of layers where export wrote them; under MARBLE's
  protocol, its MLP probe on the weighted layers (or the last)."""
  value_names = info["vocab"].get("values", [])
  data = load_splits(directory, rep, task, target, level, value_names)
  extra_labels = info["vocab"].get("labels", {})
  knn_key = target if target in ("label", "artist", *extra_labels) \
      else "label"
  knn = None
  if info["vocab"].get(knn_key) or extra_labels.get(knn_key):
    # Classification targets are already the kNN's; other tasks reload.
    kd = data if target == knn_key else load_splits(
        directory, rep, "multiclass", knn_key, level, [])
    knn = probes.knn_accuracy(kd["train"], kd["test"])
  extra = {"knn_accuracy": knn} if knn is not None else {}
  widths = _layer_widths(directory, rep, info)
  layered = widths is not None
  rows = []
  if protocol == "marble" and task != "retrieval":
    if layered:
      data = load_splits(directory, rep, task, target, level, value_names,
                         layers=True)
    result = marble_probe.fit(task, data["train"], data["valid"],
                              data["test"], seed)
    result["metrics"].update(extra)
    return [{"probe": "marble_mlp", "layer": "all" if layered else "last",
             **result}]
  if task == "retrieval":
    # Test tracks query every track of every split (train and valid too),
    # so a label with one test track still has items to find.
    xs, ys = zip(*[(per_track.average_by_track(d.x, d.track)[1],
                    per_track.first_per_track(d.y, d.track))
                   for d in (data["test"], data["train"], data["valid"])])
    rows.append({"probe": "cosine", "layer": "last", "metrics": {
        **probes.retrieval_metrics(np.concatenate(xs), np.concatenate(ys), k,
                                   queries=np.arange(len(xs[0]))), **extra}})
    return rows
  for kind in kinds:
    result = probes.fit_sklearn(task, kind, data["train"], data["valid"],
                                data["test"], seed)
    result["metrics"].update(extra)
    rows.append({"probe": kind, "layer": "last", **result})
  if layered:
    stack = load_splits(directory, rep, task, target, level, value_names,
                        layers=True)
    for i, w in enumerate(widths):
      per = {s: dataclasses.replace(v, x=v.x[:, i, :w])
             for s, v in stack.items()}
      result = probes.fit_sklearn(task, "linear", per["train"], per["valid"],
                                  per["test"], seed)
      rows.append({"probe": "linear", "layer": str(i), **result})
    result = probes.fit_weighted_layers(task, stack["train"], stack["valid"],
                                        stack["test"], seed=seed)
    rows.append({"probe": "weighted_layers", "layer": "all", **result})
  return rows


def markdown(report) -> str:
  metric_names = list(dict.fromkeys(
      m for r in report["rows"] for m in r["metrics"]
      if not m.endswith("_std")))
  head = ["representation", "probe", "layer", *metric_names,
          "hyperparameters"]
  folds = report.get("folds")
  lines = [f"# Probe: {report['task']} on {report['target']} "
           f"({report['level']} level"
           + (f", the collection's `{folds}` folds, mean ± std"
              if isinstance(folds, str) else
              f", {folds}-fold cross-validation over tracks, mean ± std"
              if folds else "") + ")", "",
           f"Encoder: step {report['step']} of `{report['workdir']}`; "
           f"embeddings `{report['embeddings']}`.", "",
           "| " + " | ".join(head) + " |",
           "|" + "---|" * len(head)]
  for r in report["rows"]:
    cells = [r["representation"], r["probe"], r["layer"]]
    cells += [(f"{r['metrics'][m]:.4f}" + (
        f" ± {r['metrics'][m + '_std']:.4f}"
        if m + "_std" in r["metrics"] else "")) if m in r["metrics"] else ""
              for m in metric_names]
    cells.append(", ".join(f"{k}={v}" for k, v in
                           r.get("hyperparameters", {}).items()))
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def projections(directory, rep, color_key="label", seed=0):
  """[("pca", xy), ("tsne", xy)] of every split's standardised track
  embeddings of `rep`, and their `color_key` values."""
  from sklearn.decomposition import PCA  # pylint: disable=g-import-not-at-top
  from sklearn.manifold import TSNE  # pylint: disable=g-import-not-at-top
  from sklearn.preprocessing import StandardScaler  # pylint: disable=g-import-not-at-top
  parts = [_load(directory, rep, s, "track") for s in SPLITS]
  x = StandardScaler().fit_transform(np.concatenate([p["x"] for p in parts]))
  methods = (("pca", PCA(2, random_state=seed)),
             ("tsne", TSNE(2, perplexity=min(30.0, (len(x) - 1) / 3),
                           random_state=seed)))
  return ([(name, m.fit_transform(x)) for name, m in methods],
          np.concatenate([p[color_key] for p in parts]))


def plot(directory, reps, out, color_key="label", seed=0):
  """PCA and t-SNE of every split's track embeddings, coloured by label."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  os.makedirs(out, exist_ok=True)
  paths = []
  for rep in reps:
    xys, c = projections(directory, rep, color_key, seed)
    for name, xy in xys:
      fig, ax = plt.subplots(figsize=(5, 5))
      ax.scatter(xy[:, 0], xy[:, 1], c=c, cmap="tab10", s=12)
      ax.set_title(f"{rep}: {name.upper()} by {color_key}")
      path = os.path.join(out, f"{rep}_{name}.png")
      fig.savefig(path, dpi=100, bbox_inches="tight")
      plt.close(fig)
      paths.append(path)
  return paths


def _info(directory):
  path = os.path.join(directory, "export.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path}: missing; run python -m jaxmusic.export "
                            "first")
  with open(path) as f:
    return json.load(f)


def save_json(report: dict, directory: str, name: str) -> str:
  """Writes `report` to `directory/name` (made if missing); its path."""
  path = os.path.join(directory, name)
  os.makedirs(directory or ".", exist_ok=True)
  with open(path, "w") as f:
    json.dump(report, f, indent=1)
  return path


def _write_report(report, out):
  os.makedirs(out, exist_ok=True)
  with open(os.path.join(out, "results.json"), "w") as f:
    json.dump(report, f, indent=2)
  with open(os.path.join(out, "results.md"), "w") as f:
    f.write(markdown(report))


def run_crossmodal(dir_a, dir_b, split="test", k=10, out=""):
  """Cross-modal retrieval between two towers' exports of the same data:
  track-level embeddings, matched by track id, ranked both ways, for each
  representation both exports hold (the trained towers and their random
  init)."""
  info_a, info_b = _info(dir_a), _info(dir_b)
  name_a = info_a.get("tower") or info_a["feature"]
  name_b = info_b.get("tower") or info_b["feature"]
  if name_a == name_b:
    raise ValueError(f"--pair: {dir_a} and {dir_b} hold the same tower "
                     f"{name_a!r}; export the other with --tower")
  rows = []
  for rep in ("encoder", "random_init"):
    if rep not in info_a["representations"] or \
        rep not in info_b["representations"]:
      continue
    load = lambda d, n: np.load(os.path.join(d, split, rep, "track",
                                             f"{n}.npy"))
    ids_a, ids_b = load(dir_a, "ids"), load(dir_b, "ids")
    if set(ids_a.tolist()) != set(ids_b.tolist()):
      raise ValueError(f"{dir_a} and {dir_b}: the {split} tracks differ; "
                       "export both towers from the same data")
    order_b = {t: i for i, t in enumerate(ids_b.tolist())}
    x_a = load(dir_a, "embeddings")
    x_b = load(dir_b, "embeddings")[[order_b[t] for t in ids_a.tolist()]]
    # DCG's partial relevance: a track of the query's label (a tune's
    # rhythm type).
    groups = load(dir_a, "label") if info_a["vocab"].get("label") else None
    for (qa, qb), (xq, xg) in (((name_a, name_b), (x_a, x_b)),
                               ((name_b, name_a), (x_b, x_a))):
      rows.append({"representation": rep, "probe": f"{qa}->{qb}",
                   "layer": "last", "metrics": {
                       **probes.crossmodal_metrics(xq, xg, k,
                                                   groups_N=groups),
                       "tracks": float(len(ids_a))}})
  if not rows:
    raise ValueError(f"{dir_a}, {dir_b}: no representation in both")
  report = {"task": "crossmodal", "target": f"{name_a}<->{name_b}",
            "level": "track", "embeddings": os.path.abspath(dir_a),
            "pair": os.path.abspath(dir_b), "workdir": info_a["workdir"],
            "step": info_a["step"], "split": split, "rows": rows}
  _write_report(report, out or dir_a)
  return report


def _kfold_rows(directory, rep, info, task, target, level, kinds, folds,
                seed, protocol="default"):
  """`folds`-fold cross-validation over the tracks of all three splits
  pooled (tracks never straddle folds): the last layer, and each layer
  (linear) where export wrote them, on the same folds."""
  value_names = info["vocab"].get("values", [])
  group = folds if isinstance(folds, str) else None
  data = probes.pool(load_splits(directory, rep, task, target, level,
                                 value_names, group=group).values())
  if group:
    test_folds = _label_folds(data.group, group)
  else:
    test_folds = probes.track_folds(data, folds, task == "multiclass", seed)
  widths = _layer_widths(directory, rep, info)
  if protocol == "marble":
    if widths:
      data = probes.pool(load_splits(directory, rep, task, target, level,
                                     value_names, layers=True,
                                     group=group).values())
    return [{"probe": "marble_mlp", "layer": "all" if widths else "last",
             **probes.fit_kfold(task, "marble_mlp", data, test_folds, seed,
                                fit=marble_probe.fit)}]
  rows = [{"probe": kind, "layer": "last",
           **probes.fit_kfold(task, kind, data, test_folds, seed)}
          for kind in kinds]
  if widths:
    stack = probes.pool(load_splits(directory, rep, task, target, level,
                                    value_names, layers=True,
                                    group=group).values())
    for i, w in enumerate(widths):
      layer = dataclasses.replace(stack, x=stack.x[:, i, :w])
      rows.append({"probe": "linear", "layer": str(i),
                   **probes.fit_kfold(task, "linear", layer, test_folds,
                                      seed)})
  return rows


def _label_folds(fold_y, name):
  """The test rows of each of the collection's own folds, `fold_y` each
  row's fold (the label `name`, as DCASE's four official folds)."""
  folds = [np.flatnonzero(fold_y == f) for f in np.unique(fold_y)]
  if len(folds) < 3:
    raise ValueError(f"--folds={name}: {len(folds)} folds; each fold is "
                     "test once and the next one valid, so at least 3")
  return folds


def _layer_widths(directory, rep, info):
  """The per-layer widths where export wrote `rep`'s layers, else None."""
  widths = info.get("layer_widths", {}).get(rep)
  if widths is not None and os.path.exists(os.path.join(
      directory, "train", rep, "segment", "layers.npy")):
    return widths
  return None


def run(directory, *, task="multiclass", target=None, level="chunk",
        kinds=("linear", "mlp"), k=10, out="", make_plots=False, seed=0,
        folds=0, protocol="default"):
  """Probes every representation in `directory`; returns the report.
  `folds` > 1: stratified group k-fold over the pooled tracks instead of
  the train/valid/test splits, reported as mean ± std; the name of a
  track label (`fold`): the collection's own folds, which that label
  gives. `protocol` "marble": MARBLE's MLP probe (`marble_probe`) in
  place of `kinds`."""
  if protocol not in PROTOCOLS:
    raise ValueError(f"--protocol={protocol}: use {' or '.join(PROTOCOLS)}")
  info = _info(directory)
  missing = set(SPLITS) - set(info["splits"])
  if missing:
    raise ValueError(f"{directory}: probes need train, valid and test; "
                     f"missing {sorted(missing)} (export with --split "
                     "train,valid,test)")
  unknown = set(kinds) - {"linear", "mlp"}
  if unknown:
    raise ValueError(f"--probes: unknown {sorted(unknown)}; use linear, mlp")
  target = target or {"multilabel": "tags", "regression": (
      info["vocab"].get("values") or [None])[0]}.get(task, "label")
  reps = [r for r in ORDER if r in info["representations"]]
  _check_disjoint(directory, reps[0])
  if folds and task not in ("multiclass", "multilabel", "regression"):
    raise ValueError(f"--folds: for multiclass, multilabel or regression "
                     f"probes, not {task}")
  rows = []
  with warnings.catch_warnings():
    # Convergence chatter from the grid's weakest settings.
    warnings.simplefilter("ignore")
    for rep in reps:
      logging.info("probing %s", rep)
      found = (_kfold_rows(directory, rep, info, task, target, level, kinds,
                           folds, seed, protocol) if folds else
               _rows_for(directory, rep, info, task, target, level, kinds, k,
                         seed, protocol))
      for row in found:
        rows.append({"representation": rep, **row})
  report = {"task": task, "target": target, "level": level,
            "folds": folds, "protocol": protocol,
            "embeddings": os.path.abspath(directory),
            "workdir": info["workdir"], "step": info["step"], "rows": rows}
  out = out or directory
  os.makedirs(out, exist_ok=True)
  if make_plots:
    report["plots"] = plot(directory, reps, os.path.join(out, "plots"),
                           seed=seed)
  _write_report(report, out)
  return report
