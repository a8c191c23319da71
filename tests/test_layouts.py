"""The benchmark datasets' official layouts and splits, each built in its
exact layout from a few tiny files."""
import collections
import json
import os

import numpy as np
import pytest
import soundfile

from jaxmusic.data import build
from jaxmusic.data import decode
from jaxmusic.data import sources
from jaxmusic.data.layouts import gtzan_filtered
from jaxmusic.eval import embeddings
from jaxmusic.eval import report as report_lib


def _wav(path, seconds=1.0, channels=1, sr=22050):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  rng = np.random.default_rng(len(path))
  # One signal, channel c at c + 1 times its level: a channel is told from
  # the mean. Float samples, so the ratios survive the file.
  wav = rng.standard_normal((int(sr * seconds), 1)) * 0.05
  soundfile.write(path, wav * np.arange(1, channels + 1), sr,
                  subtype="FLOAT" if channels > 1 else None)


def test_gtzan_filtered_split_is_kereliuks():
  split = gtzan_filtered.splits()
  assert collections.Counter(split.values()) == {
      "train": 443, "valid": 197, "test": 290}
  genres = collections.Counter(c.split(".")[0] for c in split)
  assert len(genres) == 10 and sum(genres.values()) == 930
  # Two of the clips the filter leaves out (a repeat and a mislabel).
  assert "classical.00042" not in split and "disco.00050" not in split


@pytest.mark.parametrize("folder,ext", [("genres", "au"),
                                        ("genres_original", "wav")])
def test_gtzan_filtered_reads_the_distribution(tmp_path, folder, ext):
  clips = {"blues.00012": "test", "blues.00029": "train",
           "blues.00000": "valid", "rock.00000": None,
           "classical.00042": None}
  split = gtzan_filtered.splits()
  for clip in clips:
    clips[clip] = split.get(clip)
    genre = clip.split(".")[0]
    # soundfile writes Sun .au as GTZAN ships it.
    _wav(str(tmp_path / folder / genre / f"{clip}.{ext}"))
  listing = sources.read_source("gtzan_filtered", str(tmp_path))
  got = {t.track_id: (t.split, t.label) for t in listing.tracks}
  want = {c: (s, c.split(".")[0]) for c, s in clips.items() if s}
  assert got == want
  assert [(os.path.basename(p), r) for p, r in listing.ignored] == [
      (f"classical.00042.{ext}", "not in GTZAN's fault-filtered split")]


def _dcase(root, folds):
  """DCASE 2018 task 5's development layout: `folds[k]` the segments
  whose fold is k, as (name, activity, session)."""
  setup = root / "evaluation_setup"
  setup.mkdir(parents=True)
  meta = []
  for k, rows in folds.items():
    for name, activity, session in rows:
      _wav(str(root / "audio" / f"{name}.wav"), 0.5, 4, 16000)
      meta.append(f"audio/{name}.wav\t{activity}\t{session}\n")
    (setup / f"fold{k}_test.txt").write_text(
        "".join(f"audio/{n}.wav\n" for n, _, _ in rows))
    (setup / f"fold{k}_evaluate.txt").write_text(
        "".join(f"audio/{n}.wav\t{a}\n" for n, a, _ in rows))
    (setup / f"fold{k}_train.txt").write_text("".join(
        f"audio/{n}.wav\t{a}\t{s}\n" for j, other in folds.items()
        if j != k for n, a, s in other))
  (root / "meta.txt").write_text("".join(meta))


FOLDS = {k: [(f"DevNode{k}_ex{i}_1", act, f"DevNode{k}_ex{i}")
             for i, act in enumerate(("absence", "cooking"))]
         for k in (1, 2, 3, 4)}


