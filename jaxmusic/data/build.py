"""`prepare`'s work: decode, segment, featurise, split, write shards.

Two stages make it resumable. Each track is processed in a worker into a
verified per-track file under `OUT/.work/` (written atomically, skipped on a
re-run); then the finished tracks are packed into ArrayRecord shards per
split and the manifest is written last. A directory whose manifest matches
the inputs and options and whose shards verify is left as it is.
"""

import collections
import concurrent.futures as cf
import dataclasses
import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import struct

import numpy as np
from tqdm import tqdm

from jaxmusic.data import beam_map
from jaxmusic.data import decode
from jaxmusic.data import features as feats
from jaxmusic.data import records
from jaxmusic.data import scores
from jaxmusic.data import sheet
from jaxmusic.data import sources
from jaxmusic.data import synthetic

DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)
Rejected = decode.Rejected


def _symbolic(track: sources.Track):
  """(PrettyMIDI or None, what the file itself says about the track)."""
  if track.score and track.tune is not None:
    return scores.load_tune(track.score, track.tune), {}
  if track.score:
    return scores.load_score(track.score)
  return (decode.load_midi(track.midi) if track.midi else None), {}


def _render(midi, cfg: feats.FeatureConfig) -> list[np.ndarray]:
  """A MIDI-only track's audio: one rendering per soundfont with
  FluidSynth, or the synthetic corpus's timbres without one, so that
  audio encoders can still read it."""
  if not cfg.soundfonts:
    return [synthetic.render(midi, cfg.sample_rate)]
  return [sheet.fluidsynth(midi, sf, cfg.sample_rate)
          for sf in cfg.soundfonts]


def process_track(track: sources.Track, features, cfg: feats.FeatureConfig,
                  segment_samples: int) -> tuple[list[dict], dict]:
  """Decodes one track into its segment records and what its file says
  about it (a score's composer as `label`, its title as `text`); raises
  Rejected. With the sheet feature, the score is engraved and verovio's
  own MIDI is the track's MIDI, so its audio and its page agree."""
  engraving = None
  if feats.SHEET in features:
    if not track.score:
      raise Rejected("sheet requested but the track has no score")
    engraving, found = scores.engrave(track.score, track.tune,
                                      cfg.sheet_height)
    midi = engraving.midi
  else:
    midi, found = _symbolic(track)
  needs_audio = any(f in feats.AUDIO_FEATURES for f in features)
  wants_midi = [f for f in features if f in feats.MIDI_FEATURES]
  if wants_midi and midi is None:
    raise Rejected(f"{wants_midi[0]} requested but the track has no MIDI")
  renderings = []
  if track.audio:
    wav = decode.load_audio(track.audio, cfg.sample_rate, track.channel)
  elif needs_audio:
    wav, *renderings = _render(midi, cfg)
  else:
    wav = None
  seconds = (len(wav) if wav is not None else
             midi.get_end_time() * cfg.sample_rate) / cfg.sample_rate
  if seconds * cfg.sample_rate < segment_samples:
    raise decode.too_short(seconds, segment_samples / cfg.sample_rate)
  return feats.segment_track(wav, midi, features, cfg, segment_samples,
                             engraving, renderings), found


def _pack(blobs: list[bytes]) -> bytes:
  return b"".join(struct.pack("<Q", len(b)) + b for b in blobs)


def _unpack(data: bytes) -> list[bytes]:
  out, pos = [], 0
  while pos < len(data):
    (n,) = struct.unpack_from("<Q", data, pos)
    out.append(data[pos + 8:pos + 8 + n])
    pos += 8 + n
  if pos != len(data):
    raise ValueError("truncated")
  return out


def _work_item(args):
  """Worker: one track to `.work/KEY.rec` (or `.rej`); returns its status."""
  track, features, cfg, segment_samples, work_path = args
  try:
    recs, found = process_track(track, features, cfg, segment_samples)
    blob = _pack([records.encode(r) for r in recs])
    digest = hashlib.sha1(blob).hexdigest()
    tmp = work_path + ".rec.tmp"
    with open(tmp, "wb") as f:
      f.write(blob)
    with open(work_path + ".json.tmp", "w") as f:
      json.dump({"num_segments": len(recs), "sha1": digest, "found": found},
                f)
    os.replace(tmp, work_path + ".rec")
    os.replace(work_path + ".json.tmp", work_path + ".json")
    return ("ok", len(recs))
  except Rejected as e:
    with open(work_path + ".rej", "w") as f:
      json.dump({"reason": e.reason, "detail": e.detail}, f)
    return ("rejected", e.reason)


