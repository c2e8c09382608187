"""Stage ptq_layerwise: per-layer INT8 post-training quantization of a speaker-embedding model.

The ECAPA-TDNN ONNX export by default; any other ONNX model with params ptq_layerwise.groups
(regex layer groups) and ecapa.init.input (how it takes its features).
"""

from __future__ import annotations

from slimaudio import atomic, tracking
from slimaudio.latency import Spread
from slimaudio.schemas.base import Bootstrap
from slimaudio.schemas.ecapa import Init
from slimaudio.schemas.ptq_layerwise import PtqLayerwise
from slimaudio.spec import build
from slimaudio.stage import cli, parse_args, setup
from slimaudio.studies.ptq_layerwise import config, report
from slimaudio.studies.ptq_layerwise.rules import STUDY
from slimaudio.studies.ptq_layerwise.run import run_study

SECTIONS = ("base", "ecapa.init", "ptq_layerwise")


def main() -> None:
    args = parse_args(__doc__, ["model", "data", "models_dir", *STUDY.roles])
    params = setup(args.params, SECTIONS)
    init = build(Init, params["ecapa"]["init"])
    cfg = config.study_config(build(PtqLayerwise, params["ptq_layerwise"]), init.model_input)
    base = params["base"]
    with tracking.stage_run("ptq_layerwise", "ptq_layerwise", params.flat()) as run:
        with atomic.atomic_dir(args.models_dir) as tmp:
            res = run_study(cfg, int(base["seed"]), int(base["threads"]),
                            build(Bootstrap, base["bootstrap"]), args.model, args.data, tmp,
                            spread=build(Spread, base["latency"]))
        report.build(res, cfg).publish(args, run)
    print(f"{report.headline(res)} -> {args.table_md}")


if __name__ == "__main__":
    cli(main)
