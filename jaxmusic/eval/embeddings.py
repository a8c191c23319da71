"""A run's encoder and the baselines as numpy embeddings, per crop and per
track (`python -m jaxmusic.export` is its command line; its docstring
gives the layout written)."""


import dataclasses
import json
import logging
import os

import jax
import numpy as np
from tqdm import tqdm

from jaxmusic import models
from jaxmusic import storage
from jaxmusic.data import corpus
from jaxmusic.data import decode
from jaxmusic.data import features as feats
from jaxmusic.data import pipeline
from jaxmusic.data import records
from jaxmusic.data import samplers
from jaxmusic.data import sources
from jaxmusic.data import tokens as event_tokens
from jaxmusic.eval import baselines
from jaxmusic.eval import frozen
from jaxmusic.data import tracks as per_track

# input_pca: PCA of the encoder's own input frames (its frontend's log-mel,
# MFCC, chroma or roll, flattened), as wide as its bottleneck; asked for by
# name, as the composer study's PCA row.
REPRESENTATIONS = (("encoder", "random_init") + baselines.NAMES
                   + baselines.ROLL_NAMES + ("input_pca",))
DEFAULT_BASELINES = tuple(r for r in REPRESENTATIONS[1:] if r != "input_pca")
ROLL = feats.PIANOROLL
META = ("track", "segment", "chunk", "offset")



def _padded(fn, batch_size):
  """Calls `fn` on a batch padded to `batch_size` rows (one compiled shape)
  and returns its first `n` rows as numpy."""
  def call(x):
    n = len(x)
    if n < batch_size:
      x = np.concatenate([x, np.zeros((batch_size - n, *x.shape[1:]),
                                      x.dtype)])
    out = jax.device_get(fn(x))
    return jax.tree.map(lambda a: np.asarray(a)[:n], out)
  return call


def _stack_layers(layers):
  """[N x C_l] -> N x L x max(C_l), zero-padded, and the widths."""
  dims = [l.shape[-1] for l in layers]
  out = np.zeros((len(layers[0]), len(layers), max(dims)), np.float32)
  for i, l in enumerate(layers):
    out[:, i, :l.shape[-1]] = l
  return out, dims


class _Rows:
  """One representation's segment-level arrays, written into .npy memmaps
  as batches arrive (a collection's layers need not fit in memory)."""

  def __init__(self, directory, n_rows):
    self.directory, self.n, self.at = directory, n_rows, 0
    self.arrays = {}
    os.makedirs(directory, exist_ok=True)

  def put(self, **arrays):
    for name, a in arrays.items():
      if name not in self.arrays:
        self.arrays[name] = np.lib.format.open_memmap(
            os.path.join(self.directory, f"{name}.npy"), mode="w+",
            dtype=np.float32, shape=(self.n, *a.shape[1:]))
      self.arrays[name][self.at:self.at + len(a)] = a
    self.at += len(next(iter(arrays.values())))

  def flush(self):
    for a in self.arrays.values():
      a.flush()


def _write_level(directory, arrays: dict[str, np.ndarray]):
  os.makedirs(directory, exist_ok=True)
  for name, a in arrays.items():
    np.save(os.path.join(directory, f"{name}.npy"), a)


def _track_means(track_N, arrays):
  """Each track's mean row, for tracks in sorted order."""
  tracks, counts = np.unique(track_N, return_counts=True)
  return tracks, counts, {
      name: per_track.average_by_track(a, track_N)[1].astype(np.float32)
      for name, a in arrays.items()}


def _track_meta(tracks, value_names, n_tags, label_names=()):
  """Per-track ids, label, artist, multi-hot tags, numeric values and the
  extra labels (`labels`: one column a name, -1 unknown)."""
  tags = np.zeros((len(tracks), n_tags), np.float32)
  for i, t in enumerate(tracks):
    tags[i, t["tags"]] = 1.0
  values = np.array([[t.get("values", {}).get(v, np.nan)
                      for v in value_names] for t in tracks],
                    np.float32).reshape(len(tracks), len(value_names))
  return {"ids": np.array([t["id"] for t in tracks]),
          "label": np.array([t["label"] for t in tracks], np.int32),
          "artist": np.array([t["artist"] for t in tracks], np.int32),
          "tags": tags, "values": values,
          "labels": np.array([[t.get("labels", {}).get(n, -1)
                               for n in label_names] for t in tracks],
                             np.int32).reshape(len(tracks),
                                               len(label_names))}


