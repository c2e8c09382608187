"""The contract every study keeps (docs/architecture.md, 'The contract of a study').

A study package `slimaudio/studies/<name>/` defines `STUDY` in its `rules.py` (a `Study`: its
name, title, the table's variant column, reference variant and quality column, and its verdict
rules) and builds a `StudyReport` in its last stage. `StudyReport.write(paths)` writes every output the
stage declares in dvc.yaml, atomically; `StudyReport.log(run)` is the one way a study's numbers
reach MLflow. The summary reads each study's rows file (`ROW_COLUMNS`), never per-study names.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from slimaudio import atomic, stats
from slimaudio.stats import number

# The common long schema: one row per variant of every study.
ROW_COLUMNS = ("study", "variant", "size_mib", "latency_ms", "quality_metric", "quality",
               "relative_quality", "quality_lo", "quality_hi")
VERDICTS = ("holds", "partly holds", "does not hold", "inconclusive", "not measured")
FIXED_ROLES = ("table", "rows", "table_md", "metrics")


@dataclass(frozen=True)
class Finding:
    """A paper's claim, its verdict as derived from our numbers by a rule, and the evidence."""

    claim: str
    verdict: str
    evidence: str

    def sentence(self) -> str:
        return f"{self.claim}: **{self.verdict}** ({self.evidence})."


def judge(lo: float, hi: float, threshold: float, want: str) -> str:
    """The verdict an interval [lo, hi] supports for a claim 'the quantity is `want` (above or
    below) `threshold`': holds when the whole interval is on the claimed side, does not hold
    when it is wholly on the other, inconclusive when it straddles the threshold (or is
    unknown)."""
    if want not in ("above", "below"):
        raise ValueError(f"want must be 'above' or 'below', not {want!r}")
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "inconclusive"
    claimed, other = (lo > threshold, hi < threshold) if want == "above" else \
        (hi < threshold, lo > threshold)
    return "holds" if claimed else ("does not hold" if other else "inconclusive")


def combine(verdicts: list[str]) -> str:
    """One verdict for a claim made of several cases (one per method or variant): holds when
    every case holds, does not hold when none does and some case is decided against, partly
    holds when cases are decided both ways, inconclusive otherwise."""
    yes, no = verdicts.count("holds"), verdicts.count("does not hold")
    if no:
        return "partly holds" if yes else "does not hold"
    return "holds" if verdicts and yes == len(verdicts) else "inconclusive"


Findings = Callable[[pd.DataFrame | None, Mapping[str, Any]], list[Finding]]


@dataclass(frozen=True)
class Study:
    """A study, once: where it runs, what it reports and how it is judged. Its name is its
    package `slimaudio/studies/<name>/`, its report folder `reports/<name>/` and its MLflow
    experiment; `studies.registry` lists every study."""

    name: str
    title: str
    key: str            # the table's variant column
    reference: str      # the variant every other one is relative to
    quality: str        # the table's quality column
    lower_better: bool  # EER: lower is better; F1, accuracy: higher
    findings: Findings  # (table, metrics) -> the paper's findings, judged
    stages: tuple[str, ...]        # its dvc.yaml stages in run order; the last writes the report
    sections: tuple[str, ...]      # the params sections it owns (its stages may read others')
    key_metrics: tuple[str, ...]   # the first columns of its MLflow runs table, the first sorts
    extra_roles: tuple[str, ...]   # report outputs beyond FIXED_ROLES, each a --option of the
                                   # last stage (further tables and figures)
    runtime: str = "ONNX Runtime"  # what its variants' latency is measured on...
    runtime_of: Callable[[str], str | None] = lambda variant: None  # ...unless this names another

    @property
    def report_stage(self) -> str:
        return self.stages[-1]

    @property
    def roles(self) -> tuple[str, ...]:
        """Every output of the study's last stage, each named as its command-line option."""
        return (*FIXED_ROLES, *self.extra_roles)

    def runtime_of_row(self, table_row: Mapping[str, Any]) -> str:
        """The runtime a table row ran on: its `runtime` column, else runtime_of, else the
        study's runtime."""
        named = table_row.get("runtime")
        if isinstance(named, str) and named:
            return named
        return self.runtime_of(str(table_row[self.key])) or self.runtime

    def rows(self, table: pd.DataFrame) -> pd.DataFrame:
        """The table in the common long schema; quality relative to the reference row
        (1 = as good as the reference; inverted for lower-is-better so higher is better)."""
        need = {self.key, "size_mib", "latency_ms", self.quality}
        if not need <= set(table.columns):
            missing = ", ".join(sorted(need - set(table.columns)))
            raise ValueError(f"{self.name}: the table lacks column(s) {missing}")
        hit = table[table[self.key].astype(str) == self.reference]
        ref = number(hit.iloc[0][self.quality]) if not hit.empty else math.nan
        out = []
        for _, r in table.iterrows():
            iv = stats.read(r, self.quality)
            val = iv.value
            rel = (ref / val if self.lower_better else val / ref) if ref and val else math.nan
            out.append({"study": self.name, "variant": str(r[self.key]),
                        "size_mib": number(r["size_mib"]), "latency_ms": number(r["latency_ms"]),
                        "quality_metric": self.quality, "quality": val, "relative_quality": rel,
                        "quality_lo": iv.lo, "quality_hi": iv.hi})
        return pd.DataFrame(out, columns=list(ROW_COLUMNS))


