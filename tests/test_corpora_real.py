"""Corpus readers on real recordings (../shared/data) and on fake VoxCeleb/UrbanSound8K layouts.

Real samples: FSDD (8 kHz, clips shorter than a 2 s frame), LibriSpeech train-clean-100 one
utterance per speaker (flat flac, 16 kHz, SPEAKERS.TXT), ESC-10 in the ESC-50 layout (44.1 kHz,
5 s). Small subsets keep the tests fast.
"""

from __future__ import annotations

import copy
from pathlib import Path

import mel_configs
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from slimaudio.audio import AudioChecks
from slimaudio.corpora import events, speakers
from slimaudio.errors import DataError
from slimaudio.features import frame_signal, log_mel, n_windows
from slimaudio.schemas.data import PrepareSounds, PrepareSpeakers
from slimaudio.spec import build

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
FSDD = SHARED / "fsdd"
LIBRI = SHARED / "librispeech-train-clean-100-1utt"
ESC = SHARED / "esc10"
SR = 16000
SPK_MEL = mel_configs.SPEAKER
SND_MEL = mel_configs.SOUND
WINDOW, STRIDE = 2 * SR, int(1.6 * SR)


def need(path: Path) -> None:
    if not path.is_dir():
        pytest.skip(f"real-data sample {path} is absent (see ../shared/data/README.md)")


# --- FSDD ---------------------------------------------------------------------------------

def test_fsdd_reader_load_resample_frame_featurise():
    need(FSDD)
    corpus = speakers.read_fsdd(FSDD)
    assert len(corpus.utterances) == 3000
    assert corpus.speakers == ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]
    sub = speakers.subset(corpus, max_speakers=3, max_utts_per_speaker=4, seed=1)
    assert len(sub.speakers) == 3 and len(sub.utterances) == 12
    checks = AudioChecks(silence_dbfs=-60.0, min_duration_s=0.05)
    for u in sub.utterances:
        assert sf.info(u.path).samplerate == 8000
        x = sub.load(u, SR, checks)
        native = sf.info(u.path).frames
        assert abs(x.size - 2 * native) <= 1  # 8 kHz -> 16 kHz
        assert x.size < WINDOW  # every FSDD clip is shorter than one 2 s frame
        assert n_windows(x.size, WINDOW, STRIDE, "drop") == 0
        framed = frame_signal(x, WINDOW, STRIDE, "pad")
        assert framed.shape == (1, WINDOW) and not framed[0, x.size:].any()
        feats = log_mel(x, SPK_MEL)
        assert feats.shape == (SPK_MEL.n_frames(x.size), 80) and np.isfinite(feats).all()


def test_fsdd_through_prepare_speakers(tmp_path):
    need(FSDD)
    from slimaudio.prepare.speakers import prepare_speakers

    section = _speaker_section("fsdd", FSDD, test_speakers=2, max_utts=6)
    section["audio"]["min_duration_s"] = 0.05
    res = prepare_speakers(build(PrepareSpeakers, section), tmp_path / "spk", **_base(), workers=1,
                           progress=False)
    m = pd.read_csv(tmp_path / "spk" / "manifest.csv")
    assert len(m) == 36 and set(m.split) == {"train", "test"}
    assert m[m.split == "test"].speaker.nunique() == 2
    trials = (tmp_path / "spk" / "trials.txt").read_text().split("\n")
    assert res.info["counts"]["trials"] == len([t for t in trials if t])
    feats = np.load(tmp_path / "spk" / "feats.npy", mmap_mode="r")
    assert feats.shape == (m.feat_frames.sum(), 80)


# --- LibriSpeech --------------------------------------------------------------------------

def test_librispeech_reader_groups_from_speakers_txt():
    need(LIBRI)
    corpus = speakers.read_librispeech(LIBRI)
    assert len(corpus.utterances) == 251 and len(corpus.speakers) == 251
    groups = {u.group for u in corpus.utterances}
    assert groups == {"f", "m"}
    u = next(u for u in corpus.utterances if u.utt_id == "103-1240-0000")
    assert (u.speaker, u.session, u.group) == ("103", "1240", "f")
    for u in speakers.subset(corpus, max_speakers=3, max_utts_per_speaker=None, seed=2).utterances:
        x = corpus.load(u, SR, AudioChecks())
        assert x.size == sf.info(u.path).frames  # already 16 kHz: no resampling
        assert log_mel(x, SPK_MEL).shape[1] == 80