def export_split(out, split, batches, n_rows, tracks, reps, value_names,
                 n_tags, progress=True, label_names=()):
  """Runs every representation over a split's crops and writes segment-
  and track-level files; returns {rep: per-layer widths or None}."""
  rows = {rep: _Rows(os.path.join(out, split, rep, "segment"), n_rows)
          for rep in reps}
  meta = {k: [] for k in META}
  widths = {}
  bar = tqdm(total=n_rows, desc=f"export {split}", unit="crop",
             disable=not progress)
  for batch in batches:
    for rep, fn in reps.items():
      emb, layers = fn(batch)
      arrays = {"embeddings": emb}
      if layers is not None:
        arrays["layers"], widths[rep] = _stack_layers(layers)
      rows[rep].put(**arrays)
    for k in META:
      meta[k].append(np.asarray(batch[k]))
    bar.update(len(batch["track"]))
  bar.close()
  meta = {k: np.concatenate(v) for k, v in meta.items()}
  track_meta = _track_meta(tracks, value_names, n_tags, label_names)
  seg_meta = {**meta, **{k: v[meta["track"]] for k, v in track_meta.items()}}
  for rep in reps:
    rows[rep].flush()
    _write_level(rows[rep].directory, seg_meta)
    idx, counts, means = _track_means(meta["track"], rows[rep].arrays)
    _write_level(os.path.join(out, split, rep, "track"), {
        **means, "track": idx.astype(np.int32), "num_chunks": counts,
        **{k: v[idx] for k, v in track_meta.items()}})
  return {rep: widths.get(rep) for rep in reps}


def padded_stats(feature_config, batch_size):
  """`baselines.stats_fns`, each called through `_padded`: built once per
  export, so the PCA fit and the export share one compiled log-mel."""
  return {**{k: _padded(f, batch_size)
             for k, f in baselines.stats_fns(feature_config).items()},
          "frame_rate": (feature_config["sample_rate"]
                         / feature_config["hop_length"])}


def make_reps(encoder, random_encoder, names, pooling, layers_all, stats,
              batch_size, pca=None, input_pca=None):
  """{rep: batch -> (N x D, [N x C_l] or None)} for the requested names;
  `stats` comes from `padded_stats`; `input_pca`, where given, is the
  fitted input PCA as `inputs -> N x D`."""
  reps = {}

  def encoder_rep(enc):
    fn = _padded(enc.embed_fn(pooling), batch_size)
    def run(batch):
      emb, layers = fn(batch["inputs"])
      return emb, (layers if layers_all else None)
    return run

  reps["encoder"] = encoder_rep(encoder)
  if "random_init" in names:
    reps["random_init"] = encoder_rep(random_encoder)
  for name in ("mfcc", "logmel_stats"):
    if name in names:
      reps[name] = lambda b, f=stats[name]: (f(b[feats.WAVEFORM]), None)
  if "logmel_pca" in names and pca is not None:
    reps["logmel_pca"] = lambda b: (
        pca.transform(stats["logmel_flat"](b[feats.WAVEFORM])), None)
  if input_pca is not None:
    reps["input_pca"] = lambda b: (input_pca(b["inputs"]), None)
  if "roll_stats" in names:
    reps["roll_stats"] = lambda b: (
        baselines.roll_stats(b[ROLL], stats["frame_rate"]), None)
  return reps


def _prepared_batches(data, split, feature, crop, batch_size, beside=(),
                      sequences=None):
  """Sequential crops of a split, with the features the baselines read
  (`beside`: the waveform, the piano roll) over the same seconds, each
  under its own name (a text tower's every crop is its track's text)."""
  ds = pipeline.make_dataset(data, split, "sequential", batch_size=batch_size,
                             feature=feature, crop_samples=crop,
                             sequences=sequences)
  others = {name: pipeline.make_dataset(
      data, split, "sequential", batch_size=batch_size, feature=name,
      crop_samples=crop) for name in beside if name != feature}
  for b, *extra in zip(ds, *others.values()):
    yield {**b, feature: b["inputs"],
           **{name: e["inputs"] for name, e in zip(others, extra)}}


