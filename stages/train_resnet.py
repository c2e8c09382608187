"""Stage train_resnet: train the Keras ResNet sound classifier on data/sounds and evaluate it."""

from __future__ import annotations

from pathlib import Path

from slimaudio import atomic, spec, tracking
from slimaudio.metrics import file_size
from slimaudio.schemas.tflite import Resnet
from slimaudio.stage import cli, parse_args, setup

SECTIONS = ("base.seed", "resnet")


def main() -> None:
    args = parse_args(__doc__, ["sounds", "model_dir", "history", "curves", "confusion", "metrics"])
    params = setup(args.params, SECTIONS)
    cfg = spec.build(Resnet, params["resnet"])
    from slimaudio import runtime
    from slimaudio.datasets.sounds import load_sounds
    from slimaudio.frame_classifier import evaluate, train

    runtime.set_tf_threads(cfg.threads)
    data = load_sounds(args.sounds)
    with tracking.stage_run("tflite_quant", "train_resnet", params.flat()) as run:
        result = train.train_resnet(data, cfg, params["base"]["seed"])
        test = data.split("test")
        scores = evaluate.predict_keras(result.model, test.x, cfg.eval_batch_size)
        metrics = evaluate.evaluate_scores(scores, test.y, test.clip_ids, data.n_classes)
        with atomic.atomic_dir(args.model_dir) as tmp:
            model_path = train.save_model(result.model, Path(tmp), cfg.save_format)
            size = file_size(model_path)
            atomic.write_csv(Path(tmp) / "history.csv", result.history)
        metrics.update(size, n_params=result.n_params, train_seconds=result.seconds,
                       n_train_frames=len(data.indices("train")), epochs=len(result.history))
        atomic.write_csv(args.history, result.history)
        atomic.save_figure(args.curves, evaluate.plot_history(result.history))
        atomic.save_figure(args.confusion, evaluate.plot_confusion(scores, test.y, data.classes))
        atomic.write_json(args.metrics, metrics)

        run.log_metrics(metrics)
        for rec in result.history.to_dict("records"):
            for key, val in rec.items():
                if key != "epoch":
                    run.log_metric_step(key, val, int(rec["epoch"]))
        for path in (args.curves, args.confusion, args.history):
            run.log_artifact(path)
    print(f"baseline: frame F1 {metrics['f1']:.4f}, clip F1 {metrics['clip_f1']:.4f}, "
          f"accuracy {metrics['accuracy']:.4f}; {result.n_params} params, "
          f"{size['size_mib']:.2f} MiB, trained in {result.seconds:.1f} s")


if __name__ == "__main__":
    cli(main)
