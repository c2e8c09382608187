"""Which runtime to ship: per study and runtime, the fastest variant whose quality stays
within the study's tolerance of its reference variant."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from slimaudio.formatting import num
from slimaudio.studies.base import Study

# A variant qualifies when its quality is at least this fraction of the reference's
# (relative_quality in rows.csv: 1 = as good as the reference, inverted for EER).
MIN_RELATIVE_QUALITY = 0.95


def choices(study: Study, table: pd.DataFrame | None, rows: pd.DataFrame | None
            ) -> list[dict[str, object]]:
    """One record per runtime: its fastest qualifying variant (none when nothing qualifies)."""
    if table is None or rows is None or rows.empty:
        return []
    runtime = {str(r[study.key]): study.runtime_of_row(r) for _, r in table.iterrows()}
    df = rows.assign(runtime=rows["variant"].map(runtime))
    ref = df[df["variant"] == study.reference]
    ref_ms = float(ref["latency_ms"].iloc[0]) if not ref.empty else math.nan
    out = []
    for rt, g in df.groupby("runtime", sort=False):
        ok = g[(g["relative_quality"] >= MIN_RELATIVE_QUALITY) & g["latency_ms"].notna()]
        best = ok.loc[ok["latency_ms"].idxmin()] if not ok.empty else None
        out.append({"runtime": rt, "variant": None if best is None else best["variant"],
                    "latency_ms": math.nan if best is None else float(best["latency_ms"]),
                    "relative_quality": math.nan if best is None else
                    float(best["relative_quality"]),
                    "size_mib": math.nan if best is None else float(best["size_mib"]),
                    "speed_vs_reference": ref_ms / float(best["latency_ms"])
                    if best is not None and ref_ms == ref_ms else math.nan})
    return out


def ship_markdown(studies: Mapping[str, tuple[Study, pd.DataFrame | None, pd.DataFrame | None]]
                  ) -> list[str]:
    """The summary's 'which runtime to ship' table."""
    lines = ["## Which runtime to ship", "",
             "Per study and runtime, the fastest variant whose quality is at least "
             f"{MIN_RELATIVE_QUALITY:.0%} of the study's reference variant (relative quality: "
             "higher is better, EER inverted). Speed is relative to the reference variant's "
             "latency in that study's own interleaved timing; the runtime row marked ship is "
             "the fastest qualifying one.", "",
             "| study | runtime | variant | relative quality | MiB | ms | speed vs reference | |",
             "|---|---|---|---|---|---|---|---|"]
    for name, (study, table, rows) in studies.items():
        recs = choices(study, table, rows)
        timed = [r for r in recs if r["variant"] is not None]
        best = min(timed, key=lambda r: r["latency_ms"]) if timed else None
        for r in recs:
            mark = "**ship**" if r is best else ""
            lines.append(f"| {name} | {r['runtime']} | {r['variant'] or 'none qualifies'} "
                         f"| {num(r['relative_quality'], 3)} | {num(r['size_mib'], 3)} "
                         f"| {num(r['latency_ms'], 3)} | {num(r['speed_vs_reference'], 2)}x "
                         f"| {mark} |")
    return lines + [""]
