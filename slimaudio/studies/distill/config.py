"""The distillation study's params sections as typed, frozen dataclasses, built once per stage.

No field has a default: the defaults live in conf/config.yaml alone, and the schemas in
slimaudio/schemas/distill.py validate the same keys (tests/test_distill.py checks that the
fields here and the schema keys agree).

  distill          -> TargetsConfig  (stage distill_targets; the student stages read `probe`)
  distill_student  -> TrainConfig    (distill_final overrides steps, batch size and lr)
  distill_final    -> FinalConfig
  distill_grid     -> GridConfig
  distill_select   -> SelectConfig
  distill_report   -> ReportConfig
  base.bootstrap   -> stats.BootstrapConfig (stage distill_report: the probe-accuracy intervals)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Latency:
    warmup: int
    repeats: int

    @classmethod
    def from_params(cls, s: Mapping[str, Any]) -> Latency:
        return cls(warmup=int(s["warmup"]), repeats=int(s["repeats"]))


@dataclass(frozen=True)
class TeacherConfig:
    batch_size: int     # ONNX Runtime batch for embedding the patches
    threads: int        # ORT threads for that (latency uses base.threads)
    latency: Latency

    @classmethod
    def from_params(cls, s: Mapping[str, Any]) -> TeacherConfig:
        return cls(batch_size=int(s["batch_size"]), threads=int(s["threads"]),
                   latency=Latency.from_params(s["latency"]))


@dataclass(frozen=True)
class PatchConfig:
    frames: int
    n_mels: int
    train: int
    probe_per_utt: int
    probe_max_utts: int | None

    @classmethod
    def from_params(cls, s: Mapping[str, Any]) -> PatchConfig:
        cap = s["probe_max_utts"]
        return cls(frames=int(s["frames"]), n_mels=int(s["n_mels"]), train=int(s["train"]),
                   probe_per_utt=int(s["probe_per_utt"]),
                   probe_max_utts=None if cap is None else int(cap))


@dataclass(frozen=True)
class ProbeConfig:
    tasks: tuple[str, ...]
    c: float

    @classmethod
    def from_params(cls, s: Mapping[str, Any]) -> ProbeConfig:
        return cls(tasks=tuple(str(t) for t in s["tasks"]), c=float(s["c"]))


@dataclass(frozen=True)
class TargetsConfig:
    """params `distill`."""

    teacher: TeacherConfig
    patches: PatchConfig
    probe: ProbeConfig

    @classmethod
    def from_params(cls, s: Mapping[str, Any]) -> TargetsConfig:
        return cls(teacher=TeacherConfig.from_params(s["teacher"]),
                   patches=PatchConfig.from_params(s["patches"]),
                   probe=ProbeConfig.from_params(s["probe"]))


@dataclass(frozen=True)
class FinalConfig:
    """params `distill_final`: what the final training changes of distill_student's."""

    steps: int
    batch_size: int
    lr: float

    @classmethod
    def from_params(cls, s: Mapping[str, Any]) -> FinalConfig:
        return cls(steps=int(s["steps"]), batch_size=int(s["batch_size"]), lr=float(s["lr"]))


@dataclass(frozen=True)
class TrainConfig:
    """params `distill_student`: how every student is trained, converted and timed
    (`replicates` trainings each, seeds base.seed + r; replicate 0 alone is timed)."""

    steps: int
    batch_size: int
    lr: float
    bn_momentum: float
    cmn: bool
    l2_targets: bool
    intra_threads: int
    inter_threads: int
    calibration: int
    replicates: int
    latency: Latency

    @classmethod
    def from_params(cls, s: Mapping[str, Any]) -> TrainConfig:
        return cls(steps=int(s["steps"]), batch_size=int(s["batch_size"]), lr=float(s["lr"]),
                   bn_momentum=float(s["bn_momentum"]), cmn=bool(s["cmn"]),
                   l2_targets=bool(s["l2_targets"]), intra_threads=int(s["intra_threads"]),
                   inter_threads=int(s["inter_threads"]), calibration=int(s["calibration"]),
                   replicates=int(s["replicates"]), latency=Latency.from_params(s["latency"]))

    def with_final(self, final: FinalConfig) -> TrainConfig:
        """distill_final's training: its steps, batch size and lr, everything else (the
        replicates too) as here."""
        return replace(self, steps=final.steps, batch_size=final.batch_size, lr=final.lr)


@dataclass(frozen=True)
class GridConfig:
    """params `distill_grid`: the levels of every hyperparameter and the students to train."""

    levels: Mapping[str, list[Any]]
    students: Mapping[str, Mapping[str, Any]]

    @classmethod
    def from_params(cls, s: Mapping[str, Any]) -> GridConfig:
        return cls(levels={k: list(v) for k, v in s["levels"].items()},
                   students={sid: dict(hp) for sid, hp in s["students"].items()})


@dataclass(frozen=True)
class Budgets:
    max_latency_fraction: float
    max_size_fraction: float | None

    @classmethod
    def from_params(cls, s: Mapping[str, Any]) -> Budgets:
        size = s["max_size_fraction"]
        return cls(max_latency_fraction=float(s["max_latency_fraction"]),
                   max_size_fraction=None if size is None else float(size))


@dataclass(frozen=True)
class SelectConfig:
    """params `distill_select`."""

    choose: Budgets
    latency: Latency
    require_full_grid: bool

    @classmethod
    def from_params(cls, s: Mapping[str, Any]) -> SelectConfig:
        return cls(choose=Budgets.from_params(s["choose"]),
                   latency=Latency.from_params(s["latency"]),
                   require_full_grid=bool(s["require_full_grid"]))


@dataclass(frozen=True)
class ReportConfig:
    """params `distill_report`."""

    latency: Latency

    @classmethod
    def from_params(cls, s: Mapping[str, Any]) -> ReportConfig:
        return cls(latency=Latency.from_params(s["latency"]))


# params section -> its dataclass (the config-vs-schema test walks this)
SECTIONS: dict[str, type] = {"distill": TargetsConfig, "distill_student": TrainConfig,
                             "distill_final": FinalConfig, "distill_grid": GridConfig,
                             "distill_select": SelectConfig, "distill_report": ReportConfig}
