"""Shared plumbing of the data stages: streaming .npy writers, the worker pool, skip counts."""

from __future__ import annotations

import contextlib
import logging
import os
import struct
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from slimaudio.errors import BadAudioError
from slimaudio.progress import progress_bar
from slimaudio.workers import process_pool

HEADER_BYTES = 256  # a fixed .npy v1.0 header, written last once the shape is known
MIN_PARALLEL = 64   # fewer items than this are processed inline: spawning workers costs more
log = logging.getLogger(__name__)


@dataclass
class PrepResult:
    """What a prepare stage returns: its metrics (for dvc metrics) and the corpus info."""

    metrics: dict[str, float]
    info: dict[str, Any]


class NpyAppender:
    """Write a C-order .npy file row block by row block, without knowing the row count ahead.

    Rows are streamed to disk (memory stays bounded); `close` writes the header with the final
    shape. The file loads with np.load(path, mmap_mode='r').
    """

    def __init__(self, path: str | os.PathLike[str], dtype: Any, row_shape: Sequence[int] = ()) -> None:
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.row_shape = tuple(int(s) for s in row_shape)
        self.rows = 0
        self._fh = self.path.open("wb")
        self._fh.write(b"\0" * HEADER_BYTES)

    def append(self, block: np.ndarray) -> int:
        """Append rows; returns the offset (row index) of the block's first row."""
        block = np.ascontiguousarray(block, dtype=self.dtype)
        if block.shape[1:] != self.row_shape:
            raise ValueError(f"{self.path.name}: rows of shape {block.shape[1:]}, expected {self.row_shape}")
        offset = self.rows
        self._fh.write(block.tobytes())
        self.rows += block.shape[0]
        return offset

    def close(self) -> Path:
        header = _npy_header(self.dtype, (self.rows, *self.row_shape))
        self._fh.seek(0)
        self._fh.write(header)
        self._fh.close()
        return self.path

    def __enter__(self) -> NpyAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._fh.closed:
            self.close()


def _npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    d = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    text = repr(d)
    body = HEADER_BYTES - 10  # magic (6) + version (2) + header length (2)
    if len(text) + 1 > body:
        raise ValueError(f"npy header too long for shape {shape}")
    text = text + " " * (body - len(text) - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", body) + text.encode("latin1")


# --- parallel processing ------------------------------------------------------------------------

def chunks(n: int, size: int) -> list[range]:
    return [range(i, min(i + size, n)) for i in range(0, n, size)]


@contextlib.contextmanager
def _single_threaded_children() -> Iterator[None]:
    """Workers inherit OMP/BLAS=1 thread: two workers on two cores, no oversubscription."""
    keys = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    old = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: "1" for k in keys})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_chunks(fn: Callable[..., list[Any]], ctx: Any, items: Sequence[Any], *, workers: int,
               chunk_size: int, desc: str, progress: bool = True) -> Iterator[Any]:
    """Yield fn(ctx, chunk_items) results item by item, in input order, with a tqdm bar.

    workers > 1 runs chunks in a 'spawn' ProcessPoolExecutor (safe whatever the parent has
    imported, e.g. torch); workers == 1, or fewer than MIN_PARALLEL items (where starting
    workers costs more than it saves), runs inline.
    """

    parts = [[items[i] for i in r] for r in chunks(len(items), chunk_size)]
    bar = progress_bar(total=len(items), desc=desc, unit="item", disable=not progress, leave=False)
    try:
        if workers <= 1 or len(parts) <= 1 or len(items) < MIN_PARALLEL:
            for part in parts:
                res = fn(ctx, part)
                bar.update(len(part))
                yield from res
            return
        pool = process_pool(workers)  # spawn; the workers die with this stage if it is killed
        try:
            with _single_threaded_children():  # workers start during map's submissions
                mapped = pool.map(partial(fn, ctx), parts)
            for part, res in zip(parts, mapped, strict=True):
                bar.update(len(part))
                yield from res
        finally:
            # on an error (e.g. a bad file under on_bad_audio=fail) drop the queued chunks
            pool.shutdown(wait=True, cancel_futures=True)
    finally:
        bar.close()


# --- bad files ----------------------------------------------------------------------------------

class SkipLog:
    """Counts skipped files by reason (on_bad_audio=skip), each with a one-line warning, or
    raises on the first (fail)."""

    def __init__(self, on_bad_audio: str, keep_examples: int = 5) -> None:
        self.fail = on_bad_audio == "fail"
        self.counts: Counter[str] = Counter()
        self.examples: list[str] = []
        self.keep = keep_examples

    def add(self, reason: str, message: str) -> None:
        if self.fail:
            raise BadAudioError(f"{message} (base.on_bad_audio = fail)")
        self.counts[reason] += 1
        n = self.counts[reason]
        if n <= self.keep:  # a few per reason: thousands of lines would bury everything else
            log.warning("skipped (%s): %s", reason, message)
        elif n == self.keep + 1:
            log.warning("skipped (%s): more files; counted in the metrics, not shown", reason)
        if len(self.examples) < self.keep:
            self.examples.append(message)

    def add_all(self, skipped: Sequence[tuple[str, str]]) -> None:
        """Count what a corpus reader found but could not use (e.g. misnamed files)."""
        for reason, message in skipped:
            self.add(reason, message)

    @property
    def total(self) -> int:
        return int(sum(self.counts.values()))

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "by_reason": dict(sorted(self.counts.items())),
                "examples": list(self.examples)}


def histogram(values: Sequence[float] | np.ndarray, bins: int = 30,
              lo: float | None = None, hi: float | None = None) -> dict[str, list[float]]:
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {"edges": [], "counts": []}
    lo = float(v.min()) if lo is None else lo
    hi = float(v.max()) if hi is None else hi
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi if hi > lo else lo + 1e-3))
    return {"edges": [round(float(e), 4) for e in edges], "counts": counts.astype(int).tolist()}


def summary(values: Sequence[float] | np.ndarray) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {"n": 0, "total": 0.0, "min": 0.0, "mean": 0.0, "max": 0.0}
    return {"n": int(v.size), "total": round(float(v.sum()), 3), "min": round(float(v.min()), 3),
            "mean": round(float(v.mean()), 3), "max": round(float(v.max()), 3)}
