"""Stage runtimes: the PTQ study's float and INT8 ECAPA-TDNN on ONNX Runtime beside OpenVINO
(float, NNCF INT8, bf16 where the CPU has it): EER, size and speed, at the trained width and
at the PTQ study's width models."""

from __future__ import annotations

from pathlib import Path

from slimaudio import atomic, tracking
from slimaudio.latency import Spread
from slimaudio.stage import cli, parse_args, setup
from slimaudio.stats import BootstrapConfig

SECTIONS = ("base", "ecapa.model.channels", "ptq_layerwise")
OUTPUTS = ("table", "rows", "table_md", "metrics")


def main() -> None:
    from slimaudio.studies.base import StudyReport
    from slimaudio.studies.ptq_layerwise import config
    from slimaudio.studies.runtimes import report
    from slimaudio.studies.runtimes.rules import STUDY
    from slimaudio.studies.runtimes.run import run_study

    args = parse_args(__doc__, ["ptq_models", "data", "models_dir", *OUTPUTS])
    params = setup(args.params, SECTIONS)
    base, ptq = params["base"], config.from_params(params["ptq_layerwise"])
    with tracking.stage_run("runtimes", "runtimes", params.flat()) as run:
        with atomic.atomic_dir(args.models_dir) as tmp:
            res = run_study(Path(args.ptq_models), Path(args.data), Path(tmp), ptq,
                            int(params["ecapa"]["model"]["channels"]), int(base["seed"]),
                            int(base["threads"]), BootstrapConfig.from_params(base),
                            Spread.from_params(base))
        out = StudyReport(study=STUDY, table=res.table,
                          markdown=report.table_markdown(res.table, res.info),
                          metrics=report.summary_metrics(res.table, res.info),
                          variant_metrics={str(r["variant"]): {
                              k: float(r[k]) for k in ("eer", "delta_eer", "size_mib",
                                                       "latency_ms", "speedup")
                              if r[k] == r[k]} for _, r in res.table.iterrows()})
        out.write({role: getattr(args, role) for role in OUTPUTS})
        out.log(run)
    t = res.table.set_index("variant")
    print("runtimes: " + "; ".join(f"{v} {t.loc[v, 'speedup']:.2f}x" for v in t.index))


if __name__ == "__main__":
    cli(main)
