"""Probes on frozen embeddings, MARBLE-style: fit on train, pick
hyperparameters on valid, report on test; chunk predictions are averaged
per track before scoring.

scikit-learn does the fitting and the classification metrics; retrieval
metrics and the learned weighted sum of layers (softmax weights trained
jointly with a linear head, as MARBLE does) are here.
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.multiclass import OneVsRestClassifier
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from jaxmusic import monitor
from jaxmusic.eval import task_metrics
from jaxmusic.data import tracks as per_track

TASKS = ("multiclass", "multilabel", "regression", "retrieval",
         "crossmodal")
# The metric hyperparameters are selected by, on valid.
SELECT_BY = {"multiclass": "accuracy", "multilabel": "roc_auc",
             "regression": "r2"}

# Small grids, as MARBLE and HEAR probes use.
GRIDS = {
    "linear": [{"C": c} for c in (0.01, 0.1, 1.0, 10.0)],
    "mlp": [{"alpha": a} for a in (1e-4, 1e-2)],
    "weighted_layers": [{"weight_decay": w} for w in (1e-4, 1e-2)],
}


@dataclasses.dataclass
class Split:
  """Rows (chunks or tracks) of one split with their targets."""
  x: np.ndarray      # N x D, or N x L x D for layers
  y: np.ndarray      # N (class id or value) or N x C (multi-hot)
  track: np.ndarray  # N, track index within the split
  # Class names by id, where the target has a vocabulary: a key vocabulary
  # (`C major`, ...) adds the MIREX-weighted key score to the metrics.
  names: tuple[str, ...] | None = None
  # N: another label of each row (a collection's own fold), where asked.
  group: np.ndarray | None = None

  def take(self, idx) -> "Split":
    return dataclasses.replace(
        self, x=self.x[idx], y=self.y[idx], track=self.track[idx],
        group=None if self.group is None else self.group[idx])


# ----- Metrics ---------------------------------------------------------------

def multiclass_metrics(y_true, proba_NxC, classes,
                       names=None) -> dict[str, float]:
  """Accuracy and macro F1; with `names` (class names by id) that are all
  keys, the MIREX-weighted key score too."""
  pred = np.asarray(classes)[np.argmax(proba_NxC, axis=1)]
  out = {"accuracy": float(skm.accuracy_score(y_true, pred)),
         "macro_f1": float(skm.f1_score(y_true, pred, average="macro"))}
  if names is not None and task_metrics.is_key_vocabulary(names):
    named = np.asarray(names)
    out["mirex_key"] = task_metrics.key_metrics(
        named[np.asarray(y_true)], named[pred])["mirex_key"]
  return out


def multilabel_metrics(y_true_NxC, score_NxC) -> dict[str, float]:
  """Macro ROC-AUC and PR-AUC over the tags with both classes present (a
  tag never or always on in test has no AUC)."""
  keep = (y_true_NxC.min(0) == 0) & (y_true_NxC.max(0) == 1)
  if not keep.any():
    raise ValueError("no tag has both positives and negatives in test")
  y, s = y_true_NxC[:, keep], score_NxC[:, keep]
  return {"roc_auc": float(skm.roc_auc_score(y, s, average="macro")),
          "pr_auc": float(skm.average_precision_score(y, s,
                                                      average="macro"))}


def regression_metrics(y_true, pred) -> dict[str, float]:
  return {"r2": float(skm.r2_score(y_true, pred))}


def retrieval_metrics(x_NxD, labels_N, k: int = 10,
                      queries=None) -> dict[str, float]:
  """Each query (default: every row) ranks all other rows by cosine
  similarity; relevant rows share its label. Mean reciprocal rank of the
  first relevant row, nDCG@k with binary gains, and precision@k, over the
  queries that have a relevant row."""
  queries = np.arange(len(x_NxD)) if queries is None else np.asarray(queries)
  z = x_NxD / np.maximum(np.linalg.norm(x_NxD, axis=1, keepdims=True), 1e-12)
  sim = z[queries] @ z.T
  sim[np.arange(len(queries)), queries] = -np.inf
  order = np.argsort(-sim, axis=1, kind="stable")[:, :-1]  # self is last
  rel = (labels_N[order] == labels_N[queries][:, None]).astype(np.float64)
  rel = rel[rel.sum(1) > 0]
  if not len(rel):
    raise ValueError("retrieval: no query shares its label with another item")
  first = np.argmax(rel, axis=1)
  kk = min(k, rel.shape[1])
  discount = 1.0 / np.log2(np.arange(2, kk + 2))
  dcg = (rel[:, :kk] * discount).sum(1)
  ideal = np.array([discount[:min(int(n), kk)].sum() for n in rel.sum(1)])
  return {"mrr": float(np.mean(1.0 / (first + 1))),
          f"ndcg@{k}": float(np.mean(dcg / ideal)),
          f"precision@{k}": float(np.mean(rel[:, :kk].sum(1) / kk))}


def crossmodal_metrics(query_NxD, gallery_NxD, k: int = 10,
                       recall_at=(1, 5, 10), groups_N=None,
                       group_gain: float = 0.5) -> dict[str, float]:
  """Query i's relevant item is gallery i; every gallery item is ranked by
  cosine similarity. A tie with a more relevant item counts against it (a
  collapsed encoder scores as chance, not as perfect). Mean reciprocal
  rank of item i, recall@k, the median rank (1 is best), and DCG with
  graded relevance: 1 for item i, `group_gain` for another item of query
  i's group (`groups_N`, e.g. a tune's rhythm type; negative: none), 0
  otherwise; `dcg` over the whole ranking, `dcg@k`, and `ndcg@k` over the
  best DCG@k the gallery allows. Without groups nDCG@k is 1 / log2(1 +
  rank) of item i within the cut-off."""
  norm = lambda x: x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True),
                                  1e-12)
  sim_NxN = norm(query_NxD.astype(np.float64)) @ norm(
      gallery_NxD.astype(np.float64)).T
  n = len(sim_NxN)
  true_N = np.diag(sim_NxN)
  rank_N = np.sum(sim_NxN >= true_N[:, None], axis=1)
  out = {"mrr": float(np.mean(1.0 / rank_N))}
  out.update({f"r@{r}": float(np.mean(rank_N <= r)) for r in recall_at})
  groups = (np.asarray(groups_N) if groups_N is not None
            else np.full(n, -1))
  rel_NxN = np.where((groups[:, None] == groups[None]) & (groups[:, None]
                                                          >= 0),
                     group_gain, 0.0)
  np.fill_diagonal(rel_NxN, 1.0)
  # Most similar first; among equal similarities the least relevant first.
  order = np.lexsort((rel_NxN, -sim_NxN), axis=1)
  gains_NxN = np.take_along_axis(rel_NxN, order, axis=1)
  discount = 1.0 / np.log2(2.0 + np.arange(n))
  dcg_N = gains_NxN @ discount
  dcg_k = gains_NxN[:, :k] @ discount[:k]
  ideal_k = -np.sort(-rel_NxN, axis=1)[:, :k] @ discount[:k]
  out["dcg"] = float(np.mean(dcg_N))
  out[f"dcg@{k}"] = float(np.mean(dcg_k))
  out[f"ndcg@{k}"] = float(np.mean(dcg_k / ideal_k))
  out["median_rank"] = float(np.median(rank_N))
  return out


def score(task, y_tracks, pred_tracks, classes=None,
          names=None) -> dict[str, float]:
  if task == "multiclass":
    return multiclass_metrics(y_tracks, pred_tracks, classes, names)
  if task == "multilabel":
    return multilabel_metrics(y_tracks, pred_tracks)
  return regression_metrics(y_tracks, pred_tracks)


def knn_accuracy(train: Split, test: Split, k: int = 5) -> float:
  """kNN on track means (standardised on train), scored per track."""
  xs = [per_track.average_by_track(s.x, s.track)[1] for s in (train, test)]
  ys = [per_track.first_per_track(s.y, s.track) for s in (train, test)]
  return monitor.knn_accuracy(xs[0], ys[0], xs[1], ys[1], k)


# ----- Probes ----------------------------------------------------------------

def _sklearn_probe(task, kind, hp, seed):
  if task == "regression":
    model = (Ridge(alpha=1.0 / hp["C"]) if kind == "linear" else
             MLPRegressor((512,), alpha=hp["alpha"], max_iter=300,
                          early_stopping=True, random_state=seed))
  elif kind == "linear":
    model = LogisticRegression(C=hp["C"], max_iter=2000)
    if task == "multilabel":
      model = OneVsRestClassifier(model)
  else:
    model = MLPClassifier((512,), alpha=hp["alpha"], max_iter=300,
                          early_stopping=task == "multiclass",
                          random_state=seed)
  return make_pipeline(StandardScaler(), model)


def _predict(task, model, x):
  if task == "regression":
    return model.predict(x)
  return model.predict_proba(x)


def fit_sklearn(task, kind, train: Split, valid: Split, test: Split,
                seed: int = 0) -> dict[str, Any]:
  """Grid over `GRIDS[kind]`, selected on valid's track-averaged metric;
  returns the test metrics of the selected model and its hyperparameters."""
  best = None
  for hp in GRIDS[kind]:
    model = _sklearn_probe(task, kind, hp, seed).fit(train.x, train.y)
    classes = getattr(model, "classes_", None)
    val = evaluate(task, valid, _predict(task, model, valid.x), classes)
    if best is None or val[SELECT_BY[task]] > best[0][SELECT_BY[task]]:
      best = (val, hp, model, classes)
  val, hp, model, classes = best
  return {"metrics": evaluate(task, test, _predict(task, model, test.x),
                               classes),
          "valid": val, "hyperparameters": hp}


# ----- k-fold cross-validation over tracks ---------------------------------

def pool(splits) -> Split:
  """The rows of several splits as one, with track indices made unique
  across them."""
  splits = list(splits)
  offset, xs, ys, ts = 0, [], [], []
  for s in splits:
    xs.append(s.x)
    ys.append(s.y)
    ts.append(s.track + offset)
    offset += int(s.track.max()) + 1 if len(s.track) else 0
  groups = [s.group for s in splits]
  return Split(np.concatenate(xs), np.concatenate(ys), np.concatenate(ts),
               splits[0].names, None if any(g is None for g in groups)
               else np.concatenate(groups))


def track_folds(data: Split, k: int, stratify: bool, seed: int = 0):
  """`k` folds of `data`'s rows, each track's rows in one fold: scikit-
  learn's StratifiedGroupKFold on the rows' classes (GroupKFold when not
  `stratify`); returns the test row indices of each fold."""
  from sklearn.model_selection import GroupKFold, StratifiedGroupKFold  # pylint: disable=g-import-not-at-top
  n_tracks = len(np.unique(data.track))
  # Each fold is test once and the next one valid: 3 is the fewest that
  # leave a train fold.
  if not 3 <= k <= n_tracks:
    raise ValueError(f"--folds={k}: use 3..{n_tracks} (the tracks)")
  if stratify:
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True,
                                    random_state=seed)
    folds = splitter.split(data.x, data.y, groups=data.track)
  else:
    folds = GroupKFold(n_splits=k).split(data.x, groups=data.track)
  return [test for _, test in folds]


def fit_kfold(task, kind, data: Split, folds, seed: int = 0,
              knn_k: int = 5, fit=None) -> dict[str, Any]:
  """Each fold in turn is test, the next fold valid (the hyperparameters
  are chosen on it) and the rest train; returns each metric's mean and
  standard deviation over the folds (`NAME`, `NAME_std`), with the kNN
  accuracy (multiclass) and the per-fold values. `fit(task, train,
  valid, test, seed)` replaces the `kind` probe of `fit_sklearn`."""
  fit = fit or (lambda task, *splits: fit_sklearn(task, kind, *splits))
  take = data.take
  per_fold = []
  for i, test_idx in enumerate(folds):
    valid_idx = folds[(i + 1) % len(folds)]
    train_idx = np.concatenate([f for j, f in enumerate(folds)
                                if j not in (i, (i + 1) % len(folds))])
    train, valid, test = take(train_idx), take(valid_idx), take(test_idx)
    m = dict(fit(task, train, valid, test, seed)["metrics"])
    if task == "multiclass":
      m["knn_accuracy"] = knn_accuracy(
          take(np.concatenate([train_idx, valid_idx])), test, knn_k)
    per_fold.append(m)
  out = {}
  for name in per_fold[0]:
    values = np.array([m[name] for m in per_fold], np.float64)
    out[name] = float(values.mean())
    out[name + "_std"] = float(values.std())
  return {"metrics": out, "folds": per_fold}


def evaluate(task, split: Split, pred, classes=None):
  _, pred_t = per_track.average_by_track(np.asarray(pred, np.float64),
                                         split.track)
  return score(task, per_track.first_per_track(split.y, split.track), pred_t,
               classes, split.names)


def fit_weighted_layers(task, train: Split, valid: Split, test: Split,
                        steps: int = 400, seed: int = 0) -> dict[str, Any]:
  """A softmax-weighted sum of standardised layers into a linear head,
  trained jointly with Adam (full batch), as MARBLE's layer-weighting
  probe; weight decay selected on valid. Returns test metrics and the
  learned layer weights."""
  mean = train.x.mean(0)
  std = np.where(train.x.std(0) > 0, train.x.std(0), 1.0)
  norm = lambda x: jnp.asarray((x - mean) / std, jnp.float32)
  if task == "multiclass":
    classes = np.unique(train.y)
    target = np.searchsorted(classes, train.y)
    n_out = len(classes)
    loss_fn = lambda out, y: optax.softmax_cross_entropy_with_integer_labels(
        out, y).mean()
    output = jax.nn.softmax
  elif task == "multilabel":
    classes, target, n_out = None, train.y, train.y.shape[1]
    loss_fn = lambda out, y: optax.sigmoid_binary_cross_entropy(out, y).mean()
    output = jax.nn.sigmoid
  else:
    classes, n_out = None, 1
    y_mean, y_std = train.y.mean(), train.y.std() + 1e-12
    target = (train.y - y_mean) / y_std
    loss_fn = lambda out, y: jnp.mean((out[:, 0] - y) ** 2)
    output = lambda out: out[:, 0] * y_std + y_mean
  x_tr = norm(train.x)
  n_layers, dim = x_tr.shape[1:]

  def forward(p, x):
    h = jnp.einsum("l,nld->nd", jax.nn.softmax(p["w"]), x)
    return h @ p["W"] + p["b"]

  @jax.jit
  def train_probe(weight_decay):
    p = {"w": jnp.zeros(n_layers),
         "W": jax.random.normal(jax.random.key(seed), (dim, n_out)) * 0.01,
         "b": jnp.zeros(n_out)}
    tx = optax.adam(1e-2)
    loss = lambda p: loss_fn(forward(p, x_tr), target) + weight_decay * jnp.sum(
        p["W"] ** 2)

    def step(carry, _):
      p, opt = carry
      updates, opt = tx.update(jax.grad(loss)(p), opt)
      return (optax.apply_updates(p, updates), opt), None

    (p, _), _ = jax.lax.scan(step, (p, tx.init(p)), None, length=steps)
    return p

  best = None
  for hp in GRIDS["weighted_layers"]:
    p = train_probe(hp["weight_decay"])
    pred = lambda s, p=p: np.asarray(output(forward(p, norm(s.x))))
    val = evaluate(task, valid, pred(valid), classes)
    if best is None or val[SELECT_BY[task]] > best[0][SELECT_BY[task]]:
      best = (val, hp, pred, p)
  val, hp, pred, p = best
  return {"metrics": evaluate(task, test, pred(test), classes),
          "valid": val, "hyperparameters": hp,
          "layer_weights": np.asarray(jax.nn.softmax(p["w"])).round(4)
                           .tolist()}
