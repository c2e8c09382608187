"""The speaker studies on models brought from outside, on real recordings, through `dvc repro`:
FSDD's 6 speakers as an evaluation-only test side (generated trials), LibriSpeech as the train
side (calibration, fine-tuning, AS-norm cohort), SpeechBrain's frontend, and

1. a SpeechBrain ECAPA-TDNN checkpoint folder (random weights, made with SpeechBrain's class):
   the PWL and PTQ studies run on the imported model;
2. an ONNX export of SpeechBrain's own class (its module names, not ours): the PTQ study runs
   on it with layer groups given as regex patterns.

No training stage runs in either."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import sb_models
from pipeline_copy import REPO, make_copy

pytestmark = [pytest.mark.slow, pytest.mark.e2e_full]

SHARED = REPO.parent / "shared" / "data"
# SpeechBrain's module names as the exporter writes them (/m/ is the test's wrapper); anchored,
# since a Res2Net branch is also called blocks.<n> (/m/blocks.1/res2net_block/blocks.0/...)
SB_GROUPS = {"conv_in": r"^/m/blocks\.0/", "block1": r"^/m/blocks\.1/",
             "block2": r"^/m/blocks\.2/", "block3": r"^/m/blocks\.3/", "conv_mfa": r"^/m/mfa/",
             "asp": r"^/m/asp(_bn)?/", "fc": r"^/m/fc/"}


def test_speaker_studies_on_an_imported_speechbrain_model_and_an_onnx_file(
        tmp_path: Path, speechbrain) -> None:
    for sub in ("fsdd", "librispeech-train-clean-100-1utt"):
        if not (SHARED / sub).is_dir():
            pytest.skip(f"real-data sample {SHARED / sub} is absent (see ../shared/data/README.md)")
    model = sb_models.sb_ecapa()
    folder = sb_models.write_folder(model, tmp_path / "spkrec-ecapa")
    onnx_file = sb_models.export_onnx(model, tmp_path / "external.onnx")
    proj = make_copy(tmp_path / "proj", profile="tiny")
    proj.set_params(**{
        "prepare_speakers.corpus.kind": "fsdd",
        "prepare_speakers.corpus.path": str(SHARED / "fsdd"),
        "prepare_speakers.corpus.max_utts_per_speaker": 8,
        "prepare_speakers.audio.min_duration_s": 0.05,
        "prepare_speakers.train_corpus.kind": "librispeech",
        "prepare_speakers.train_corpus.path": str(SHARED / "librispeech-train-clean-100-1utt"),
        "prepare_speakers.train_corpus.max_speakers": 24,
        "prepare_speakers.features.kind": "speechbrain_fbank",
        "prepare_speakers.features.mean_norm": True,
        "ecapa.init.kind": "speechbrain",
        "ecapa.init.path": str(folder),
        "ecapa.eval.score_norm.kind": "as_norm",
        "ecapa.eval.score_norm.top_k": 8,
    })
    proc = proj.dvc("repro", "pwl_softmax", "ptq_layerwise", timeout=1500)
    assert "imported speechbrain model" in proc.stdout and "trained on" not in proc.stdout
    reports = proj.root / "reports"
    for rel in ("ecapa/metrics.json", "pwl_softmax/table.csv", "pwl_softmax/table.md",
                "ptq_layerwise/table.csv", "ptq_layerwise/table.md"):
        assert (reports / rel).is_file(), f"missing reports/{rel}\n{proc.stdout[-3000:]}"
    ecapa = json.loads((reports / "ecapa" / "metrics.json").read_text())
    assert {"eer", "min_dcf", "min_dcf_p05", "eer_asnorm"} <= set(ecapa)
    assert ecapa["eer_onnx_diff"] <= 1.0

    proj.set_params(**{"ecapa.init.kind": "onnx", "ecapa.init.path": str(onnx_file),
                       "ptq_layerwise.groups": SB_GROUPS})
    proc = proj.dvc("repro", "ptq_layerwise", timeout=900)
    assert "ONNX model" in proc.stdout and "trained on" not in proc.stdout
    table = pd.read_csv(reports / "ptq_layerwise" / "table.csv")
    assert set(SB_GROUPS) <= set(table["quantized"]), table["quantized"].tolist()
    failed = proj.dvc("repro", "pwl_fit", check=False, timeout=300)
    assert failed.returncode != 0 and "without torch weights" in failed.stdout + failed.stderr