def test_librispeech_one_utterance_per_speaker_cannot_make_target_trials(tmp_path):
    need(LIBRI)
    from slimaudio.prepare.speakers import prepare_speakers

    section = _speaker_section("librispeech", LIBRI, test_speakers=3, max_speakers=8)
    with pytest.raises(DataError, match="no target or no non-target pair"):
        prepare_speakers(build(PrepareSpeakers, section), tmp_path / "spk", **_base(), workers=1,
                         progress=False)
    assert not (tmp_path / "spk").exists()  # atomic: nothing half-written


def test_librispeech_nested_layout(tmp_path):
    root = tmp_path / "LibriSpeech" / "train-clean-100"
    for spk, chap in (("19", "198"), ("26", "495")):
        d = root / spk / chap
        d.mkdir(parents=True)
        for n in range(2):
            sf.write(d / f"{spk}-{chap}-{n:04d}.flac", _noise(1.0, n), SR)
        (d / f"{spk}-{chap}.trans.txt").write_text("transcript\n")
    (tmp_path / "LibriSpeech" / "SPEAKERS.TXT").write_text(
        ";ID  |SEX| SUBSET |MINUTES| NAME\n19   | F | train-clean-100 | 25.19 | A\n"
        "26   | M | train-clean-100 | 25.08 | B\n")
    corpus = speakers.read_librispeech(root)
    assert [(u.utt_id, u.group) for u in corpus.utterances] == [
        ("19-198-0000", "f"), ("19-198-0001", "f"), ("26-495-0000", "m"), ("26-495-0001", "m")]


def test_librispeech_speaker_folders_without_chapter_level(tmp_path, shared_data):
    """<speaker>/<spk>-<ch>-<n>.flac (chapter level dropped) is read, from real files."""
    src = shared_data / "librispeech-train-clean-100-1utt"
    need(src)
    real = sorted(src.glob("*.flac"))[:3]
    for f in real:  # symlinks: the samples stay in ../shared/data, nothing is copied
        (tmp_path / f.name.split("-")[0]).mkdir()
        (tmp_path / f.name.split("-")[0] / f.name).symlink_to(f)
    corpus = speakers.read_librispeech(tmp_path)
    assert [u.utt_id for u in corpus.utterances] == [f.stem for f in real]
    assert [u.session for u in corpus.utterances] == [f.stem.split("-")[1] for f in real]
    assert corpus.skipped == []
    assert corpus.load(corpus.utterances[0], SR, AudioChecks()).size > 0


def test_librispeech_misnamed_audio_is_reported_not_dropped(tmp_path):
    (tmp_path / "19").mkdir()
    sf.write(tmp_path / "19" / "19-198-0000.flac", _noise(0.5, 0), SR)
    sf.write(tmp_path / "19" / "intro.flac", _noise(0.5, 1), SR)
    corpus = speakers.read_librispeech(tmp_path)
    assert [u.utt_id for u in corpus.utterances] == ["19-198-0000"]
    assert corpus.skipped == [("unrecognised_name", f"{tmp_path / '19' / 'intro.flac'}: name does "
                               "not match <speaker>-<chapter>-<n> (LibriSpeech); not used")]


def test_librispeech_through_symlinked_folders_and_duplicates_counted(tmp_path):
    store = tmp_path / "store" / "19" / "198"
    store.mkdir(parents=True)
    sf.write(store / "19-198-0000.flac", _noise(0.5, 0), SR)
    sf.write(store / "19-198-0000.wav", _noise(0.5, 0), SR)   # a converted copy beside it
    root = tmp_path / "libri"
    root.mkdir()
    (root / "train-clean-100").symlink_to(tmp_path / "store", target_is_directory=True)
    (root / "again").symlink_to(tmp_path / "store", target_is_directory=True)  # seen once
    corpus = speakers.read_librispeech(root)
    assert [u.utt_id for u in corpus.utterances] == ["19-198-0000"]
    assert [r for r, _ in corpus.skipped] == ["duplicate"]
    assert "19-198-0000.wav: utterance 19-198-0000 already read from" in corpus.skipped[0][1]


