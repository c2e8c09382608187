"""Section `pwl_int8`: the fine-tuned PWL models quantized with ptq_layerwise's recipe."""

from __future__ import annotations

from dataclasses import dataclass

from slimaudio.spec import param, section


@dataclass(frozen=True)
class Latency:
    frames: int = param("whole-model input length (300 = 3 s)", lo=10)
    warmup: int = param("untimed calls first", lo=1)
    repeats: int = param("timed rounds, a burst each (base.latency)", lo=30)


@dataclass(frozen=True)
class PwlInt8:
    methods: tuple[str, ...] = param(
        "fine-tuned pwl_softmax models to quantize (models/pwl_softmax/<name>.onnx); "
        "best_bench: the exp-free bench form (pwl_softmax.bench) with the lowest EER after "
        "fine-tuning", min_len=1)
    reference: str = param("the softmax-pooling model every method is compared with "
                           "(baseline_ft_control: fine-tuned like the methods)")
    latency: Latency = param()


section("pwl_int8", PwlInt8)
