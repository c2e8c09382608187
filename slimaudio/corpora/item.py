"""What the speaker and the sound corpus readers share about one item (an utterance, a clip):
it is a file of a real corpus or the spec of a synthetic one, and loads as validated float32
mono audio at the pipeline rate either way."""

from __future__ import annotations

from typing import Any

import numpy as np

from slimaudio.audio import AudioChecks, resample, validate


def source(path: str | None, spec: Any) -> str:
    """The manifest's `source` of an item: its file, or the seed of its synthetic spec."""
    return path if path is not None else f"synthetic:seed={spec.seed}"


def synthetic_audio(audio: np.ndarray, synth_rate: int, item_id: str, sample_rate: int,
                    checks: AudioChecks) -> np.ndarray:
    """Rendered audio as a loaded file would be: float32, resampled to sample_rate, validated
    (raises slimaudio.audio.BadAudio)."""
    audio = resample(np.asarray(audio, dtype=np.float32), int(synth_rate), sample_rate)
    return validate(audio, sample_rate, item_id, checks)
