"""slimaudio.stage.cli: the one `error: ...` line never shares a line with a progress bar."""

from __future__ import annotations

import logging
import sys

import pytest
from tqdm import tqdm

from slimaudio.errors import DataError
from slimaudio.stage import _BarSafeHandler, cli


def _items_with_a_bar(n: int):
    """Like prepare.common.run_chunks: a bar that stays open while the generator is suspended."""
    bar = tqdm(total=n, desc="sounds", file=sys.stderr, leave=False, mininterval=0)
    try:
        for i in range(n):
            bar.update(1)
            bar.refresh()
            yield i
    finally:
        bar.close()


def test_error_line_starts_on_a_fresh_line_after_a_progress_bar(capsys):
    def main() -> None:
        items = _items_with_a_bar(10)  # held, as prepare_sounds holds run_chunks' generator
        for i in items:
            if i == 4:
                raise DataError("prepare_sounds: no frames left")

    with pytest.raises(SystemExit) as info:
        cli(main)
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert "sounds:" in err  # the bar was drawn
    assert "error: prepare_sounds: no frames left" in err.split("\n"), repr(err)


def test_log_lines_do_not_join_an_active_bar(capsys):
    logger = logging.getLogger("test_stage_bar_safe")
    logger.propagate = False
    logger.addHandler(_BarSafeHandler(sys.stderr))
    try:
        for i in _items_with_a_bar(3):
            if i == 1:
                logger.warning("skipped (corrupt): x.wav: cannot read audio")
    finally:
        logger.handlers.clear()
    # what a terminal shows of each line: the text after its last carriage return
    shown = [line.split("\r")[-1] for line in capsys.readouterr().err.split("\n")]
    assert "skipped (corrupt): x.wav: cannot read audio" in shown, shown
