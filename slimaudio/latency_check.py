"""Does the timing method hold on a busy machine? Workloads of known cost, a bounded CPU hog,
and a back-to-back check of the PTQ study's speed rows.

`python -m slimaudio.latency_check [--hog] [--models models/ptq]` prints figures and asserts
nothing (tests/test_latency.py holds the method to them):
- the measured ratio of two pure-Python loops of n and 2n steps (known: about 2), quiet and
  with a one-core busy loop running beside the timing;
- with --models: the `all` (and every other) row's speed-up over `none`, measured twice back
  to back with the study's own settings, and whether the two intervals overlap.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slimaudio import latency

HOG_SECONDS = 600  # a hog never outlives this, whatever happens to the process that started it


def spin(n: int) -> None:
    """n steps of a pure-Python loop: a workload whose cost is proportional to n."""
    for _ in range(n):
        pass


@dataclass(frozen=True)
class SpinFactory:
    """Picklable factory of a `spin(n)` runner, for timing workers."""

    n: int

    def __call__(self) -> latency.Runner:
        n = self.n
        return lambda: spin(n)


@contextlib.contextmanager
def cpu_hog(seconds: float = HOG_SECONDS) -> Iterator[subprocess.Popen]:
    """A busy loop on one core in another process, stopped when the block ends (and by itself
    after `seconds` at most)."""
    code = f"import time\nt = time.monotonic() + {float(seconds)}\nwhile time.monotonic() < t: pass"
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def known_ratio(timing: latency.Timing, n: int = 20000, seed: int = 0) -> latency.Latency:
    """Median per-round ratio of spin(2n) to spin(n): about 2 on any machine."""
    res = latency.measure_factories({"n": SpinFactory(n), "2n": SpinFactory(2 * n)}, timing,
                                    seed=seed, progress=False)
    return res


def ratio_with_interval(res: dict[str, latency.Latency], slow: str, fast: str,
                        n_boot: int = 1000) -> latency.Interval:
    return latency.speedup(res[slow], res[fast], n_boot, np.random.default_rng(0))


def ptq_speed_twice(models_dir: Path, frames: int, timing: latency.Timing, threads: int = 1
                    ) -> list[dict[str, latency.Interval]]:
    """The PTQ study's rows (every `<row>.onnx` in models_dir) timed twice back to back as the
    stage times them; each run's speed-up over `none` with its interval."""
    from slimaudio.studies.ptq_layerwise.timing import measure_latency

    models = {p.stem: p for p in sorted(models_dir.glob("*.onnx"))}
    if "none" not in models:
        raise SystemExit(f"{models_dir}: no none.onnx (run stage ptq_layerwise first)")
    inp = latency.onnx_session(models["none"]).get_inputs()[0]
    x = np.random.default_rng(0).standard_normal((1, frames, inp.shape[2])).astype(np.float32)
    runs = []
    for seed in (0, 1):
        lat = measure_latency(models, {}, {inp.name: x}, timing, threads, seed)
        runs.append({n: ratio_with_interval(lat, "none", n) for n in models if n != "none"})
    return runs


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hog", action="store_true", help="run a one-core busy loop meanwhile")
    ap.add_argument("--models", type=Path, help="a PTQ models folder (models/ptq)")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--burst", type=int, default=5)
    ap.add_argument("--processes", type=int, default=3)
    args = ap.parse_args(argv)
    timing = latency.Timing(warmup=5, rounds=args.rounds, burst=args.burst,
                            processes=args.processes)
    hog = cpu_hog() if args.hog else contextlib.nullcontext()
    with hog:
        iv = ratio_with_interval(known_ratio(timing), "2n", "n")
        print(f"spin(2n)/spin(n): {iv.value:.3f} [{iv.lo:.3f}, {iv.hi:.3f}] "
              f"({'with' if args.hog else 'no'} hog; {timing})")
        if args.models:
            a, b = ptq_speed_twice(args.models, args.frames, timing)
            for n in a:
                overlap = a[n].lo <= b[n].hi and b[n].lo <= a[n].hi
                print(f"  {n:<28} {a[n].value:6.3f} [{a[n].lo:.3f}, {a[n].hi:.3f}]   "
                      f"{b[n].value:6.3f} [{b[n].lo:.3f}, {b[n].hi:.3f}]   "
                      f"{'overlap' if overlap else 'DISJOINT'}")


if __name__ == "__main__":
    main()
