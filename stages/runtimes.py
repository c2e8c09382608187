"""Stage runtimes: the PTQ study's float and INT8 ECAPA-TDNN on ONNX Runtime beside OpenVINO
(float, NNCF INT8, bf16 where the CPU has it): EER, size and speed, at the trained width and
at the PTQ study's width models."""

from __future__ import annotations

from pathlib import Path

from slimaudio import atomic, tracking
from slimaudio.latency import Spread
from slimaudio.schemas.base import Bootstrap
from slimaudio.spec import build
from slimaudio.stage import cli, parse_args, setup
from slimaudio.studies.runtimes import config

SECTIONS = ("base", "ecapa.model.channels", *(f"ptq_layerwise.{k}" for k in config.KEYS))


def main() -> None:
    from slimaudio.studies.runtimes import report
    from slimaudio.studies.runtimes.rules import STUDY
    from slimaudio.studies.runtimes.run import run_study

    args = parse_args(__doc__, ["ptq_models", "data", "models_dir", *STUDY.roles])
    params = setup(args.params, SECTIONS)
    base, ptq = params["base"], build(config.Config, params["ptq_layerwise"])
    with tracking.stage_run("runtimes", "runtimes", params.flat()) as run:
        with atomic.atomic_dir(args.models_dir) as tmp:
            res = run_study(Path(args.ptq_models), Path(args.data), Path(tmp), ptq,
                            int(params["ecapa"]["model"]["channels"]), int(base["seed"]),
                            int(base["threads"]), build(Bootstrap, base["bootstrap"]),
                            build(Spread, base["latency"]))
        report.build(res.table, res.info).publish(args, run)
    t = res.table.set_index("variant")
    print("runtimes: " + "; ".join(f"{v} {t.loc[v, 'speedup']:.2f}x" for v in t.index))


if __name__ == "__main__":
    cli(main)
