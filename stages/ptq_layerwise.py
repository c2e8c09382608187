"""Stage ptq_layerwise: per-layer INT8 post-training quantization of the ECAPA-TDNN ONNX export."""

from __future__ import annotations

from slimaudio import atomic, tracking
from slimaudio.stage import cli, parse_args, setup
from slimaudio.studies.ptq_layerwise import (
    REPORT_FILES,
    metrics_summary,
    run_study,
    write_reports,
)

SECTIONS = ("base", "ptq")
ROW_KEYS = ("eer", "delta_eer", "min_dcf", "min_dcf_p05", "size_bytes", "size_mib",
            "size_ratio", "latency_ms", "latency_p90_ms", "speedup", "emb_cos")


def main() -> None:
    args = parse_args(__doc__, ["model", "data", "models_dir", *REPORT_FILES])
    params = setup(args.params, SECTIONS)
    cfg = params["ptq"]
    with tracking.stage_run("ptq_layerwise", "ptq_layerwise", params.flat()) as run:
        with atomic.atomic_dir(args.models_dir) as tmp:
            res = run_study(cfg, params["base"], args.model, args.data, tmp)
        files = write_reports(res, cfg, {k: getattr(args, k) for k in REPORT_FILES})
        summary = metrics_summary(res)
        run.log_metrics({k: v for k, v in summary.items() if isinstance(v, int | float)})
        run.log_params({"proposed_groups": ",".join(res.search.chosen) or "none",
                        "proposed_source": res.search.source})
        for path in files.values():
            run.log_artifact(path)
        for a in res.ablation:  # variants of `all`: metrics on the stage run, not rows
            run.log_metrics({f"{a['variant']}.{k}": a[k] for k in ROW_KEYS
                             if isinstance(a.get(k), float) and a[k] == a[k]})
        for name, row in res.rows.items():
            child = run.child(name)
            child.log_params({"kind": row.kind, "groups": ",".join(row.groups) or "none"})
            child.log_metrics({k: row.metrics[k] for k in ROW_KEYS if k in row.metrics})
    r = res.rows
    print(f"ptq_layerwise: float EER {r['none'].metrics['eer']:.3f}%; all: ratio "
          f"{r['all'].metrics['size_ratio']:.3f}, dEER {r['all'].metrics['delta_eer']:+.3f}, "
          f"speedup {r['all'].metrics['speedup']:.2f}x; proposed "
          f"[{', '.join(res.search.chosen) or 'nothing'}]: ratio "
          f"{r['proposed'].metrics['size_ratio']:.3f}, dEER "
          f"{r['proposed'].metrics['delta_eer']:+.3f}; {res.timings['total']:.1f} s "
          f"-> {args.table_md}")


if __name__ == "__main__":
    cli(main)
