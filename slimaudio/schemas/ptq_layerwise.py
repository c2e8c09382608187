"""Schema of the `ptq_layerwise` section: the per-layer INT8 post-training quantization study."""

from typing import Any

from slimaudio.config import Field, register

# The variants of `all` with one setting changed, in one place: each names the quantization
# settings it changes (fields of slimaudio.compress.onnx_int8.QuantSettings) and the ORT
# session config entries it runs with. The params' choices below and the study
# (slimaudio.studies.ptq_layerwise.ablation) both read this mapping.
ABLATIONS: dict[str, dict[str, dict[str, Any]]] = {
    "s8s8": {"settings": {"activation_type": "int8"}, "session": {}},
    # ORT on x86 rewrites int8 (S8S8) QDQ activations to uint8 unless this entry allows int8.
    "s8s8_native": {"settings": {"activation_type": "int8"},
                    "session": {"session.qdqisint8allowed": "1"}},
    "qoperator": {"settings": {"quant_format": "QOperator"}, "session": {}},
    "per_tensor": {"settings": {"per_channel": False}, "session": {}},
    "reduce_range": {"settings": {"reduce_range": True}, "session": {}},
    "full_range": {"settings": {"reduce_range": False}, "session": {}},
    "all_ops": {"settings": {"op_types": None}, "session": {}},
}

register("ptq_layerwise", {
    "groups": Field(dict, nullable=True,
                    doc="layer groups: null (the paper's seven groups of our ECAPA export, by "
                        "node-name prefix) or an ordered {group: regex over ONNX node names}; "
                        "every weight-bearing node in exactly one group"),
    "calibration": {
        "utterances": Field(int, lo=1, hi=100000,
                            doc="train-split utterances used for calibration (never test)"),
        "crop_frames": Field(int, lo=20, hi=100000,
                             doc="fixed-length random crop per calibration utterance (frames)"),
        "method": Field(str, choices=["MinMax", "Entropy", "Percentile"],
                        doc="ORT calibration method for activation ranges"),
        "percentile": Field(float, lo=90.0, hi=100.0, doc="Percentile method: kept percentile"),
    },
    "activation_type": Field(str, choices=["uint8", "int8"],
                             doc="8-bit activations: uint8 (U8S8, what ORT's x86 integer kernels "
                                 "run) or int8 (S8S8)"),
    "per_channel": Field(bool, doc="symmetric INT8 weights per output channel (else per tensor)"),
    "reduce_range": Field(bool, choices=[True, False, "auto"],
                          doc="7-bit weights: ORT's advice for x86 without VNNI, where the U8S8 "
                              "kernels' 16-bit pair sums can saturate; auto: from the CPU flags"),
    "quant_format": Field(str, choices=["QDQ", "QOperator"], doc="ORT static quantization format"),
    "op_types": Field(list, item=Field(str), nullable=True, min_len=1,
                      doc="ONNX op types quantized inside the chosen groups (null: every type "
                          "ORT can quantize, Softmax, Mul, Sigmoid, BN and reductions included)"),
    "budget_eer": Field(float, lo=0.0, hi=100.0,
                        doc="largest EER increase (points) the `proposed` row may have"),
    "eval": {
        "threads": Field(int, lo=1, hi=64, doc="ORT threads while scoring trials (not latency)"),
        "max_frames": Field(int, lo=20, nullable=True,
                            doc="crop test utterances to their first N frames (null: whole)"),
    },
    "error_analysis": {
        "utterances": Field(int, lo=1, hi=10000,
                            doc="test utterances (3 s crops) for the per-group activation error"),
    },
    "latency": {
        "frames": Field(int, lo=20, hi=100000, doc="input length (300 frames = 3 s)"),
        "warmup": Field(int, lo=0, hi=1000),
        "repeats": Field(int, lo=30, hi=100000),
    },
    "speed": {
        "widths": Field(list, item=Field(int, lo=8, hi=4096), min_len=1,
                        doc="ECAPA-TDNN widths C timed (random weights, BN statistics from the "
                            "calibration utterances; the paper's C=1024 in the paper profile)"),
        "seconds": Field(list, item=Field(float, lo=0.1, hi=600.0), min_len=1,
                         doc="input lengths timed at every width (s)"),
        "variants": Field(list, item=Field(str, choices=["all", "paper_choice", "float16",
                                                         "dynamic"]),
                          doc="variants timed against the float model at every width and length"),
        "warmup": Field(int, lo=0, hi=1000),
        "repeats": Field(int, lo=30, hi=100000, doc="timed rounds (base.latency spreads them)"),
        "runtimes": Field(bool, doc="the runtimes stage also times OpenVINO beside ORT at these "
                                    "widths (paper profile; else at the trained width only)"),
    },
    "profile_runs": Field(int, lo=1, hi=1000, doc="ORT profiler runs per profiled model"),
    "ablation": Field(list, item=Field(str, choices=list(ABLATIONS)),
                      doc="variants of `all` with one setting changed (size, latency)"),
    "ablation_eer": Field(list, item=Field(str, choices=list(ABLATIONS)),
                          doc="ablation variants whose EER is measured too (the others: "
                              "embedding cosine only)"),
    "weight_bits": {
        "widths": Field(list, item=Field(int, lo=2, hi=7),
                        doc="weight bit widths below 8: every group's INT8 row again with its "
                            "weights at each width (real b-bit values in the int8 kernels, "
                            "8-bit activations); [] for none"),
        "max_verify": Field(int, lo=0, hi=1000,
                            doc="configurations the mixed-precision walk (bits per group under "
                                "budget_eer) may measure; 0: no walk"),
    },
})
