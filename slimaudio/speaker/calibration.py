"""Calibration data for static quantization of an ONNX speaker model (ptq_layerwise, pwl_int8,
runtimes): activation ranges from train-split utterances only, computed once per float model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from slimaudio import runtime
from slimaudio.compress import onnx_int8
from slimaudio.datasets.speakers import SpeakerData
from slimaudio.errors import DataError
from slimaudio.schemas.ptq_layerwise import Calibration


class SpeakerCalibrationReader:
    """ORT CalibrationDataReader over train-split utterances only (never test data).

    `n` utterances are drawn with a seeded RNG from the train split; each gives one
    `[1, crop_frames, n_mels]` input (`[1, n_mels, crop_frames]` for `layout` BFT, the
    model's layout), a random fixed-length crop (an utterance shorter than the
    crop is used whole). Fixed-length crops keep the calibration set's statistics comparable
    between utterances and bound its cost; 3 s matches the latency input. Re-iterable via
    `rewind()`.
    """

    def __init__(self, corpus: SpeakerData, n: int, crop_frames: int, seed: int,
                 input_name: str = "feats", layout: str = "BTF") -> None:
        manifest = corpus.manifest
        train = np.flatnonzero(manifest["split"].to_numpy(str) == "train")
        if len(train) == 0:
            raise DataError("calibration: the manifest has no train-split utterances")
        # the stream is named after the study it began in: renaming it would move every number
        rng = runtime.rng(seed, "ptq_layerwise.calibration")
        pick = rng.choice(train, size=min(n, len(train)), replace=False)
        self.indices = [int(i) for i in sorted(pick)]
        self.utt_ids = [str(manifest["utt_id"].iat[i]) for i in self.indices]
        self.input_name = input_name
        self._inputs = []
        for i in self.indices:
            total = int(manifest["feat_frames"].iat[i])
            start = int(rng.integers(0, total - crop_frames + 1)) if total > crop_frames else 0
            x = corpus.feats_of(i, start, crop_frames)[None]
            if layout == "BFT":
                x = np.ascontiguousarray(x.transpose(0, 2, 1))
            self._inputs.append(x)
        self._it = iter(self._inputs)

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._it, None)
        return None if x is None else {self.input_name: x}

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return ({self.input_name: x} for x in self._inputs)

    def __len__(self) -> int:
        return len(self._inputs)

    def rewind(self) -> None:
        self._it = iter(self._inputs)


def calibrate(float_model: Path, corpus: SpeakerData, cfg: Calibration, seed: int,
              cache: Path, input_name: str, layout: str = "BTF"
              ) -> tuple[SpeakerCalibrationReader, Path]:
    """The calibration reader and the cached activation ranges every static row uses."""
    reader = SpeakerCalibrationReader(corpus, cfg.utterances, cfg.crop_frames, seed, input_name,
                                      layout)
    return reader, onnx_int8.calibrate(float_model, reader, cfg.method, cache,
                                       percentile=cfg.percentile)