def test_dcase2018_task5_folds_labels_and_channels(tmp_path):
  _dcase(tmp_path, FOLDS)
  listing = sources.read_source("dcase2018_task5", str(tmp_path))
  assert len(listing.tracks) == 8 and not listing.ignored
  by_id = {t.track_id: t for t in listing.tracks}
  t = by_id["DevNode3_ex1_1"]
  assert (t.label, t.artist, t.labels, t.split, t.channel) == (
      "cooking", "DevNode3_ex1", {"fold": "3"}, "train", 0)
  assert collections.Counter(t.split for t in listing.tracks) == {
      "test": 2, "valid": 2, "train": 4}
  each = sources.read_source("dcase2018_task5_each", str(tmp_path))
  assert len(each.tracks) == 32
  assert {t.channel for t in each.tracks} == {0, 1, 2, 3}
  assert {t.labels["fold"] for t in each.tracks
          if t.track_id.startswith("DevNode2_ex0_1#")} == {"2"}
  mean = sources.read_source("dcase2018_task5_mean", str(tmp_path))
  assert {t.channel for t in mean.tracks} == {None}
  # The channel policy reaches the decoder: channel 2 is 3x channel 0.
  path = by_id["DevNode1_ex0_1"].audio
  ch0, ch2, avg = (decode.load_audio(path, 16000, c) for c in (0, 2, None))
  np.testing.assert_allclose(ch2, 3 * ch0, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(avg, 2.5 * ch0, rtol=1e-4, atol=1e-4)
  with pytest.raises(decode.Rejected, match="no channel 4"):
    decode.load_audio(path, 16000, 4)


def test_dcase2018_task5_prepares_each_channel_in_its_fold(tmp_path):
  _dcase(tmp_path / "dcase", FOLDS)
  m = build.prepare("dcase2018_task5_each", str(tmp_path / "dcase"),
                    str(tmp_path / "out"), features=("waveform",),
                    segment_seconds=0.25, progress=False)
  assert {s: m["splits"][s]["num_tracks"] for s in m["splits"]} == {
      "train": 16, "valid": 8, "test": 8}
  assert m["vocab"]["labels"] == {"fold": ["1", "2", "3", "4"]}
  assert m["vocab"]["label"] == ["absence", "cooking"]


def test_dcase2018_task5_bad_layouts_are_named(tmp_path):
  _dcase(tmp_path, FOLDS)
  setup = tmp_path / "evaluation_setup"
  train = (setup / "fold1_train.txt").read_text().splitlines(True)
  (setup / "fold1_train.txt").write_text("".join(train[1:]))
  with pytest.raises(ValueError, match="fold1_train.txt is not the other"):
    sources.read_source("dcase2018_task5", str(tmp_path))
  (setup / "fold1_train.txt").write_text("".join(train))
  (setup / "fold2_test.txt").write_text(
      (setup / "fold2_test.txt").read_text() + "audio/DevNode1_ex0_1.wav\n")
  with pytest.raises(ValueError, match="DevNode1_ex0_1.wav is in fold 1"):
    sources.read_source("dcase2018_task5", str(tmp_path))
  os.remove(setup / "fold2_test.txt")
  with pytest.raises(FileNotFoundError, match="fold2_test.txt: missing"):
    sources.read_source("dcase2018_task5", str(tmp_path))


@pytest.mark.slow
def test_dcase2018_task5_probe_takes_the_official_folds(tiny_run, tmp_path):
  """`--folds fold`: each official fold is test once, on the other folds'
  tracks, and the report gives macro F1 mean ± std over the four."""
  folds = {k: [(f"DevNode{k}_ex{i}_1", act, f"DevNode{k}_ex{i}")
               for i, act in enumerate(("absence", "cooking") * 3)]
           for k in (1, 2, 3, 4)}
  _dcase(tmp_path / "dcase", folds)
  data = str(tmp_path / "data")
  build.prepare("dcase2018_task5", str(tmp_path / "dcase"), data,
                features=("waveform",), segment_seconds=0.25,
                progress=False)
  emb = str(tmp_path / "emb")
  embeddings.run(tiny_run, emb, data_dir=data, baseline_names=("mfcc",),
                 progress=False)
  report = report_lib.run(emb, level="track", kinds=("linear",),
                          folds="fold", out=str(tmp_path / "probe"))
  assert report["folds"] == "fold"
  for row in report["rows"]:
    assert len(row["folds"]) == 4
    assert {"macro_f1", "macro_f1_std"} <= set(row["metrics"])
  assert "the collection's `fold` folds" in report_lib.markdown(report)
  with pytest.raises(ValueError, match="--target=session"):
    report_lib.run(emb, kinds=("linear",), folds="session")


def _note(family, n, pitch, split):
  return f"{family}_acoustic_{n:03d}-{pitch:03d}-100", {
      "note_str": f"{family}_acoustic_{n:03d}-{pitch:03d}-100",
      "pitch": pitch, "velocity": 100, "sample_rate": 16000,
      "instrument_family_str": family,
      "instrument_str": f"{family}_acoustic_{n:03d}",
      "instrument_source_str": "acoustic", "qualities_str": ["bright"],
      "split": split}


def test_nsynth_folders_are_the_split(tmp_path):
  for folder, split in (("nsynth-train", "train"), ("nsynth-valid", "valid"),
                        ("nsynth-test", "test")):
    notes = dict(_note(f, i, 60 + i, split)
                 for i, f in enumerate(("brass", "organ")))
    for note in notes:
      _wav(str(tmp_path / folder / "audio" / f"{note}.wav"), 0.5, sr=16000)
    (tmp_path / folder).mkdir(exist_ok=True)
    (tmp_path / folder / "examples.json").write_text(
        json.dumps(notes))
  listing = sources.read_source("nsynth", str(tmp_path))
  assert len(listing.tracks) == 6
  t = {t.track_id: t for t in listing.tracks}["organ_acoustic_001-061-100"]
  assert (t.label, t.artist, t.tags, t.labels) == (
      "organ", "organ_acoustic_001", ("bright",),
      {"pitch": "61", "velocity": "100", "source": "acoustic"})
  assert collections.Counter(t.split for t in listing.tracks) == {
      "train": 2, "valid": 2, "test": 2}
  assert os.path.exists(t.audio)
  (tmp_path / "nsynth-test" / "examples.json").write_text("{")
  with pytest.raises(ValueError, match="nsynth-test/examples.json: not JSON"):
    sources.read_source("nsynth", str(tmp_path))


def test_mtg_jamendo_split0_subsets(tmp_path):
  splits = tmp_path / "mtg-jamendo-dataset" / "data" / "splits" / "split-0"
  splits.mkdir(parents=True)
  head = "TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS\n"
  rows = {"train": [("track_0000214", "artist_000014", "14/214.mp3",
                     ["genre---punkrock", "mood/theme---energetic"])],
          "validation": [("track_0000382", "artist_000020", "82/382.mp3",
                          ["genre---rock"])],
          "test": [("track_0000948", "artist_000087", "48/948.mp3",
                    ["genre---pop", "genre---rock"])]}
  for name, tracks in rows.items():
    (splits / f"autotagging_genre-{name}.tsv").write_text(head + "".join(
        f"{t}\t{a}\talbum_1\t{p}\t212.7\t" + "\t".join(tags) + "\n"
        for t, a, p, tags in tracks))
  # Full quality for one track, only the low-quality encode for another.
  _wav(str(tmp_path / "audio" / "14" / "214.mp3"))
  _wav(str(tmp_path / "audio-low" / "82" / "382.low.mp3"))
  listing = sources.read_source("mtg_jamendo_genre", str(tmp_path))
  got = {t.track_id: (t.split, t.artist, t.tags, os.path.relpath(
      t.audio, tmp_path)) for t in listing.tracks}
  assert got == {
      "track_0000214": ("train", "artist_000014",
                        ("genre---punkrock", "mood/theme---energetic"),
                        "audio/14/214.mp3"),
      "track_0000382": ("valid", "artist_000020", ("genre---rock",),
                        "audio-low/82/382.low.mp3"),
      "track_0000948": ("test", "artist_000087",
                        ("genre---pop", "genre---rock"), "audio/48/948.mp3")}
  with pytest.raises(FileNotFoundError, match="autotagging_top50tags-train"):
    sources.read_source("mtg_jamendo_top50", str(tmp_path))


def test_emomusic_jukemir_split_and_values(tmp_path):
  # sha1 of the normalised artist mod 10: "abba" 9 and "nina simone" 9
  # (valid), "the beatles" 6 and "bjrk" 1 (train).
  songs = [(2, "ABBA", "development"), (3, "  Nina   Simone ", "development"),
           (5, "The Beatles", "development"), (8, "Björk", "development"),
           (13, "ABBA", "evaluation")]
  (tmp_path / "songs_info.csv").write_text(
      "song_id,file_name,Artist,Song title,start of the segment (min.sec),"
      "end of the segment (min.sec),Genre,Mediaeval 2013 set\n" + "".join(
          f"{i},{i}.mp3,{a},Song {i},0.0,0.45,Rock,{s}\n"
          for i, a, s in songs))
  (tmp_path / "static_annotations.csv").write_text(
      "song_id, mean_arousal, std_arousal, mean_valence, std_valence\n"
      + "".join(f"{i}, {i / 10}, 0.5, {-i / 10}, 0.5\n" for i, _, _ in songs))
  listing = sources.read_source("emomusic", str(tmp_path))
  got = {t.track_id: (t.split, t.values) for t in listing.tracks}
  assert got == {
      "2": ("valid", {"arousal": 0.2, "valence": -0.2}),
      "3": ("valid", {"arousal": 0.3, "valence": -0.3}),
      "5": ("train", {"arousal": 0.5, "valence": -0.5}),
      "8": ("train", {"arousal": 0.8, "valence": -0.8}),
      "13": ("test", {"arousal": 1.3, "valence": -1.3})}
  assert listing.tracks[0].audio.endswith("clips_45seconds/2.mp3")
  (tmp_path / "static_annotations.csv").write_text("song_id,arousal\n")
  with pytest.raises(ValueError, match="no column 'mean_arousal'"):
    sources.read_source("emomusic", str(tmp_path))


def _giantsteps(root):
  """GiantSteps' two repositories: train/valid from the MTG key set's
  annotations (confidence, multiple keys, artists), test from key files."""
  mtg = root / "giantsteps-mtg-key-dataset-fd7b8c5"
  rows = [  # ID, artist(s), MANUAL KEY, C
      (1, "Alpha", "A minor", 2), (2, "Bravo", "C# major", 2),
      (3, "Delta, Bravo", "F major", 2), (4, "Delta", "G minor", 2),
      (5, "Echo, Delta", "E minor", 2), (6, "Alpha", "D major", 1),
      (7, "Golf", "Bb minor / F major", 2)]
  (mtg / "annotations").mkdir(parents=True)
  (mtg / "md5").mkdir()
  (mtg / "annotations" / "beatport_metadata.txt").write_text(
      "ID\tARTIST\tTITLE\n" + "".join(f"{i}\t{a}\tt{i}\n"
                                      for i, a, _, _ in rows))
  (mtg / "annotations" / "annotations.txt").write_text(
      "ID\tMANUAL KEY\tC\n" + "".join(f"{i}\t{k}\t{c}\n"
                                      for i, _, k, c in rows))
  for i, *_ in rows:
    (mtg / "md5" / f"{i}.LOFI.mp3.md5").write_text("0\n")
  _wav(str(mtg / "audio" / "6.LOFI.mp3.wav"))
  os.rename(mtg / "audio" / "6.LOFI.mp3.wav", mtg / "audio" / "6.LOFI.mp3")
  test = root / "giantsteps-key-dataset-c8cb8aa"
  (test / "annotations" / "key").mkdir(parents=True)
  (test / "md5").mkdir()
  for i, key in ((10, "Eb minor"), (11, "F# major")):
    (test / "annotations" / "key" / f"{i}.LOFI.key").write_text(key)
    (test / "md5" / f"{i}.LOFI.mp3.md5").write_text("0\n")


def test_giantsteps_key_jukemir_split_and_flat_keys(tmp_path):
  """SHA-1 of the artist modulo 116 (Alpha 3, Delta 15, Echo 27: train;
  Bravo 100: valid); Delta and then Echo join valid as collaborators;
  low confidence and two keys are left out; sharps are written as
  flats."""
  _giantsteps(tmp_path)
  listing = sources.read_source("giantsteps_key", str(tmp_path))
  got = {t.track_id: (t.split, t.label) for t in listing.tracks}
  assert got == {"mtg-1": ("train", "A minor"), "mtg-2": ("valid", "Db major"),
                 "mtg-3": ("valid", "F major"), "mtg-4": ("valid", "G minor"),
                 "mtg-5": ("valid", "E minor"), "gs-10": ("test", "Eb minor"),
                 "gs-11": ("test", "Gb major")}
  assert [r for _, r in listing.ignored] == [
      "giantsteps: annotator confidence below 2"]


def test_giantsteps_key_names_a_bad_annotation(tmp_path):
  _giantsteps(tmp_path)
  bad = next(tmp_path.glob("giantsteps-key-*")) / "annotations" / "key"
  (bad / "10.LOFI.key").write_text("Eb dorian")
  with pytest.raises(ValueError, match=r"10\.LOFI\.key: 'Eb dorian'"):
    sources.read_source("giantsteps_key", str(tmp_path))


def test_vocalset_technique_and_singer_tasks(tmp_path):
  files = ["f1/arpeggios/belt/f1_arpeggios_belt_a.wav",
           "f1/scales/vibrato/f1_scales_vibrato_e.wav",
           "m4/long_tones/trillo/m4_long_trillo_o.wav",
           "f2/scales/vibrato/f2_scales_vibrato_a.wav",
           "f2/scales/vibrato/f2_scales_vibrato_a(1).wav",
           "f2/arpeggios/lip_trill/lip_trill_arps.wav",
           "m3/long_tones/forte/m3_long_forte_a.wav"]
  for f in files:
    _wav(str(tmp_path / "FULL" / f), seconds=0.1)
  (tmp_path / "FULL" / "README.txt").write_text("VocalSet")
  tech = sources.read_source("vocalset_technique", str(tmp_path))
  got = {t.track_id: (t.label, t.artist, t.split) for t in tech.tracks}
  assert {k: v[:2] for k, v in got.items()} == {
      "f1/arpeggios/belt/f1_arpeggios_belt_a": ("belt", "f1"),
      "f1/scales/vibrato/f1_scales_vibrato_e": ("vibrato", "f1"),
      "m4/long_tones/trillo/m4_long_trillo_o": ("trillo", "m4"),
      "f2/scales/vibrato/f2_scales_vibrato_a": ("vibrato", "f2"),
      "f2/arpeggios/lip_trill/lip_trill_arps": ("lip_trill", "f2")}
  # MARBLE's held-out singers are test; the others train or valid.
  assert {k: v[2] for k, v in got.items() if v[1] == "f2"} == {
      "f2/scales/vibrato/f2_scales_vibrato_a": "test",
      "f2/arpeggios/lip_trill/lip_trill_arps": "test"}
  assert {v[2] for v in got.values() if v[1] != "f2"} <= {"train", "valid"}
  assert sorted(r.split(" (")[0] for _, r in tech.ignored) == [
      "vocalset: deleted by MARBLE", "vocalset: not SINGER/CONTEXT/"
      "TECHNIQUE/NAME.wav", "vocalset: technique forte not in the "
      "technique task"]
  singer = sources.read_source("vocalset_singer", str(tmp_path))
  labels = {t.track_id: t.label for t in singer.tracks}
  assert labels["m3/long_tones/forte/m3_long_forte_a"] == "m3"
  # The file named without its singer takes the folder's.
  assert labels["f2/arpeggios/lip_trill/lip_trill_arps"] == "f2"
  assert len(labels) == 6
