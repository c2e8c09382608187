"""Section `base`: what every stage shares (seed, sample rate, threads, timing, intervals)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from slimaudio.spec import param, section


@dataclass(frozen=True)
class Spread:
    """How every study's timing rounds are made and spread (slimaudio.latency)."""

    burst: int = param("calls per variant in each timing round; the fastest one counts "
                       "(warm steady state)", lo=1, hi=100)
    processes: int = param("worker processes the rounds are spread over, one after another, so "
                           "an interval covers process-to-process variation (0: the stage's "
                           "own)", lo=0, hi=32)


@dataclass(frozen=True)
class Bootstrap:
    """How every quality number's interval is drawn (slimaudio.stats)."""

    resamples: int = param("cluster-bootstrap resamples (speakers, clips or utterances) per "
                           "interval", lo=100, hi=100000)
    level: float = param("two-sided level of every interval", lo=0.5, hi=0.999)


@dataclass(frozen=True)
class Base:
    seed: int = param("master seed for every random choice", lo=0)
    sample_rate: Literal[8000, 16000, 22050, 32000, 44100, 48000] = param(
        "pipeline rate; all audio is resampled to it on load")
    on_bad_audio: Literal["skip", "fail"] = param(
        "skip-and-count a bad file (default) or stop on it")
    threads: int = param("CPU threads for latency measurement (one phone core)", lo=1, hi=64)
    latency: Spread = param()
    bootstrap: Bootstrap = param()


section("base", Base)
