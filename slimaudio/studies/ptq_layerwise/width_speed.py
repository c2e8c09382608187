"""INT8 speed at the widths and input lengths people deploy: ECAPA-TDNN at C in
`speed.widths`, inputs of `speed.frames`, each quantized as the study quantizes its rows.

At the default C=128 the 16-channel Res2 convolutions dominate and INT8 gains little; the
paper's C=1024 is another regime. Speed does not depend on what the weights learnt, so the
models are random-weight ECAPA-TDNNs of the paper's proportions (MFA 1.5 C, attention and SE
bottlenecks 128) whose BatchNorm statistics come from the calibration utterances (a forward
pass in training mode), so activation ranges, and hence the INT8 calibration, are realistic.
EER stays on the trained model (the study's rows). Every variant of one width is timed
interleaved with every length, with the study's timing method (slimaudio.latency).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from slimaudio import latency, runtime, stats
from slimaudio.compress import onnx_int8
from slimaudio.datasets.speakers import SpeakerData
from slimaudio.metrics import file_size
from slimaudio.schemas.ptq_layerwise import SPEED_VARIANTS, Speed
from slimaudio.speaker.calibration import SpeakerCalibrationReader
from slimaudio.speaker.groups import group_nodes, prepare

COLUMNS = ["channels", "params_m", "seconds", "frames", "variant", "latency_ms", "speedup",
           "speedup_lo", "speedup_hi", "size_mib"]
VARIANTS = SPEED_VARIANTS  # every one is timed against `none`
BN_BATCHES = 4  # training-mode passes over the calibration crops that set BatchNorm statistics


def width_model(channels: int, reader: SpeakerCalibrationReader, n_mels: int, seed: int,
                out: Path) -> tuple[Path, int]:
    """The float ONNX model of width `channels` (prepared as the study's float model) and its
    parameter count."""
    import torch

    from slimaudio.models.ecapa import EcapaConfig, EcapaTdnn
    from slimaudio.speaker.export import export_onnx

    torch.manual_seed(seed + channels)
    model = EcapaTdnn(EcapaConfig(n_mels=n_mels, channels=channels,
                                  mfa_channels=channels * 3 // 2, attention_channels=128,
                                  se_bottleneck=128))
    for m in model.modules():  # cumulative averages over every calibration pass
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = None
    crops = [d[reader.input_name][0] for d in reader]
    longest = max(len(x) for x in crops)  # shorter utterances tiled, to batch them
    batch = torch.from_numpy(np.stack([np.resize(x, (longest, x.shape[1])) for x in crops]))
    if len(batch) < 2:  # BatchNorm over the embedding needs two samples in training mode
        batch = batch.repeat(2, 1, 1)
    model.train()
    with torch.no_grad():
        for chunk in np.array_split(np.arange(len(batch)), min(BN_BATCHES, len(batch) // 2)):
            model(batch[chunk])
    raw = export_onnx(model.eval(), out / f"c{channels}_raw.onnx", n_mels)
    path = prepare(raw, out / f"c{channels}_none.onnx")
    raw.unlink()
    return path, sum(p.numel() for p in model.parameters())


def quantize_variants(float_path: Path, reader: SpeakerCalibrationReader,
                      settings: onnx_int8.QuantSettings, method: str, variants: Sequence[str],
                      paper_groups: Sequence[str]) -> dict[str, Path]:
    """`none` and every variant of one width, next to the float file."""
    stem, d = float_path.stem.removesuffix("_none"), float_path.parent
    out = {"none": float_path}
    cache = onnx_int8.calibrate(float_path, reader, method, d / f"{stem}_calibration.json")
    gmap = group_nodes(float_path, None)
    for v in variants:
        dst = d / f"{stem}_{v}.onnx"
        if v == "all":
            out[v] = onnx_int8.quantize_static_nodes(float_path, dst, cache, None, settings)
        elif v == "paper_choice":
            out[v] = onnx_int8.quantize_static_nodes(float_path, dst, cache,
                                                     gmap.union(paper_groups), settings)
        elif v == "float16":
            out[v] = onnx_int8.convert_float16(float_path, dst)
        elif v == "dynamic":
            out[v] = onnx_int8.quantize_dynamic_model(float_path, dst,
                                                      per_channel=settings.per_channel)
        else:
            raise ValueError(f"unknown speed variant {v!r}")
    (d / f"{stem}_calibration.json").unlink(missing_ok=True)
    return out


def time_width(paths: Mapping[str, Path], frames: Sequence[int], n_mels: int,
               timing: latency.Timing, threads: int, seed: int
               ) -> dict[tuple[int, str], latency.Latency]:
    """Every (length, variant) of one width, timed interleaved."""
    rng = runtime.rng(seed, "ptq_layerwise.speed_input")
    feeds = {f: rng.standard_normal((1, f, n_mels)).astype(np.float32) for f in frames}
    factories = {f"{f}:{v}": latency.OnnxFactory(str(p), {"feats": feeds[f]}, threads)
                 for f in frames for v, p in paths.items()}
    lat = latency.measure_factories(factories, timing, threads, seed)
    return {(int(k.split(":")[0]), k.split(":")[1]): r for k, r in lat.items()}


def speed_table(cfg: Speed, corpus: SpeakerData, reader: SpeakerCalibrationReader,
                settings: onnx_int8.QuantSettings, method: str, paper_groups: Sequence[str],
                spread: latency.Spread, threads: int, seed: int, boot_resamples: int,
                level: float, work: Path, progress: bool = True) -> pd.DataFrame:
    """One row per (width, length, variant): median latency, speed-up over `none` at the
    same width and length with its interval, file size (COLUMNS)."""
    timing = latency.Timing.of(cfg.warmup, cfg.repeats, spread)
    frames = {corpus.frames(t): t for t in cfg.seconds}
    recs: list[dict[str, Any]] = []
    for c in cfg.widths:
        if progress:
            print(f"  width C={c}: building and quantizing", flush=True)
        fp, n_params = width_model(c, reader, corpus.n_mels, seed, work)
        paths = quantize_variants(fp, reader, settings, method, cfg.variants, paper_groups)
        lat = time_width(paths, list(frames), corpus.n_mels, timing, threads, seed)
        for f, t in frames.items():
            ref = lat[(f, "none")]
            for v, p in paths.items():
                iv = latency.speedup(ref, lat[(f, v)], boot_resamples,
                                     runtime.rng(seed, "bootstrap"), level)
                recs.append({"channels": c, "params_m": n_params / 1e6, "frames": f,
                             "seconds": t, "variant": v,
                             "latency_ms": lat[(f, v)].median_ms,
                             **stats.columns("speedup", iv),
                             "size_mib": file_size(p)["size_mib"]})
    return pd.DataFrame(recs, columns=COLUMNS)
