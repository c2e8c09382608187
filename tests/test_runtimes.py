"""The runtime comparison (ORT beside OpenVINO) on a tiny ECAPA-TDNN and a tiny corpus: every
variant scored and timed, the width rows timed, the report, rows and verdicts written."""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
import pytest

pytest.importorskip("openvino")
pytest.importorskip("nncf")

from test_ptq import BOOT, _small_config, export_tiny, make_speakers  # noqa: E402

from slimaudio.latency import SIMPLE  # noqa: E402
from slimaudio.studies.base import ROW_COLUMNS, StudyReport, read_rows  # noqa: E402
from slimaudio.studies.ptq_layerwise import run as ptq_run  # noqa: E402
from slimaudio.studies.runtimes import config as rt_config  # noqa: E402
from slimaudio.studies.runtimes import report, rules  # noqa: E402
from slimaudio.studies.runtimes import run as rt_run  # noqa: E402
from slimaudio.summary import ship  # noqa: E402


@pytest.mark.slow
def test_runtimes_study_end_to_end(tmp_path) -> None:
    data = make_speakers(tmp_path / "speakers")
    raw = export_tiny(tmp_path / "ecapa.onnx")
    cfg = _small_config()
    cfg = replace(cfg, speed=replace(cfg.speed, runtimes=True))  # the width rows too
    ptq_run.run_study(cfg, 0, 1, BOOT, raw, data, tmp_path / "ptq", progress=False)
    rt_cfg = rt_config.Config(calibration=cfg.calibration, eval=cfg.eval, latency=cfg.latency,
                              speed=cfg.speed)  # what the stage reads of ptq_layerwise
    res = rt_run.run_study(tmp_path / "ptq", data, tmp_path / "rt", rt_cfg, 32, 0, 1, BOOT, SIMPLE,
                           progress=False)
    t = res.table.set_index("variant")
    trained = ["ort_float", "ort_int8", "ov_float", "ov_int8"] + (
        ["ov_bf16"] if res.info["bf16"] else [])
    wide = [f"c{c}/{v}" for c in cfg.speed.widths for v in trained]
    assert list(t.index) == trained + wide
    assert t.loc["ort_float", "speedup"] == 1.0 and t.loc["ort_float", "delta_eer"] == 0.0
    # the same float model on two runtimes: the same trial scores, hence the same EER
    assert t.loc["ov_float", "eer"] == pytest.approx(t.loc["ort_float", "eer"], abs=1e-9)
    assert t.loc[trained, ["eer", "eer_lo", "eer_hi", "delta_eer_lo", "speedup_lo"]].notna().all().all()
    assert t.loc[wide, "eer"].isna().all() and t.loc[wide, "speedup"].notna().all()
    assert (t["size_mib"] > 0).all()  # (a tiny model's INT8 IR is not smaller: FQ overhead)
    assert res.info["ov_ignored"]  # the mean subtraction stays float
    out = StudyReport(study=rules.STUDY, table=res.table,
                      markdown=report.table_markdown(res.table, res.info),
                      metrics=report.summary_metrics(res.table, res.info))
    out.write({r: tmp_path / "rep" / f for r, f in
               {"table": "table.csv", "rows": "rows.csv", "table_md": "table.md",
                "metrics": "metrics.json"}.items()})
    rows = read_rows(tmp_path / "rep" / "rows.csv")
    assert list(rows.columns) == list(ROW_COLUMNS)
    md = (tmp_path / "rep" / "table.md").read_text()
    assert "NNCF ignored scope" in md and "## At the widths people deploy" in md
    assert "speedup_c32_ov_int8" in json.loads((tmp_path / "rep" / "metrics.json").read_text())
    verdicts = rules.findings(pd.read_csv(tmp_path / "rep" / "table.csv"), {})
    assert len(verdicts) == 4 and all(f.verdict in ("holds", "does not hold", "inconclusive")
                                      for f in verdicts)
    picks = ship.choices(rules.STUDY, pd.read_csv(tmp_path / "rep" / "table.csv"), rows)
    assert {p["runtime"] for p in picks} == {"ONNX Runtime", "OpenVINO"}
