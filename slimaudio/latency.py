"""One latency method for every study and every runtime.

Batch 1, a fixed input, warm-up calls, then timed rounds; the thread count is a parameter
(default 1, like one phone core). Every round calls each variant in a short burst and keeps
its fastest call (timeit's repeat-and-min): a burst's first call pays for caches that other
variants evicted, the fastest is the warm steady state a deployed model runs in, and a call
pre-empted by another process is dropped rather than averaged in. Variants are interleaved in a
shuffled order each round, so drifts in clock speed or load hit every variant alike. Rounds are
spread over several worker processes run one after another (`Timing.processes`), so that a
ratio's interval (`speedup`: a bootstrap over processes, then rounds) covers what differs from
one process to the next (memory layout, core placement, a neighbour's load), not only the
noise between the rounds of one process.

Runners are zero-argument callables that do one inference. Timing in worker processes needs
*factories*: picklable zero-argument callables that build a runner inside the worker
(`OnnxFactory`, `LiteRTFactory`, `TorchFactory`, or any module-level class or partial).
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from slimaudio.schemas.base import Spread
from slimaudio.stats import Interval, percentile

Runner = Callable[[], Any]
Factory = Callable[[], Runner]

# A burst ends early, after two calls, once it has run this long: a call that long is not
# slowed by what the previous variant left in the caches, so more calls only cost time.
BURST_BUDGET_S = 0.05


# One call per round in the calling process: for unit tests that time nothing they report.
SIMPLE = Spread(burst=1, processes=0)


@dataclass(frozen=True)
class Timing:
    """How variants are timed: a study's `latency.warmup` and `.repeats` (timed rounds in all,
    split evenly over the processes) with base.latency's Spread."""

    warmup: int
    rounds: int
    burst: int
    processes: int

    def __post_init__(self) -> None:
        if self.rounds < 30:
            raise ValueError("latency needs at least 30 timed rounds")
        if self.burst < 1 or self.warmup < 0 or self.processes < 0:
            raise ValueError(f"bad timing settings {self}")

    @classmethod
    def of(cls, warmup: int, rounds: int, spread: Spread) -> Timing:
        return cls(warmup=int(warmup), rounds=int(rounds), burst=spread.burst,
                   processes=spread.processes)

    def rounds_per_process(self) -> int:
        return math.ceil(self.rounds / max(1, self.processes))


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
    process: tuple[int, ...] = field(default=(), repr=False, compare=False)  # each round's worker
    burst: int = 1

    def as_dict(self, prefix: str = "latency") -> dict[str, float]:
        return {
            f"{prefix}_ms": self.median_ms,
            f"{prefix}_p90_ms": self.p90_ms,
            f"{prefix}_std_ms": self.std_ms,
        }


def _summarise(times_s: Sequence[float], threads: int, process: Sequence[int] = (),
               burst: int = 1) -> Latency:
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
        process=tuple(int(p) for p in process) or (0,) * len(ms),
        burst=burst,
    )


def _rounds(runners: Mapping[str, Runner], warmup: int, rounds: int, burst: int,
            seed: int) -> dict[str, list[float]]:
    """Per variant, the fastest call of its burst in each round (seconds)."""
    names = list(runners)
    for _ in range(warmup):
        for n in names:
            runners[n]()
    best: dict[str, list[float]] = {n: [] for n in names}
    rng = random.Random(seed)
    clock = time.perf_counter
    for _ in range(rounds):
        rng.shuffle(names)
        for n in names:
            run, fastest, spent = runners[n], math.inf, 0.0
            for i in range(burst):
                t0 = clock()
                run()
                took = clock() - t0
                fastest, spent = min(fastest, took), spent + took
                if i >= 1 and spent > BURST_BUDGET_S:
                    break
            best[n].append(fastest)
    return best


def _worker(factories: Mapping[str, Factory], warmup: int, rounds: int, burst: int,
            seed: int) -> dict[str, list[float]]:
    """One worker process: build every runner, then time them (module-level: picklable).
    Each factory sets its runtime's threads; a torch one sets torch's pools."""
    runners = {n: f() for n, f in factories.items()}
    return _rounds(runners, warmup, rounds, burst, seed)


def measure_interleaved(runners: Mapping[str, Runner], warmup: int = 10, repeats: int = 50,
                        threads: int = 1, seed: int = 0, burst: int = 5) -> dict[str, Latency]:
    """Time several runners in this process: `repeats` rounds, each a burst per variant
    (for diagnostics and estimates; a study's variants go through `measure_factories`)."""
    timing = Timing(warmup=warmup, rounds=repeats, burst=burst, processes=0)
    best = _rounds(runners, timing.warmup, timing.rounds, timing.burst, seed)
    return {n: _summarise(best[n], threads, burst=timing.burst) for n in runners}


