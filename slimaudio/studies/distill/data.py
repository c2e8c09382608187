"""data/distill/ (written by the distill_targets stage, slimaudio.studies.distill.targets)
read back for the student, select and report stages."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from slimaudio.audio import from_int16
from slimaudio.errors import DataError
from slimaudio.features import MelConfig

TEACHER_PREDICTIONS = "teacher_predictions.csv"  # the teacher's probe answers (probes.py)
PREDICTIONS = "predictions.csv"                  # a student's, beside its metrics.json
REPLICATE_PREDICTIONS = "predictions_r{}.csv"    # its replicate r's (r >= 1), beside it
QUALITY = "mean_accuracy"      # the study's quality: the mean accuracy over the probe tasks
QUALITY_SD = "mean_accuracy_sd"  # its sample sd over a student's training replicates
ARRAYS = ("train_patches", "train_waves", "train_targets", "probe_patches", "probe_waves",
          "probe_utt")


@dataclass
class DistillData:
    """data/distill/ loaded for a student stage."""

    root: Path
    info: dict[str, Any]
    train_patches: np.ndarray
    train_waves: np.ndarray
    train_targets: np.ndarray
    probe_patches: np.ndarray
    probe_waves: np.ndarray
    probe_utt: np.ndarray
    probe_utts: pd.DataFrame

    @property
    def mel(self) -> MelConfig:
        return MelConfig(**self.info["mel"])

    def inputs(self, frontend: str, which: str) -> np.ndarray:
        """float32 student inputs: log-mel patches (outside) or waveforms in [-1, 1] (inside)."""
        if frontend == "inside":
            return from_int16(self.train_waves if which == "train" else self.probe_waves)
        return np.asarray(self.train_patches if which == "train" else self.probe_patches,
                          dtype=np.float32)


def predictions_name(replicate: int) -> str:
    """The probe answers' file of a student's replicate: replicate 0 (the run a single-replicate
    study makes) keeps the plain name, so one replicate writes what it always did."""
    return PREDICTIONS if replicate == 0 else REPLICATE_PREDICTIONS.format(replicate)


def load_targets(root: str | os.PathLike[str]) -> DistillData:
    """data/distill/ as the distill_targets stage wrote it (the arrays memory-mapped)."""
    root = Path(root)
    for name in (*(f"{n}.npy" for n in ARRAYS), "probe_utts.csv", "teacher.json"):
        if not (root / name).exists():
            raise DataError(f"{root / name}: missing (run the distill_targets stage)")
    arrays = {n: np.load(root / f"{n}.npy", mmap_mode="r") for n in ARRAYS}
    if len(arrays["train_patches"]) != len(arrays["train_targets"]):
        raise DataError(f"{root}: train_patches and train_targets differ in length")
    utts = read_probe_utts(root)
    info = json.loads((root / "teacher.json").read_text(encoding="utf-8"))
    return DistillData(root, info, probe_utts=utts, **arrays)


def read_probe_utts(root: str | os.PathLike[str]) -> pd.DataFrame:
    """data/distill/probe_utts.csv: the probe utterances, their labels and probe roles."""
    path = Path(root) / "probe_utts.csv"
    if not path.exists():
        raise DataError(f"{path}: missing (run the distill_targets stage)")
    return pd.read_csv(path, dtype={"utt_id": str, "speaker": str, "group": str})


def target_stats(targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and std: students regress standardised targets, so every
    embedding dimension weighs the same in the MSE."""
    t = np.asarray(targets, dtype=np.float64)
    return t.mean(0), np.maximum(t.std(0), 1e-6)
