"""Number formatting for every report: one rule for digits, signs and missing values."""

from __future__ import annotations

import math
from typing import Any

MISSING = "—"


def num(x: Any, digits: int = 3, sign: bool = False) -> str:
    """`x` with `digits` decimals (a leading + or - when `sign`); MISSING for None, NaN, inf
    or anything that is not a number."""
    try:
        f = float(x)
    except (TypeError, ValueError):
        return MISSING
    if not math.isfinite(f):
        return MISSING
    return f"{f:+.{digits}f}" if sign else f"{f:.{digits}f}"


def interval(x: Any, lo: Any, hi: Any, digits: int = 3, sign: bool = False) -> str:
    """A value with its interval: '8.40 [6.67, 10.16]' (signs on all three when `sign`);
    MISSING alone when there is no value."""
    if num(x) == MISSING:
        return MISSING
    return f"{num(x, digits, sign)} [{num(lo, digits, sign)}, {num(hi, digits, sign)}]"


def interval_of(iv: Any, digits: int = 3, sign: bool = False) -> str:
    """`interval` of a stats.Interval (anything with value, lo and hi)."""
    return interval(iv.value, iv.lo, iv.hi, digits, sign)


def pct(x: Any, digits: int = 1) -> str:
    """A fraction as a percentage: 0.531 -> '53.1%'."""
    s = num(100.0 * float(x), digits) if _is_number(x) else MISSING
    return s if s == MISSING else f"{s}%"


def _is_number(x: Any) -> bool:
    try:
        float(x)
    except (TypeError, ValueError):
        return False
    return True
