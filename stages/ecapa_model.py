"""Stage train_ecapa: train the ECAPA-TDNN baseline (AAM-softmax, Adam, noisy random crops)."""

from __future__ import annotations

from slimaudio import atomic, tracking
from slimaudio.datasets import speakers
from slimaudio.speaker.train import (
    log_curve,
    save_checkpoint,
    train_baseline,
    training_summary,
    write_curve,
)
from slimaudio.stage import cli, parse_args, setup

SECTIONS = ("base.seed", "ecapa.model", "ecapa.train")


def main() -> None:
    args = parse_args(__doc__, ["data", "model", "curve", "curve_plot", "metrics"])
    params = setup(args.params, SECTIONS)
    ecapa = params["ecapa"]
    with tracking.stage_run("ecapa", "train_ecapa", params.flat()) as run:
        data = speakers.load(args.data)
        model, aam, sampler, res = train_baseline(data, ecapa, int(params["base"]["seed"]))
        save_checkpoint(args.model, model, aam, sampler.speakers,
                        extra={"train_seconds": res.seconds, "n_mels": data.n_mels})
        write_curve(res.curve, args.curve, args.curve_plot)
        summary = training_summary(res, sampler.n_classes)
        atomic.write_json(args.metrics, summary)
        run.log_metrics(summary)
        log_curve(run, res.curve)
        run.log_artifact(args.curve_plot)
    print(f"train_ecapa: {len(sampler.speakers)} speakers, {res.curve[-1]['step']} steps, "
          f"loss {summary['train_loss']:.3f}, acc {summary['train_accuracy']:.3f}, "
          f"{res.seconds:.1f} s -> {args.model}")


if __name__ == "__main__":
    cli(main)
