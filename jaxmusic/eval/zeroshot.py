"""Zero-shot tag retrieval (Choi, Lee, Park & Nam 2019) on an audio+tags
two-tower run (`two_tower.py:towers=audio+tags`; data/tags.py).

Each test track is its audio tower's output (the shared space) averaged
over windows of the tower's crop, one every crop (frozen.Windows); each
tag is its name through the tags tower. A tag's query ranks the test
tracks by cosine similarity, and a track is relevant when it has the tag.
Per tag: P@10, the reciprocal rank of the first relevant track (MRR over
tags), average precision and ROC-AUC; each averaged over the tags held
out of training (`zero-shot`, the words the towers never saw) and over
the seen ones. A tag no test track has is left out (it has nothing to
retrieve).

Rows:
  encoder           the trained towers
  random_init       both towers at random init
  supervised        a logistic regression per seen tag on the trained
                    audio tower's train-split track embeddings: the
                    classifier a tagger would train, which has no output
                    for an unseen tag
  supervised_mfcc   the same on MFCC mean and std (baselines.py): a
                    classifier that owes nothing to the towers
  chance            the same scores for a random ranking, averaged over
                    `CHANCE_DRAWS` draws
"""

import logging
import os

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from jaxmusic import config as config_lib
from jaxmusic import models
from jaxmusic.data import corpus
from jaxmusic.data import features as feats
from jaxmusic.data import pipeline
from jaxmusic.data import tags as tags_lib
from jaxmusic.eval import baselines
from jaxmusic.eval import frozen
from jaxmusic.eval import hashing
from jaxmusic.eval import report as report_lib

K = 10
CHANCE_DRAWS = 200
METRICS = ("p@10", "mrr", "ap", "auc")


def tag_scores(scores_N: np.ndarray, relevant_N: np.ndarray) -> dict:
  """One query's P@K, reciprocal rank of the first relevant item, average
  precision and ROC-AUC (NaN where every item is relevant); higher
  scores rank first."""
  order = np.argsort(-scores_N, kind="stable")
  hits = relevant_N[order]
  return {"p@10": float(np.mean(hits[:K])),
          "mrr": float(1.0 / (1 + np.argmax(hits))),
          "ap": float(average_precision_score(relevant_N, scores_N)),
          "auc": float(roc_auc_score(relevant_N, scores_N))
                 if not hits.all() else float("nan")}


def summarise(scores_NxV: np.ndarray, relevant_NxV: np.ndarray,
              groups: dict[str, list[int]]) -> dict:
  """Per tag (`V` columns) `tag_scores`, and their means over each group
  of columns (tags no item has are left out)."""
  per_tag = {v: tag_scores(scores_NxV[:, v], relevant_NxV[:, v])
             for v in range(scores_NxV.shape[1]) if relevant_NxV[:, v].any()
             and not np.isnan(scores_NxV[:, v]).any()}
  out = {"per_tag": per_tag}
  for group, ids in groups.items():
    rows = [per_tag[v] for v in ids if v in per_tag]
    out[group] = ({m: float(np.nanmean([r[m] for r in rows]))
                   for m in METRICS} | {"tags": len(rows)}) if rows else None
  return out


def waveforms(data, split: str) -> list[np.ndarray]:
  """Each track of `split`: its whole waveform, read once for every
  representation."""
  return [data.span(split, t, feats.WAVEFORM, 0,
                    t["num_segments"] * data.segment_samples)
          for t in data.tracks(split)]


def track_embeddings(windows: frozen.Windows, wavs) -> np.ndarray:
  """Each waveform: the mean of its windows' embeddings."""
  return np.stack([windows(wav[None], windows.encoder.crop_samples)[0][0]
                   .mean(axis=0) for wav in wavs])


def mfcc_stats(feature_config: dict, wavs, crop: int) -> np.ndarray:
  """Each waveform: MFCC mean and std over its crops, averaged."""
  fn = baselines.stats_fns(feature_config)["mfcc"]
  return np.stack([np.asarray(fn(wav[:len(wav) // crop * crop].reshape(
      -1, crop))).mean(axis=0) for wav in wavs])


def relevance(data, split: str) -> np.ndarray:
  """`N x V` booleans: track n has tag v."""
  vocab = data.manifest["vocab"]["tags"]
  rel = np.zeros((len(data.tracks(split)), len(vocab)), bool)
  for n, track in enumerate(data.tracks(split)):
    rel[n, track["tags"]] = True
  return rel


