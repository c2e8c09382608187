"""Stage pwl_softmax: EER before/after fine-tuning and speed of every softmax replacement."""

from __future__ import annotations

import json
from pathlib import Path

from slimaudio import atomic, tracking
from slimaudio.datasets import speakers
from slimaudio.speaker.evaluate import plot_det
from slimaudio.speaker.train import TrainConfig, load_checkpoint
from slimaudio.stage import cli, parse_args, setup
from slimaudio.studies import pwl_softmax as study

SECTIONS = ("base", "ecapa.train", "ecapa.eval", "pwl_softmax")


def main() -> None:
    args = parse_args(__doc__, ["data", "model", "fit", "onnx_dir", "table", "table_md",
                                "latency", "metrics", "det_plot", "curves_plot"])
    params = setup(args.params, SECTIONS)
    base, ecapa, cfg = params["base"], params["ecapa"], params["pwl_softmax"]
    with tracking.stage_run("pwl_softmax", "pwl_softmax", params.flat()) as run:
        data = speakers.load(args.data)
        model, aam, _ = load_checkpoint(args.model)
        fit_res = study.load_fit(args.fit)
        train_cfg = TrainConfig.from_params(ecapa["train"], data, int(base["seed"]))
        res = study.run_study(model, aam, data, fit_res, cfg, train_cfg, int(base["threads"]),
                              int(base["seed"]), int(ecapa["eval"]["onnx_opset"]),
                              threads_eval=int(ecapa["eval"]["threads"]))
        with atomic.atomic_dir(args.onnx_dir) as tmp:
            for name, blob in res.onnx.items():
                (Path(tmp) / f"{name}.onnx").write_bytes(blob)
        atomic.write_csv(args.table, res.table)
        atomic.write_csv(args.latency, res.latency)
        meta = {"channels": model.cfg.channels, "mfa_channels": model.cfg.mfa_channels,
                "profile": params.profile, "ft_scope": cfg["ft"]["scope"],
                "ft_steps": cfg["ft"]["steps"], "threads": base["threads"],
                "frames": cfg["latency"]["frames"]}
        atomic.write_text(args.table_md, study.table_markdown(res.table, res.latency, fit_res, meta))
        checks = study.checks(res.table)
        metrics = {**{f"{r['method']}_{k}": r[k] for r in res.table.to_dict("records")
                      for k in res.table.columns if k != "method" and r[k] == r[k] and r[k] is not None},
                   **checks, **{f"seconds_{k}": v for k, v in res.seconds.items()}}
        atomic.write_json(args.metrics, metrics)
        plot_det({n: res.after[n] for n in res.after}, args.det_plot, title="after fine-tuning")
        study.plot_ft_curves(res.ft_curves, args.curves_plot)
        run.log_metrics({k: v for k, v in metrics.items() if isinstance(v, int | float)})
        for p in (args.table, args.table_md, args.latency, args.det_plot, args.curves_plot):
            run.log_artifact(p)
        lat = res.latency.set_index("method")
        for v in [*res.variants, study.Variant("baseline_ft_control", "softmax")]:
            child = run.child(v.name)
            child.log_params({"method": v.method, "coeffs": json.dumps(v.params)})
            row = res.rows[v.name]
            child.log_metrics({k: val for k, val in row.items() if isinstance(val, int | float)})
            child.log_metrics(lat.loc[v.name].to_dict())
            for p in res.ft_curves.get(v.name, []):
                child.log_metric_step("ft_loss", p["loss"], int(p["step"]))
    t = res.table.set_index("method")
    print("pwl_softmax: " + "; ".join(
        f"{m} EER {t.loc[m, 'eer_before_ft']:.2f} -> {t.loc[m, 'eer_after_ft']:.2f}"
        for m in t.index if m != "baseline") + f"; {res.seconds['total']:.1f} s -> {args.table}")


if __name__ == "__main__":
    cli(main)
