"""`prepare`'s work: decode, segment, featurise, split, write shards.

Two stages make it resumable. Each track is processed in a worker into a
verified per-track file under `OUT/.work/` (written atomically, skipped on a
re-run); then the finished tracks are packed into ArrayRecord shards per
split and the manifest is written last. A directory whose manifest matches
the inputs and options and whose shards verify is left as it is.
"""

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

from jaxmusic.data import features as feats
from jaxmusic.data import records
from jaxmusic.data import sources

SILENCE_RMS = 1e-4
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)


class Rejected(Exception):
  """A track that cannot be used; the message is the reason."""


def _load_audio(path: str, sr: int) -> np.ndarray:
  import librosa  # pylint: disable=g-import-not-at-top
  try:
    wav, _ = librosa.load(path, sr=sr, mono=True)
  except Exception as e:  # pylint: disable=broad-except
    raise Rejected(f"cannot decode audio: {type(e).__name__}: {e}") from e
  if wav.size == 0:
    raise Rejected("empty audio")
  if not np.all(np.isfinite(wav)):
    raise Rejected("audio contains NaN or Inf")
  if np.sqrt(np.mean(np.square(wav))) < SILENCE_RMS:
    raise Rejected("silent audio")
  return wav


def _load_midi(path: str):
  import pretty_midi  # pylint: disable=g-import-not-at-top
  try:
    midi = pretty_midi.PrettyMIDI(path)
  except Exception as e:  # pylint: disable=broad-except
    raise Rejected(f"unreadable MIDI: {type(e).__name__}: {e}") from e
  if not any(inst.notes for inst in midi.instruments):
    raise Rejected("MIDI has no notes")
  return midi


def process_track(track: sources.Track, features, cfg: feats.FeatureConfig,
                  segment_samples: int) -> list[dict]:
  """Decodes one track into its segment records; raises Rejected."""
  midi = _load_midi(track.midi) if track.midi else None
  needs_audio = any(f in feats.AUDIO_FEATURES for f in features)
  if "pianoroll" in features and midi is None:
    raise Rejected("pianoroll requested but the track has no MIDI")
  if track.audio:
    wav = _load_audio(track.audio, cfg.sample_rate)
  elif needs_audio:
    # MIDI-only tracks are rendered with the synthetic corpus's timbres so
    # audio encoders can still read them.
    from jaxmusic.data import synthetic  # pylint: disable=g-import-not-at-top
    wav = synthetic.render(midi, cfg.sample_rate)
  else:
    wav = None
  seconds = (len(wav) if wav is not None else
             midi.get_end_time() * cfg.sample_rate) / cfg.sample_rate
  if seconds * cfg.sample_rate < segment_samples:
    raise Rejected(f"shorter than one segment ({seconds:.2f} s < "
                   f"{segment_samples / cfg.sample_rate:.2f} s)")
  return feats.segment_track(wav, midi, features, cfg, segment_samples)


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
    recs = process_track(track, features, cfg, segment_samples)
    blob = _pack([records.encode(r) for r in recs])
    digest = hashlib.sha1(blob).hexdigest()
    tmp = work_path + ".rec.tmp"
    with open(tmp, "wb") as f:
      f.write(blob)
    with open(work_path + ".json.tmp", "w") as f:
      json.dump({"num_segments": len(recs), "sha1": digest}, f)
    os.replace(tmp, work_path + ".rec")
    os.replace(work_path + ".json.tmp", work_path + ".json")
    return ("ok", len(recs))
  except Rejected as e:
    with open(work_path + ".rej", "w") as f:
      f.write(str(e))
    return ("rejected", str(e))


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


def assign_split(track_id: str, fractions=DEFAULT_FRACTIONS) -> str:
  """Deterministic split by a hash of the track id, so a track's segments
  never land in two splits and the split does not depend on file order."""
  u = int(hashlib.sha1(track_id.encode()).hexdigest()[:12], 16) / 16**12
  cut = np.cumsum(fractions)
  return records.SPLITS[int(np.searchsorted(cut, u, side="right"))]


def _fingerprint(tracks, features, cfg, segment_samples, fractions):
  h = hashlib.sha1()
  h.update(json.dumps([sorted(features), dataclasses.asdict(cfg),
                       segment_samples, list(fractions)]).encode())
  for t in tracks:
    for p in (t.audio, t.midi):
      st = os.stat(p) if p and os.path.exists(p) else None
      h.update(f"{p}:{st.st_size if st else -1}:"
               f"{st.st_mtime_ns if st else -1}".encode())
    h.update(json.dumps(dataclasses.asdict(t)).encode())
  return h.hexdigest()


def prepare(source: str, input_path: str, output: str,
            features=("waveform", "logmel"), segment_seconds: float = 10.0,
            workers: int = 1, cfg: feats.FeatureConfig | None = None,
            fractions=DEFAULT_FRACTIONS, shard_mb: int = 1024,
            progress: bool = True) -> dict:
  """Prepares `input_path` (read as `source`) into `output`; returns the
  manifest. Raises ValueError when no usable track remains."""
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
  tracks = sources.read_source(source, input_path)
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
  if workers > 1 and len(todo) > 1:
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
  return _finish(output, tracks, keys, features, cfg, segment_samples,
                 fractions, fingerprint, source, input_path, shard_mb)


def _finish(output, tracks, keys, features, cfg, segment_samples, fractions,
            fingerprint, source, input_path, shard_mb):
  work = os.path.join(output, ".work")
  rejected, kept = [], {s: [] for s in records.SPLITS}
  for track, key in zip(tracks, keys):
    base = os.path.join(work, key)
    if os.path.exists(base + ".rej"):
      with open(base + ".rej") as f:
        rejected.append({"track_id": track.track_id,
                         "path": track.audio or track.midi,
                         "reason": f.read()})
      continue
    split = track.split or assign_split(track.track_id, fractions)
    kept[split].append((track, base))
  with open(os.path.join(output, records.REJECTED), "w") as f:
    for r in rejected:
      f.write(json.dumps(r) + "\n")
  for r in rejected:
    logging.warning("rejected %s: %s", r["path"], r["reason"])
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
          "id": track.track_id, "path": track.audio or track.midi,
          "first_record": first, "num_segments": len(track_blobs),
          "label": index["label"].get(track.label, -1),
          "artist": index["artist"].get(track.artist, -1),
          "tags": [index["tags"][g] for g in track.tags],
          "values": track.values})
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
      "feature_config": dataclasses.asdict(cfg),
      "vocab": vocab,
      "splits": splits,
      "num_rejected": len(rejected),
      "hours": sum(s["num_records"] for s in splits.values()) * seg_s / 3600,
  }
  tmp = os.path.join(output, records.MANIFEST + ".tmp")
  with open(tmp, "w") as f:
    json.dump(manifest, f)
  os.replace(tmp, os.path.join(output, records.MANIFEST))
  shutil.rmtree(work, ignore_errors=True)
  return manifest


def summary(manifest: dict) -> str:
  s = manifest["splits"]
  return (f"prepared {sum(v['num_tracks'] for v in s.values())} tracks, "
          f"{sum(v['num_records'] for v in s.values())} segments, "
          f"{manifest['hours']:.2f} h (train {s['train']['num_tracks']} / "
          f"valid {s['valid']['num_tracks']} / test {s['test']['num_tracks']}"
          f" tracks); rejected {manifest['num_rejected']}")
