"""Plumbing shared by the thin scripts in stages/.

A stage script declares the params sections it reads (SECTIONS) and the paths it takes
(all passed in by dvc.yaml, never hard-coded), then calls the library. `cli` turns a
SlimAudioError into one `error: ...` line and exit status 2, on a line of its own even when
a tqdm progress bar was being drawn.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from slimaudio.config import Params, load_params
from slimaudio.errors import SlimAudioError
from slimaudio.runtime import seed_everything


def parse_args(description: str | None, paths: Sequence[str],
               argv: Sequence[str] | None = None,
               extra: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    """--params plus one required --<name> option per input/output path."""
    p = argparse.ArgumentParser(description=(description or "").strip().splitlines()[0])
    p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    for name in paths:
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, required=True)
    if extra:
        extra(p)
    return p.parse_args(argv)


def setup(params_path: str, sections: Sequence[str]) -> Params:
    """Validate params, configure logging and seed every RNG from base.seed."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s",
                        handlers=[_BarSafeHandler()])
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    params = load_params(params_path, sections)
    if "base" in params.sections:
        seed_everything(int(params["base"]["seed"]))
    return params


class _BarSafeHandler(logging.StreamHandler):
    """Writes log lines through tqdm while a bar is drawn, so a warning (e.g. a skipped file)
    gets its own line instead of being glued to the bar."""

    def emit(self, record: logging.LogRecord) -> None:
        tqdm = sys.modules.get("tqdm")  # never imported here: only if a stage drew a bar
        if tqdm is None or not getattr(tqdm.tqdm, "_instances", None):
            super().emit(record)
            return
        try:
            tqdm.tqdm.write(self.format(record), file=self.stream)
        except Exception:
            self.handleError(record)


def end_progress_bars() -> None:
    """Close every open tqdm bar, keeping its last state on a finished line: a bar stays open
    when an exception leaves its generator suspended, and its line has no newline yet."""
    tqdm = sys.modules.get("tqdm")
    if tqdm is None:
        return
    for bar in sorted(getattr(tqdm.tqdm, "_instances", ()), key=lambda b: -abs(b.pos)):
        bar.leave = True  # leave=True ends the bar's line with '\n'
        bar.close()


def _restore_hint() -> str:
    """DVC deletes a stage's outputs before it runs the command (DVC_STAGE names the stage);
    every output is cached, so the previous ones are a checkout away."""
    stage = os.environ.get("DVC_STAGE")
    if not stage:
        return ""
    return f" (the previous outputs of {stage}: `dvc checkout {stage}` brings them back)"


def cli(main: Callable[[], None], restore_hint: bool = True) -> None:
    """Run a stage's main(); user errors become one line on stderr and exit 2 (with how to
    restore the outputs DVC deleted, unless the stage has none worth restoring)."""
    try:
        main()
    except SlimAudioError as exc:
        end_progress_bars()
        print(f"error: {exc}{_restore_hint() if restore_hint else ''}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        end_progress_bars()
        print("interrupted: outputs are written atomically, nothing half-written was left",
              file=sys.stderr)
        sys.exit(130)
