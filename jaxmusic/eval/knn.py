"""A cheap kNN monitor: embed two labelled splits, classify one from the
other with scikit-learn, on CPU. Used during training; the full probes
(linear, MLP, per-layer) are a separate tool."""

import numpy as np
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler


def track_embeddings(embed_fn, dataset):
  """Mean of chunk embeddings per track: (tracks x D, labels)."""
  sums, counts, labels = {}, {}, {}
  for batch in dataset:
    z = np.asarray(embed_fn(batch["inputs"]))
    for zi, t, y in zip(z, batch["track"], batch["label"]):
      sums[t] = sums.get(t, 0) + zi
      counts[t] = counts.get(t, 0) + 1
      labels[t] = y
  keys = sorted(sums)
  return (np.stack([sums[k] / counts[k] for k in keys]),
          np.array([labels[k] for k in keys]))


def knn_accuracy(train_x, train_y, test_x, test_y, k: int = 5) -> float:
  scaler = StandardScaler().fit(train_x)
  clf = KNeighborsClassifier(n_neighbors=min(k, len(train_x)))
  clf.fit(scaler.transform(train_x), train_y)
  return float(clf.score(scaler.transform(test_x), test_y))
