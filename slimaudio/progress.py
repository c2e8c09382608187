"""Progress bars that keep a log readable.

tqdm redraws a bar up to ten times a second. On a terminal that is what a bar is for; in a log
(CI, `make repro > log`, DVC's captured output) those redraws were nearly all of a default
run's output. There a bar redraws at most every PROGRESS_INTERVAL_S. The interval is passed to
each bar rather than set as TQDM_MININTERVAL, because tqdm reads that variable once, when it
is first imported, and torch imports it before any stage code runs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

PROGRESS_INTERVAL_S = 10.0


def progress_bar(iterable: Iterable[Any] | None = None, **kwargs: Any) -> Any:
    """A tqdm bar; on a non-terminal stderr it redraws at most every PROGRESS_INTERVAL_S,
    unless the user set TQDM_MININTERVAL."""
    from tqdm.auto import tqdm

    if "TQDM_MININTERVAL" not in os.environ and not sys.stderr.isatty():
        kwargs.setdefault("mininterval", PROGRESS_INTERVAL_S)
    return tqdm(iterable, **kwargs)
