"""Runtime concerns in one place: the CPU we run on, thread pools, seeding, named random streams.

Random streams: every seeded draw outside the model trainers takes its generator from
`rng(seed, stream, *index)`, so a stream's identity is a readable name, not a number typed in
one module. A stream's ids are fixed forever (changing one changes every number it feeds);
add new streams with new ids.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import random
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

# name -> the ids appended to the base seed; np.random.default_rng([seed, *ids, *index])
STREAMS: dict[str, tuple[int, ...]] = {
    "speakers.test_split": (3,),        # prepare_speakers: which speakers of a voice group are test
    "speakers.trials": (5,),            # prepare_speakers: trial pairs
    "speakers.subset": (7,),            # a speaker corpus cut to corpus.max_speakers
    "sounds.subset": (11,),             # a sound corpus cut to corpus.max_clips_per_class
    "sounds.recording_split": (13,),    # prepare_sounds: which recordings of a class are val/test
    "sounds.undersample": (),           # prepare_sounds: train frames kept per class (the cap)
    "distill.patches": (6, 0),          # teacher patches drawn from train utterances
    "distill.probe_split": (6, 1),      # probe speakers into probe-train / probe-test
    "distill.probe_subset": (6, 2),     # probe utterances cut to probe_max_utts
    "distill.student_batches": (6, 3),  # distill_student: mini-batch order
    "distill.qat_calibration": (6, 4),  # calibration patches of a QAT student's int8 export
    "distill.latency_input": (6, 5),    # the input the students and teacher are timed on
    "ptq_layerwise.calibration": (),    # calibration utterances and their crops
    "ptq_layerwise.speed_input": (19,), # the input the width models are timed on
    "bootstrap": (17,),                 # stats: resampled clusters; one stream for every
                                        # variant of a study, so all its intervals are paired
}

SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni",
              "amx_int8")


def rng(seed: int, stream: str, *index: int) -> np.random.Generator:
    """The generator of a named stream (see STREAMS), optionally indexed (a class, a group)."""
    try:
        ids = STREAMS[stream]
    except KeyError:
        raise KeyError(f"unknown random stream {stream!r}; known: {', '.join(STREAMS)}") from None
    return np.random.default_rng([int(seed), *ids, *(int(i) for i in index)])


def seed_everything(seed: int) -> None:
    """Python's, NumPy's legacy and (when imported) torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)


def seed_torch(seed: int) -> None:
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def set_tf_threads(intra: int, inter: int = 1) -> None:
    """TensorFlow's intra- and inter-op pools; only possible before TF runs its first op, so a
    later call is a no-op (TF raises RuntimeError)."""
    import tensorflow as tf

    with contextlib.suppress(RuntimeError):
        tf.config.threading.set_intra_op_parallelism_threads(int(intra))
        tf.config.threading.set_inter_op_parallelism_threads(int(inter))


@contextlib.contextmanager
def quiet_logger(name: str | None = None, level: int = logging.ERROR) -> Iterator[None]:
    """Raise one logger's level (the root logger when `name` is None) for the block: for
    libraries that log a warning per item where one line of ours says it all."""
    logger = logging.getLogger(name)
    old = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(old)


def cpu_info() -> dict[str, Any]:
    """The CPU model, core count and the SIMD features that decide int8 vs float32 kernel speed
    (AVX-512 VNNI or AVX-VNNI give int8 dot products; AVX2 alone widens int8 to int16)."""
    info: dict[str, Any] = {"model": platform.processor() or platform.machine(),
                            "cores": os.cpu_count(), "simd": []}
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return info
    for line in text.splitlines():
        if line.startswith("model name") and ":" in line:
            info["model"] = line.split(":", 1)[1].strip()
        if line.startswith("flags") and ":" in line:
            flags = set(line.split(":", 1)[1].split())
            info["simd"] = [f for f in SIMD_FLAGS if f in flags]
            break
    return info


# The CPU flags of an instruction that multiplies int8 pairs into 32-bit sums: with one,
# int8 kernels outrun float32 and full-range 8-bit weights cannot saturate (AVX2's U8S8
# kernels sum pairs in 16 bits instead).
INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def int8_dot_flags(info: Mapping[str, Any]) -> list[str]:
    """The int8 dot-product flags of a cpu_info() record (empty on AVX2-only CPUs)."""
    simd = set(info.get("simd", ()))
    return [f for f in INT8_DOT_FLAGS if f in simd]


def has_int8_dot_product(info: Mapping[str, Any]) -> bool:
    return bool(int8_dot_flags(info))
