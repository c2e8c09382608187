"""Stage report: every study's tables beside the papers', findings, and a cross-study view."""

from __future__ import annotations

import os
from pathlib import Path

from slimaudio import atomic, tracking
from slimaudio.stage import cli, parse_args, setup
from slimaudio.studies import summary

SECTIONS = ("report", "prepare_speakers.corpus.kind", "prepare_sounds.corpus.kind")
STUDY_ARGS = {"pwl_softmax": "pwl", "ptq_layerwise": "ptq", "tflite_quant": "tflite", "distill": "distill"}


def main() -> None:
    args = parse_args(__doc__, ["data", *STUDY_ARGS.values(), "summary", "html", "cross_png",
                                "cross_csv", "metrics"])
    params = setup(args.params, SECTIONS)
    out_dir = Path(args.summary).parent
    studies = {name: summary.load_study(name, Path(getattr(args, arg)))
               for name, arg in STUDY_ARGS.items()}
    data = summary.load_study("data", Path(args.data))
    findings = {name: summary.FINDERS[name](st) for name, st in studies.items()}

    points = summary.cross_study_points(studies)
    atomic.write_csv(args.cross_csv, points)
    atomic.save_figure(args.cross_png, summary.plot_cross_study(points))

    datasets = {"speakers": params["prepare_speakers"]["corpus"]["kind"],
                "sounds": params["prepare_sounds"]["corpus"]["kind"]}
    header = summary.header_info(params.profile, tracking.git_commit(), datasets)
    rel = {name: os.path.relpath(st.folder, out_dir) for name, st in studies.items()}
    md = summary.render_markdown(studies, findings, header, data.metrics,
                                 os.path.relpath(args.cross_png, out_dir), rel)
    atomic.write_text(args.summary, md)
    atomic.write_text(args.html, summary.render_html(md, out_dir, params["report"]["title"]))
    metrics = summary.summary_metrics(findings)
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
