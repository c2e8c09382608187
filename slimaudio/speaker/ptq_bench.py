"""Rows of a post-training quantization study of a speaker model: each one an ONNX file that
loads on its own, quantized from one float model with one calibration, and scored on one trial
list. The per-layer INT8 study (ptq_layerwise) and the sub-8-bit study (ptq_bits) are made of
them; `Bench` makes and scores them and remembers every set of groups measured, so that no set
is quantized and scored twice.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from slimaudio import atomic
from slimaudio.compress import onnx_int8
from slimaudio.compress.layer_groups import GroupMap
from slimaudio.errors import DataError
from slimaudio.metrics import file_size, verification_metrics
from slimaudio.speaker.onnx_eval import EvalSet

SCORES_FILE = "scores.npz"  # every row's trial scores, beside the rows' models


@dataclass(frozen=True)
class Row:
    """A row as a value: each step of a study returns rows with more metrics, never changes
    one in place."""

    name: str
    path: Path
    kind: str  # float | static | dynamic | static+dynamic | float16 (how it is quantized)
    groups: list[str]
    metrics: Mapping[str, float] = field(default_factory=dict)
    scores: np.ndarray | None = None  # every trial's score, for the paired intervals

    def with_metrics(self, more: Mapping[str, float]) -> Row:
        """This row with `more` metrics (a name it has already: the new value)."""
        return replace(self, metrics={**self.metrics, **more})


class Timer:
    """Seconds spent per named step, summed over its laps."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def lap(self, key: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - t0

    def with_total(self) -> dict[str, float]:
        return {**self.seconds, "total": time.perf_counter() - self.start}


@dataclass
class Bench:
    """What every row is made and scored with: the float model, its layer groups, the
    calibration cache, the quantization settings, the trial set and ORT's scoring threads."""

    float_path: Path
    gmap: GroupMap
    cache: Path
    settings: onnx_int8.QuantSettings
    evalset: EvalSet
    threads: int
    models_dir: Path
    timer: Timer
    progress: bool
    measured: dict[tuple[str, ...], Row] = field(default_factory=dict)

    def evaluate(self, row: Row) -> Row:
        """`row` scored: its trial scores, EER and minDCF, and its file size."""
        with self.timer.lap("evaluate"):
            scores = self.evalset.scores(row.path, self.threads, self.progress)
        return self.scored(row, scores)

    def scored(self, row: Row, scores: np.ndarray) -> Row:
        """`row` with its EER, minDCF and file size from trial scores already computed."""
        metrics = {**verification_metrics(scores, self.evalset.trials.labels),
                   **file_size(row.path)}
        return replace(row, scores=scores).with_metrics(metrics)

    def static_row(self, name: str, groups: Sequence[str] | None) -> Row:
        """An INT8 row quantizing `groups` (None: every node), scored: static INT8 from the
        calibration, and ORT's dynamic quantization for the recurrent nodes it has no static
        kernel for; the row's kind says which (onnx_int8.Methods.label)."""
        with self.timer.lap("quantize"):
            nodes = None if groups is None else self.gmap.union(groups)
            path, methods = onnx_int8.quantize_nodes(
                self.float_path, self.models_dir / f"{name}.onnx", self.cache, nodes,
                self.settings)
            onnx_int8.compact_names(path, self.float_path)
        return self.evaluate(Row(name, path, methods.label,
                                 list(self.gmap.groups) if groups is None else list(groups)))

    def remember(self, row: Row) -> Row:
        self.measured[tuple(sorted(row.groups))] = row
        return row

    def measure(self, groups: Sequence[str]) -> Row:
        """The row of a set of groups, made (as a search-only model) when not measured yet."""
        key = tuple(sorted(groups))
        if key not in self.measured:
            self.measured[key] = self.static_row(f"search_{len(self.measured)}", groups)
        return self.measured[key]

    def drop_search_models(self) -> None:
        """Search-only models are not rows: their files go."""
        for key, row in list(self.measured.items()):
            if row.name.startswith("search_"):
                row.path.unlink(missing_ok=True)
                del self.measured[key]


def save_scores(rows: Mapping[str, Row], path: str | os.PathLike[str]) -> None:
    """Every scored row's trial scores, by row name (a study that builds on these rows pairs
    its intervals with them)."""
    scored = {n: r.scores for n, r in rows.items() if r.scores is not None}
    with atomic.atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file: savez adds no suffix
        np.savez(f, **scored)


def load_scores(path: str | os.PathLike[str], names: Sequence[str]) -> dict[str, np.ndarray]:
    """The trial scores of the rows `names` as save_scores wrote them."""
    if not Path(path).is_file():
        raise DataError(f"{path}: the rows' trial scores are missing (run stage ptq_layerwise)")
    with np.load(path) as z:
        missing = [n for n in names if n not in z.files]
        if missing:
            raise DataError(f"{path}: no scores of row(s) {', '.join(missing)} "
                            "(run stage ptq_layerwise)")
        return {n: z[n] for n in names}