def table_row(df: pd.DataFrame, key: str, value: str) -> pd.Series | None:
    """The first row whose `key` column reads `value`, or None."""
    hit = df[df[key].astype(str) == value]
    return None if hit.empty else hit.iloc[0]


@dataclass
class StudyReport:
    """Everything a study's last stage writes. Roles name the outputs; the stage maps each role
    to the path dvc.yaml gives it, and `write` refuses a role without a path or a path without
    a role, so dvc.yaml and the code cannot drift apart silently."""

    study: Study
    table: pd.DataFrame
    markdown: str
    metrics: dict[str, Any]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # further CSVs by role
    figures: dict[str, Any] = field(default_factory=dict)          # matplotlib figures by role
    variant_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    variant_tags: dict[str, dict[str, str]] = field(default_factory=dict)
    run_params: dict[str, str] = field(default_factory=dict)
    run_metrics: dict[str, float] = field(default_factory=dict)  # more stage-run metrics
    variant_params: dict[str, dict[str, str]] = field(default_factory=dict)
    # per variant: metric name -> [(step, value)], e.g. a training curve
    variant_series: dict[str, dict[str, list[tuple[int, float]]]] = field(default_factory=dict)
    # the table the common rows come from when `table` lacks size_mib/latency_ms (None: table)
    rows_table: pd.DataFrame | None = None
    written: list[Path] = field(default_factory=list)

    @property
    def rows(self) -> pd.DataFrame:
        return self.study.rows(self.table if self.rows_table is None else self.rows_table)

    def roles(self) -> set[str]:
        """The outputs this report holds; `write` wants a path for each, and the study's
        `roles` must name the same ones."""
        return {*FIXED_ROLES, *self.tables, *self.figures}

    def write(self, paths: Mapping[str, str | Path]) -> list[Path]:
        missing, extra = self.roles() - set(paths), set(paths) - self.roles()
        if missing or extra:
            raise ValueError(f"{self.study.name}: outputs without a path: {sorted(missing)}; "
                             f"paths without an output: {sorted(extra)}")
        atomic.write_csv(paths["table"], self.table)
        atomic.write_csv(paths["rows"], self.rows)
        atomic.write_text(paths["table_md"], self.markdown)
        atomic.write_json(paths["metrics"], self.metrics)
        for role, df in self.tables.items():
            atomic.write_csv(paths[role], df)
        for role, fig in self.figures.items():
            atomic.save_figure(paths[role], fig)
        self.written = [Path(paths[r]) for r in sorted(self.roles())]
        return self.written

    def publish(self, args: Any, run: Any) -> list[Path]:
        """The one way a study's last stage ends: write every output of `study.roles` at the
        path of the stage's option of that name (`args.table_md` for `table_md`), then log."""
        written = self.write({role: getattr(args, role) for role in self.study.roles})
        self.log(run)
        return written

    def log(self, run: Any) -> None:
        """Numeric metrics on the stage run, one child run per variant, every written file;
        the study's key metrics lead its runs table."""
        run.key_metrics = self.study.key_metrics
        run.log_metrics({k: v for k, v in flat_numbers(self.metrics).items()})
        if self.run_metrics:
            run.log_metrics(self.run_metrics)
        if self.run_params:
            run.log_params(self.run_params)
        for variant, values in self.variant_metrics.items():
            child = run.child(variant)
            child.log_metrics(values)
            if variant in self.variant_tags:
                child.set_tags(self.variant_tags[variant])
            if variant in self.variant_params:
                child.log_params(self.variant_params[variant])
            for key, points in self.variant_series.get(variant, {}).items():
                for step, value in points:
                    child.log_metric_step(key, value, step)
        for path in self.written:
            run.log_artifact(path)


def flat_numbers(d: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Finite numbers of a nested mapping, keys joined with '.' (booleans excluded)."""
    out: dict[str, float] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flat_numbers(v, f"{key}."))
        elif isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
            out[key] = float(v)
    return out


def read_rows(path: str | Path) -> pd.DataFrame:
    """A study's rows file, checked against the common schema."""
    df = pd.read_csv(path)
    missing = [c for c in ROW_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: not a study rows file (missing {', '.join(missing)})")
    return df[list(ROW_COLUMNS)]
