"""Bringing your own model and protocol: evaluation-only corpora (the test side from one corpus,
calibration and fine-tuning audio from another), trial lists that must name real utterances,
SpeechBrain hyperparams, ONNX imports and AS-norm."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_corpora_real import FSDD, LIBRI, _base, _fake_voxceleb, _speaker_section, need

from slimaudio.corpora import speakers
from slimaudio.errors import DataError
from slimaudio.models.speechbrain_import import read_hparams
from slimaudio.schemas.data import PrepareSpeakers, SpeakerSource
from slimaudio.schemas.ecapa import EXPORT_INPUT, Init
from slimaudio.speaker import pretrained
from slimaudio.speaker.scoring import Trials, as_norm, cosine_scores
from slimaudio.spec import build

SB_HPARAMS = """\
n_mels: 80
compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>
embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    channels: [1024, 1024, 1024, 1024, 3072]
    kernel_sizes: [5, 3, 3, 3, 1]
    dilations: [1, 2, 3, 4, 1]
    attention_channels: 128
    lin_neurons: 192
"""


def test_speechbrain_hyperparams_are_read_with_references(tmp_path: Path) -> None:
    (tmp_path / "hyperparams.yaml").write_text(SB_HPARAMS)
    h = read_hparams(tmp_path / "hyperparams.yaml")
    assert h["input_size"] == 80 and h["channels"][0] == 1024 and h["lin_neurons"] == 192
    (tmp_path / "bad.yaml").write_text("n_mels: 80\n")
    with pytest.raises(DataError, match="no `embedding_model` entry"):
        read_hparams(tmp_path / "bad.yaml")


def test_a_speechbrain_folder_without_its_checkpoint_is_named(tmp_path: Path) -> None:
    (tmp_path / "hyperparams.yaml").write_text(SB_HPARAMS)
    cfg = Init(kind="speechbrain", path=str(tmp_path), input=EXPORT_INPUT)
    with pytest.raises(DataError, match="embedding_model.ckpt: missing"):
        from slimaudio.models.speechbrain_import import load_folder

        load_folder(cfg.path)


def test_evaluation_only_sides_and_the_check_that_keeps_test_audio_out(tmp_path: Path) -> None:
    from slimaudio.prepare.speakers import prepare_speakers

    need(FSDD)
    need(LIBRI)
    sec = _speaker_section("fsdd", FSDD, test_speakers=1, max_utts=3)
    sec["train_corpus"].update(kind="librispeech", path=str(LIBRI), max_speakers=5)
    sec["audio"]["min_duration_s"] = 0.05
    res = prepare_speakers(build(PrepareSpeakers, sec), tmp_path / "spk", **_base(), workers=1,
                           progress=False)
    m = pd.read_csv(tmp_path / "spk" / "manifest.csv")
    assert set(m[m.split == "test"].speaker) == {"george", "jackson", "lucas", "nicolas", "theo",
                                                 "yweweler"}
    assert m[m.split == "train"].speaker.nunique() == 5
    assert res.info["counts"]["trials"] > 0
    sec["train_corpus"].update(kind="fsdd", path=str(FSDD), max_speakers=None)
    with pytest.raises(DataError, match="in both the test corpus and prepare_speakers.train_corpus"):
        prepare_speakers(build(PrepareSpeakers, sec), tmp_path / "spk2", **_base(), workers=1,
                         progress=False)
    assert not (tmp_path / "spk2").exists()


def _source(kind: str, path: Path, trial_list: str | None) -> SpeakerSource:
    return SpeakerSource(kind=kind, path=str(path), trial_list=trial_list, max_speakers=None,
                         max_utts_per_speaker=None)


def test_a_trial_list_naming_a_missing_utterance_stops_naming_it(tmp_path: Path) -> None:
    root = _fake_voxceleb(tmp_path / "vox1")
    with open(root / "veri_test2.txt", "a") as f:
        f.write("1 id10003/vidA/00001.wav id10003/vidZ/00009.wav\n")
    with pytest.raises(DataError, match=r"trial 5 names utterance 'id10003/vidZ/00009'"):
        speakers.read_speaker_corpus(_source("voxceleb", root, None), None, 16000, 1)


def test_a_trial_list_for_any_corpus_kind(tmp_path: Path) -> None:
    need(FSDD)
    trials = tmp_path / "fsdd_trials.txt"
    trials.write_text("1 0_george_0 1_george_0\n0 0_george_0 0_theo_0.wav\n")
    c = speakers.read_speaker_corpus(_source("fsdd", FSDD, str(trials)), None, 16000, 1)
    assert c.trials == [(1, "0_george_0", "1_george_0"), (0, "0_george_0", "0_theo_0")]


def _as_norm_loop(scores, emb, trials, cohort, k):
    """AS-norm written out trial by trial (the reference the vectorised version must equal)."""
    unit = {u: e / np.linalg.norm(e) for u, e in emb.items()}
    c = cohort / np.linalg.norm(cohort, axis=1, keepdims=True)
    out = []
    for s, a, b in zip(scores, trials.enroll, trials.test, strict=True):
        ta, tb = np.sort(c @ unit[a])[-k:], np.sort(c @ unit[b])[-k:]
        out.append(0.5 * ((s - ta.mean()) / ta.std() + (s - tb.mean()) / tb.std()))
    return np.array(out)


def test_as_norm_equals_its_definition_and_uses_the_cohort() -> None:
    rng = np.random.default_rng(0)
    emb = {f"u{i}": rng.normal(size=16) for i in range(12)}
    trials = Trials(np.array([1, 0, 1, 0, 0], np.int8), ["u0", "u1", "u2", "u3", "u4"],
                    ["u5", "u6", "u7", "u8", "u9"])
    scores = cosine_scores(emb, trials)
    cohort = rng.normal(size=(40, 16))
    got = as_norm(scores, emb, trials, cohort, top_k=10)
    np.testing.assert_allclose(got, _as_norm_loop(scores, emb, trials, cohort, 10), atol=1e-9)
    assert not np.allclose(got, as_norm(scores, emb, trials, cohort[:20], top_k=10))


def test_scoring_the_voxceleb1_o_list_with_1000_resamples_takes_seconds() -> None:
    """37,611 trials among 4,874 utterances of 40 speakers (VoxCeleb1-O cleaned): cosine
    scores, EER, minDCF and 1,000 speaker-bootstrap resamples of both."""
    from slimaudio.speaker.uncertainty import TrialStats

    rng = np.random.default_rng(1)
    spk = np.repeat(np.arange(40), 122)[:4874]
    utts = [f"id{s:05d}/v/{i}" for i, s in enumerate(spk)]
    emb = {u: rng.normal(size=192).astype(np.float32) + 3 * np.eye(192)[s % 192]
           for u, s in zip(utts, spk, strict=True)}
    a, b = rng.integers(0, 4874, 37611), rng.integers(0, 4874, 37611)
    trials = Trials((spk[a] == spk[b]).astype(np.int8), [utts[i] for i in a], [utts[i] for i in b])
    t0 = time.perf_counter()
    scores = cosine_scores(emb, trials)
    ts = TrialStats.build(trials, dict(zip(utts, map(str, spk), strict=True)), 1000, 0.95, 0)
    m = ts.metrics(ts.score(scores))
    seconds = time.perf_counter() - t0
    print(f"\n37,611 trials + 1,000 resamples: {seconds:.2f} s (EER {m['eer_lo']:.2f}-"
          f"{m['eer_hi']:.2f}%)")
    assert m["eer_lo"] <= m["eer_hi"]


def test_an_onnx_import_is_checked_and_the_pwl_study_refuses_it(tmp_path: Path) -> None:
    from slimaudio.errors import CheckpointError
    from slimaudio.models.ecapa import EcapaConfig, EcapaTdnn
    from slimaudio.speaker.export import export_onnx
    from slimaudio.speaker.train import load_checkpoint

    cfg = EcapaConfig(n_mels=80, channels=16, mfa_channels=24, attention_channels=8,
                      se_bottleneck=8)
    path = tmp_path / "m.onnx"
    export_onnx(EcapaTdnn(cfg).eval(), path, 80)
    info = pretrained.check_onnx(Path(path), 80)
    assert info["parameters"] > 0
    with pytest.raises(DataError, match="expected \\[batch, frames \\(dynamic\\), 64\\]"):
        pretrained.check_onnx(Path(path), 64)
    with pytest.raises(DataError, match="expected \\[batch, 80, frames \\(dynamic\\)\\] \\(layout BFT"):
        pretrained.check_onnx(Path(path), 80, layout="BFT")
    with pytest.raises(DataError, match="no input 'mel' \\(ecapa.init.input.name\\); it has feats"):
        pretrained.check_onnx(Path(path), 80, input_name="mel")
    with pytest.raises(DataError, match="no such ONNX file"):
        pretrained.check_onnx(tmp_path / "none.onnx", 80)
    pretrained.save_onnx_pointer(tmp_path / "ecapa.pt", Path(path), info)
    with pytest.raises(CheckpointError, match="without torch weights"):
        load_checkpoint(tmp_path / "ecapa.pt")
