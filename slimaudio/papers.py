"""The four papers' published numbers, transcribed from ../shared/papers (reference values only).

These are what our regenerated tables are compared against; nothing here is a result of ours.
"""

from __future__ import annotations

PWL_SOFTMAX = {
    "title": "Optimization of on-device speaker recognition models through piecewise linear approximation (Park, Ahn, Kim)",
    # Table 1: EER (%) before / after fine-tuning; Table 2: relative elapsed time.
    "eer_before_ft": {"baseline": 0.98, "clip": 2.55, "pwl1": 2.09, "pwl2": 2.02},
    "eer_after_ft": {"baseline": 0.98, "clip": 1.06, "pwl1": 0.96, "pwl2": 0.98},
    "rel_time": {"baseline": 1.0, "clip": 0.9429, "pwl1": 0.9643, "pwl2": 0.9714},
}

PTQ_LAYERWISE = {
    "title": "Optimizing DNN-Based Speaker Verification: A Framework for Efficient Model Quantization (Hong, Chung, Kang)",
    # Table 1: EER (%) and model size (MB, includes a 5994-speaker classifier head).
    "eer": {"none": 1.665, "conv_in": 1.660, "block1": 1.680, "block2": 1.716, "block3": 1.766,
            "conv_mfa": 1.688, "asp": 1.681, "fc": 1.665, "paper_choice": 1.739},
    "size_mb": {"none": 63.571, "conv_in": 60.413, "block1": 53.501, "block2": 53.389,
                "block3": 53.381, "conv_mfa": 48.365, "asp": 56.594, "fc": 60.100,
                "paper_choice": 33.974},
    # Table 1's rows: the layer groups, in network order.
    "groups": ("conv_in", "block1", "block2", "block3", "conv_mfa", "asp", "fc"),
    "classifier_speakers": 5994,  # the AAM-softmax head in size_mb: VoxCeleb2's train speakers
    # Table 2: the paper's proposal, every layer group but the 2nd and 3rd SE-Res2Blocks.
    "choice_groups": ("conv_in", "block1", "conv_mfa", "asp", "fc"),
}

TFLITE_QUANT = {
    "title": "A Comparative Study of Lightweight Techniques for Multi-sound Recognition Models in Embedded Environments (Ha et al.)",
    # Table 2: size (MB), inference time (s), F1.
    "size_mb": {"original": 285.34, "basic": 94.75, "int": 24.59, "full_int": 24.59,
                "float16": 47.42, "dynamic_range": 24.40},
    "time_s": {"original": 1.1509, "basic": 0.5975, "int": 0.6287, "full_int": 0.6303,
               "float16": 0.5851, "dynamic_range": 0.6308},
    "f1": {"original": 0.890, "basic": 0.890, "int": 0.2831, "full_int": 0.0001,
           "float16": 0.8902, "dynamic_range": 0.8499},
    "baseline": {"precision": 0.888, "recall": 0.879, "f1": 0.883, "accuracy": 0.879},
}

FRILL = {
    "title": "FRILL: A Non-Semantic Speech Embedding for Mobile Devices (Peplinski et al., Interspeech 2021)",
    "students": 144,
    "speedup": 32.0,          # chosen student vs TRILL teacher, on-device latency
    "size_fraction": 0.40,    # student size / teacher size
    "accuracy_drop": 0.02,    # about 2% lower mean accuracy on the NOSS benchmark
    # The budgets our FRILL analogue is held to (slimaudio.studies.distill.rules; the default
    # selection budgets in conf/config.yaml, distill_select.choose, are tested against them):
    # at least 10x faster than the teacher (FRILL's own bar was a latency budget), at most
    # size_fraction (40%) of its size, at most 5% less accurate (95% of its accuracy kept).
    "min_speedup": 10.0,
    "max_accuracy_drop": 0.05,
}


def ptq_sensitivity_order() -> str:
    """The PTQ paper's two most sensitive groups by Table 1's EER: 'block3 > block2 > the
    rest'."""
    eer = PTQ_LAYERWISE["eer"]
    top = sorted(PTQ_LAYERWISE["groups"], key=lambda g: eer[g], reverse=True)[:2]
    return f"{top[0]} > {top[1]} > the rest"
