from __future__ import annotations

from pathlib import Path

import pandas as pd

from slimaudio.studies import summary


def _pwl(after: dict[str, float], rel: float) -> pd.DataFrame:
    rows = [("baseline", 3.0, 3.0), ("baseline_ft_control", 3.0, after["ctrl"])]
    rows += [(m, 6.0, after[m]) for m in ("clip", "pwl1", "pwl2")]
    df = pd.DataFrame(rows, columns=["method", "eer_before_ft", "eer_after_ft"])
    df["rel_time_model_torch"] = [1.0, 1.0, rel, rel, rel]
    return df


def test_pwl_findings_follow_the_numbers() -> None:
    good = summary.pwl_findings(_pwl({"ctrl": 3.0, "clip": 3.05, "pwl1": 3.0, "pwl2": 2.9}, 0.95))
    assert [f.verdict for f in good] == ["holds", "holds", "holds"]
    bad = summary.pwl_findings(_pwl({"ctrl": 3.0, "clip": 4.0, "pwl1": 3.0, "pwl2": 3.5}, 1.05))
    assert bad[0].verdict == "partly holds"
    assert bad[2].verdict == "does not hold"
    assert "pwl1" in bad[0].evidence


def test_ptq_findings() -> None:
    df = pd.DataFrame({
        "quantized": ["none", "conv_in", "block1", "block2", "block3", "conv_mfa", "asp", "fc", "all", "paper_choice"],
        "delta_eer": [0, 0.01, 0.02, 0.2, 0.3, 0.05, 0.03, 0.0, 0.4, 0.08],
        "size_ratio": [1, 0.9, 0.8, 0.8, 0.8, 0.7, 0.9, 0.95, 0.26, 0.5],
        "speedup": [1, 1, 1, 1, 1, 1, 1, 1, 1.3, 1.1],
    })
    f = summary.ptq_findings(df)
    assert f[0].verdict == "holds" and f[1].verdict == "holds" and f[2].verdict == "holds"
    df.loc[df.quantized == "conv_in", "delta_eer"] = 1.0
    assert summary.ptq_findings(df)[0].verdict == "partly holds"


def test_tflite_collapse_finding() -> None:
    df = pd.DataFrame({
        "variant": ["basic", "float16", "dynamic_range", "int", "full_int", "full_int_naive"],
        "f1": [0.9, 0.9, 0.89, 0.89, 0.88, 0.02],
        "size_bytes": [100, 50, 26, 26, 26, 26],
    })
    f = {x.claim.split()[0]: x for x in summary.tflite_findings(df)}
    assert f["float16"].verdict == "holds"
    assert f["Integer"].verdict.startswith("does not hold")
    assert "0.020" in f["Integer"].evidence
    df.loc[df.variant.isin(["int", "full_int"]), "f1"] = 0.1
    f = {x.claim.split()[0]: x for x in summary.tflite_findings(df)}
    assert f["Integer"].verdict == "holds"


def test_missing_study_is_not_measured() -> None:
    assert summary.pwl_findings(None)[0].verdict == "not measured"
    assert summary.distill_findings(pd.DataFrame({"latency_ms": [1.0]}), {})[0].verdict == "not measured"


def test_markdown_to_html_embeds_images(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1])
    fig.savefig(tmp_path / "p.png")
    md = "# T\n\nsome **bold** `code`\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n- x\n- y\n\n![plot](p.png)\n![gone](q.png)\n"
    out = summary.render_html(md, tmp_path, "title")
    assert "<h1>T</h1>" in out and "<strong>bold</strong>" in out
    assert "<table><thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr><td>1</td><td>2</td></tr>" in out
    assert "<li>x</li>" in out
    assert 'src="data:image/png;base64,' in out
    assert "missing image: q.png" in out


def test_cross_study_points_relative_quality() -> None:
    st = summary.Study("ptq_layerwise", Path("."))
    st.table = pd.DataFrame({"quantized": ["none", "all"], "size_mib": [4.0, 1.0],
                             "latency_ms": [2.0, 1.0], "eer": [2.0, 4.0]})
    tf = summary.Study("tflite_quant", Path("."))
    tf.table = pd.DataFrame({"variant": ["basic", "int"], "size_mib": [4.0, 1.0],
                             "latency_ms": [2.0, 1.0], "f1": [0.8, 0.4]})
    pts = summary.cross_study_points({"ptq_layerwise": st, "tflite_quant": tf})
    rel = dict(zip(pts.study + "/" + pts.variant, pts.relative_quality, strict=True))
    assert rel == {"ptq_layerwise/none": 1.0, "ptq_layerwise/all": 0.5,
                   "tflite_quant/basic": 1.0, "tflite_quant/int": 0.5}
    summary.plot_cross_study(pts)
