"""Stage tflite_quant: convert the ResNet into every TFLite variant; compare size, latency, F1."""

from __future__ import annotations

import json
from pathlib import Path

from slimaudio import atomic, tracking
from slimaudio.schemas.base import Bootstrap, Spread
from slimaudio.schemas.tflite import TfliteQuant
from slimaudio.spec import build
from slimaudio.stage import cli, parse_args, setup
from slimaudio.studies.tflite_quant.rules import STUDY

SECTIONS = ("base", "tflite_quant")


def main() -> None:
    args = parse_args(__doc__, ["sounds", "model_dir", "baseline", "tflite_dir", *STUDY.roles])
    params = setup(args.params, SECTIONS)
    from slimaudio import runtime
    from slimaudio.datasets.sounds import load_sounds
    from slimaudio.frame_classifier.train import find_model
    from slimaudio.studies.tflite_quant import report, run

    base = params["base"]
    cfg, bootstrap = build(TfliteQuant, params["tflite_quant"]), build(Bootstrap, base["bootstrap"])
    threads = base["threads"]
    runtime.set_tf_threads(threads)  # the `original` row is timed on the same thread count as LiteRT
    data = load_sounds(args.sounds)
    model_path = find_model(args.model_dir)
    fmt = "HDF5" if model_path.suffix == ".h5" else "Keras"
    baseline = json.loads(Path(args.baseline).read_text(encoding="utf-8"))
    with tracking.stage_run("tflite_quant", "tflite_quant", params.flat()) as mlrun, \
            atomic.atomic_dir(args.tflite_dir) as tmp:
        res = run.run_study(data, model_path, Path(tmp), cfg, fmt, base["seed"], threads,
                            bootstrap, spread=build(Spread, base["latency"]))
        report.build(res, baseline).publish(args, mlrun)
    print("\n".join(report.describe(res.table)))


if __name__ == "__main__":
    cli(main)
