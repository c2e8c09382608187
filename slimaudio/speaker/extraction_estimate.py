"""How long embedding a test set takes on this machine, from a measured per-utterance time.

`python -m slimaudio.speaker.extraction_estimate [--utterances 4874] [--seconds 8.2]
[--channels 1024] [--threads 1]` builds the ECAPA-TDNN a SpeechBrain checkpoint imports to
(C=1024, MFA 3072: spkrec-ecapa-voxceleb's hyperparams; random weights time like trained ones),
times batch-1 embedding of one utterance of `--seconds` (VoxCeleb1's mean utterance is 8.2 s)
in torch and in ONNX Runtime, interleaved, and prints the per-utterance median and the total
for `--utterances` (VoxCeleb1-O: 4,874). It prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from slimaudio import latency

FRAMES_PER_SECOND = 100  # 10 ms hop, every frontend here


def estimate(utterances: int, seconds: float, channels: int, threads: int, repeats: int) -> None:
    import torch

    from slimaudio.models.ecapa import EcapaTdnn
    from slimaudio.models.speechbrain_import import config_from_hparams
    from slimaudio.speaker.export import export_onnx

    cfg = config_from_hparams({"channels": [channels] * 4 + [3 * channels]})
    model = EcapaTdnn(cfg).eval()
    frames = int(seconds * FRAMES_PER_SECOND)
    x = np.random.default_rng(0).standard_normal((1, frames, cfg.n_mels)).astype(np.float32)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "ecapa.onnx"
        export_onnx(model, path, cfg.n_mels)
        runners = {"torch": latency.torch_runner(model, torch.from_numpy(x), threads=threads),
                   "onnxruntime": latency.onnx_runner(path, {"feats": x}, threads=threads)}
        res = latency.measure_interleaved(runners, warmup=2, repeats=repeats, threads=threads)
    n = sum(p.numel() for p in model.parameters())
    print(f"ECAPA-TDNN C={channels} ({n / 1e6:.1f} M parameters), one {seconds:g} s utterance "
          f"({frames} frames), batch 1, {threads} thread(s), {repeats} interleaved repeats:")
    for name, lat in res.items():
        total = utterances * lat.median_ms / 1000
        print(f"  {name:12s} median {lat.median_ms:8.1f} ms (p90 {lat.p90_ms:.1f})  -> "
              f"{utterances} utterances: {total / 60:.1f} min")


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--utterances", type=int, default=4874)
    ap.add_argument("--seconds", type=float, default=8.2)
    ap.add_argument("--channels", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=30)
    a = ap.parse_args(argv)
    estimate(a.utterances, a.seconds, a.channels, a.threads, a.repeats)


if __name__ == "__main__":
    main()
