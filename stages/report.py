"""Stage report: every study's tables beside the papers', findings, and a cross-study view."""

from __future__ import annotations

import os
from pathlib import Path

from slimaudio import atomic, spec, tracking
from slimaudio.schemas.report import Report
from slimaudio.stage import cli, parse_args, setup
from slimaudio.studies.registry import STUDIES
from slimaudio.summary import cross_study, html, page

SECTIONS = ("report", "prepare_speakers.corpus.kind", "prepare_sounds.corpus.kind")


def main() -> None:
    args = parse_args(__doc__, ["data", *(s.name for s in STUDIES), "summary", "html",
                                "cross_png", "cross_csv", "metrics"])
    params = setup(args.params, SECTIONS)
    report = spec.build(Report, params["report"])
    out_dir = Path(args.summary).parent
    studies = {s.name: page.load(s, Path(getattr(args, s.name))) for s in STUDIES}
    findings = {name: st.findings() for name, st in studies.items()}

    points = cross_study.collect({n: st.rows for n, st in studies.items() if st.rows is not None})
    atomic.write_csv(args.cross_csv, points)
    atomic.save_figure(args.cross_png, cross_study.plot(points, tuple(studies)))

    datasets = {"speakers": params["prepare_speakers"]["corpus"]["kind"],
                "sounds": params["prepare_sounds"]["corpus"]["kind"]}
    header = page.header_info(params.profile, tracking.git_commit(), datasets)
    rel = {name: os.path.relpath(st.folder, out_dir) for name, st in studies.items()}
    md = page.render_markdown(studies, findings, header, page.load_data_metrics(Path(args.data)),
                              os.path.relpath(args.cross_png, out_dir), rel)
    atomic.write_text(args.summary, md)
    atomic.write_text(args.html, html.render_html(md, out_dir, report.title))
    metrics = page.summary_metrics(findings)
    atomic.write_json(args.metrics, metrics)

    with tracking.stage_run("summary", "report", params.flat()) as run:
        run.log_metrics(metrics)
        for path in (args.summary, args.html, args.cross_png, args.cross_csv):
            run.log_artifact(path)
    for name, fs in findings.items():
        for f in fs:
            print(f"[{name}] {f.claim}: {f.verdict}")


if __name__ == "__main__":
    cli(main)