# every layout error says what was looked for and what was found instead
LAYOUT_ERRORS = {
    "voxceleb": (speakers.read_voxceleb, "no idXXXXX/<video>/<n>.wav files (VoxCeleb layout)"),
    "librispeech": (speakers.read_librispeech, "no <speaker>-<chapter>-<n>.flac/.wav files"),
    "fsdd": (speakers.read_fsdd, "no <digit>_<speaker>_<n>.wav files (FSDD layout)"),
    "esc50": (events.read_esc50, "meta/esc50.csv not found (metadata file)"),
    "urbansound8k": (events.read_urbansound8k, "metadata/UrbanSound8K.csv not found (metadata file)"),
    "folder": (events.read_folder, "no class folders (folder layout: <root>/<class>/<clip>)"),
}


@pytest.mark.parametrize("kind", sorted(LAYOUT_ERRORS))
def test_layout_errors_say_what_was_expected_and_what_was_found(tmp_path, kind):
    for name in ("a.mp3", "b.mp3", "notes.txt"):
        (tmp_path / name).write_bytes(b"ID3")
    reader, expected = LAYOUT_ERRORS[kind]
    with pytest.raises(DataError) as info:
        reader(tmp_path)
    msg = str(info.value)
    assert expected in msg and "\n" not in msg, msg
    assert msg.endswith("found 3 file(s): 2 .mp3, 1 .txt; in . (3); e.g. a.mp3"), msg


def test_missing_corpus_directory_says_what_is_there(tmp_path):
    (tmp_path / "LibriSpeech").mkdir()
    with pytest.raises(DataError) as info:
        speakers.read_librispeech(tmp_path / "Librispeech")
    assert str(info.value) == (f"{tmp_path / 'Librispeech'}: corpus directory for 'librispeech' "
                               f"not found (no such directory; {tmp_path} holds: LibriSpeech)")


# --- ESC-10 -------------------------------------------------------------------------------

def test_esc10_reader_resample_frame_featurise():
    need(ESC)
    corpus = events.read_esc50(ESC, esc10_only=True)
    assert len(corpus.clips) == 83 and len(corpus.classes) == 10
    assert corpus.classes[0] == "dog" and "chainsaw" in corpus.classes
    sub = events.cap_clips(corpus, 1, seed=0)
    assert len(sub.clips) == 10 and {c.label for c in sub.clips} == set(range(10))
    for c in sub.clips[:4]:
        assert sf.info(c.path).samplerate == 44100
        x = sub.load(c, SR, AudioChecks())
        assert x.size == 5 * SR  # 5 s at 44.1 kHz -> 16 kHz
        frames = frame_signal(x, WINDOW, STRIDE)
        assert frames.shape == (2, WINDOW)
        f = log_mel(frames[0], SND_MEL)
        assert f.shape == (99, 64) and np.isfinite(f).all()


def test_esc10_through_prepare_sounds(tmp_path):
    need(ESC)
    from slimaudio.prepare.sounds import prepare_sounds

    section = _sound_section("esc50", ESC, esc10_only=True, max_clips=4)
    res = prepare_sounds(build(PrepareSounds, section), tmp_path / "snd", **_base(), workers=1,
                         progress=False)
    m = pd.read_csv(tmp_path / "snd" / "manifest.csv")
    frames = np.load(tmp_path / "snd" / "frames.npy", mmap_mode="r")
    assert frames.shape == (len(m), 64, 99) and frames.dtype == np.float16
    assert res.info["counts"]["corpus_clips"] == 40
    # split by source recording: no ESC-50 source file in two splits
    src = m.clip_id.str.split("-").str[1]
    assert (m.assign(src=src).groupby("src").split.nunique() == 1).all()


def test_near_silent_esc_clip_frames_are_dropped_by_threshold(tmp_path):
    """A raised silence threshold drops quiet frames (and counts them) rather than failing."""
    need(ESC)
    from slimaudio.prepare.sounds import prepare_sounds

    section = _sound_section("esc50", ESC, esc10_only=True, max_clips=2)
    section["audio"]["silence_dbfs"] = -14.0   # some clock_tick frames peak below -14 dBFS
    res = prepare_sounds(build(PrepareSounds, section), tmp_path / "snd", **_base(), workers=1,
                         progress=False)
    assert res.info["framing"]["silent_frames_dropped"] + res.info["skipped"]["by_reason"].get("silent", 0) > 0