def _done(work_path: str) -> bool:
  """A finished per-track file: present, and matching its recorded sha1."""
  if os.path.exists(work_path + ".rej"):
    return True
  try:
    with open(work_path + ".json") as f:
      info = json.load(f)
    with open(work_path + ".rec", "rb") as f:
      return hashlib.sha1(f.read()).hexdigest() == info["sha1"]
  except (OSError, ValueError, KeyError):
    return False


def _order_key(track_id: str) -> str:
  return hashlib.sha1(track_id.encode()).hexdigest()


def _split_counts(n: int, fractions) -> list[int]:
  """Track counts per split for a group of n: largest remainder, with every
  split non-empty when n >= 3 (probes need a valid and a test track)."""
  if n < 3:
    # Too few for all three: a test track before a valid one, since a
    # probe can do without model selection but not without a test.
    return [min(n, 1), 0, n - min(n, 1)]
  ideal = np.asarray(fractions, float) * n
  counts = np.floor(ideal).astype(int)
  for i in np.argsort(-(ideal - counts), kind="stable")[:n - counts.sum()]:
    counts[i] += 1
  for i in range(3):
    if counts[i] == 0:
      counts[int(np.argmax(counts))] -= 1
      counts[i] = 1
  return counts.tolist()


def assign_splits(tracks, fractions=DEFAULT_FRACTIONS):
  """{track_id: split} for tracks without a split of their own, and the
  warnings for labels too rare to reach every split.

  Stratified by label, deterministic: within a label, tracks are ordered by
  a hash of their id (not by file order) and cut by `fractions`. A source's
  own split always wins. When the labels alone leave a split empty, the
  largest split gives it a track, so any set of 3 or more can be probed.
  """
  free = [t for t in tracks if not t.split]
  groups = collections.defaultdict(list)
  for t in free:
    groups[t.label].append(t.track_id)
  out, warnings = {}, []
  for label in sorted(groups, key=lambda x: (x is None, x or "")):
    ids = sorted(groups[label], key=_order_key)
    counts = _split_counts(len(ids), fractions)
    if label is not None and 0 in counts:
      missing = [s for s, c in zip(records.SPLITS, counts) if not c]
      warnings.append(f"label {label!r} has {len(ids)} track(s): too few to "
                      f"reach {' and '.join(missing)}")
    cuts = np.cumsum(counts)
    for i, track_id in enumerate(ids):
      out[track_id] = records.SPLITS[int(np.searchsorted(cuts, i,
                                                         side="right"))]
  if len(tracks) >= 3:
    by_split = collections.defaultdict(list)
    for t in tracks:
      by_split[t.split or out[t.track_id]].append(t.track_id)
    for split in records.SPLITS:
      if by_split[split]:
        continue
      movable = {s: sorted((i for i in by_split[s] if i in out),
                           key=_order_key) for s in records.SPLITS}
      donor = max(records.SPLITS, key=lambda s: len(movable[s]))
      if len(movable[donor]) < 2:
        continue
      moved = movable[donor][-1]
      by_split[donor].remove(moved)
      by_split[split].append(moved)
      out[moved] = split
  return out, warnings


def _fingerprint(tracks, features, cfg, segment_samples, fractions):
  h = hashlib.sha1()
  h.update(json.dumps([sorted(features), dataclasses.asdict(cfg),
                       segment_samples, list(fractions)]).encode())
  for t in tracks:
    for p in (t.audio, t.midi, t.score):
      st = os.stat(p) if p and os.path.exists(p) else None
      h.update(f"{p}:{st.st_size if st else -1}:"
               f"{st.st_mtime_ns if st else -1}".encode())
    h.update(json.dumps(dataclasses.asdict(t)).encode())
  return h.hexdigest()


