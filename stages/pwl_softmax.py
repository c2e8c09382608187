"""Stage pwl_softmax: EER before/after fine-tuning and speed of every softmax replacement."""

from __future__ import annotations

from pathlib import Path

from slimaudio import atomic, tracking
from slimaudio.datasets import speakers
from slimaudio.schemas.base import Bootstrap, Spread
from slimaudio.schemas.ecapa import Eval, Train
from slimaudio.schemas.pwl_softmax import PwlSoftmax
from slimaudio.speaker.train import TrainConfig, load_checkpoint
from slimaudio.spec import build
from slimaudio.stage import cli, parse_args, setup
from slimaudio.studies.pwl_softmax import report
from slimaudio.studies.pwl_softmax.fit import load_fit
from slimaudio.studies.pwl_softmax.rules import STUDY
from slimaudio.studies.pwl_softmax.run import run_study

SECTIONS = ("base", "ecapa.train", "ecapa.eval", "pwl_softmax")


def main() -> None:
    args = parse_args(__doc__, ["data", "model", "fit", "onnx_dir", *STUDY.roles])
    params = setup(args.params, SECTIONS)
    base, cfg = params["base"], build(PwlSoftmax, params["pwl_softmax"])
    train, ev = build(Train, params["ecapa"]["train"]), build(Eval, params["ecapa"]["eval"])
    with tracking.stage_run("pwl_softmax", "pwl_softmax", params.flat()) as run:
        data = speakers.load(args.data)
        model, aam, _ = load_checkpoint(args.model)
        fit_res = load_fit(args.fit)
        train_cfg = TrainConfig.of(train, data, int(base["seed"]))
        res = run_study(model, aam, data, fit_res, cfg, train_cfg, ev.onnx_opset,
                        int(base["seed"]), int(base["threads"]), build(Bootstrap, base["bootstrap"]),
                        threads_eval=ev.threads, spread=build(Spread, base["latency"]))
        with atomic.atomic_dir(args.onnx_dir) as tmp:
            for name, blob in res.onnx.items():
                (Path(tmp) / f"{name}.onnx").write_bytes(blob)
        meta = {"channels": model.cfg.channels, "mfa_channels": model.cfg.mfa_channels,
                "profile": params.profile, "ft_scope": cfg.ft.scope, "ft_steps": cfg.ft.steps,
                "threads": base["threads"], "frames": cfg.latency.frames}
        report.build(res, fit_res, meta).publish(args, run)
    t = res.table.set_index("method")
    print("pwl_softmax: " + "; ".join(
        f"{m} EER {t.loc[m, 'eer_before_ft']:.2f} -> {t.loc[m, 'eer_after_ft']:.2f}"
        for m in t.index if m != "baseline") + f"; {res.seconds['total']:.1f} s -> {args.table}")


if __name__ == "__main__":
    cli(main)
