from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from slimaudio.studies.base import StudyReport
from slimaudio.studies.distill import rules as distill_rules
from slimaudio.studies.ptq_layerwise import rules as ptq_rules
from slimaudio.studies.ptq_layerwise.rules import STUDY as PTQ
from slimaudio.studies.pwl_softmax import rules as pwl_rules
from slimaudio.studies.registry import STUDIES
from slimaudio.studies.tflite_quant import rules as tflite_rules
from slimaudio.studies.tflite_quant.rules import STUDY as TFLITE
from slimaudio.summary import cross_study, html, page


def _pwl(after: dict[str, float], rel: float) -> pd.DataFrame:
    rows = [("baseline", 3.0, 3.0), ("baseline_ft_control", 3.0, after["ctrl"])]
    rows += [(m, 6.0, after[m]) for m in ("clip", "pwl1", "pwl2")]
    df = pd.DataFrame(rows, columns=["method", "eer_before_ft", "eer_after_ft"])
    df["rel_time_model_torch"] = [1.0, 1.0, rel, rel, rel]
    return df


def _ptq(half: float, **delta: float) -> pd.DataFrame:
    """A PTQ table with every interval `half` wide around its value."""
    groups = ["conv_in", "block1", "block2", "block3", "conv_mfa", "asp", "fc"]
    d = dict(zip(groups, [0.01, 0.02, 0.2, 0.3, 0.05, 0.03, 0.0], strict=True)) | delta
    rows = ["none", *groups, "all", "paper_choice"]
    df = pd.DataFrame({"quantized": rows,
                       "delta_eer": [0.0, *d.values(), 0.4, 0.08],
                       "size_ratio": [1, 0.9, 0.8, 0.8, 0.8, 0.7, 0.9, 0.95, 0.26, 0.5],
                       "speedup": [1.0] * 8 + [1.3, 1.1]})
    df["score_shift"] = df["delta_eer"] / 100
    for col, w in (("delta_eer", half), ("score_shift", half / 100), ("speedup", half)):
        df[f"{col}_lo"], df[f"{col}_hi"] = df[col] - w, df[col] + w
    return df


def test_ptq_verdicts_follow_the_intervals() -> None:
    verdicts = lambda df: [f.verdict for f in ptq_rules.findings(df, {})]  # noqa: E731
    assert verdicts(_ptq(0.02)) == ["holds"] * 4
    # the same point values, intervals too wide to tell: every claim is open
    assert verdicts(_ptq(0.5)) == ["inconclusive"] * 4
    # a non-block group clearly above block2; paper_choice and full INT8 clearly fail
    df = _ptq(0.02, conv_in=0.5)
    df.loc[df.quantized == "paper_choice", ["delta_eer", "delta_eer_lo", "delta_eer_hi"]] = \
        [0.5, 0.4, 0.6]
    df.loc[df.quantized == "all", ["speedup", "speedup_lo", "speedup_hi"]] = [0.8, 0.7, 0.9]
    assert verdicts(df) == ["does not hold"] * 4
    assert "[" in ptq_rules.findings(df, {})[0].evidence  # the evidence gives the intervals


def test_tflite_collapse_finding() -> None:
    df = pd.DataFrame({
        "variant": ["basic", "float16", "dynamic_range", "int", "full_int", "full_int_naive"],
        "f1": [0.9, 0.9, 0.89, 0.89, 0.88, 0.02],
        # verdicts read the paired intervals; tests/test_tflite_study.py flips each of them
        "delta_f1_lo": [0, -0.004, -0.02, -0.02, -0.03, -0.9],
        "delta_f1_hi": [0, 0.004, 0.0, 0.0, 0.0, -0.85],
        "f1_ratio": [1, 1, 0.99, 0.99, 0.98, 0.022], "f1_ratio_lo": [1, 0.99, 0.98, 0.97, 0.96, 0.01],
        "f1_ratio_hi": [1, 1.01, 1.0, 1.0, 1.0, 0.03],
        "size_bytes": [100, 50, 26, 26, 26, 26],
    })
    f = {x.claim.split()[0]: x for x in tflite_rules.findings(df, {})}
    assert f["float16"].verdict == "holds"
    assert f["Integer"].verdict == "does not hold"
    assert "0.022 [0.010, 0.030]" in f["Integer"].evidence
    df.loc[df.variant.isin(["int", "full_int"]), ["f1_ratio_lo", "f1_ratio_hi"]] = [0.05, 0.2]
    f = {x.claim.split()[0]: x for x in tflite_rules.findings(df, {})}
    assert f["Integer"].verdict == "holds"


