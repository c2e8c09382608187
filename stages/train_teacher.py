"""Stage train_teacher: the distillation teacher, an ECAPA-TDNN wider than the study-1
baseline, trained on the same speakers and exported to ONNX (FRILL distils a large teacher;
the deployable study-1 model is itself mobile-sized, so it would be a poor one)."""

from __future__ import annotations

from slimaudio import atomic, tracking
from slimaudio.datasets import speakers
from slimaudio.models.ecapa import n_params
from slimaudio.schemas.distill import TrainTeacher
from slimaudio.speaker.export import export_onnx
from slimaudio.speaker.train import log_curve, train_baseline, training_summary, write_curve
from slimaudio.spec import build
from slimaudio.stage import cli, parse_args, setup

SECTIONS = ("base.seed", "train_teacher")


def main() -> None:
    args = parse_args(__doc__, ["data", "onnx", "curve", "curve_plot", "metrics"])
    params = setup(args.params, SECTIONS)
    teacher = build(TrainTeacher, params["train_teacher"])
    with tracking.stage_run("distill", "train_teacher", params.flat()) as run:
        data = speakers.load(args.data)
        model, _, sampler, res = train_baseline(data, teacher.model, teacher.train,
                                              int(params["base"]["seed"]))
        export_onnx(model, args.onnx, data.n_mels, teacher.onnx_opset)
        write_curve(res.curve, args.curve, args.curve_plot, title="Distillation teacher training")
        summary = {**training_summary(res, sampler.n_classes), "params": n_params(model)}
        atomic.write_json(args.metrics, summary)
        run.log_metrics(summary)
        log_curve(run, res.curve)
        run.set_tags({"role": "teacher"})
        run.log_artifact(args.curve_plot)
    print(f"train_teacher: {summary['params']} parameters, loss {summary['train_loss']:.3f}, "
          f"acc {summary['train_accuracy']:.3f}, {res.seconds:.1f} s -> {args.onnx}")


if __name__ == "__main__":
    cli(main)
