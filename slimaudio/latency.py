"""One latency method for every study and every runtime.

Batch 1, a fixed input, warm-up calls, then many timed calls; median and p90 in ms; the
thread count is a parameter (default 1, like one phone core). When variants are compared,
their calls are interleaved round-robin (in a shuffled order each round) in one process, so
that drifts in clock speed or background load hit every variant alike and ratios are fair.

Runners are zero-argument callables that do one inference; build them with `torch_runner`,
`onnx_runner` or `litert_runner`.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from slimaudio.stats import Interval, percentile

Runner = Callable[[], Any]


@dataclass(frozen=True)
class Latency:
    median_ms: float
    p90_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    repeats: int
    threads: int
    samples_ms: tuple[float, ...] = field(default=(), repr=False, compare=False)  # round order

    def as_dict(self, prefix: str = "latency") -> dict[str, float]:
        d = asdict(self)
        return {
            f"{prefix}_ms": d["median_ms"],
            f"{prefix}_p90_ms": d["p90_ms"],
            f"{prefix}_std_ms": d["std_ms"],
        }


def _summarise(times_s: Sequence[float], threads: int) -> Latency:
    ms = np.asarray(times_s, dtype=np.float64) * 1e3
    return Latency(
        median_ms=float(np.median(ms)),
        p90_ms=float(np.percentile(ms, 90)),
        mean_ms=float(ms.mean()),
        std_ms=float(ms.std()),
        min_ms=float(ms.min()),
        repeats=len(ms),
        threads=threads,
        samples_ms=tuple(float(v) for v in ms),
    )


def measure(fn: Runner, warmup: int = 10, repeats: int = 50, threads: int = 1) -> Latency:
    """Time one runner alone."""
    return measure_interleaved({"_": fn}, warmup=warmup, repeats=repeats, threads=threads)["_"]


def measure_interleaved(runners: Mapping[str, Runner], warmup: int = 10, repeats: int = 50,
                        threads: int = 1, seed: int = 0) -> dict[str, Latency]:
    """Time several runners round-robin; returns each one's Latency."""
    if repeats < 30:
        raise ValueError("latency needs at least 30 timed repeats")
    names = list(runners)
    for _ in range(warmup):
        for n in names:
            runners[n]()
    times: dict[str, list[float]] = {n: [] for n in names}
    rng = random.Random(seed)
    clock = time.perf_counter
    for _ in range(repeats):
        rng.shuffle(names)
        for n in names:
            t0 = clock()
            runners[n]()
            times[n].append(clock() - t0)
    return {n: _summarise(times[n], threads) for n in runners}


def speedup(reference: Latency, other: Latency, n_boot: int, rng: np.random.Generator,
            level: float = 0.95) -> Interval:
    """median(reference) / median(other) with a bootstrap interval over timing rounds. Runs of
    one round were interleaved, so a round is resampled as a whole: the machine's drift moves
    both variants alike and cancels in the ratio."""
    a, b = np.asarray(reference.samples_ms), np.asarray(other.samples_ms)
    if a.size == 0 or a.size != b.size:
        raise ValueError("speedup needs two Latency results from one interleaved measurement")
    value = float(np.median(a) / np.median(b))
    idx = rng.integers(0, a.size, size=(n_boot, a.size))
    return percentile(np.median(a[idx], axis=1) / np.median(b[idx], axis=1), value, level)


def ratios(results: Mapping[str, Latency], reference: str) -> dict[str, float]:
    """Median latency of each variant relative to `reference` (below 1 = faster)."""
    ref = results[reference].median_ms
    return {n: r.median_ms / ref for n, r in results.items()}


# ---------------------------------------------------------------------------- runners


def set_torch_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # can only be set once per process
        torch.set_num_interop_threads(1)


def torch_runner(model: Any, *inputs: Any, threads: int = 1) -> Runner:
    """One forward pass of a torch module in eval mode, no autograd."""
    import torch

    set_torch_threads(threads)
    model.eval()

    def run() -> Any:
        with torch.inference_mode():
            return model(*inputs)

    return run


def onnx_session(model: str | os.PathLike[str] | bytes, threads: int = 1,
                 optimization: str = "all", config: Mapping[str, str] | None = None) -> Any:
    """An ONNX Runtime CPU session with a fixed thread count and no thread spinning.

    `config`: extra ORT session config entries (e.g. `session.qdqisint8allowed`).
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = {
        "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[optimization]
    # Spinning threads burn the other core and distort interleaved comparisons.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    for key, value in (config or {}).items():
        so.add_session_config_entry(key, value)
    so.log_severity_level = 3
    src = model if isinstance(model, bytes) else os.fspath(model)
    return ort.InferenceSession(src, sess_options=so, providers=["CPUExecutionProvider"])


def onnx_runner(model: str | os.PathLike[str] | bytes | Any, feeds: Mapping[str, np.ndarray],
                threads: int = 1) -> Runner:
    """One ONNX Runtime call; `model` is a path, serialized bytes or an InferenceSession."""
    sess = model if hasattr(model, "run") else onnx_session(model, threads)
    feeds = dict(feeds)

    def run() -> Any:
        return sess.run(None, feeds)

    return run


def litert_interpreter(model: str | os.PathLike[str] | bytes, threads: int = 1,
                       default_delegates: bool = True) -> Any:
    """A LiteRT interpreter; default_delegates=False runs the builtin kernels without XNNPACK."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kw: dict[str, Any] = {"num_threads": threads}
    if not default_delegates:
        kw["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    if isinstance(model, bytes):
        kw["model_content"] = model
    else:
        kw["model_path"] = os.fspath(model)
    interp = Interpreter(**kw)
    interp.allocate_tensors()
    return interp


def litert_runner(model: str | os.PathLike[str] | bytes | Any, inputs: Sequence[np.ndarray],
                  threads: int = 1) -> Runner:
    """One LiteRT interpreter call with inputs already in the model's input dtype."""
    interp = model if hasattr(model, "invoke") else litert_interpreter(model, threads)
    details = interp.get_input_details()
    if len(details) != len(inputs):
        raise ValueError(f"model has {len(details)} inputs, got {len(inputs)}")
    for d, x in zip(details, inputs, strict=True):
        x = np.asarray(x)
        if np.issubdtype(d["dtype"], np.integer) and np.issubdtype(x.dtype, np.floating):
            # Casting floats to int8 is the naive path that collapses a full-int model.
            raise ValueError(f"input {d['name']!r} is {np.dtype(d['dtype']).name}: quantize float "
                             "features with the tensor's scale and zero point first")
        interp.set_tensor(d["index"], x.astype(d["dtype"], copy=False))
    out_idx = interp.get_output_details()[0]["index"]

    def run() -> Any:
        interp.invoke()
        return interp.get_tensor(out_idx)

    return run
