"""Stage eval_ecapa: EER/minDCF of the baseline in torch, ONNX export, and the ONNX EER check."""

from __future__ import annotations

from slimaudio import atomic, tracking
from slimaudio.datasets import speakers
from slimaudio.speaker.evaluate import Verification, det_figure, det_frame, evaluate_torch
from slimaudio.speaker.export import ExportMismatch, evaluate_onnx, export_onnx
from slimaudio.speaker.train import load_checkpoint
from slimaudio.speaker.uncertainty import TrialStats, speakers_of
from slimaudio.stage import cli, parse_args, setup
from slimaudio.stats import BootstrapConfig

SECTIONS = ("base.seed", "base.bootstrap", "ecapa.eval")


def main() -> None:
    args = parse_args(__doc__, ["data", "model", "onnx", "metrics", "det", "det_plot"])
    params = setup(args.params, SECTIONS)
    ev = params["ecapa"]["eval"]
    threads = int(ev["threads"])
    with tracking.stage_run("ecapa", "eval_ecapa", params.flat()) as run:
        import torch

        torch.set_num_threads(threads)
        data = speakers.load(args.data)
        model, _, _ = load_checkpoint(args.model)
        ver = evaluate_torch(model, data)
        export_onnx(model, args.onnx, data.n_mels, int(ev["onnx_opset"]))
        onx = evaluate_onnx(args.onnx, data, threads=threads)
        diff = abs(onx["eer"] - ver.metrics["eer"])
        boot = BootstrapConfig.from_params(params["base"])
        spk = speakers_of(data.manifest)
        ts = TrialStats.build(data.trials, spk, boot.resamples, boot.level,
                              int(params["base"]["seed"]))
        metrics = {**ver.metrics, **ts.metrics(ts.score(ver.scores)), "eer_onnx": onx["eer"],
                   "min_dcf_onnx": onx["min_dcf"], "eer_onnx_diff": diff,
                   "n_trials": len(data.trials),
                   "n_target_trials": int(data.trials.labels.sum()),
                   "n_test_speakers": len({spk[u] for u in data.trials.utterances})}
        atomic.write_json(args.metrics, metrics)
        atomic.write_csv(args.det, det_frame(ver.scores, ver.labels))
        onnx_ver = Verification({"eer": onx["eer"]}, onx["scores"], onx["labels"])
        atomic.save_figure(args.det_plot, det_figure(
            {"ECAPA-TDNN (torch)": ver, "ECAPA-TDNN (ONNX)": onnx_ver}, title="ECAPA-TDNN baseline"))
        run.log_metrics(metrics)
        run.log_artifact(args.det_plot)
        if diff > float(ev["onnx_max_eer_diff"]):
            raise ExportMismatch(f"{args.onnx}: ONNX EER {onx['eer']:.4f}% differs from torch "
                                 f"{ver.metrics['eer']:.4f}% by {diff:.4f} points (> "
                                 f"ecapa.eval.onnx_max_eer_diff = {ev['onnx_max_eer_diff']})")
    print(f"eval_ecapa: EER {ver.metrics['eer']:.3f}% [{metrics['eer_lo']:.3f}, "
          f"{metrics['eer_hi']:.3f}] (ONNX {onx['eer']:.3f}%), minDCF "
          f"{ver.metrics['min_dcf']:.3f} / {ver.metrics['min_dcf_p05']:.3f} -> {args.metrics}")


if __name__ == "__main__":
    cli(main)
