"""Stage eval_ecapa: EER/minDCF of the speaker model, its ONNX export (or the imported ONNX
file, `ecapa.init.kind: onnx`), the ONNX EER check, and AS-norm scores when asked."""

from __future__ import annotations

import shutil

from slimaudio import atomic, tracking
from slimaudio.datasets import speakers
from slimaudio.datasets.speakers import SpeakerData
from slimaudio.schemas.base import Bootstrap
from slimaudio.schemas.ecapa import Eval, Init
from slimaudio.speaker.evaluate import (
    Verification,
    cohort_embeddings,
    det_figure,
    det_frame,
    evaluate_torch,
    normalised,
    torch_embedder,
)
from slimaudio.speaker.export import ExportMismatch, evaluate_onnx, export_onnx, onnx_embedder
from slimaudio.speaker.train import KEY_METRICS, load_checkpoint
from slimaudio.speaker.uncertainty import TrialStats, speakers_of
from slimaudio.spec import build
from slimaudio.stage import cli, parse_args, setup

SECTIONS = ("base.seed", "base.bootstrap", "ecapa.init", "ecapa.eval")


def main() -> None:
    args = parse_args(__doc__, ["data", "model", "onnx", "metrics", "det", "det_plot"])
    params = setup(args.params, SECTIONS)
    ev, init = build(Eval, params["ecapa"]["eval"]), build(Init, params["ecapa"]["init"])
    threads = ev.threads
    with tracking.stage_run("ecapa", "eval_ecapa", params.flat()) as run:
        run.key_metrics = KEY_METRICS
        import torch

        torch.set_num_threads(threads)
        data = speakers.load(args.data)
        if init.kind == "onnx":
            shutil.copyfile(init.file, args.onnx)  # the studies read the file from one place
            curves = {}
            embedder = onnx_embedder(args.onnx, threads, init.input.name, init.input.layout)
        else:
            model, _, _ = load_checkpoint(args.model)
            curves = {"ECAPA-TDNN (torch)": evaluate_torch(model, data)}
            export_onnx(model, args.onnx, data.n_mels, ev.onnx_opset)
            embedder = torch_embedder(model)
        io = init.model_input
        onx = evaluate_onnx(args.onnx, data, threads=threads, input_name=io.name,
                            layout=io.layout)
        curves["ECAPA-TDNN (ONNX)"] = Verification(
            {k: onx[k] for k in ("eer", "min_dcf", "min_dcf_p05")}, onx["scores"], onx["labels"],
            onx["embeddings"])
        ver = next(iter(curves.values()))
        norm = ev.score_norm
        if norm.kind == "as_norm":
            cohort = cohort_embeddings(embedder, data, norm.cohort_per_speaker)
            curves["AS-norm"] = normalised(ver, data.trials, cohort, norm.top_k)
        metrics = summarise(curves, ver, onx, data, params)
        atomic.write_json(args.metrics, metrics)
        atomic.write_csv(args.det, det_frame(ver.scores, ver.labels))
        atomic.save_figure(args.det_plot, det_figure(curves, title="ECAPA-TDNN baseline"))
        run.log_metrics(metrics)
        run.log_artifact(args.det_plot)
        diff = metrics["eer_onnx_diff"]
        if diff > ev.onnx_max_eer_diff:
            raise ExportMismatch(f"{args.onnx}: ONNX EER {onx['eer']:.4f}% differs from torch "
                                 f"{ver.metrics['eer']:.4f}% by {diff:.4f} points (> "
                                 f"ecapa.eval.onnx_max_eer_diff = {ev.onnx_max_eer_diff})")
    print(f"eval_ecapa: EER {ver.metrics['eer']:.3f}% [{metrics['eer_lo']:.3f}, "
          f"{metrics['eer_hi']:.3f}] (ONNX {onx['eer']:.3f}%), minDCF "
          f"{ver.metrics['min_dcf']:.3f} (p=0.01) / {ver.metrics['min_dcf_p05']:.3f} (p=0.05)"
          + (f", AS-norm EER {metrics['eer_asnorm']:.3f}%" if "eer_asnorm" in metrics else "")
          + f" -> {args.metrics}")


def summarise(curves: dict[str, Verification], ver: Verification, onx: dict, data: SpeakerData,
              params: dict) -> dict[str, float]:
    """EER and minDCF (p_target 0.01 and 0.05) with intervals, the ONNX check, AS-norm's."""
    boot = build(Bootstrap, params["base"]["bootstrap"])
    spk = speakers_of(data.manifest)
    ts = TrialStats.build(data.trials, spk, boot.resamples, boot.level, int(params["base"]["seed"]))
    out = {**ver.metrics, **ts.metrics(ts.score(ver.scores)), "eer_onnx": onx["eer"],
           "min_dcf_onnx": onx["min_dcf"], "eer_onnx_diff": abs(onx["eer"] - ver.metrics["eer"]),
           "n_trials": len(data.trials), "n_target_trials": int(data.trials.labels.sum()),
           "n_test_speakers": len({spk[u] for u in data.trials.utterances})}
    if "AS-norm" in curves:
        asn = curves["AS-norm"]
        out |= {f"{k}_asnorm": v for k, v in asn.metrics.items()}
        out |= {f"{k}_asnorm": v for k, v in ts.metrics(ts.score(asn.scores)).items()}
    return out


if __name__ == "__main__":
    cli(main)
