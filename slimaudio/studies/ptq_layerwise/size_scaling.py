"""How the INT8 size ratio of ECAPA-TDNN depends on its width: a printed benchmark.

`python -m slimaudio.studies.ptq_layerwise.size_scaling [--channels 128 256 512]
[--params params.yaml]` (part of `make bench`)

For each width C it builds an ECAPA-TDNN (MFA 3C, the default's proportions; untrained: file
sizes do not depend on the weights' values), exports it as the study does, and quantizes every
group with the `ptq_layerwise` section's settings, calibrated (MinMax ranges) on random
inputs. It prints the float and INT8 file sizes, their ratio and where the INT8 bytes go. Why
it exists: weights grow as C^2 but biases, batch-norm vectors, per-channel scales and the
graph grow as C, so the study's `all` ratio at the default C=128 cannot reach what a
paper-size model reaches. It asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from slimaudio.compress.onnx_int8 import QuantSettings
from slimaudio.schemas.ecapa import EXPORT_INPUT
from slimaudio.schemas.ptq_layerwise import PtqRecipe
from slimaudio.speaker.groups import prepare
from slimaudio.speaker.ptq_recipe import recipe
from slimaudio.spec import build
from slimaudio.studies.ptq_layerwise.rules import STUDY


class RandomCalibration:
    """An ORT calibration reader of random log-mel-like inputs (sizes only, not accuracy)."""

    def __init__(self, n: int, frames: int, n_mels: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self._inputs = [rng.normal(size=(1, frames, n_mels)).astype(np.float32) for _ in range(n)]
        self._it: Iterator[np.ndarray] = iter(self._inputs)

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._it, None)
        return None if x is None else {"feats": x}

    def rewind(self) -> None:
        self._it = iter(self._inputs)


def measure(channels: int, settings: QuantSettings, n_mels: int = 80, work: Path | None = None
            ) -> dict[str, object]:
    """Float and all-groups INT8 file sizes of an ECAPA-TDNN of width `channels`."""
    import torch

    from slimaudio.compress import onnx_int8
    from slimaudio.models.ecapa import EcapaConfig, EcapaTdnn
    from slimaudio.speaker.export import export_onnx

    torch.manual_seed(0)
    cfg = EcapaConfig(n_mels=n_mels, channels=channels, mfa_channels=3 * channels,
                      attention_channels=max(64, channels // 8),
                      se_bottleneck=max(64, channels // 8))
    with tempfile.TemporaryDirectory(prefix="slimaudio-size.") as tmp:
        d = work or Path(tmp)
        raw = export_onnx(EcapaTdnn(cfg).eval(), d / f"c{channels}_raw.onnx", n_mels)
        fp = prepare(raw, d / f"c{channels}_float.onnx")  # as the study's float model
        cache = onnx_int8.calibrate(fp, RandomCalibration(4, 100, n_mels), "MinMax",
                                    d / f"c{channels}_calib.json")
        q = onnx_int8.quantize_static_nodes(fp, d / f"c{channels}_int8.onnx", cache, None,
                                            settings)
        onnx_int8.compact_names(q, fp)                # as the study does for every row
        f_size, q_size = fp.stat().st_size, q.stat().st_size
        return {"channels": channels, "float_bytes": f_size, "int8_bytes": q_size,
                "ratio": q_size / f_size, "int8_breakdown": onnx_int8.size_breakdown(q)}


def main(argv: Sequence[str] | None = None) -> None:
    from slimaudio import config

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--channels", type=int, nargs="+", default=[128, 256, 512])
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    section = config.load_params(args.params, (STUDY.name,))[STUDY.name]
    # the study's settings; sizes do not depend on the calibration method
    settings = recipe(build(PtqRecipe, section), EXPORT_INPUT).quant_settings
    print(f"{'C':>5} {'float MiB':>10} {'int8 MiB':>9} {'ratio':>6}  int8 bytes by kind")
    for c in args.channels:
        r = measure(c, settings)
        parts = ", ".join(f"{k.removeprefix('init_')} {v / 1024:.0f} KiB"
                          for k, v in sorted(r["int8_breakdown"].items(), key=lambda kv: -kv[1]))
        print(f"{c:>5} {r['float_bytes'] / 2**20:>10.3f} {r['int8_bytes'] / 2**20:>9.3f} "
              f"{r['ratio']:>6.3f}  {parts}", flush=True)


if __name__ == "__main__":
    main()