# --- fake layouts: VoxCeleb and UrbanSound8K ---------------------------------------------

def _noise(dur: float, seed: int) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(dur * SR))).astype(np.float32)


def _fake_voxceleb(root: Path, with_trials: bool = True) -> Path:
    n = 0
    for spk in ("id10001", "id10002", "id10003", "id10004"):
        for video in ("vidA", "vidB"):
            d = root / "wav" / spk / video
            d.mkdir(parents=True)
            for k in (1, 2):
                sf.write(d / f"{k:05d}.wav", _noise(0.6, n), SR)
                n += 1
    (root / "vox1_meta.csv").write_text(
        "VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\n"
        "id10001\tA\tm\tUSA\tdev\nid10002\tB\tf\tUSA\tdev\nid10003\tC\tf\tUK\ttest\n"
        "id10004\tD\tm\tUK\ttest\n")
    if with_trials:
        (root / "veri_test2.txt").write_text(
            "1 id10003/vidA/00001.wav id10003/vidB/00002.wav\n"
            "0 id10003/vidA/00001.wav id10004/vidA/00002.wav\n"
            "1 id10004/vidA/00001.wav id10004/vidB/00001.wav\n"
            "0 id10004/vidB/00002.wav id10003/vidB/00001.wav\n")
    return root


def test_voxceleb_reader_with_official_trials(tmp_path):
    root = _fake_voxceleb(tmp_path / "vox1")
    corpus = speakers.read_voxceleb(root)
    assert len(corpus.utterances) == 16
    u = corpus.utterances[0]
    assert (u.utt_id, u.speaker, u.session, u.group) == ("id10001/vidA/00001", "id10001", "vidA", "m")
    assert corpus.trials[0] == (1, "id10003/vidA/00001", "id10003/vidB/00002")
    assert speakers.trial_speakers(corpus) == {"id10003", "id10004"}
    assert corpus.load(u, SR, AudioChecks()).size == int(0.6 * SR)


def test_voxceleb_official_trials_define_the_test_split(tmp_path):
    from slimaudio.prepare.speakers import prepare_speakers

    root = _fake_voxceleb(tmp_path / "vox1")
    bad = root / "wav" / "id10004" / "vidB" / "00002.wav"
    sf.write(bad, np.zeros(SR, dtype=np.float32), SR)  # all-silent: skipped, its trial dropped
    section = _speaker_section("voxceleb", root, test_speakers=1)
    res = prepare_speakers(build(PrepareSpeakers, section), tmp_path / "spk", **_base(), workers=1,
                           progress=False)
    m = pd.read_csv(tmp_path / "spk" / "manifest.csv")
    assert sorted(m[m.split == "test"].speaker.unique()) == ["id10003", "id10004"]
    assert res.info["corpus"]["trials"].endswith("veri_test2.txt")
    lines = (tmp_path / "spk" / "trials.txt").read_text().splitlines()
    assert lines == ["1 id10003/vidA/00001 id10003/vidB/00002",
                     "0 id10003/vidA/00001 id10004/vidA/00002",
                     "1 id10004/vidA/00001 id10004/vidB/00001"]
    assert res.info["counts"]["trials_dropped"] == 1
    assert res.info["skipped"]["by_reason"] == {"silent": 1}


def test_voxceleb_without_trial_list_and_missing_named_list(tmp_path):
    root = _fake_voxceleb(tmp_path / "vox", with_trials=False)
    assert speakers.read_voxceleb(root).trials is None
    with pytest.raises(DataError, match="trial list 'nope.txt' not found"):
        speakers.read_voxceleb(root, trial_list="nope.txt")
    with pytest.raises(DataError, match="VoxCeleb layout"):
        speakers.read_voxceleb(tmp_path)


