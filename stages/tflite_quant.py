"""Stage tflite_quant: convert the ResNet into every TFLite variant; compare size, latency, F1."""

from __future__ import annotations

import json
from pathlib import Path

from slimaudio import atomic, tracking
from slimaudio.stage import cli, parse_args, setup

SECTIONS = ("base", "tflite_quant")


def main() -> None:
    args = parse_args(__doc__, ["sounds", "model_dir", "baseline", "tflite_dir", "table",
                                "table_md", "metrics", "size_plot", "latency_plot"])
    params = setup(args.params, SECTIONS)
    from slimaudio.datasets.sounds import load_sounds
    from slimaudio.frame_classifier.train import find_model, set_tf_threads
    from slimaudio.studies import tflite_quant as study

    threads = params["base"]["threads"]
    set_tf_threads(threads)  # the `original` row is timed on the same thread count as LiteRT
    data = load_sounds(args.sounds)
    model_path = find_model(args.model_dir)
    fmt = "HDF5" if model_path.suffix == ".h5" else "Keras"
    baseline = json.loads(Path(args.baseline).read_text(encoding="utf-8"))
    with tracking.stage_run("tflite_quant", "tflite_quant", params.flat()) as run, \
            atomic.atomic_dir(args.tflite_dir) as tmp:
        res = study.run_study(data, model_path, Path(tmp), params["tflite_quant"], threads,
                              params["base"]["seed"], fmt)
        atomic.write_csv(args.table, res.table)
        atomic.write_text(args.table_md, study.render_markdown(res, baseline))
        atomic.write_json(args.metrics, study.study_metrics(res))
        atomic.save_figure(args.size_plot, study.plot_f1_vs_size(res.table))
        atomic.save_figure(args.latency_plot, study.plot_f1_vs_latency(res.table))
        for row in res.table.to_dict("records"):
            child = run.child(row["variant"])
            child.log_metrics(study.flat_metrics(row))
            child.set_tags({"file_format": row["file_format"], "quantized": row["quantized"],
                            "calibration": row["calibration"]})
        run.log_metrics({f"{r['variant']}.f1": r["f1"] for r in res.table.to_dict("records")})
        for path in (args.table, args.table_md, args.size_plot, args.latency_plot):
            run.log_artifact(path)
    print("\n".join(study.describe(res)))


if __name__ == "__main__":
    cli(main)
