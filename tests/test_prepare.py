"""The data-preparation library: splits, trials, bad-file handling, outputs per the contract."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from slimaudio.audio import from_int16
from slimaudio.corpora.events import Clip
from slimaudio.errors import BadAudioError, DataError, ParamError
from slimaudio.features import MelConfig, log_mel
from slimaudio.prepare import common
from slimaudio.prepare.common import NpyAppender
from slimaudio.prepare.sounds import prepare_sounds, split_groups
from slimaudio.prepare.speakers import make_trials, prepare_speakers, split_speakers
from slimaudio.schemas.data import PrepareSounds, PrepareSpeakers
from slimaudio.spec import build

REPO = Path(__file__).resolve().parents[1]
SR = 16000


def _params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def _base(on_bad_audio: str = "skip") -> dict:
    return {"seed": 7, "sample_rate": SR, "on_bad_audio": on_bad_audio}


def _tiny_speakers() -> dict:
    sec = copy.deepcopy(_params()["prepare_speakers"])
    sec["synthetic"].update(n_speakers=6, utts_per_speaker=3, sessions_per_speaker=2,
                            min_dur_s=0.6, max_dur_s=1.0)
    sec["split"]["test_speakers"] = 2
    sec["trials"].update(targets=5, nontargets=5)
    return sec


def _tiny_sounds() -> dict:
    sec = copy.deepcopy(_params()["prepare_sounds"])
    sec["synthetic"].update(classes=["doorbell", "dog_bark", "siren_wail"], clips_per_class_max=6,
                            imbalance=0.5, min_dur_s=1.0, max_dur_s=4.0)
    sec["split"].update(val_fraction=0.2, test_fraction=0.2)
    sec["undersample"]["cap"] = 4
    return sec


# --- npy streaming ------------------------------------------------------------------------

def test_npy_appender_writes_a_memory_mappable_file(tmp_path):
    path = tmp_path / "x.npy"
    with NpyAppender(path, np.float16, (3,)) as w:
        assert w.append(np.ones((2, 3))) == 0
        assert w.append(np.zeros((0, 3))) == 2
        assert w.append(np.full((4, 3), 2.0)) == 2
        with pytest.raises(ValueError):
            w.append(np.ones((1, 4)))
    arr = np.load(path, mmap_mode="r")
    assert arr.shape == (6, 3) and arr.dtype == np.float16
    assert arr[:2].sum() == 6 and arr[2:].sum() == 24
    assert np.lib.format.read_magic(path.open("rb")) == (1, 0)


# --- splits and trials --------------------------------------------------------------------

def test_split_speakers_count_fraction_and_groups():
    groups = {f"s{i:02d}": ("f" if i % 3 else "m") for i in range(30)}
    split = split_speakers(groups, 0.2, seed=1)
    test = [s for s, v in split.items() if v == "test"]
    assert len(test) == 6
    assert {groups[s] for s in test} == {"f", "m"}  # both voice groups tested
    assert sum(v == "test" for v in split_speakers(groups, 5, seed=1).values()) == 5
    assert split == split_speakers(groups, 0.2, seed=1)
    assert split != split_speakers(groups, 0.2, seed=2)
    with pytest.raises(ParamError, match="test_speakers"):
        split_speakers(groups, 30, seed=1)


def test_trials_are_unique_labelled_and_never_self_trials():
    spk = [f"s{i // 5}" for i in range(40)]          # 8 speakers x 5 utterances
    ids = [f"u{i:02d}" for i in range(40)]
    t = make_trials(ids, spk, 30, 30, seed=3)
    owner = dict(zip(ids, spk, strict=True))
    assert len(t) == 60 and int(t.labels.sum()) == 30
    pairs = set()
    for lab, e, s in zip(t.labels, t.enroll, t.test, strict=True):
        assert e != s
        assert lab == int(owner[e] == owner[s])
        pairs.add(frozenset((e, s)))
    assert len(pairs) == 60


def test_trials_take_every_target_pair_and_cap_at_what_exists():
    spk = [f"s{i // 5}" for i in range(40)]          # 8 x C(5, 2) = 80 target pairs
    ids = [f"u{i:02d}" for i in range(40)]
    every = make_trials(ids, spk, None, 200, seed=3)
    assert int(every.labels.sum()) == 80 and len(every) == 280
    assert len({frozenset(p) for p in zip(every.enroll, every.test, strict=True)}) == 280
    capped = make_trials(ids, spk, 1000, 10_000, seed=3)  # 780 - 80 = 700 non-target pairs
    assert int(capped.labels.sum()) == 80 and len(capped) == 80 + 700
    with pytest.raises(DataError):
        make_trials(["a", "b"], ["x", "y"], None, 10, seed=0)


def test_split_groups_keeps_recordings_whole():
    clips = [Clip(clip_id=f"c{i}", label=i % 3, class_name=str(i % 3), group=f"g{i // 2}")
             for i in range(60)]
    split = split_groups(clips, 0.2, 0.2, seed=0)
    assert set(split) == {c.group for c in clips}
    counts = pd.Series(split).value_counts()
    assert set(counts.index) == {"train", "val", "test"}
    assert counts["train"] > counts["test"] >= 3
    # three recordings of one class: one each
    few = [Clip(clip_id=f"c{i}", label=0, class_name="a", group=f"g{i}") for i in range(3)]
    assert sorted(split_groups(few, 0.1, 0.1, seed=0).values()) == ["test", "train", "val"]


# --- prepare_speakers on the synthetic corpus ----------------------------------------------

def test_prepare_speakers_synthetic_contract(tmp_path):
    out = tmp_path / "speakers"
    res = prepare_speakers(build(PrepareSpeakers, _tiny_speakers()), out, **_base(), workers=1,
                           progress=False)
    assert sorted(p.name for p in out.iterdir()) == [
        "audio.npy", "feats.npy", "info.json", "manifest.csv", "trials.txt"]
    m = pd.read_csv(out / "manifest.csv")
    assert list(m.columns) == ["utt_id", "speaker", "split", "session", "group", "masked", "arousal",
                               "duration_s", "feat_offset", "feat_frames", "audio_offset",
                               "audio_samples", "source"]
    assert len(m) == 18 and m.speaker.nunique() == 6
    tr, te = set(m[m.split == "train"].speaker), set(m[m.split == "test"].speaker)
    assert len(te) == 2 and not tr & te
    feats = np.load(out / "feats.npy", mmap_mode="r")
    audio = np.load(out / "audio.npy", mmap_mode="r")
    assert feats.dtype == np.float16 and audio.dtype == np.int16
    assert feats.shape == (m.feat_frames.sum(), 80) and audio.shape == (m.audio_samples.sum(),)
    assert (m.feat_offset == np.concatenate([[0], np.cumsum(m.feat_frames)[:-1]])).all()
    info = json.loads((out / "info.json").read_text())
    mel = MelConfig(**{k: info[k] for k in ("sample_rate", "n_mels", "n_fft", "win_length",
                                            "hop_length", "f_min", "f_max")})
    # the stored waveform reproduces the stored features (numpy and torch)
    row = m.iloc[3]
    wav = from_int16(audio[row.audio_offset:row.audio_offset + row.audio_samples])
    stored = feats[row.feat_offset:row.feat_offset + row.feat_frames].astype(np.float32)
    np.testing.assert_allclose(log_mel(wav, mel), stored, atol=0.02)
    torch = pytest.importorskip("torch")
    from slimaudio.features import LogMel

    with torch.no_grad():
        np.testing.assert_allclose(LogMel(mel)(torch.from_numpy(wav)).numpy()[0], stored, atol=0.02)
    # trials: test speakers only, balanced
    lines = [ln.split() for ln in (out / "trials.txt").read_text().splitlines()]
    test_ids = set(m[m.split == "test"].utt_id)
    assert all(e in test_ids and t in test_ids and e != t for _, e, t in lines)
    assert sum(lab == "1" for lab, _, _ in lines) == sum(lab == "0" for lab, _, _ in lines) == 5
    assert res.metrics["test_speakers"] == 2 and res.metrics["skipped_files"] == 0
    assert info["counts"]["utterances"] == 18 and info["corpus"]["kind"] == "synthetic"


def test_prepare_speakers_is_deterministic(tmp_path):
    a = prepare_speakers(build(PrepareSpeakers, _tiny_speakers()), tmp_path / "a", **_base(),
                         workers=1, progress=False)
    b = prepare_speakers(build(PrepareSpeakers, _tiny_speakers()), tmp_path / "b", **_base(),
                         workers=1, progress=False)
    assert a.metrics == b.metrics
    for name in ("feats.npy", "audio.npy", "manifest.csv", "trials.txt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


# --- prepare_sounds -----------------------------------------------------------------------

def test_prepare_sounds_synthetic_contract(tmp_path):
    out = tmp_path / "sounds"
    res = prepare_sounds(build(PrepareSounds, _tiny_sounds()), out, **_base(), workers=1,
                         progress=False)
    assert sorted(p.name for p in out.iterdir()) == [
        "class_weights.json", "classes.json", "frames.npy", "info.json", "manifest.csv"]
    m = pd.read_csv(out / "manifest.csv")
    assert list(m.columns) == ["frame_id", "clip_id", "group", "label", "class_name", "split",
                               "start_s", "source"]
    frames = np.load(out / "frames.npy", mmap_mode="r")
    assert frames.shape == (len(m), 64, 99) and frames.dtype == np.float16
    classes = json.loads((out / "classes.json").read_text())
    assert classes == ["doorbell", "dog_bark", "siren_wail"]
    assert (m.class_name == [classes[i] for i in m.label]).all()
    assert (m.groupby("clip_id").split.nunique() == 1).all()  # no clip in two splits
    train = m[m.split == "train"]
    assert train.label.value_counts().max() <= 4  # undersampled to the cap
    info = json.loads((out / "info.json").read_text())
    assert info["counts"]["frames_after"]["train"] == len(train)
    assert info["counts"]["frames_before"]["train"] >= len(train)
    assert info["class_counts"]["after"]["train"] == [int((train.label == i).sum()) for i in range(3)]
    weights = json.loads((out / "class_weights.json").read_text())
    counts = train.class_name.value_counts()
    for name, w in weights.items():
        assert w == pytest.approx(len(train) / (counts.size * counts[name]), rel=1e-5)
    assert res.metrics["classes"] == 3


def _bad_folder(root: Path) -> dict[str, str]:
    """A folder corpus: two good clips per class plus one bad file of each kind."""
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for k in range(2):
            sf.write(root / cls / f"good{k}.wav", 0.3 * rng.standard_normal(2 * SR), SR)
    bad = {"a/corrupt.wav": "corrupt", "a/empty.wav": "empty", "a/silent.wav": "silent",
           "b/nan.wav": "non_finite", "b/short.wav": "too_short", "b/clip.mp3": "unsupported_format",
           "b/rate.wav": "bad_sample_rate"}
    (root / "a" / "corrupt.wav").write_bytes(b"RIFF....WAVEjunk")
    sf.write(root / "a" / "empty.wav", np.zeros(0), SR)
    sf.write(root / "a" / "silent.wav", np.zeros(SR), SR)
    nan = 0.3 * rng.standard_normal(SR)
    nan[5] = np.nan
    sf.write(root / "b" / "nan.wav", nan, SR, subtype="FLOAT")
    sf.write(root / "b" / "short.wav", 0.3 * rng.standard_normal(SR // 2), SR)  # 0.5 s < 2 s frame
    (root / "b" / "clip.mp3").write_bytes(b"ID3\x03\x00")
    sf.write(root / "b" / "rate.wav", 0.3 * rng.standard_normal(2000), 2000)
    return bad


def _folder_section(root: Path) -> PrepareSounds:
    sec = _tiny_sounds()
    sec["corpus"].update(kind="folder", path=str(root))
    sec["framing"]["short_clip"] = "drop"
    sec["split"].update(val_fraction=0.0, test_fraction=0.0)
    return build(PrepareSounds, sec)


def test_bad_files_are_skipped_and_counted_by_reason(tmp_path):
    bad = _bad_folder(tmp_path / "corpus")
    res = prepare_sounds(_folder_section(tmp_path / "corpus"), tmp_path / "out", **_base("skip"),
                         workers=1, progress=False)
    expected = {}
    for reason in bad.values():
        expected[reason] = expected.get(reason, 0) + 1
    assert res.info["skipped"]["by_reason"] == expected
    assert res.info["skipped"]["total"] == 7 == res.metrics["skipped_files"]
    assert res.metrics["skipped_too_short"] == 1
    assert res.info["counts"]["frames_after"]["train"] == 4
    assert all(str(tmp_path / "corpus") in ex for ex in res.info["skipped"]["examples"])


@pytest.mark.parametrize("name", ["a/corrupt.wav", "a/silent.wav", "b/nan.wav", "b/short.wav",
                                  "b/clip.mp3", "b/rate.wav"])
def test_fail_mode_stops_on_the_first_bad_file_and_names_it(tmp_path, name):
    root = tmp_path / "corpus"
    bad = _bad_folder(root)
    for other in bad:  # leave only the one bad file
        if other != name:
            (root / other).unlink()
    with pytest.raises(BadAudioError) as info:
        prepare_sounds(_folder_section(root), tmp_path / "out", **_base("fail"), workers=1,
                       progress=False)
    msg = str(info.value)
    assert str(root / name) in msg and "on_bad_audio = fail" in msg and "\n" not in msg
    assert not (tmp_path / "out").exists()


def test_worker_pool_gives_the_same_outputs_as_inline(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "MIN_PARALLEL", 0)
    root = tmp_path / "corpus"
    _bad_folder(root)
    sec = _folder_section(root)
    a = prepare_sounds(sec, tmp_path / "inline", **_base(), workers=1, progress=False)
    b = prepare_sounds(sec, tmp_path / "pool", **_base(), workers=2, chunk_size=3, progress=False)
    assert a.metrics == b.metrics and a.metrics["skipped_files"] == 7
    for name in ("frames.npy", "manifest.csv", "class_weights.json"):
        assert (tmp_path / "inline" / name).read_bytes() == (tmp_path / "pool" / name).read_bytes()


def test_fail_mode_through_the_worker_pool(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "MIN_PARALLEL", 0)
    root = tmp_path / "corpus"
    _bad_folder(root)
    with pytest.raises(BadAudioError, match="corrupt.wav"):
        prepare_sounds(_folder_section(root), tmp_path / "out", **_base("fail"), workers=2,
                       chunk_size=2, progress=False)


def test_speaker_corpus_errors_are_one_line(tmp_path):
    sec = _tiny_speakers()
    sec["corpus"].update(kind="librispeech", path=str(tmp_path / "missing"))
    with pytest.raises(DataError, match="missing: corpus directory for 'librispeech' not found"):
        prepare_speakers(build(PrepareSpeakers, sec), tmp_path / "out", **_base(), workers=1,
                         progress=False)
    sec["corpus"].update(kind="fsdd", path=None)
    with pytest.raises(DataError, match="needs corpus.path"):
        prepare_speakers(build(PrepareSpeakers, sec), tmp_path / "out", **_base(), workers=1,
                         progress=False)


# --- folder / FSDD problems are counted, warned about, or fatal ----------------------------

def _good_folder(root: Path, classes: tuple[str, ...] = ("a", "b")) -> None:
    rng = np.random.default_rng(1)
    for cls in classes:
        (root / cls).mkdir(parents=True)
        for k in range(2):
            sf.write(root / cls / f"good{k}.wav", 0.3 * rng.standard_normal(2 * SR), SR)


def test_folder_dangling_symlink_is_counted_with_a_warning(tmp_path, caplog):
    root = tmp_path / "corpus"
    _good_folder(root)
    link = root / "a" / "moved.wav"
    link.symlink_to(tmp_path / "elsewhere" / "moved.wav")
    res = prepare_sounds(_folder_section(root), tmp_path / "out", **_base("skip"), workers=1,
                         progress=False)
    assert res.info["skipped"]["by_reason"] == {"unreadable": 1}
    assert res.metrics["skipped_unreadable"] == 1 == res.metrics["skipped_files"]
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(str(link) in w and "dangling symlink" in w for w in warned), warned


def test_folder_dangling_symlink_is_fatal_under_fail(tmp_path):
    root = tmp_path / "corpus"
    _good_folder(root)
    (root / "a" / "moved.wav").symlink_to(tmp_path / "nowhere.wav")
    with pytest.raises(BadAudioError) as info:
        prepare_sounds(_folder_section(root), tmp_path / "out", **_base("fail"), workers=1,
                       progress=False)
    assert str(info.value) == (f"{root / 'a' / 'moved.wav'}: dangling symlink (to "
                               f"{tmp_path / 'nowhere.wav'}) (base.on_bad_audio = fail)")


def test_folder_empty_class_folder_is_an_error(tmp_path):
    root = tmp_path / "corpus"
    _good_folder(root)
    (root / "c").mkdir()
    with pytest.raises(DataError) as info:
        prepare_sounds(_folder_section(root), tmp_path / "out", **_base("skip"), workers=1,
                       progress=False)
    msg = str(info.value)
    assert msg.startswith(f"{root / 'c'}: class 'c' has no files") and "\n" not in msg, msg


@pytest.mark.parametrize("on_bad_audio", ["skip", "fail"])
def test_folder_class_whose_files_are_all_bad_is_always_an_error(tmp_path, on_bad_audio):
    root = tmp_path / "corpus"
    _good_folder(root)
    (root / "c").mkdir()
    (root / "c" / "broken.wav").write_bytes(b"RIFF....WAVEjunk")
    (root / "c" / "quiet.wav").write_bytes(b"")
    with pytest.raises((DataError, BadAudioError)) as info:
        prepare_sounds(_folder_section(root), tmp_path / "out", **_base(on_bad_audio), workers=1,
                       progress=False)
    msg = str(info.value)
    if on_bad_audio == "skip":
        assert msg == (f"prepare_sounds: class 'c' ({root / 'c'}) has no usable audio: none of "
                       "its 2 clip(s) gave a frame (2 skipped: {'corrupt': 2})")
    else:  # the first bad file stops the run before the class is known to be empty
        assert str(root / "c") in msg and "on_bad_audio = fail" in msg
    assert not (tmp_path / "out").exists()


def _fake_fsdd(root: Path, extra: tuple[str, ...]) -> Path:
    rec = root / "recordings"
    rec.mkdir(parents=True)
    rng = np.random.default_rng(2)
    for spk in ("ann", "bob", "cat", "dan"):
        for digit in range(3):
            sf.write(rec / f"{digit}_{spk}_0.wav", 0.3 * rng.standard_normal(SR // 2), 8000)
    for name in extra:
        sf.write(rec / name, 0.3 * rng.standard_normal(SR // 2), 8000)
    return root


def _fsdd_section(root: Path) -> PrepareSpeakers:
    sec = _tiny_speakers()
    sec["corpus"].update(kind="fsdd", path=str(root))
    sec["split"]["test_speakers"] = 2  # trials need a non-target pair
    return build(PrepareSpeakers, sec)


def test_fsdd_misnamed_files_are_counted_with_a_warning(tmp_path, caplog):
    root = _fake_fsdd(tmp_path / "fsdd", ("0_ann.wav", "take2.flac"))
    res = prepare_speakers(_fsdd_section(root), tmp_path / "out", **_base("skip"), workers=1,
                           progress=False)
    assert res.info["skipped"]["by_reason"] == {"unrecognised_name": 2}
    assert res.metrics["skipped_unrecognised_name"] == 2 and res.metrics["utterances"] == 12
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("0_ann.wav: name does not match <digit>_<speaker>_<n>.wav" in w for w in warned)


def test_fsdd_misnamed_file_is_fatal_under_fail(tmp_path):
    root = _fake_fsdd(tmp_path / "fsdd", ("0_ann.wav",))
    with pytest.raises(BadAudioError) as info:
        prepare_speakers(_fsdd_section(root), tmp_path / "out", **_base("fail"), workers=1,
                         progress=False)
    assert str(info.value) == (f"{root / 'recordings' / '0_ann.wav'}: name does not match "
                               "<digit>_<speaker>_<n>.wav (FSDD); not used (base.on_bad_audio = fail)")
