"""A tiny stand-in for data/speakers/ (the prepare_speakers layout) used by the ECAPA and PWL
tests: each speaker is a random log-mel profile; utterances add frame noise and a session tilt."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd


def make_standin(root: Path, n_speakers: int = 12, n_test: int = 4, utts: int = 6,
                 n_mels: int = 80, frames: tuple[int, int] = (60, 220), seed: int = 0,
                 noise: float = 0.6) -> Path:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    rows, chunks, off = [], [], 0
    for s in range(n_speakers):
        profile = rng.normal(0, 1.0, n_mels).cumsum() * 0.3 - 5.0
        split = "test" if s >= n_speakers - n_test else "train"
        for u in range(utts):
            n = int(rng.integers(*frames))
            tilt = rng.normal(0, 0.2) * np.linspace(-1, 1, n_mels)
            x = profile + tilt + noise * rng.standard_normal((n, n_mels))
            chunks.append(x.astype(np.float16))
            rows.append({"utt_id": f"spk{s:02d}-u{u}", "speaker": f"spk{s:02d}", "split": split,
                         "session": u % 2, "group": "A", "masked": 0, "arousal": 0,
                         "duration_s": n / 100, "feat_offset": off, "feat_frames": n,
                         "audio_offset": 0, "audio_samples": 0, "source": "standin"})
            off += n
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    np.save(root / "feats.npy", np.concatenate(chunks))
    test = [r for r in rows if r["split"] == "test"]
    lines = [f"{int(a['speaker'] == b['speaker'])} {a['utt_id']} {b['utt_id']}"
             for a, b in itertools.combinations(test, 2)]
    (root / "trials.txt").write_text("\n".join(lines) + "\n")
    (root / "info.json").write_text(json.dumps({"sample_rate": 16000, "hop_length": 160,
                                                "n_mels": n_mels}))
    return root


def test_standin_has_the_contract_layout(tmp_path: Path) -> None:
    from slimaudio.datasets import speakers

    d = speakers.load(make_standin(tmp_path / "spk"))
    assert d.n_mels == 80
    assert set(d.manifest["split"]) == {"train", "test"}
    assert 0 < d.trials.labels.mean() < 1