def measure(fn: Runner, warmup: int = 10, repeats: int = 50, threads: int = 1,
            burst: int = 5) -> Latency:
    """Time one runner alone."""
    return measure_interleaved({"_": fn}, warmup=warmup, repeats=repeats, threads=threads,
                               burst=burst)["_"]


def measure_factories(factories: Mapping[str, Factory], timing: Timing, threads: int = 1,
                      seed: int = 0, progress: bool = True) -> dict[str, Latency]:
    """Time the runners the factories build, interleaved, with the rounds spread over
    `timing.processes` fresh worker processes run one after another (none run at once, so
    they never compete for the cores); with processes=0, in this process."""
    from slimaudio.workers import process_pool

    per = timing.rounds_per_process()
    if timing.processes == 0:
        runners = {n: f() for n, f in factories.items()}
        best = _rounds(runners, timing.warmup, per, timing.burst, seed)
        return {n: _summarise(best[n], threads, burst=timing.burst) for n in factories}
    times: dict[str, list[float]] = {n: [] for n in factories}
    procs: list[int] = []
    for p in range(timing.processes):
        if progress:
            print(f"  timing {len(factories)} variants: process {p + 1}/{timing.processes}, "
                  f"{per} rounds x burst {timing.burst}", flush=True)
        with process_pool(1) as pool:
            best = pool.submit(_worker, dict(factories), timing.warmup, per, timing.burst,
                               seed * 1000 + p).result()
        for n in factories:
            times[n].extend(best[n])
        procs.extend([p] * per)
    return {n: _summarise(times[n], threads, procs, timing.burst) for n in factories}


def _resample_rounds(process: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """[n_boot, rounds] indices: processes drawn with replacement, then rounds within each."""
    labels = np.unique(process)
    members = [np.flatnonzero(process == p) for p in labels]
    per = min(len(m) for m in members)
    members = np.stack([m[:per] for m in members])           # [processes, rounds per process]
    pick = rng.integers(0, len(labels), size=(n_boot, len(labels)))
    within = rng.integers(0, per, size=(n_boot, len(labels), per))
    return members[pick[:, :, None], within].reshape(n_boot, -1)


def speedup(reference: Latency, other: Latency, n_boot: int, rng: np.random.Generator,
            level: float = 0.95) -> Interval:
    """median(reference) / median(other) with a bootstrap interval over worker processes and,
    within each, timing rounds. A round is resampled whole (both variants ran in it, so the
    machine's drift cancels in the ratio); resampling processes first makes the interval cover
    what differs between processes, not only between rounds."""
    a, b = np.asarray(reference.samples_ms), np.asarray(other.samples_ms)
    if a.size == 0 or a.size != b.size:
        raise ValueError("speedup needs two Latency results from one interleaved measurement")
    value = float(np.median(a) / np.median(b))
    process = np.asarray(reference.process or (0,) * a.size)
    idx = _resample_rounds(process, n_boot, rng)
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


# ---------------------------------------------------------------------------- factories
# Picklable recipes for runners, built inside a timing worker (measure_factories).


@dataclass(frozen=True, eq=False)  # arrays inside: no elementwise ==
class OnnxFactory:
    """An ONNX Runtime runner: `model` a path or serialized bytes; `config`: ORT session
    config entries (e.g. `session.qdqisint8allowed`)."""

    model: str | bytes
    feeds: Mapping[str, np.ndarray]
    threads: int = 1
    config: Mapping[str, str] | None = None

    def __call__(self) -> Runner:
        return onnx_runner(onnx_session(self.model, self.threads, config=self.config),
                           self.feeds)


@dataclass(frozen=True, eq=False)  # arrays inside: no elementwise ==
class LiteRTFactory:
    """A LiteRT runner; xnnpack=False runs the built-in kernels."""

    model: str | bytes
    inputs: tuple[np.ndarray, ...]
    threads: int = 1
    xnnpack: bool = True

    def __call__(self) -> Runner:
        return litert_runner(litert_interpreter(self.model, self.threads, self.xnnpack),
                             self.inputs)


@dataclass(frozen=True, eq=False)  # arrays inside: no elementwise ==
class TorchFactory:
    """A torch module's forward pass (the module is pickled into the worker)."""

    module: Any
    inputs: tuple[Any, ...]
    threads: int = 1

    def __call__(self) -> Runner:
        return torch_runner(self.module, *self.inputs, threads=self.threads)


@dataclass(frozen=True)
class RunnerFactory:
    """A runner that cannot be built elsewhere (a live session, a traced TF function): timing
    with it is possible only in this process (Timing.processes=0)."""

    runner: Runner

    def __call__(self) -> Runner:
        return self.runner
