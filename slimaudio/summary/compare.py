"""Compare two report trees value by value, timings aside: has a change moved a number?

    python -m slimaudio.summary.compare reports_before/ reports/

Every CSV and JSON file under the first tree is compared with the same file under the second.
Columns and keys that hold measured time (or a ratio of times, or anything derived from one)
are skipped: they move from run to run on the same code. Everything else must be equal
(numbers to 1e-9 relative, blanks equal to blanks). Files only in the second tree are listed
as new. Markdown and figures are not compared: they are rendered from these files.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import pandas as pd

# Names of columns/keys that hold timing or are derived from it (speed-ups, shares of time,
# kernel throughput, run time, the host's core count) - they differ between runs by nature.
TIMING = re.compile(
    r"latency|_ms\b|_ms_|seconds|_s$|timings|speedup|faster|slower|rel_time|time_|_time|"
    r"share|gmacs|throughput|rtf|realtime|per_run|elapsed|cores|fraction_of_teacher", re.I)
# Row labels that say the row holds timing (regression.csv's `target` = latency).
TIMING_ROW = re.compile(r"latency(_ms)?|speedup|time|seconds", re.I)
# Tables whose row order is a ranking by a timing (e.g. ORT's per-operator profile).
ORDER_FREE = ("op_profile.csv",)


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        return {k2: v2 for k, v in d.items() for k2, v2 in flatten(v, f"{prefix}.{k}" if prefix
                                                                   else str(k)).items()}
    if isinstance(d, list):
        return {k2: v2 for i, v in enumerate(d) for k2, v2 in flatten(v, f"{prefix}[{i}]").items()}
    return {prefix: d}


def same(a: Any, b: Any) -> bool:
    if _blank(a) and _blank(b):
        return True
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def _blank(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA


def compare_csv(a: Path, b: Path) -> list[str]:
    da, db = pd.read_csv(a), pd.read_csv(b)
    keep = [c for c in da.columns if not TIMING.search(c)]
    problems = [f"columns only in one: {sorted(set(da.columns) ^ set(db.columns))}"] \
        if set(da.columns) != set(db.columns) else []
    keep = [c for c in keep if c in db.columns]
    if len(da) != len(db):
        return [*problems, f"{len(da)} rows vs {len(db)}"]
    if a.name in ORDER_FREE:
        da, db = (d.sort_values(keep).reset_index(drop=True) for d in (da, db))
    timed = _timing_rows(da) | _timing_rows(db)
    da, db = da[~timed], db[~timed]
    cols = [c for c in keep if not all(same(x, y) for x, y in zip(da[c], db[c], strict=True))]
    return [*problems, *(f"column {c} differs" for c in cols)]


def _timing_rows(df: pd.DataFrame) -> pd.Series:
    text = df.select_dtypes(include=["object", "string"])
    hit = text.apply(lambda col: col.astype(str).str.fullmatch(TIMING_ROW.pattern, case=False))
    return hit.any(axis=1) if not hit.empty else pd.Series(False, index=df.index)


def compare_json(a: Path, b: Path) -> list[str]:
    fa, fb = (flatten(json.loads(p.read_text(encoding="utf-8"))) for p in (a, b))
    keys = sorted(k for k in set(fa) | set(fb) if not TIMING.search(k))
    return [f"key {k}: {fa.get(k)!r} vs {fb.get(k)!r}" for k in keys
            if not same(fa.get(k), fb.get(k))]


def compare_trees(old: Path, new: Path) -> dict[str, list[str]]:
    """file (relative) -> what differs beyond timing; empty lists are left out."""
    out: dict[str, list[str]] = {}
    for fa in sorted(p for p in old.rglob("*") if p.suffix in (".csv", ".json")):
        rel = fa.relative_to(old)
        fb = new / rel
        if not fb.exists():
            out[str(rel)] = ["missing in the new tree"]
            continue
        diff = compare_csv(fa, fb) if fa.suffix == ".csv" else compare_json(fa, fb)
        if diff:
            out[str(rel)] = diff
    return out


def new_files(old: Path, new: Path) -> list[str]:
    return sorted(str(p.relative_to(new)) for p in new.rglob("*")
                  if p.suffix in (".csv", ".json") and not (old / p.relative_to(new)).exists())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    args = ap.parse_args(argv)
    for path in (args.old, args.new):
        if not path.is_dir():
            print(f"error: {path}: not a folder", file=sys.stderr)
            return 2
    diffs = compare_trees(args.old, args.new)
    for rel, lines in diffs.items():
        for line in lines:
            print(f"{rel}: {line}")
    for rel in new_files(args.old, args.new):
        print(f"{rel}: new file")
    print(f"{len(diffs)} file(s) differ beyond timing")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
