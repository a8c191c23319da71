"""The kNN monitor: during training, embed two labelled splits with the
state as it is sharded, classify one from the other with scikit-learn's
kNN. A cheap signal of what the encoder keeps; the full probes (linear,
MLP, per layer) are export's and probe's.
"""

import numpy as np
import jax
from jax.sharding import NamedSharding, PartitionSpec as P
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from jaxmusic import parallel
from jaxmusic.data import features as feats
from jaxmusic.data import pipeline
from jaxmusic.data import tracks as per_track


def make_embedder(objective, mesh, shardings):
  """`(state, x_Bx) -> numpy BxD`: `objective.embed` jitted over the
  state's own shardings (an FSDP state is never gathered), the batch split
  over the mesh's batch axes and only the embeddings replicated back. The
  same numpy batch on every host; its rows padded to a whole number of
  devices."""
  variables = {"params": shardings["params"],
               "model_state": shardings["model_state"]}
  batch = parallel.batch_sharding(mesh)
  embed = jax.jit(objective.embed, in_shardings=(variables, batch),
                  out_shardings=NamedSharding(mesh, P()))
  devices = mesh.size

  def run(state, x_Bx):
    n = x_Bx.shape[0]
    rows = np.concatenate([x_Bx, np.zeros((-n % devices, *x_Bx.shape[1:]),
                                          x_Bx.dtype)])
    x = jax.make_array_from_callback(rows.shape, batch,
                                     lambda idx: rows[idx])
    z = embed({"params": state["params"],
               "model_state": state["model_state"]}, x)
    return np.asarray(z)[:n]

  return run


def track_embeddings(embed_fn, dataset):
  """Mean of chunk embeddings per track: (tracks x D, labels)."""
  parts = [(embed_fn(b["inputs"]), b["track"], b["label"]) for b in dataset]
  z_N, track_N, label_N = (np.concatenate(p) for p in zip(*parts))
  _, means = per_track.average_by_track(z_N, track_N)
  return means, per_track.first_per_track(label_N, track_N)


def knn_accuracy(train_x, train_y, test_x, test_y, k: int = 5) -> float:
  scaler = StandardScaler().fit(train_x)
  clf = KNeighborsClassifier(n_neighbors=min(k, len(train_x)))
  clf.fit(scaler.transform(train_x), train_y)
  return float(clf.score(scaler.transform(test_x), test_y))


def make_monitor(config, data_dir, objective, mesh, shardings):
  """`state -> kNN accuracy` on the eval split's labels from train-split
  embeddings (track means); None when the data has no labels or the
  monitor is off."""
  data = pipeline.PreparedData(data_dir)
  if not data.manifest["vocab"]["label"] or not config.monitor.every:
    return None
  embed = make_embedder(objective, mesh, shardings)

  def run(state) -> float:
    sets = [track_embeddings(lambda x: embed(state, np.asarray(x)),
                             pipeline.make_dataset(
                                 data, split, "sequential",
                                 batch_size=config.monitor.batch_size,
                                 feature=config.data.features[0],
                                 crop_samples=config.data.crop_samples,
                                 sequences=feats.Sequences.from_config(
                                     config.data)))
            for split in (config.data.split, config.data.eval_split)]
    return knn_accuracy(*sets[0], *sets[1], k=config.monitor.k)

  return run
