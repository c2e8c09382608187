"""slimaudio.summary.compare: a moved number is found, a moved timing is not."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from slimaudio.summary import compare


def _tree(root: Path, eer: float, latency: float, note: str | None = None) -> Path:
    (root / "study").mkdir(parents=True)
    pd.DataFrame({"variant": ["a", "b"], "eer": [eer, float("nan")],
                  "latency_ms": [latency, 2.0], "note": [note, "x"]}).to_csv(
        root / "study" / "table.csv", index=False)
    (root / "study" / "metrics.json").write_text(json.dumps(
        {"eer": eer, "timings_s": {"total": latency}, "rows": [{"speedup": latency}]}))
    return root


def test_timings_and_blanks_are_not_differences(tmp_path: Path) -> None:
    old, new = _tree(tmp_path / "old", 3.0, 1.0), _tree(tmp_path / "new", 3.0, 7.0)
    assert compare.compare_trees(old, new) == {}
    assert compare.main([str(old), str(new)]) == 0


def test_a_moved_number_is_named(tmp_path: Path, capsys) -> None:
    old, new = _tree(tmp_path / "old", 3.0, 1.0), _tree(tmp_path / "new", 3.1, 1.0)
    diffs = compare.compare_trees(old, new)
    assert diffs["study/table.csv"] == ["column eer differs"]
    assert diffs["study/metrics.json"] == ["key eer: 3.0 vs 3.1"]
    assert compare.main([str(old), str(new)]) == 1
    assert "2 file(s) differ beyond timing" in capsys.readouterr().out


def test_missing_files_and_new_files_are_reported(tmp_path: Path, capsys) -> None:
    old, new = _tree(tmp_path / "old", 3.0, 1.0), _tree(tmp_path / "new", 3.0, 1.0)
    (new / "study" / "metrics.json").rename(new / "study" / "other.json")
    assert compare.compare_trees(old, new) == {"study/metrics.json": ["missing in the new tree"]}
    compare.main([str(old), str(new)])
    assert "study/other.json: new file" in capsys.readouterr().out
    assert compare.main([str(old), str(tmp_path / "nowhere")]) == 2


def test_rows_that_hold_timing_are_skipped(tmp_path: Path) -> None:
    for name, lat in (("old", 0.1), ("new", 0.3)):
        (tmp_path / name).mkdir()
        pd.DataFrame({"target": ["quality", "latency"], "weight": [0.5, lat]}).to_csv(
            tmp_path / name / "regression.csv", index=False)
    assert compare.compare_trees(tmp_path / "old", tmp_path / "new") == {}
    pd.DataFrame({"target": ["quality", "latency"], "weight": [0.6, 0.3]}).to_csv(
        tmp_path / "new" / "regression.csv", index=False)
    assert compare.compare_trees(tmp_path / "old", tmp_path / "new") == {
        "regression.csv": ["column weight differs"]}
