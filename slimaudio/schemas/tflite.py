"""Sections `resnet` (train_resnet stage) and `tflite_quant` (the TFLite quantization study)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from slimaudio.spec import Each, param, section

CALIBRATION_SOURCES = ("train", "one_class", "uniform_noise", "normal_noise")


@dataclass(frozen=True)
class Architecture:
    """The network's shape: all that slimaudio.models.resnet_keras.build_resnet reads."""

    depths: tuple[int, ...] = param(
        "bottleneck blocks per stage; the paper's ResNet50 is [3, 4, 6, 3]",
        each=Each(lo=1, hi=64), min_len=1)
    width: int = param("first-stage bottleneck width (ResNet50: 64), doubles per stage; below 32 "
                       "the int8 files stay above 27% of float32 (per-channel scales dominate)",
                       lo=1, hi=512)
    expansion: int = param("block output channels = width * expansion (ResNet50: 4)", lo=1, hi=8)
    dropout: float = param("dropout rate before the classifier (0: none)", lo=0.0, hi=0.9)


@dataclass(frozen=True)
class Augment:
    """Training-time augmentation, in the input pipeline (not in the model)."""

    time_shift: bool = param("random circular shift along time")
    gain_db: float = param("random gain in +-gain_db dB (0: off)", lo=0.0, hi=40.0)
    time_masks: int = param("SpecAugment time masks per frame", lo=0, hi=10)
    time_mask_max: int = param("widest time mask (time steps; a 2 s frame at a 20 ms hop has 99)",
                               lo=0, hi=1000)
    freq_masks: int = param("SpecAugment frequency masks per frame", lo=0, hi=10)
    freq_mask_max: int = param("widest frequency mask (mel bands, of prepare_sounds' n_mels)",
                               lo=0, hi=512)


@dataclass(frozen=True)
class Resnet(Architecture):
    """The whole section: the architecture, its training and its evaluation."""

    epochs: int = param("training epochs, the cosine schedule's length (with 16, validation "
                        "accuracy peaked by epoch 11-12)", lo=1, hi=1000)
    batch_size: int = param("training batch (frames)", lo=1, hi=4096)
    learning_rate: float = param("AdamW peak rate, cosine-decayed to 1%", lo=1e-7, hi=1.0)
    weight_decay: float = param("AdamW decoupled weight decay", lo=0.0, hi=1.0)
    class_weights: bool = param("weight the loss with data/sounds/class_weights.json, the "
                                "paper's per-class weights (paper: yes)")
    threads: int = param("TensorFlow CPU threads for training", lo=1, hi=64)
    save_format: Literal["keras", "h5"] = param("model.keras or model.h5 (the paper saved HDF5)")
    eval_batch_size: int = param("batch of the test-set evaluation (frames)", lo=1, hi=4096)
    augment: Augment = param()


@dataclass(frozen=True)
class CalibrationProbe:
    """An extra `int` conversion calibrated on `samples` frames of an unrepresentative source."""

    source: Literal[CALIBRATION_SOURCES] = param(  # type: ignore[valid-type]
        "train: random training frames; one_class: frames of the first class only; "
        "uniform_noise: U[0, 1) (np.random.rand) and normal_noise: N(0, 1) (np.random.randn) "
        "arrays, the placeholders tutorials use")
    samples: int = param("calibration frames of this probe", lo=1, hi=100000)

    @property
    def variant(self) -> str:
        return f"int_calib_{self.source}_{self.samples}"


@dataclass(frozen=True)
class Latency:
    warmup: int = param("untimed calls per variant first", lo=1, hi=10000)
    repeats: int = param("timed batch-1 rounds per variant, a burst each (base.latency); >= 30",
                         lo=30, hi=100000)
    builtin_kernels: bool = param("also time the TFLite variants with XNNPACK off (built-in "
                                  "kernels), to explain int8 speed")
    kernel_probe: bool = param("time one 3x3 convolution as float32 and int8: the CPU's raw "
                               "int8-versus-float32 kernel throughput")


@dataclass(frozen=True)
class TfliteQuant:
    representative_samples: int = param(
        "training frames in the int/full_int calibration set (the representative dataset)",
        lo=1, hi=100000)
    calibration_probes: tuple[CalibrationProbe, ...] = param(
        "extra `int` conversions calibrated on an unrepresentative set, variants "
        "int_calib_<source>_<samples> (may be empty)")
    latency: Latency = param()
    eval_threads: int = param("threads for the test-set pass (not for latency)", lo=1, hi=64)
    eval_batch_size: int = param("batch of the test-set pass (frames)", lo=1, hi=4096)


section("resnet", Resnet)
section("tflite_quant", TfliteQuant)
