"""The summary report: every study's tables beside the papers', findings, and one cross-study view.

Inputs are the studies' report folders (table.csv, table.md, metrics.json, *.png); nothing is
recomputed here. Each paper's headline finding is checked against our numbers by an explicit
rule, so the sentence 'holds' or 'does not hold' is derived from measurements, never typed.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from slimaudio import papers

STUDIES = ("pwl_softmax", "ptq_layerwise", "tflite_quant", "distill")
TITLES = {
    "data": "Corpora",
    "pwl_softmax": "1. Piecewise-linear softmax in ECAPA-TDNN",
    "ptq_layerwise": "2. Per-layer INT8 post-training quantization of ECAPA-TDNN",
    "tflite_quant": "3. TFLite quantization of a ResNet50 sound-event classifier",
    "distill": "4. FRILL-style distillation into MobileNetV3 students",
}


@dataclass(frozen=True)
class Finding:
    claim: str
    verdict: str  # "holds", "does not hold", "partly holds", "not measured"
    evidence: str

    def sentence(self) -> str:
        return f"{self.claim}: **{self.verdict}** ({self.evidence})."


@dataclass
class Study:
    name: str
    folder: Path
    table: pd.DataFrame | None = None
    table_md: str = ""
    metrics: dict = field(default_factory=dict)
    images: list[Path] = field(default_factory=list)
    extra_tables: dict[str, pd.DataFrame] = field(default_factory=dict)


def load_study(name: str, folder: Path) -> Study:
    st = Study(name=name, folder=folder)
    if (folder / "table.csv").exists():
        st.table = pd.read_csv(folder / "table.csv")
    elif (folder / "students.csv").exists():
        st.table = pd.read_csv(folder / "students.csv")
    if (folder / "table.md").exists():
        st.table_md = (folder / "table.md").read_text(encoding="utf-8")
    if (folder / "metrics.json").exists():
        st.metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    st.images = sorted(folder.glob("*.png"))
    return st


# ------------------------------------------------------------------------------- findings


def _row(df: pd.DataFrame, key: str, value: str) -> pd.Series | None:
    hit = df[df[key].astype(str) == value]
    return None if hit.empty else hit.iloc[0]


def _num(x: object) -> float:
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return v


def pwl_findings(df: pd.DataFrame | None) -> list[Finding]:
    if df is None or "method" not in df:
        return [Finding("Piecewise-linear softmax study", "not measured", "no table.csv")]
    out: list[Finding] = []
    ctrl = _row(df, "method", "baseline_ft_control")
    base = _row(df, "method", "baseline")
    ref = ctrl if ctrl is not None else base
    ref_eer = _num(ref["eer_after_ft"]) if ref is not None else math.nan
    methods = [m for m in ("clip", "pwl1", "pwl2") if _row(df, "method", m) is not None]
    gaps = {m: _num(_row(df, "method", m)["eer_after_ft"]) - ref_eer for m in methods}
    tol = max(0.1, 0.05 * ref_eer) if not math.isnan(ref_eer) else math.nan
    ok = [m for m, g in gaps.items() if g <= tol]
    verdict = "holds" if len(ok) == len(gaps) and gaps else ("partly holds" if ok else "does not hold")
    out.append(Finding(
        "Fine-tuning recovers the EER lost to the approximations (within 0.1 points or 5% of the fine-tuned baseline)",
        verdict,
        ", ".join(f"{m} {g:+.2f} points" for m, g in gaps.items()) + f" vs the FT control at {ref_eer:.2f}%"))
    before = {m: _num(_row(df, "method", m)["eer_before_ft"]) for m in methods}
    base_eer = _num(base["eer_before_ft"]) if base is not None else math.nan
    worse = [m for m, v in before.items() if v > base_eer]
    out.append(Finding(
        "Swapping exp() without fine-tuning degrades EER",
        "holds" if worse and len(worse) == len(before) else ("partly holds" if worse else "does not hold"),
        ", ".join(f"{m} {v:.2f}%" for m, v in before.items()) + f" vs baseline {base_eer:.2f}%"))
    for col, where in (("rel_time_model_torch", "torch"), ("rel_time_model_onnx", "ONNX Runtime")):
        if col not in df:
            continue
        rel = {m: _num(_row(df, "method", m)[col]) for m in methods}
        faster = [m for m, v in rel.items() if v < 1.0]
        out.append(Finding(
            f"The approximations make the whole model faster ({where}, one thread)",
            "holds" if len(faster) == len(rel) else ("partly holds" if faster else "does not hold"),
            ", ".join(f"{m} {v:.3f}x" for m, v in rel.items()) + " of softmax time (paper: 0.943 / 0.964 / 0.971)"))
    return out


def ptq_findings(df: pd.DataFrame | None) -> list[Finding]:
    if df is None or "quantized" not in df:
        return [Finding("Per-layer PTQ study", "not measured", "no table.csv")]
    out: list[Finding] = []
    groups = [g for g in ("conv_in", "block1", "block2", "block3", "conv_mfa", "asp", "fc")
              if _row(df, "quantized", g) is not None]
    delta = {g: _num(_row(df, "quantized", g)["delta_eer"]) for g in groups}
    if delta:
        top2 = sorted(delta, key=lambda g: delta[g], reverse=True)[:2]
        blocks = {"block1", "block2", "block3"}
        most = max(delta, key=lambda g: delta[g])
        out.append(Finding(
            "The SE-Res2Blocks are the layers most sensitive to INT8 (paper: block3 > block2 > the rest)",
            "holds" if most in blocks and set(top2) <= blocks else ("partly holds" if most in blocks or set(top2) & blocks else "does not hold"),
            "EER increase per group: " + ", ".join(f"{g} {delta[g]:+.2f}" for g in groups)))
    pc = _row(df, "quantized", "paper_choice")
    if pc is not None:
        out.append(Finding(
            "Quantizing every group but blocks 2 and 3 roughly halves the model at a small EER cost (paper: 53% of the size, +0.07 points)",
            "holds" if _num(pc["size_ratio"]) <= 0.6 and _num(pc["delta_eer"]) <= 0.15 else "does not hold",
            f"size ratio {_num(pc['size_ratio']):.2f}, EER {_num(pc['delta_eer']):+.2f} points"))
    allq = _row(df, "quantized", "all")
    if allq is not None and "speedup" in df:
        out.append(Finding(
            "Full INT8 is faster than float in ONNX Runtime on this CPU",
            "holds" if _num(allq["speedup"]) > 1.0 else "does not hold",
            f"speed-up {_num(allq['speedup']):.2f}x, size ratio {_num(allq['size_ratio']):.2f}, EER {_num(allq['delta_eer']):+.2f} points"))
    return out


def tflite_findings(df: pd.DataFrame | None) -> list[Finding]:
    if df is None or "variant" not in df:
        return [Finding("TFLite quantization study", "not measured", "no table.csv")]
    out: list[Finding] = []
    basic = _row(df, "variant", "basic")
    if basic is None:
        return [Finding("TFLite quantization study", "not measured", "no basic row")]
    f1b, sizeb = _num(basic["f1"]), _num(basic["size_bytes"])
    for v, claim, f1_tol in (
        ("float16", "float16 keeps F1 at about half the size (paper: 0.890 at 47 MB)", 0.01),
        ("dynamic_range", "Dynamic-range quantization nearly keeps F1 at a quarter of the size (paper: 0.850 at 24 MB)", 0.05),
    ):
        r = _row(df, "variant", v)
        if r is None:
            continue
        kept = _num(r["f1"]) >= f1b - f1_tol
        out.append(Finding(claim, "holds" if kept else "does not hold",
                           f"F1 {_num(r['f1']):.3f} vs basic {f1b:.3f}, size {_num(r['size_bytes']) / sizeb:.2f} of basic"))
    ints = {v: _row(df, "variant", v) for v in ("int", "full_int", "full_int_naive")}
    if ints["int"] is not None and ints["full_int"] is not None:
        f_int, f_full = _num(ints["int"]["f1"]), _num(ints["full_int"]["f1"])
        collapsed = f_int < 0.5 * f1b and f_full < 0.5 * f1b
        ev = f"int F1 {f_int:.3f}, full-int F1 {f_full:.3f} with inputs quantized by the model's scale and zero point"
        if ints["full_int_naive"] is not None:
            ev += f"; the same full-int model fed raw floats scores {_num(ints['full_int_naive']['f1']):.3f}"
        out.append(Finding(
            "Integer quantization collapses F1 (paper: int 0.28, full-int 0.0001)",
            "holds" if collapsed else "does not hold when inputs are quantized correctly", ev))
    return out


def distill_findings(df: pd.DataFrame | None, metrics: Mapping) -> list[Finding]:
    if df is None or "latency_ms" not in df:
        return [Finding("Distillation study", "not measured", "no students.csv")]
    ref = papers.FRILL
    sp, sf, drop = (_num(metrics.get(k)) for k in ("chosen_speedup", "chosen_size_fraction", "chosen_accuracy_drop"))
    if math.isnan(sp):
        return [Finding("A distilled student is much faster and smaller than the teacher at a small accuracy cost",
                        "not measured", "metrics.json has no chosen_speedup")]
    ok = sp >= 10 and sf <= ref["size_fraction"] and drop <= 0.05
    return [Finding(
        "A distilled student is much faster and smaller than the teacher at a small accuracy cost (paper: 32x faster, 40% of the size, about 2% less accurate)",
        "holds" if ok else ("partly holds" if sp >= 10 or drop <= 0.05 else "does not hold"),
        f"chosen student {sp:.1f}x faster, {100 * sf:.0f}% of the size, mean accuracy {100 * drop:+.1f}% below the teacher")]


FINDERS: dict[str, Callable[[Study], list[Finding]]] = {
    "pwl_softmax": lambda s: pwl_findings(s.table),
    "ptq_layerwise": lambda s: ptq_findings(s.table),
    "tflite_quant": lambda s: tflite_findings(s.table),
    "distill": lambda s: distill_findings(s.table, s.metrics),
}


# ------------------------------------------------------------------------ cross-study view


def cross_study_points(studies: Mapping[str, Study]) -> pd.DataFrame:
    """Every variant with a size and a latency; quality relative to the study's reference row
    (1 = as good as the reference; EER is inverted so higher is always better)."""
    rows: list[dict] = []

    def add(study: str, df: pd.DataFrame, key: str, ref: str, q: str, lower_better: bool) -> None:
        need = {key, "size_mib", "latency_ms", q}
        if df is None or not need <= set(df.columns):
            return
        refrow = _row(df, key, ref)
        refq = _num(refrow[q]) if refrow is not None else math.nan
        for _, r in df.iterrows():
            val = _num(r[q])
            rel = (refq / val if lower_better else val / refq) if refq and val else math.nan
            rows.append({"study": study, "variant": str(r[key]), "size_mib": _num(r["size_mib"]),
                         "latency_ms": _num(r["latency_ms"]), "quality_metric": q, "quality": val,
                         "relative_quality": rel})

    s = studies
    if "pwl_softmax" in s and s["pwl_softmax"].table is not None:
        add("pwl_softmax", s["pwl_softmax"].table, "method", "baseline", "eer_after_ft", True)
    if "ptq_layerwise" in s:
        add("ptq_layerwise", s["ptq_layerwise"].table, "quantized", "none", "eer", True)
    if "tflite_quant" in s:
        add("tflite_quant", s["tflite_quant"].table, "variant", "basic", "f1", False)
    if "distill" in s:
        df = s["distill"].table
        key = "student" if df is not None and "student" in df else "name"
        add("distill", df, key, "teacher", "mean_accuracy", False)
    return pd.DataFrame(rows)


def plot_cross_study(points: pd.DataFrame):  # -> matplotlib Figure
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    markers = dict(zip(STUDIES, ("o", "s", "^", "D"), strict=True))
    pts = points.dropna(subset=["size_mib", "latency_ms"])
    pts = pts[(pts.size_mib > 0) & (pts.latency_ms > 0)]
    sc = None
    for study, grp in pts.groupby("study"):
        sc = ax.scatter(grp.size_mib, grp.latency_ms, c=grp.relative_quality.clip(0, 1.2),
                        cmap="viridis", vmin=0, vmax=1.2, marker=markers.get(study, "o"),
                        s=55, edgecolors="k", linewidths=0.5, label=study)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("model size (MiB, log)")
    ax.set_ylabel("latency, batch 1, one thread (ms, median, log)")
    ax.set_title("Every variant of every study: size, latency and quality")
    ax.grid(True, which="both", alpha=0.3)
    if sc is not None:
        fig.colorbar(sc, ax=ax, label="quality relative to the study's reference (1 = same)")
        ax.legend(loc="best", fontsize=8)
    return fig


# --------------------------------------------------------------------------- rendering


def render_markdown(studies: Mapping[str, Study], findings: Mapping[str, list[Finding]],
                    header: Mapping[str, str], data_metrics: Mapping, cross_png: str,
                    rel_dirs: Mapping[str, str]) -> str:
    """The summary page; image links are relative to the page (rel_dirs: study -> folder)."""
    lines = ["# slimaudio: the four studies, regenerated", ""]
    lines += [f"- **{k}**: {v}" for k, v in header.items()] + [""]
    lines += ["All numbers below come from this pipeline run; the papers' numbers are quoted beside "
              "them from the papers themselves (`slimaudio/papers.py`).", ""]
    if data_metrics:
        lines += ["## Corpora", ""]
        lines += [f"- {k}: {v}" for k, v in _data_summary(data_metrics).items()] + [""]
    for name in STUDIES:
        st = studies.get(name)
        lines += [f"## {TITLES[name]}", ""]
        lines += ["**Does the paper's finding hold here?**", ""]
        lines += [f"- {f.sentence()}" for f in findings.get(name, [])] + [""]
        if st is None:
            lines += ["_This study produced no report._", ""]
            continue
        body = _demote_headings(st.table_md.strip()) if st.table_md else ""
        if body:
            lines += [body, ""]
        for img in st.images:
            lines += [f"![{name}: {img.stem}]({rel_dirs.get(name, name)}/{img.name})", ""]
    lines += ["## Across studies", "", f"![cross-study view]({cross_png})", ""]
    return "\n".join(lines)


def _demote_headings(md: str) -> str:
    return re.sub(r"^(#{1,4}) ", lambda m: "#" * min(len(m.group(1)) + 2, 6) + " ", md, flags=re.M)


def _data_summary(m: Mapping) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, val in m.items():
        if isinstance(val, int | float | str):
            out[key] = str(val)
        elif isinstance(val, Mapping):
            flat = {k: v for k, v in val.items() if isinstance(v, int | float | str)}
            if flat:
                out[key] = ", ".join(f"{k} {v}" for k, v in list(flat.items())[:8])
    return out


def markdown_to_html(md: str, base: Path) -> str:
    """Enough Markdown for our reports: headings, pipe tables, lists, images (embedded), paragraphs."""
    out: list[str] = []
    lines = md.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        if m := re.match(r"^(#{1,6}) (.*)", line):
            n = len(m.group(1))
            out.append(f"<h{n}>{_inline(m.group(2))}</h{n}>")
            i += 1
        elif line.lstrip().startswith("|"):
            block = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                block.append(lines[i])
                i += 1
            out.append(_table_html(block))
        elif re.match(r"^\s*[-*] ", line):
            items = []
            while i < len(lines) and re.match(r"^\s*[-*] ", lines[i]):
                items.append(re.sub(r"^\s*[-*] ", "", lines[i]))
                i += 1
            out.append("<ul>" + "".join(f"<li>{_inline(t)}</li>" for t in items) + "</ul>")
        elif m := re.match(r"^!\[(.*?)\]\((.*?)\)\s*$", line):
            out.append(_img_html(m.group(1), base / m.group(2)))
            i += 1
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not re.match(r"^(#|\||!\[|\s*[-*] )", lines[i]):
                para.append(lines[i])
                i += 1
            out.append(f"<p>{_inline(' '.join(para))}</p>")
    return "\n".join(out)


def _inline(text: str) -> str:
    t = html.escape(text, quote=False)
    t = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", t)
    t = re.sub(r"`(.+?)`", r"<code>\1</code>", t)
    t = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", t)
    t = re.sub(r"(?<!\w)_(?!\s)(.+?)(?<!\s)_(?!\w)", r"<em>\1</em>", t)
    return t


def _table_html(block: list[str]) -> str:
    rows = [[c.strip() for c in r.strip().strip("|").split("|")] for r in block]
    rows = [r for r in rows if not all(re.fullmatch(r":?-{2,}:?", c) for c in r if c)]
    if not rows:
        return ""
    head, body = rows[0], rows[1:]
    h = "".join(f"<th>{_inline(c)}</th>" for c in head)
    b = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{b}</tbody></table>"


def _img_html(alt: str, path: Path) -> str:
    if not path.exists():
        return f"<p><em>missing image: {html.escape(str(path.name))}</em></p>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(alt)}</figcaption></figure>")


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}th,td{border:1px solid #bbb;padding:.3em .6em;text-align:right}
th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #ddd}figure{margin:1em 0}figcaption{font-size:.8em;color:#666}
code{background:#f5f5f5;padding:0 .2em}
"""


def render_html(md: str, base: Path, title: str) -> str:
    body = markdown_to_html(md, base)
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head>"
            f"<body>\n{body}\n</body></html>\n")


def header_info(profile: str, commit: str, datasets: Mapping[str, str]) -> dict[str, str]:
    return {
        "profile": profile,
        "datasets": ", ".join(f"{k}: {v}" for k, v in datasets.items()),
        "git commit": commit,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def summary_metrics(findings: Mapping[str, list[Finding]]) -> dict[str, float]:
    """Counts of findings that hold, for dvc metrics."""
    flat = [f for fs in findings.values() for f in fs]
    return {
        "findings_total": len(flat),
        "findings_hold": sum(f.verdict == "holds" for f in flat),
        "findings_partly": sum(f.verdict == "partly holds" for f in flat),
        "findings_not_measured": sum(f.verdict == "not measured" for f in flat),
    }


def finite(x: float) -> bool:
    return bool(np.isfinite(x))