def prepare(source: str, input_path: str, output: str,
            features=("waveform", "logmel"), segment_seconds: float = 10.0,
            workers: int = 1, cfg: feats.FeatureConfig | None = None,
            fractions=DEFAULT_FRACTIONS, shard_mb: int = 1024,
            progress: bool = True, runner: str = "local",
            beam_args=()) -> dict:
  """Prepares `input_path` (read as `source`) into `output`; returns the
  manifest. Raises ValueError when no usable track remains.

  The per-track work (decoding, features, segmentation, rejection) runs in
  `workers` local processes (`runner="local"`), or as an Apache Beam
  pipeline (`runner="beam"`, with `beam_args` as Beam's pipeline options;
  by default the DirectRunner with `workers` processes). Both write the
  same per-track files under `output/.work`, which then become the splits,
  shards and manifest in this process, so the two runners' outputs are
  byte-identical. Distributed runners (Flink, Spark, Dataflow) need
  `output` on a filesystem every worker mounts."""
  cfg = cfg or feats.FeatureConfig()
  features = tuple(dict.fromkeys(features))
  cfg.validate(features)
  if abs(sum(fractions) - 1) > 1e-6 or len(fractions) != 3:
    raise ValueError(f"split fractions {fractions} must be 3 numbers "
                     "summing to 1")
  hop = cfg.hop_length
  segment_samples = int(round(segment_seconds * cfg.sample_rate / hop)) * hop
  if segment_samples <= 0:
    raise ValueError(f"--segment_seconds={segment_seconds} is too short")
  listing = sources.read_source(source, input_path)
  tracks = listing.tracks
  ids = [t.track_id for t in tracks]
  if len(set(ids)) != len(ids):
    dup = sorted({i for i in ids if ids.count(i) > 1})[:3]
    raise ValueError(f"{input_path}: duplicate track ids {dup}")
  fingerprint = _fingerprint(tracks, features, cfg, segment_samples, fractions)
  os.makedirs(output, exist_ok=True)
  try:
    manifest = records.load_manifest(output)
    if manifest.get("fingerprint") == fingerprint and records.verify(
        output, manifest):
      logging.info("%s: already prepared and verified", output)
      return manifest
  except (FileNotFoundError, ValueError):
    pass

  work = os.path.join(output, ".work")
  os.makedirs(work, exist_ok=True)
  keys = [hashlib.sha1(f"{fingerprint}:{t.track_id}".encode()).hexdigest()
          for t in tracks]
  todo = [(t, features, cfg, segment_samples, os.path.join(work, k))
          for t, k in zip(tracks, keys) if not _done(os.path.join(work, k))]
  bar = tqdm(total=len(todo), desc="prepare", unit="track",
             disable=not progress)
  if runner == "beam":
    bar.close()
    beam_map.beam_map(todo, _work_item, workers, beam_args)
  elif runner != "local":
    raise ValueError(f"--runner={runner}: use local or beam")
  elif workers > 1 and len(todo) > 1:
    # spawn, not fork: the caller may already hold JAX or grain threads.
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
      for _ in pool.map(_work_item, todo, chunksize=1):
        bar.update()
  else:
    for item in todo:
      _work_item(item)
      bar.update()
  bar.close()
  return _finish(output, listing, keys, features, cfg, segment_samples,
                 fractions, fingerprint, source, input_path, shard_mb)