def supervised(train_X: np.ndarray, train_rel: np.ndarray,
               test_X: np.ndarray, seen: list[int], seed: int = 0):
  """`N x V` test scores of one logistic regression per seen tag (NaN for
  the held-out tags, and for a tag the train split has on every track or
  none)."""
  scores = np.full((len(test_X), train_rel.shape[1]), np.nan)
  for v in seen:
    if len(set(train_rel[:, v])) < 2:
      continue
    clf = make_pipeline(StandardScaler(), LogisticRegression(
        max_iter=2000, random_state=seed))
    clf.fit(train_X, train_rel[:, v])
    scores[:, v] = clf.decision_function(test_X)
  return scores


def chance(relevant_NxV: np.ndarray, groups, seed: int = 0) -> dict:
  """`summarise` of random rankings, averaged over CHANCE_DRAWS."""
  rng = np.random.default_rng(seed)
  draws = [summarise(rng.random(relevant_NxV.shape), relevant_NxV, groups)
           for _ in range(CHANCE_DRAWS)]
  return {g: {m: float(np.mean([d[g][m] for d in draws]))
              for m in draws[0][g]} if draws[0][g] else None
          for g in groups}


def run(workdir: str, data_dir: str | None = None, split: str = "test",
        out: str = "", seed: int = 0) -> dict:
  """Every row of the module docstring; writes `zeroshot.json` to `out`
  (default: the run's workdir)."""
  run_config = config_lib.load_run_config(workdir)
  if set(models.tower_names(run_config.model)) != {"audio", "tags"}:
    raise ValueError(f"{workdir}: an audio+tags two-tower run is needed; its "
                     f"towers are {models.tower_names(run_config.model)}")
  data = pipeline.PreparedData(data_dir or corpus.resolve_data_dir(
      run_config))
  vocab = data.manifest["vocab"]["tags"]
  seen, unseen = tags_lib.split(
      vocab, tuple(run_config.data.get("zeroshot_holdout", ())),
      run_config.data.get("zeroshot_every", 4))
  if not unseen:
    raise ValueError(f"{workdir}: the run held no tag out of training "
                     "(data.zeroshot_holdout, data.zeroshot_every): nothing "
                     "is zero-shot")
  groups = {"zero_shot": unseen, "seen": seen}
  rel = relevance(data, split)
  audio = frozen.load(workdir, tower="audio")
  text = frozen.load(workdir, tower="tags")
  ids_VxL = np.stack([feats.encode_text(tags_lib.text(v),
                                        run_config.data.text_bytes)
                      for v in vocab])
  towers = {"encoder": (audio, text),
            "random_init": (
                frozen.random_init(audio.config, np.zeros(
                    (1, audio.crop_samples), np.float32), seed),
                frozen.random_init(text.config, ids_VxL[:1], seed))}
  report = {"workdir": os.path.abspath(workdir), "step": audio.step,
            "data": os.path.abspath(data.directory), "split": split,
            "tracks": len(rel), "held_out": [vocab[v] for v in unseen],
            "seen": [vocab[v] for v in seen], "rows": {}}
  wavs = {s: waveforms(data, s) for s in dict.fromkeys((split, "train"))}
  for name, (a, t) in towers.items():
    logging.info("zeroshot: %s", name)
    windows = frozen.Windows(a, pooling="encoder")
    z_NxD = track_embeddings(windows, wavs[split])
    q_VxD = frozen.embed_batched(t.embed_fn("encoder"), ids_VxL)
    report["rows"][name] = summarise(-hashing.cosine(z_NxD, q_VxD), rel,
                                     groups)
    if name == "encoder":
      trained = z_NxD, track_embeddings(windows, wavs["train"])
  train_rel = relevance(data, "train")
  report["rows"]["supervised"] = summarise(
      supervised(trained[1], train_rel, trained[0], seen, seed), rel, groups)
  fc = data.manifest["feature_config"]
  report["rows"]["supervised_mfcc"] = summarise(
      supervised(mfcc_stats(fc, wavs["train"], audio.crop_samples),
                 train_rel, mfcc_stats(fc, wavs[split], audio.crop_samples),
                 seen, seed),
      rel, groups)
  report["rows"]["chance"] = chance(rel, groups, seed)
  report_lib.save_json(report, out or workdir, "zeroshot.json")
  return report


def markdown(report: dict) -> str:
  """One table: a row per representation, each metric on the held-out
  (zero-shot) tags and on the seen ones."""
  head = [f"{m} {g}" for g in ("zero-shot", "seen") for m in METRICS]
  lines = ["| representation | " + " | ".join(head) + " |",
           "|" + "---|" * (len(head) + 1)]
  for name, row in report["rows"].items():
    cells = [f"{row[g][m]:.3f}" if row.get(g) else "–"
             for g in ("zero_shot", "seen") for m in METRICS]
    lines.append(f"| {name} | " + " | ".join(cells) + " |")
  return "\n".join(lines)
