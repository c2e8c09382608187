"""Schema of section `pwl_int8` (typed as slimaudio.studies.pwl_int8.config)."""

from slimaudio.config import Field, register

register("pwl_int8", {
    "methods": Field(list, item=Field(str), min_len=1,
                     doc="fine-tuned pwl_softmax models to quantize (models/pwl_softmax/<name>"
                         ".onnx); best_bench: the exp-free bench form with the lowest EER after "
                         "fine-tuning"),
    "reference": Field(str, doc="the softmax-pooling model every method is compared with "
                                "(baseline_ft_control: fine-tuned like the methods)"),
    "latency": {
        "frames": Field(int, lo=10, doc="whole-model input length (300 = 3 s)"),
        "warmup": Field(int, lo=1),
        "repeats": Field(int, lo=30),
    },
})
