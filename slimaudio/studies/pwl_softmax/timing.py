"""Step 3: speed relative to softmax, the normaliser alone on real logits and the whole model
at batch 1 in torch and ONNX Runtime, all variants interleaved (slimaudio.latency)."""

from __future__ import annotations

import copy
import io
import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from slimaudio import latency, runtime, stats
from slimaudio.datasets.speakers import SpeakerData
from slimaudio.models.ecapa import EcapaTdnn
from slimaudio.schemas.base import Bootstrap
from slimaudio.schemas.pwl_softmax import Latency
from slimaudio.speaker.export import export_bytes

NO_SOFTMAX = "no_softmax"   # the timing floor's row in latency.csv


class TimingFloor(nn.Module):
    """Not a normaliser: passes logits through, to time the model with no softmax at all."""

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        return e


def normaliser_onnx(module: nn.Module, e: torch.Tensor, opset: int) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (e,), buf, input_names=["logits"], output_names=["weights"],
                          dynamic_axes={"logits": {0: "b", 2: "t"}}, opset_version=opset,
                          dynamo=False)
    return buf.getvalue()


def time_both(torch_f: Mapping[str, latency.Factory], ort_f: Mapping[str, latency.Factory],
              timing: latency.Timing, threads: int, seed: int) -> tuple[dict, dict]:
    """(torch latencies, ORT latencies), every variant of both runtimes interleaved in one
    measurement (one set of worker processes: each pays torch's import once)."""
    lat = latency.measure_factories({**{f"torch:{n}": f for n, f in torch_f.items()},
                                     **{f"onnx:{n}": f for n, f in ort_f.items()}},
                                    timing, threads, seed)
    return ({n: lat[f"torch:{n}"] for n in torch_f}, {n: lat[f"onnx:{n}"] for n in ort_f})


def time_normalisers(modules: Mapping[str, nn.Module], logits: torch.Tensor, threads: int,
                     timing: latency.Timing, opset: int) -> tuple[dict, dict]:
    """(torch latencies, ORT latencies) of each normaliser alone on `logits` [1, C, T]."""
    mods = {n: m.eval() for n, m in modules.items()}
    feeds = {"logits": logits.numpy()}
    return time_both(
        {n: latency.TorchFactory(m, (logits,), threads) for n, m in mods.items()},
        {n: latency.OnnxFactory(normaliser_onnx(m, logits, opset), feeds, threads)
         for n, m in mods.items()}, timing, threads, 0)


def time_models(models: Mapping[str, nn.Module], blobs: Mapping[str, bytes], frames: int,
                n_mels: int, threads: int, timing: latency.Timing, seed: int
                ) -> tuple[dict, dict]:
    """(torch latencies, ORT latencies) of whole models at batch 1 on `frames` frames."""
    x = torch.from_numpy(np.random.default_rng(seed).standard_normal((1, frames, n_mels))
                         .astype(np.float32) * 3.0)
    return time_both(
        {n: latency.TorchFactory(m, (x,), threads) for n, m in models.items()},
        {n: latency.OnnxFactory(b, {"feats": x.numpy()}, threads) for n, b in blobs.items()},
        timing, threads, seed)


def real_logits(model: EcapaTdnn, data: SpeakerData, frames: int) -> torch.Tensor:
    """The baseline's attention logits [1, C, frames] on the first trial utterance (repeated)."""
    with torch.inference_mode():
        x = torch.from_numpy(data.utterance(data.trials.utterances[0]))[None]
        x = x.repeat(1, math.ceil(frames / x.shape[1]), 1)[:, :frames]
        logits = model.asp.logits(model.trunk(x))
    return logits.contiguous()


def latency_table(model: EcapaTdnn, data: SpeakerData, tuned: Mapping[str, EcapaTdnn],
                  blobs: Mapping[str, bytes], order: Sequence[str], cfg: Latency,
                  threads: int, seed: int, opset: int, boot: Bootstrap,
                  spread: latency.Spread = latency.SIMPLE) -> pd.DataFrame:
    """latency.csv: per variant (in `order`, then the no-softmax floor) the medians, p90s and
    ratios to the baseline of the normaliser alone and the whole model, torch and ORT, each
    ratio with its interval over timing rounds (`_lo`, `_hi`)."""
    logits = real_logits(model, data, cfg.frames)
    norm_mods = {n: tuned[n].asp.softmax for n in order}
    norm_mods[NO_SOFTMAX] = TimingFloor()
    sm_torch, sm_ort = time_normalisers(
        norm_mods, logits, threads, latency.Timing.of(cfg.warmup, cfg.softmax_repeats, spread),
        opset)
    floor_model = copy.deepcopy(model).set_softmax(TimingFloor()).eval()
    models = {**{n: tuned[n] for n in order}, NO_SOFTMAX: floor_model}
    all_blobs = {**blobs, NO_SOFTMAX: export_bytes(floor_model, model.cfg.n_mels, opset)}
    md_torch, md_ort = time_models(models, all_blobs, cfg.frames, model.cfg.n_mels, threads,
                                   latency.Timing.of(cfg.warmup, cfg.repeats, spread), seed)
    timed = {"softmax_torch": sm_torch, "softmax_onnx": sm_ort, "model_torch": md_torch,
             "model_onnx": md_ort}
    recs = []
    for n in [*order, NO_SOFTMAX]:
        rec = {"method": n}
        for key, res in timed.items():
            rec[f"{key}_ms"] = res[n].median_ms
            rec[f"{key}_p90_ms"] = res[n].p90_ms
            iv = latency.speedup(res[n], res["baseline"], boot.resamples,
                                 runtime.rng(seed, "bootstrap"), boot.level)
            rec |= stats.columns(f"rel_time_{key}", iv)
        recs.append(rec)
    return pd.DataFrame(recs)