def _file_paths(items, kind):
  """Files named, and the audio (or MIDI) files under folders named."""
  paths = []
  for item in items:
    if os.path.isdir(item):
      paths += [p for p in sources.walk_files(item)
                if not decode.ignore_rule(p)
                and decode.is_midi(p) == (kind == "midi")]
    else:
      paths.append(item)
  return paths


def _crops(x_xN, unit, crop, fc, track, is_waveform=False):
  """`x`'s crops of `crop` samples (`unit` samples a column), the last one
  zero-padded; a waveform's crops also stand as the baselines' waveform."""
  per = crop // unit
  n = max(1, -(-x_xN.shape[-1] // per))
  pad = [(0, 0)] * (x_xN.ndim - 1) + [(0, n * per - x_xN.shape[-1])]
  x_xN = np.pad(x_xN, pad)
  out = []
  for c in range(n):
    item = {"inputs": x_xN[..., c * per:(c + 1) * per], "track": track,
            "segment": 0, "chunk": c, "offset": c * crop / fc.sample_rate}
    if is_waveform:
      item[feats.WAVEFORM] = item["inputs"]
    out.append(item)
  return out


def _token_crops(midi, crop, fc, track, sequences):
  """A MIDI file's event tokens cut as `_crops` cuts a roll: each crop's
  seconds, then `tokens.crop`'s rule."""
  ids, frames = event_tokens.encode(midi, fc.sample_rate / fc.hop_length)
  per = -(-crop // fc.hop_length)
  n = max(1, -(-int(np.ceil(midi.get_end_time() * fc.sample_rate
                            / fc.hop_length)) // per))
  return [{"inputs": event_tokens.crop(ids, frames, c * per, (c + 1) * per,
                                       sequences.tokens,
                                       sequences.token_crop),
           "track": track, "segment": 0, "chunk": c,
           "offset": c * per * fc.hop_length / fc.sample_rate}
          for c in range(n)]


def _file_crops(paths, kind, crop, fc: feats.FeatureConfig, feature,
                sequences=None):
  """Each readable file cut into crops: waveform for `audio` (mel encoders
  compute their log-mel in the graph), the MIDI `feature` (the piano roll,
  the multitrack roll or the event tokens) at the frame hop for `midi`.
  Bad files are reported and skipped. Returns (crops, tracks, rejected)."""
  crops, tracks, rejected = [], [], []
  for path in paths:
    try:
      if kind == "midi" and feature in feats.EVENT_FEATURES:
        crops += _token_crops(decode.load_midi(path), crop, fc, len(tracks),
                              sequences or feats.Sequences())
      elif kind == "midi":
        midi = decode.load_midi(path)
        frames = int(np.ceil(midi.get_end_time() * fc.sample_rate
                             / fc.hop_length))
        roll = feats.midi_feature(feature, midi, max(frames, 1), fc)
        crops += _crops(roll, fc.hop_length, crop, fc, len(tracks))
      else:
        wav = decode.load_audio(path, fc.sample_rate)
        crops += _crops(wav, 1, crop, fc, len(tracks), is_waveform=True)
    except decode.Rejected as e:
      logging.warning("skipping %s: %s", path, e)
      rejected.append({"path": path, "reason": e.reason,
                       "detail": e.detail})
      continue
    tracks.append({"id": path, "label": -1, "artist": -1, "tags": []})
  return crops, tracks, rejected


def _batched(crops, batch_size):
  for i in range(0, len(crops), batch_size):
    part = crops[i:i + batch_size]
    yield {k: np.stack([np.asarray(c[k], np.float32 if k in (
        "inputs", feats.WAVEFORM, "offset") else np.int32) for c in part])
           for k in part[0]}


def is_current(out: str, step: int, workdir: str | None = None,
               representations=()) -> bool:
  """Whether `out` already holds an export of checkpoint `step` (of
  `workdir`, where given) with every one of `representations`: a rerun
  reuses it."""
  path = os.path.join(out, "export.json")
  if not os.path.exists(path):
    return False
  with open(path) as f:
    info = json.load(f)
  return (info.get("step") == step
          and (workdir is None or os.path.abspath(info.get("workdir", ""))
               == os.path.abspath(workdir))
          and set(representations) <= set(info.get("representations", ())))


def run(workdir, out, *, step=None, data_dir="",
        splits=("train", "valid", "test"), audio=None, pooling="encoder",
        layers="last",
        baseline_names=DEFAULT_BASELINES, batch_size=64, seed=0,
        progress=True, midi=None, tower=None) -> dict:
  """Exports `workdir`'s encoder (or its `tower`) and the baselines;
  returns export.json."""
  unknown = set(baseline_names) - set(REPRESENTATIONS[1:])
  if unknown:
    raise ValueError(f"--baselines: unknown {sorted(unknown)}; known: "
                     f"{', '.join(REPRESENTATIONS[1:])}")
  encoder = frozen.load(workdir, step, tower)
  config, crop = encoder.config, encoder.crop_samples
  sequences = feats.Sequences.from_config(config.data)
  if audio or midi:
    return _run_files(out, encoder, "midi" if midi else "audio",
                      midi or audio, data_dir, pooling, layers,
                      baseline_names, batch_size, seed, progress)
  data_dir = (storage.stage(data_dir, corpus.default_cache_dir()) if data_dir
              else corpus.resolve_data_dir(config))
  data = pipeline.PreparedData(data_dir)
  manifest = data.manifest
  records.check_grid(config.data, manifest, data_dir,
                     hop=encoder.feature != feats.WAVEFORM)
  fc_dict = manifest["feature_config"]
  if encoder.feature in feats.METADATA_FEATURES:
    # Audio and roll statistics are no baseline for a text tower.
    baseline_names = [b for b in baseline_names if b == "random_init"]
  for feature, names in ((feats.WAVEFORM, baselines.NAMES),
                         (ROLL, baselines.ROLL_NAMES)):
    if set(baseline_names) & set(names) and \
        feature not in manifest["features"]:
      logging.warning("%s has no %s: skipping the %s baselines", data_dir,
                      feature, "/".join(names))
      baseline_names = [b for b in baseline_names if b not in names]
  beside = tuple(f for f, names in ((feats.WAVEFORM, baselines.NAMES),
                                    (ROLL, baselines.ROLL_NAMES))
                 if set(baseline_names) & set(names))
  example = next(iter(pipeline.make_dataset(
      data, splits[0], "sequential", batch_size=1, feature=encoder.feature,
      crop_samples=crop, sequences=sequences)))["inputs"]
  pca = None
  stats = padded_stats(fc_dict, batch_size)
  if "logmel_pca" in baseline_names:
    # Fitted on train only, before any split is exported.
    n = len(samplers.SequentialReader(data, "train", feats.WAVEFORM, crop))
    pca = baselines.LogmelPCA(n)
    for b in tqdm(_prepared_batches(data, "train", feats.WAVEFORM, crop,
                                    batch_size),
                  desc="fit log-mel PCA", disable=not progress):
      pca.partial_fit(stats["logmel_flat"](b[feats.WAVEFORM]))
    pca.finish()
  input_pca = None
  if "input_pca" in baseline_names:
    front, fcfg = models.frontend_of(config.model)
    if front.reconstruction(fcfg) is None or front.reconstruction_target(
        fcfg, config.data) is not None:
      raise ValueError("--baselines=input_pca: the encoder's frontend has "
                       "no frames of its own (a waveform or text encoder)")
    n = len(samplers.SequentialReader(data, "train", encoder.feature, crop))
    fitted = baselines.LogmelPCA(
        n, config.model.get("bottleneck", 0) or baselines.PCA_COMPONENTS)
    flat = _padded(encoder.raw_flat_fn(), batch_size)
    for b in tqdm(_prepared_batches(data, "train", encoder.feature, crop,
                                    batch_size, sequences=sequences),
                  desc="fit input PCA", disable=not progress):
      fitted.partial_fit(flat(b["inputs"]))
    fitted.finish()
    # The fit's compiled frontend serves the export too.
    input_pca = lambda x: fitted.transform(flat(x))
  reps = make_reps(encoder, frozen.random_init(config, example, seed),
                   baseline_names, pooling, layers == "all", stats,
                   batch_size, pca, input_pca)
  widths = {}
  for split in splits:
    n = len(samplers.SequentialReader(data, split, encoder.feature, crop))
    widths = export_split(
        out, split, _prepared_batches(data, split, encoder.feature, crop,
                                      batch_size, beside, sequences),
        n, data.tracks(split), reps, manifest["vocab"].get("values", []),
        len(manifest["vocab"]["tags"]), progress,
        tuple(manifest["vocab"].get("labels", {})))
  return _write_info(out, encoder, data_dir, splits, reps, pooling, layers,
                     widths, manifest["vocab"], 0)


def feature_config(encoder, data_dir="") -> feats.FeatureConfig:
  """The feature settings `encoder` was trained on: its prepared
  manifest's when that is still there, else its sample rate and hop."""
  try:
    return feats.FeatureConfig(**records.load_manifest(
        data_dir or encoder.config.data.dir)["feature_config"])
  except (FileNotFoundError, ValueError, TypeError):
    return feats.FeatureConfig(sample_rate=encoder.sample_rate,
                               hop_length=encoder.config.data.get(
                                   "hop_length", 512))


def _run_files(out, encoder, kind, items, data_dir, pooling, layers,
               baseline_names, batch_size, seed, progress):
  """`--audio` / `--midi`: files never prepared, cut and featurised like
  `prepare` would (the run's prepared manifest gives the feature settings
  when it is still there); PCA needs a train split, so it is skipped, and
  MIDI files have no waveform for the MFCC and log-mel baselines."""
  if (encoder.feature in feats.MIDI_FEATURES) != (kind == "midi"):
    other = "--audio" if kind == "midi" else "--midi"
    raise ValueError(f"--{kind}: this run's encoder reads "
                     f"{encoder.feature!r}; use {other}")
  fc = feature_config(encoder, data_dir)
  crop = encoder.crop_samples
  crops, tracks, rejected = _file_crops(
      _file_paths(items, kind), kind, crop, fc, encoder.feature,
      feats.Sequences.from_config(encoder.config.data))
  os.makedirs(out, exist_ok=True)
  with open(os.path.join(out, "rejected.jsonl"), "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in rejected)
  if not crops:
    raise ValueError(f"no readable {kind} among {len(rejected)} file(s); "
                     f"see {os.path.join(out, 'rejected.jsonl')}")
  names = [b for b in baseline_names if b != "logmel_pca" and (
      kind == "audio" or b == "random_init") and b not in baselines.ROLL_NAMES]
  random_encoder = frozen.random_init(encoder.config,
                                      np.asarray(crops[0]["inputs"])[None],
                                      seed)
  reps = make_reps(encoder, random_encoder, names, pooling, layers == "all",
                   padded_stats(dataclasses.asdict(fc), batch_size),
                   batch_size)
  widths = export_split(out, kind, _batched(crops, batch_size),
                        len(crops), tracks, reps, [], 0, progress)
  return _write_info(out, encoder, None, (kind,), reps, pooling, layers,
                     widths, {"label": [], "artist": [], "tags": [],
                              "values": []}, len(rejected))


def _write_info(out, encoder, data_dir, splits, reps, pooling, layers,
                widths, vocab, n_rejected):
  info = {
      "tower": encoder.tower,
      "workdir": encoder.workdir, "step": encoder.step,
      "data": data_dir and os.path.abspath(data_dir), "splits": list(splits),
      "representations": list(reps), "pooling": pooling, "layers": layers,
      "layer_widths": widths, "feature": encoder.feature,
      "crop_samples": encoder.crop_samples, "sample_rate": encoder.sample_rate,
      "model": encoder.config.model.to_dict(),
      "objective": encoder.config.objective.name, "vocab": vocab,
      "rejected": n_rejected}
  os.makedirs(out, exist_ok=True)
  with open(os.path.join(out, "export.json"), "w") as f:
    json.dump(info, f, indent=2, default=list)
  return info