def test_urbansound8k_reader_groups_by_recording(tmp_path):
    root = tmp_path / "UrbanSound8K"
    rows = [("100032-3-0-0.wav", 100032, 1, 3, "dog_bark"),
            ("100032-3-0-1.wav", 100032, 1, 3, "dog_bark"),
            ("100263-2-0-117.wav", 100263, 5, 2, "children_playing"),
            ("102305-6-0-0.wav", 102305, 2, 6, "gun_shot")]
    for i, (name, _, fold, _, _) in enumerate(rows):
        d = root / "audio" / f"fold{fold}"
        d.mkdir(parents=True, exist_ok=True)
        sf.write(d / name, _noise(0.5 * 22050 / SR, i), 22050)  # 0.5 s at 22.05 kHz
    (root / "metadata").mkdir()
    (root / "metadata" / "UrbanSound8K.csv").write_text(
        "slice_file_name,fsID,start,end,salience,fold,classID,class\n"
        + "".join(f"{n},{fs},0,0.5,1,{fold},{cid},{cls}\n" for n, fs, fold, cid, cls in rows))
    corpus = events.read_urbansound8k(root)
    assert corpus.classes == ["children_playing", "dog_bark", "gun_shot"]
    assert [c.label for c in corpus.clips] == [1, 1, 0, 2]
    assert corpus.clips[0].group == corpus.clips[1].group != corpus.clips[2].group
    x = corpus.load(corpus.clips[2], SR, AudioChecks())
    assert abs(x.size - SR // 2) <= 1  # 22.05 kHz -> 16 kHz
    with pytest.raises(DataError, match="UrbanSound8K.csv"):
        events.read_urbansound8k(tmp_path)


def _fake_us8k(root: Path, csv_fold: int, disk_folds: list[int]) -> Path:
    """Four dog_bark/gun_shot slices the CSV puts in fold<csv_fold>, written to disk_folds."""
    names = [("100032-3-0-0.wav", 3, "dog_bark"), ("100032-3-0-1.wav", 3, "dog_bark"),
             ("102305-6-0-0.wav", 6, "gun_shot"), ("102305-6-0-1.wav", 6, "gun_shot")]
    for i, ((name, _, _), fold) in enumerate(zip(names, disk_folds, strict=True)):
        (root / "audio" / f"fold{fold}").mkdir(parents=True, exist_ok=True)
        sf.write(root / "audio" / f"fold{fold}" / name, _noise(2.5 * 22050 / SR, i), 22050)
    (root / "metadata").mkdir()
    (root / "metadata" / "UrbanSound8K.csv").write_text(
        "slice_file_name,fsID,start,end,salience,fold,classID,class\n"
        + "".join(f"{n},{n.split('-')[0]},0,2.5,1,{csv_fold},{cid},{cls}\n" for n, cid, cls in names))
    return root


def test_urbansound8k_files_in_other_folds_are_missing_not_unreadable(tmp_path, caplog):
    from slimaudio.prepare.sounds import prepare_sounds

    root = _fake_us8k(tmp_path / "us8k", csv_fold=1, disk_folds=[1, 3, 1, 3])
    section = _sound_section("urbansound8k", root)
    section["split"].update(val_fraction=0.0, test_fraction=0.0)
    res = prepare_sounds(build(PrepareSounds, section), tmp_path / "snd", **_base(), workers=1,
                         progress=False)
    assert res.info["skipped"]["by_reason"] == {"missing": 2}
    assert res.metrics["skipped_missing"] == 2 and "skipped_unreadable" not in res.metrics
    assert res.info["skipped"]["examples"][0] == f"{root}/audio/fold1/100032-3-0-1.wav: no such file"
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert f"{root}: 2 of 4 file(s) listed in metadata/UrbanSound8K.csv are missing where it " \
           "says (audio/fold<fold>/<slice_file_name>, e.g. audio/fold1/100032-3-0-1.wav); " \
           "counted as skipped 'missing'" in warned, warned
    assert f"{root}: 2 of the 2 missing file(s) are in another fold folder than " \
           "metadata/UrbanSound8K.csv says (e.g. audio/fold1/100032-3-0-1.wav is at " \
           "audio/fold3/100032-3-0-1.wav)" in " ".join(warned), warned


def test_urbansound8k_one_folder_down_names_the_path_to_give(tmp_path):
    root = _fake_us8k(tmp_path / "download" / "UrbanSound8K", csv_fold=1, disk_folds=[1, 1, 1, 1])
    with pytest.raises(DataError) as info:
        events.read_urbansound8k(tmp_path / "download")
    assert str(info.value) == (f"{tmp_path / 'download'}: metadata/UrbanSound8K.csv not found "
                               f"here but in {root}: give {root} as the corpus path")


@pytest.mark.parametrize("split, consequence", [("test", "nothing to measure"),
                                               ("val", "without validation")])
def test_an_empty_split_is_never_silent(tmp_path, caplog, split, consequence):
    """Two recordings per class leave no room for a test or val split: never silence."""
    from slimaudio.prepare.sounds import prepare_sounds

    root = _fake_us8k(tmp_path / "us8k", csv_fold=1, disk_folds=[1, 1, 1, 1])
    section = _sound_section("urbansound8k", root)
    section["split"].update(val_fraction=0.5 if split == "val" else 0.0,
                            test_fraction=0.5 if split == "test" else 0.0)
    section["undersample"]["cap"] = None
    message = f"prepare_sounds: the {split} split has no frames"
    prepare_sounds(build(PrepareSounds, section), tmp_path / "snd", **_base(), workers=1,
                   progress=False)
    assert any(message in r.getMessage() and consequence in r.getMessage()
               for r in caplog.records if r.levelname == "WARNING")


def test_urbansound8k_with_no_listed_file_in_place_is_a_layout_error(tmp_path):
    root = _fake_us8k(tmp_path / "us8k", csv_fold=1, disk_folds=[3, 3, 7, 7])
    with pytest.raises(DataError) as info:
        events.read_urbansound8k(root)
    assert str(info.value) == (
        f"{root}: layout does not match metadata/UrbanSound8K.csv: none of its 4 file(s) is where "
        "it says (audio/fold<fold>/<slice_file_name>, e.g. audio/fold1/100032-3-0-0.wav); found "
        "5 file(s): 4 .wav, 1 .csv; in audio/fold3 (2), audio/fold7 (2), metadata (1); "
        "e.g. audio/fold3/100032-3-0-0.wav")


def test_esc50_with_no_listed_file_in_place_is_a_layout_error(tmp_path, shared_data):
    src = shared_data / "esc10"
    need(src)
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "esc50.csv").symlink_to(src / "meta" / "esc50.csv")
    (tmp_path / "wav").mkdir()  # the clips kept under another folder name than audio/
    (tmp_path / "wav" / "1-100032-A-0.wav").symlink_to(src / "audio" / "1-100032-A-0.wav")
    with pytest.raises(DataError, match=r"layout does not match meta/esc50.csv: none of its \d+ "
                       r"file\(s\) is where it says \(audio/<filename>, e.g. audio/.*\); found "
                       r"2 file\(s\): 1 .csv, 1 .wav; in meta \(1\), wav \(1\)"):
        events.read_esc50(tmp_path, esc10_only=True)


