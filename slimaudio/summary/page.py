"""The summary page: each study's findings (judged by its own rules), tables and figures.

A study's report folder keeps the contract of docs/architecture.md: table.csv (its own table),
rows.csv (the common rows), table.md, metrics.json and its figures (*.png).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from slimaudio.studies.base import Finding, Study, read_rows
from slimaudio.summary.ship import ship_markdown


@dataclass
class StudyFolder:
    """What a study's last stage left in its report folder."""

    study: Study
    folder: Path
    table: pd.DataFrame | None = None
    rows: pd.DataFrame | None = None
    table_md: str = ""
    metrics: dict = field(default_factory=dict)
    images: list[Path] = field(default_factory=list)

    def findings(self) -> list[Finding]:
        return self.study.findings(self.table, self.metrics)


def load(study: Study, folder: Path) -> StudyFolder:
    out = StudyFolder(study=study, folder=folder)
    if (folder / "table.csv").exists():
        out.table = pd.read_csv(folder / "table.csv")
    if (folder / "rows.csv").exists():
        out.rows = read_rows(folder / "rows.csv")
    if (folder / "table.md").exists():
        out.table_md = (folder / "table.md").read_text(encoding="utf-8")
    if (folder / "metrics.json").exists():
        out.metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    out.images = sorted(folder.glob("*.png"))
    return out


def load_data_metrics(folder: Path) -> dict:
    path = folder / "metrics.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def render_markdown(studies: Mapping[str, StudyFolder], findings: Mapping[str, list[Finding]],
                    header: Mapping[str, str], data_metrics: Mapping, cross_png: str,
                    rel_dirs: Mapping[str, str]) -> str:
    """The summary page; image links are relative to the page (rel_dirs: study -> folder)."""
    lines = ["# slimaudio: the four studies regenerated, and beyond the papers", ""]
    lines += [f"- **{k}**: {v}" for k, v in header.items()] + [""]
    lines += ["All numbers below come from this pipeline run; the papers' numbers are quoted beside "
              "them from the papers themselves (`slimaudio/papers.py`).", "",
              "Every verdict is drawn by its study's rule (`slimaudio/studies/<study>/rules.py`) "
              "from intervals, never from point values alone: **holds** when the whole interval "
              "is on the paper's side of the rule's threshold, **does not hold** when it is wholly "
              "on the other side, **inconclusive** when it covers both (the data cannot tell); "
              "a claim made for several methods is **partly holds** when they are decided both "
              "ways. Intervals [lo, hi] are bootstrap intervals at `base.bootstrap.level` over "
              "the unit that makes observations dependent (speakers, clips, utterances, timing "
              "rounds), paired between the variants compared.", ""]
    if data_metrics:
        lines += ["## Corpora", ""]
        lines += [f"- {k}: {v}" for k, v in _data_summary(data_metrics).items()] + [""]
    for name, st in studies.items():
        lines += [f"## {st.study.title}", ""]
        lines += ["**Does the paper's finding hold here?**", ""]
        lines += [f"- {f.sentence()}" for f in findings.get(name, [])] + [""]
        if st.table is None and not st.table_md:
            lines += ["_This study produced no report._", ""]
            continue
        body = _demote_headings(st.table_md.strip()) if st.table_md else ""
        if body:
            lines += [body, ""]
        for img in st.images:
            lines += [f"![{name}: {img.stem}]({rel_dirs.get(name, name)}/{img.name})", ""]
    lines += ship_markdown({n: (st.study, st.table, st.rows) for n, st in studies.items()})
    lines += ["## Across studies", "", f"![cross-study view]({cross_png})", ""]
    return "\n".join(lines)


def _demote_headings(md: str) -> str:
    return re.sub(r"^(#{1,4}) ", lambda m: "#" * min(len(m.group(1)) + 2, 6) + " ", md, flags=re.M)


def _data_summary(m: Mapping) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, val in m.items():
        if isinstance(val, int | float | str):
            out[key] = str(val)
        elif isinstance(val, Mapping):
            flat = {k: v for k, v in val.items() if isinstance(v, int | float | str)}
            if flat:
                out[key] = ", ".join(f"{k} {v}" for k, v in list(flat.items())[:8])
    return out


def header_info(profile: str, commit: str, datasets: Mapping[str, str]) -> dict[str, str]:
    return {
        "profile": profile,
        "datasets": ", ".join(f"{k}: {v}" for k, v in datasets.items()),
        "git commit": commit,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def summary_metrics(findings: Mapping[str, list[Finding]]) -> dict[str, float]:
    """Counts of findings that hold, for dvc metrics."""
    flat = [f for fs in findings.values() for f in fs]
    return {
        "findings_total": len(flat),
        "findings_hold": sum(f.verdict == "holds" for f in flat),
        "findings_partly": sum(f.verdict == "partly holds" for f in flat),
        "findings_inconclusive": sum(f.verdict == "inconclusive" for f in flat),
        "findings_not_hold": sum(f.verdict == "does not hold" for f in flat),
        "findings_not_measured": sum(f.verdict == "not measured" for f in flat),
    }
