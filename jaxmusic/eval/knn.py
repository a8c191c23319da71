"""A cheap kNN monitor: embed two labelled splits, classify one from the
other with scikit-learn, on CPU. Used during training; the full probes
(linear, MLP, per-layer) are a separate tool."""

import numpy as np
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from jaxmusic.eval import tracks as per_track


def track_embeddings(embed_fn, dataset):
  """Mean of chunk embeddings per track: (tracks x D, labels)."""
  parts = [(np.asarray(embed_fn(b["inputs"])), b["track"], b["label"])
           for b in dataset]
  z_N, track_N, label_N = (np.concatenate(p) for p in zip(*parts))
  _, means = per_track.average_by_track(z_N, track_N)
  return means, per_track.first_per_track(label_N, track_N)


def knn_accuracy(train_x, train_y, test_x, test_y, k: int = 5) -> float:
  scaler = StandardScaler().fit(train_x)
  clf = KNeighborsClassifier(n_neighbors=min(k, len(train_x)))
  clf.fit(scaler.transform(train_x), train_y)
  return float(clf.score(scaler.transform(test_x), test_y))
