"""Reader for the prepared sound-event frames (data/sounds/, stage prepare_sounds).

Layout (docs/architecture.md): manifest.csv (one row per frame: frame_id, clip_id, label,
class_name, split, start_s, source), frames.npy float16 [n_frames, n_mels, time],
classes.json, class_weights.json, info.json. Models take float32 [n, n_mels, time, 1].
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from slimaudio.errors import DataError

SPLITS = ("train", "val", "test")
MANIFEST_COLUMNS = ("frame_id", "clip_id", "label", "split")


@dataclass(frozen=True)
class Split:
    """One split, ready for a model: x float32 [n, n_mels, time, 1], integer labels, clip ids."""

    x: np.ndarray
    y: np.ndarray
    clip_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class SoundFrames:
    frames: np.ndarray          # float16 [n_frames, n_mels, time], memory-mapped
    manifest: pd.DataFrame
    classes: list[str]
    class_weights: dict[str, float]
    root: Path

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (int(self.frames.shape[1]), int(self.frames.shape[2]), 1)

    def indices(self, split: str) -> np.ndarray:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}")
        return np.flatnonzero(self.manifest["split"].to_numpy() == split)

    def split(self, split: str) -> Split:
        idx = self.indices(split)
        x = np.asarray(self.frames[idx], dtype=np.float32)[..., None]
        m = self.manifest.iloc[idx]
        return Split(x=x, y=m["label"].to_numpy(np.int64), clip_ids=m["clip_id"].astype(str).to_numpy())

    def weight_vector(self) -> dict[int, float]:
        """class_weights.json as Keras wants it: {label index: weight}."""
        return {i: float(self.class_weights[c]) for i, c in enumerate(self.classes)}


def _read_json(path: Path) -> object:
    if not path.exists():
        raise DataError(f"{path}: missing (run the prepare_sounds stage first)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not readable JSON ({exc})") from None


def load_sounds(root: str | Path) -> SoundFrames:
    """Open data/sounds/ and check it against the contract; one-line DataError on a mismatch."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no prepared sounds folder (run the prepare_sounds stage first)")
    classes = _read_json(root / "classes.json")
    if not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(c, str) for c in classes):
        raise DataError(f"{root / 'classes.json'}: expected a list of at least 2 class names")
    weights = _read_json(root / "class_weights.json")
    if not isinstance(weights, dict) or set(weights) != set(classes):
        raise DataError(f"{root / 'class_weights.json'}: keys must be exactly the classes in classes.json")
    man_path, frames_path = root / "manifest.csv", root / "frames.npy"
    for p in (man_path, frames_path):
        if not p.exists():
            raise DataError(f"{p}: missing (run the prepare_sounds stage first)")
    try:
        manifest = pd.read_csv(man_path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{man_path}: not a readable CSV ({exc})") from None
    missing = [c for c in MANIFEST_COLUMNS if c not in manifest.columns]
    if missing:
        raise DataError(f"{man_path}: missing column(s) {', '.join(missing)}")
    try:
        frames = np.load(frames_path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise DataError(f"{frames_path}: not a readable .npy array ({exc})") from None
    if frames.ndim != 3:
        raise DataError(f"{frames_path}: expected [n_frames, n_mels, time], got shape {frames.shape}")
    if len(frames) != len(manifest):
        raise DataError(f"{frames_path}: {len(frames)} frames but {man_path.name} has {len(manifest)} rows")
    labels = manifest["label"]
    if not pd.api.types.is_integer_dtype(labels) or labels.min() < 0 or labels.max() >= len(classes):
        raise DataError(f"{man_path}: labels must be integers in [0, {len(classes) - 1}]")
    bad = sorted(set(manifest["split"].astype(str)) - set(SPLITS))
    if bad:
        raise DataError(f"{man_path}: unknown split value(s) {', '.join(bad)}")
    for s in ("train", "test"):
        if not (manifest["split"] == s).any():
            raise DataError(f"{man_path}: the {s} split is empty")
    return SoundFrames(frames=frames, manifest=manifest, classes=list(classes),
                       class_weights={k: float(v) for k, v in weights.items()}, root=root)
