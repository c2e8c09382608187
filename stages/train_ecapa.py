"""Stage train_ecapa: train the ECAPA-TDNN baseline (AAM-softmax, Adam, noisy random crops)."""

from __future__ import annotations

from slimaudio import atomic, tracking
from slimaudio.speaker import data as sdata
from slimaudio.speaker.train import save_checkpoint, train_baseline, write_curve
from slimaudio.stage import cli, parse_args, setup

SECTIONS = ("base", "ecapa")


def main() -> None:
    args = parse_args(__doc__, ["data", "model", "curve", "curve_plot", "metrics"])
    params = setup(args.params, SECTIONS)
    ecapa = params["ecapa"]
    with tracking.stage_run("ecapa", "train_ecapa", params.flat()) as run:
        data = sdata.load(args.data)
        model, aam, sampler, res = train_baseline(data, ecapa, int(params["base"]["seed"]))
        save_checkpoint(args.model, model, aam, sampler.speakers,
                        extra={"train_seconds": res.seconds, "n_mels": data.n_mels})
        write_curve(res.curve, args.curve, args.curve_plot)
        last = res.curve[-1]
        summary = {"train_loss": last["loss"], "train_accuracy": last["accuracy"],
                   "train_seconds": res.seconds, "n_speakers": sampler.n_classes}
        atomic.write_json(args.metrics, summary)
        run.log_metrics(summary)
        for p in res.curve:
            run.log_metric_step("loss", p["loss"], int(p["step"]))
            run.log_metric_step("accuracy", p["accuracy"], int(p["step"]))
            run.log_metric_step("lr", p["lr"], int(p["step"]))
        run.log_artifact(args.curve_plot)
    print(f"train_ecapa: {len(sampler.speakers)} speakers, {res.curve[-1]['step']} steps, "
          f"loss {last['loss']:.3f}, acc {last['accuracy']:.3f}, {res.seconds:.1f} s -> {args.model}")


if __name__ == "__main__":
    cli(main)