def test_missing_study_is_not_measured() -> None:
    assert pwl_rules.findings(None, {})[0].verdict == "not measured"
    assert distill_rules.findings(pd.DataFrame({"latency_ms": [1.0]}), {})[0].verdict == "not measured"


def test_markdown_to_html_embeds_images(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1])
    fig.savefig(tmp_path / "p.png")
    md = "# T\n\nsome **bold** `code`\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n- x\n- y\n\n![plot](p.png)\n![gone](q.png)\n"
    out = html.render_html(md, tmp_path, "title")
    assert "<h1>T</h1>" in out and "<strong>bold</strong>" in out
    assert "<table><thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr><td>1</td><td>2</td></tr>" in out
    assert "<li>x</li>" in out
    assert 'src="data:image/png;base64,' in out
    assert "missing image: q.png" in out


def test_cross_study_rows_relative_quality() -> None:
    ptq = PTQ.rows(pd.DataFrame({"quantized": ["none", "all"], "size_mib": [4.0, 1.0],
                                 "latency_ms": [2.0, 1.0], "eer": [2.0, 4.0]}))
    tfl = TFLITE.rows(pd.DataFrame({"variant": ["basic", "int"], "size_mib": [4.0, 1.0],
                                    "latency_ms": [2.0, 1.0], "f1": [0.8, 0.4]}))
    pts = cross_study.collect({"ptq_layerwise": ptq, "tflite_quant": tfl})
    rel = dict(zip(pts.study + "/" + pts.variant, pts.relative_quality, strict=True))
    assert rel == {"ptq_layerwise/none": 1.0, "ptq_layerwise/all": 0.5,
                   "tflite_quant/basic": 1.0, "tflite_quant/int": 0.5}
    cross_study.plot(pts, tuple(s.name for s in STUDIES))


def test_rows_refuse_a_table_without_the_study_columns() -> None:
    with pytest.raises(ValueError, match="lacks column"):
        PTQ.rows(pd.DataFrame({"quantized": ["none"], "eer": [2.0]}))


def test_report_write_refuses_roles_and_paths_that_disagree(tmp_path: Path) -> None:
    table = pd.DataFrame({"variant": ["basic"], "size_mib": [1.0], "latency_ms": [1.0],
                          "f1": [0.8]})
    rep = StudyReport(TFLITE, table, "# t\n", {"f1": 0.8}, tables={"extra": table})
    paths = {r: tmp_path / f"{r}.out" for r in ("table", "rows", "table_md", "metrics")}
    with pytest.raises(ValueError, match="extra"):
        rep.write(paths)
    assert not list(tmp_path.iterdir())  # nothing written
    written = rep.write({**paths, "extra": tmp_path / "extra.csv"})
    assert {p.name for p in written} == {"table.out", "rows.out", "table_md.out",
                                         "metrics.out", "extra.csv"}
    assert list(pd.read_csv(tmp_path / "rows.out").columns)[:2] == ["study", "variant"]


def test_the_summary_page_reads_each_study_folder_by_its_contract(tmp_path: Path) -> None:
    table = pd.DataFrame({"variant": ["basic", "int", "full_int"], "size_mib": [4.0, 1.0, 1.0],
                          "latency_ms": [2.0, 1.0, 1.0], "f1": [0.8, 0.3, 0.1],
                          "f1_ratio_lo": [1.0, 0.3, 0.05], "f1_ratio_hi": [1.0, 0.45, 0.2],
                          "size_bytes": [4, 1, 1]})
    StudyReport(TFLITE, table, "# TFLite\n", {"n": 1}).write(
        {r: tmp_path / n for r, n in (("table", "table.csv"), ("rows", "rows.csv"),
                                      ("table_md", "table.md"), ("metrics", "metrics.json"))})
    st = page.load(TFLITE, tmp_path)
    assert st.rows is not None and list(st.rows.variant) == ["basic", "int", "full_int"]
    assert [f.verdict for f in st.findings()] == ["holds"]  # int collapses here
    empty = page.load(PTQ, tmp_path / "nothing")
    md = page.render_markdown({"tflite_quant": st, "ptq_layerwise": empty}, {}, {}, {}, "x.png",
                              {})
    assert "### TFLite" in md and "_This study produced no report._" in md
