"""The whole pipeline, tiny profile, on the real samples in ../shared/data: FSDD speakers
(8 kHz, clips shorter than one 2 s frame) and ESC-10 sound events (44.1 kHz, 5 s, some
mostly silent). Every stage must run and every report must be written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pipeline_copy import REPO, make_copy

pytestmark = [pytest.mark.slow, pytest.mark.e2e_full]

SHARED = REPO.parent / "shared" / "data"
REPORTS = ["ecapa/metrics.json", "pwl_softmax/table.csv", "pwl_softmax/table.md",
           "ptq_layerwise/table.csv", "ptq_layerwise/table.md", "tflite_quant/table.csv",
           "tflite_quant/table.md", "distill/table.csv", "distill/table.md", "summary.md",
           "index.html"]


def test_tiny_pipeline_on_fsdd_and_esc10(tmp_path: Path) -> None:
    for sub in ("fsdd", "esc10"):
        if not (SHARED / sub).is_dir():
            pytest.skip(f"real-data sample {SHARED / sub} is absent (see ../shared/data/README.md)")
    proj = make_copy(tmp_path / "real", profile="tiny")
    proj.set_params(**{
        "prepare_speakers.corpus.kind": "fsdd",
        "prepare_speakers.corpus.path": str(SHARED / "fsdd"),
        "prepare_speakers.corpus.max_utts_per_speaker": 24,
        "prepare_speakers.audio.min_duration_s": 0.05,
        "prepare_sounds.corpus.kind": "esc50",
        "prepare_sounds.corpus.path": str(SHARED / "esc10"),
        "prepare_sounds.corpus.esc10_only": True,
        "prepare_sounds.corpus.max_clips_per_class": 4,
        # spoken digits last 0.14-2.3 s: FRILL's 0.96 s patch would exclude most of them
        "distill.patches.frames": 40,
    })
    proc = proj.dvc("repro", timeout=1800)
    for rel in REPORTS:
        assert (proj.root / "reports" / rel).is_file(), f"missing reports/{rel}\n{proc.stdout[-3000:]}"
    data = json.loads((proj.root / "reports" / "data" / "metrics.json").read_text())
    assert (data["speakers"]["corpus"], data["sounds"]["corpus"]) == ("fsdd", "esc50")
    assert "speakers: fsdd" in (proj.root / "reports" / "summary.md").read_text()