def test_folder_reader_one_folder_per_class(tmp_path):
    for cls, n in (("beep", 2), ("alarm", 1)):
        (tmp_path / cls).mkdir()
        for k in range(n):
            sf.write(tmp_path / cls / f"c{k}.wav", _noise(0.3, k), SR)
    (tmp_path / "beep" / "notes.txt").write_text("not audio")
    corpus = events.read_folder(tmp_path)
    assert corpus.classes == ["alarm", "beep"]
    assert [(c.clip_id, c.label) for c in corpus.clips] == [
        ("alarm/c0", 0), ("beep/c0", 1), ("beep/c1", 1), ("beep/notes", 1)]


# --- helpers ------------------------------------------------------------------------------

def _params() -> dict:
    import yaml

    return yaml.safe_load((REPO / "params.yaml").read_text())


def _base() -> dict:
    return {"seed": 123, "sample_rate": SR, "on_bad_audio": "skip"}


def _speaker_section(kind: str, path: Path, test_speakers: float, max_speakers: int | None = None,
                     max_utts: int | None = None) -> dict:
    sec = copy.deepcopy(_params()["prepare_speakers"])
    sec["corpus"].update(kind=kind, path=str(path), max_speakers=max_speakers,
                         max_utts_per_speaker=max_utts)
    sec["split"]["test_speakers"] = test_speakers
    sec["trials"].update(targets=20, nontargets=20)
    return sec


def _sound_section(kind: str, path: Path, esc10_only: bool = False, max_clips: int | None = None) -> dict:
    sec = copy.deepcopy(_params()["prepare_sounds"])
    sec["corpus"].update(kind=kind, path=str(path), esc10_only=esc10_only, max_clips_per_class=max_clips)
    return sec