def _finish(output, listing, keys, features, cfg, segment_samples, fractions,
            fingerprint, source, input_path, shard_mb):
  tracks = listing.tracks
  work = os.path.join(output, ".work")
  rejected, usable = [], []
  for track, key in zip(tracks, keys):
    base = os.path.join(work, key)
    if os.path.exists(base + ".rej"):
      with open(base + ".rej") as f:
        why = json.load(f)
      rejected.append({"track_id": track.track_id, "path": track.path,
                       **why})
    else:
      with open(base + ".json") as f:
        found = json.load(f).get("found", {})
      # What the file itself names (a score's composer and title) wins
      # over what its place in the layout says.
      usable.append((dataclasses.replace(track, **found), base))
  with open(os.path.join(output, records.REJECTED), "w") as f:
    for r in rejected:
      f.write(json.dumps(r) + "\n")
  for r in rejected:
    logging.warning("rejected %s: %s", r["path"], r["reason"])
  chosen, split_warnings = assign_splits([t for t, _ in usable], fractions)
  for w in split_warnings:
    logging.warning("split: %s", w)
  kept = {s: [] for s in records.SPLITS}
  for track, base in usable:
    kept[track.split or chosen[track.track_id]].append((track, base))
  if not any(kept.values()):
    raise ValueError(f"{input_path}: no usable track ({len(rejected)} "
                     f"rejected, see {os.path.join(output, records.REJECTED)})")
  all_kept = [t for split in kept.values() for t, _ in split]
  vocab = {
      "label": sorted({t.label for t in all_kept if t.label}),
      "artist": sorted({t.artist for t in all_kept if t.artist}),
      "tags": sorted({g for t in all_kept for g in t.tags}),
      "values": sorted({v for t in all_kept for v in t.values}),
  }
  index = {k: {v: i for i, v in enumerate(vs)} for k, vs in vocab.items()}
  vocab["labels"] = {name: sorted({t.labels[name] for t in all_kept
                                   if name in t.labels})
                     for name in sorted({n for t in all_kept
                                         for n in t.labels})}
  label_index = {n: {v: i for i, v in enumerate(vs)}
                 for n, vs in vocab["labels"].items()}
  splits, shapes = {}, {}
  for split, items in kept.items():
    blobs, track_infos = [], []
    for i, (track, base) in enumerate(items):
      with open(base + ".rec", "rb") as f:
        track_blobs = _unpack(f.read())
      first = len(blobs)
      for blob in track_blobs:
        rec = records.decode(blob)
        rec["track"] = np.int32(i)
        if not shapes:
          shapes = {n: [str(a.dtype), list(a.shape)] for n, a in rec.items()}
        blobs.append(records.encode(rec))
      track_infos.append({
          "id": track.track_id, "path": track.path,
          "first_record": first, "num_segments": len(track_blobs),
          "label": index["label"].get(track.label, -1),
          "artist": index["artist"].get(track.artist, -1),
          "tags": [index["tags"][g] for g in track.tags],
          "values": track.values,
          **({"labels": {n: label_index[n][v]
                         for n, v in track.labels.items()}}
             if track.labels else {}),
          **({"text": track.text} if track.text else {})})
    size = sum(len(b) for b in blobs)
    num_shards = max(1, int(np.ceil(size / (shard_mb << 20)))) if blobs else 0
    splits[split] = {
        "num_tracks": len(items), "num_records": len(blobs),
        "shards": records.write_shards(output, split, blobs, num_shards)
                  if blobs else [],
        "tracks": track_infos}
  seg_s = segment_samples / cfg.sample_rate
  manifest = {
      "format_version": records.FORMAT_VERSION,
      "fingerprint": fingerprint,
      "source": {"kind": source, "input": os.path.abspath(input_path)},
      "features": list(features),
      "shapes": shapes,
      "sample_rate": cfg.sample_rate, "hop_length": cfg.hop_length,
      "frame_rate": cfg.sample_rate / cfg.hop_length,
      "segment_samples": segment_samples,
      "frames_per_segment": segment_samples // cfg.hop_length,
      # As JSON reads it back (tuples as lists), so a re-run returns an
      # equal manifest.
      "feature_config": json.loads(json.dumps(dataclasses.asdict(cfg))),
      "vocab": vocab,
      "splits": splits,
      "num_rejected": len(rejected),
      "ignored": _ignored_counts(listing.ignored),
      "split_warnings": split_warnings,
      "hours": sum(s["num_records"] for s in splits.values()) * seg_s / 3600,
  }
  tmp = os.path.join(output, records.MANIFEST + ".tmp")
  with open(tmp, "w") as f:
    json.dump(manifest, f)
  os.replace(tmp, os.path.join(output, records.MANIFEST))
  shutil.rmtree(work, ignore_errors=True)
  return manifest


def _ignored_counts(ignored) -> dict[str, int]:
  """{rule: files}, most common first."""
  counts = collections.Counter(rule for _, rule in ignored)
  return dict(counts.most_common())


def summary(manifest: dict) -> str:
  s = manifest["splits"]
  ignored = manifest.get("ignored", {})
  rules = ", ".join(f"{rule} x{n}" for rule, n in ignored.items())
  return (f"prepared {sum(v['num_tracks'] for v in s.values())} tracks, "
          f"{sum(v['num_records'] for v in s.values())} segments, "
          f"{manifest['hours']:.2f} h (train {s['train']['num_tracks']} / "
          f"valid {s['valid']['num_tracks']} / test {s['test']['num_tracks']}"
          f" tracks); rejected {manifest['num_rejected']} (see "
          f"{records.REJECTED}); ignored {sum(ignored.values())} files"
          + (f" ({rules})" if rules else ""))
