"""Stage ecapa_model: the speaker studies' ECAPA-TDNN, trained here or imported (`ecapa.init`).

kind `train`: AAM-softmax, Adam, noisy random crops on the prepared train split.
kind `speechbrain`: a SpeechBrain checkpoint folder imported as it is; nothing is trained (the
curve files are written empty, the metrics say where the model came from).
kind `onnx`: the ONNX file is checked and recorded; eval_ecapa and the PTQ study use it, the PWL
study (which rewrites and fine-tunes torch modules) refuses it.
"""

from __future__ import annotations

from slimaudio import atomic, tracking
from slimaudio.datasets import speakers
from slimaudio.schemas.ecapa import Init, Model, Train
from slimaudio.speaker import pretrained
from slimaudio.speaker.train import (
    KEY_METRICS,
    TrainConfig,
    log_curve,
    save_checkpoint,
    train_baseline,
    training_summary,
    write_curve,
)
from slimaudio.spec import build
from slimaudio.stage import cli, parse_args, setup

SECTIONS = ("base.seed", "ecapa.init", "ecapa.model", "ecapa.train")


def main() -> None:
    args = parse_args(__doc__, ["data", "model", "curve", "curve_plot", "metrics"])
    params = setup(args.params, SECTIONS)
    ecapa, seed = params["ecapa"], int(params["base"]["seed"])
    init = build(Init, ecapa["init"])
    model, train = build(Model, ecapa["model"]), build(Train, ecapa["train"])
    with tracking.stage_run("ecapa", "ecapa_model", params.flat()) as run:
        run.key_metrics = KEY_METRICS
        data = speakers.load(args.data)
        if init.kind == "onnx":
            summary = record_onnx(init, data, args)
        elif init.imported:
            summary = import_model(init, data, train, seed, args)
        else:
            summary = train_model(data, model, train, seed, args, run)
        atomic.write_json(args.metrics, summary)
        run.log_metrics({k: v for k, v in summary.items() if isinstance(v, int | float)})
        run.log_artifact(args.curve_plot)


def train_model(data, model_params: Model, train: Train, seed: int, args, run) -> dict:
    model, aam, sampler, res = train_baseline(data, model_params, train, seed)
    save_checkpoint(args.model, model, aam, sampler.speakers,
                    extra={"train_seconds": res.seconds, "n_mels": data.n_mels, "init": "train"})
    write_curve(res.curve, args.curve, args.curve_plot)
    summary = training_summary(res, sampler.n_classes)
    log_curve(run, res.curve)
    print(f"ecapa_model: trained on {len(sampler.speakers)} speakers, {res.curve[-1]['step']} "
          f"steps, loss {summary['train_loss']:.3f}, acc {summary['train_accuracy']:.3f}, "
          f"{res.seconds:.1f} s -> {args.model}")
    return summary


def import_model(init: Init, data, train: Train, seed: int, args) -> dict:
    model = pretrained.import_torch(init, data)
    tc = TrainConfig.of(train, data, seed)
    aam, spk = pretrained.imprinted_head(model, data, tc.crop_frames, tc.margin, tc.scale, seed)
    save_checkpoint(args.model, model, aam, spk,
                    extra={"train_seconds": 0.0, "n_mels": data.n_mels, "init": init.kind,
                           "init_path": str(init.file)})
    write_curve([], args.curve, args.curve_plot,
                title=f"not trained: imported from {init.file.name} ({init.kind})")
    n_params = sum(p.numel() for p in model.parameters())
    print(f"ecapa_model: imported {init.kind} model {init.file} (C={model.cfg.channels}, "
          f"{n_params / 1e6:.2f} M parameters); no training -> {args.model}")
    return {"train_seconds": 0.0, "n_speakers": len(spk), "imported": 1,
            "parameters": n_params, "channels": model.cfg.channels}


def record_onnx(init: Init, data, args) -> dict:
    info = pretrained.check_onnx(init.file, data.n_mels, init.input.name, init.input.layout)
    pretrained.save_onnx_pointer(args.model, init.file, info)
    write_curve([], args.curve, args.curve_plot, title=f"not trained: ONNX {init.file.name}")
    print(f"ecapa_model: ONNX model {init.file} ({info['parameters'] / 1e6:.2f} M weights, "
          f"input {info['input']}); no training -> {args.model}")
    return {"train_seconds": 0.0, "imported": 1, "parameters": info["parameters"]}


if __name__ == "__main__":
    cli(main)
