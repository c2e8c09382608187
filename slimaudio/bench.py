"""Print latency benchmarks of every exported model, the same way for all of them.

`python -m slimaudio.bench [--models models] [--threads 1] [--repeats 50] [--frames 300]`

Each folder under models/ that holds .onnx or .tflite files is one comparison group; its
models are timed interleaved with the studies' method (slimaudio.latency: batch 1, warm-up,
bursts keeping the fastest call, rounds over worker processes; params.yaml's base.latency),
so the ratios within a group are fair. Inputs are random tensors of each model's own input shape and
dtype (a dynamic time axis gets --frames). This prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from slimaudio import latency
from slimaudio.metrics import file_size
from slimaudio.spec import build

_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
               "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(int64)": np.int64}


def _random(shape: Sequence[int], dtype: np.dtype, rng: np.random.Generator) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(max(info.min, -128), min(info.max, 127) + 1, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def onnx_bench_factory(path: Path, threads: int, frames: int, rng: np.random.Generator
                       ) -> latency.Factory:
    sess = latency.onnx_session(path, threads)
    feeds = {}
    for inp in sess.get_inputs():
        dims = list(inp.shape)
        shape = [1 if i == 0 else (frames if not isinstance(d, int) else d) for i, d in enumerate(dims)]
        feeds[inp.name] = _random(shape, np.dtype(_ORT_DTYPES.get(inp.type, np.float32)), rng)
    return latency.OnnxFactory(str(path), feeds, threads)


def tflite_bench_factory(path: Path, threads: int, rng: np.random.Generator) -> latency.Factory:
    interp = latency.litert_interpreter(path, threads)
    inputs = tuple(_random([1, *d["shape"][1:]], np.dtype(d["dtype"]), rng)
                   for d in interp.get_input_details())
    return latency.LiteRTFactory(str(path), inputs, threads)


def spread_from_params(path: Path = Path("params.yaml")) -> latency.Spread:
    """base.latency of the composed params (what the studies time with)."""
    import yaml

    if not path.is_file():
        raise SystemExit(f"{path}: missing; compose it first (make params)")
    return build(latency.Spread, yaml.safe_load(path.read_text())["base"]["latency"])


def groups(root: Path) -> dict[Path, list[Path]]:
    found: dict[Path, list[Path]] = {}
    for p in sorted(root.rglob("*")):
        if p.suffix in (".onnx", ".tflite") and p.is_file():
            found.setdefault(p.parent, []).append(p)
    return found


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="models")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--frames", type=int, default=300, help="length of a dynamic time axis")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    rng = np.random.default_rng(0)
    spread = spread_from_params()
    found = groups(Path(args.models))
    if not found:
        print(f"no .onnx or .tflite models under {args.models}: run `make repro` first")
        return
    for folder, paths in found.items():
        factories = {}
        for p in paths:
            try:
                factories[p.name] = (onnx_bench_factory(p, args.threads, args.frames, rng)
                                     if p.suffix == ".onnx"
                                     else tflite_bench_factory(p, args.threads, rng))
            except Exception as exc:  # noqa: BLE001 - report and go on with the others
                print(f"  skipped {p}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        if not factories:
            continue
        timing = latency.Timing.of(args.warmup, args.repeats, spread)
        res = latency.measure_factories(factories, timing, args.threads)
        ref = min(res.values(), key=lambda r: -r.median_ms).median_ms
        print(f"\n{folder}  (batch 1, {args.threads} thread(s), {args.repeats} interleaved rounds, "
              f"burst {spread.burst}, {spread.processes} processes)")
        print(f"  {'model':<40} {'MiB':>8} {'median ms':>10} {'p90 ms':>8} {'vs slowest':>10}")
        for name, r in sorted(res.items(), key=lambda kv: kv[1].median_ms):
            size = file_size(folder / name)["size_mib"]
            print(f"  {name:<40} {size:>8.2f} {r.median_ms:>10.3f} {r.p90_ms:>8.3f} {r.median_ms / ref:>10.3f}")


if __name__ == "__main__":
    main()
