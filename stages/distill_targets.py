"""Stage distill_targets: patches of the speaker corpus and the teacher's per-patch embeddings
(the distillation targets), plus the probe set every student is scored on."""

from __future__ import annotations

from slimaudio import atomic, tracking
from slimaudio.latency import Spread
from slimaudio.schemas.distill import Distill
from slimaudio.spec import build
from slimaudio.stage import cli, parse_args, setup

SECTIONS = ("base", "distill")


def main() -> None:
    args = parse_args(__doc__, ["speakers", "teacher", "out_dir"])
    params = setup(args.params, SECTIONS)
    from slimaudio.studies.distill.targets import make_targets

    base, cfg = params["base"], build(Distill, params["distill"])
    with tracking.stage_run("distill", "distill_targets", params.flat()) as run, \
            atomic.atomic_dir(args.out_dir) as tmp:
        info = make_targets(args.speakers, args.teacher, tmp, cfg, int(base["seed"]),
                            int(base["threads"]), spread=build(Spread, base["latency"]))
        t = info["teacher"]
        run.log_metrics({**{k: t[k] for k in ("size_bytes", "size_mib", "latency_ms",
                                             "latency_p90_ms", "params")},
                         **info["accuracy"], **info["counts"]})
        run.set_tags({"role": "teacher", "runtime": t["runtime"]})
    acc = info["accuracy"]
    print(f"distill_targets: {info['counts']['train_patches']} train / "
          f"{info['counts']['probe_patches']} probe patches; teacher {t['latency_ms']:.3f} ms "
          f"(ONNX Runtime), {t['size_mib']:.2f} MiB, mean probe accuracy {acc['mean_accuracy']:.3f} "
          f"({', '.join(f'{k[4:]} {v:.3f}' for k, v in acc.items() if k.startswith('acc_'))})")


if __name__ == "__main__":
    cli(main)
