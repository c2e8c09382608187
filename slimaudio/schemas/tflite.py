"""Sections `resnet` (train_resnet stage) and `tflite_quant` (the TFLite quantization study)."""

from slimaudio.config import Field, register

CALIBRATION_SOURCES = ("train", "one_class", "uniform_noise", "normal_noise")

register("resnet", {
    "depths": Field(list, min_len=1, item=Field(int, lo=1, hi=64),
                    doc="bottleneck blocks per stage; the paper's ResNet50 is [3, 4, 6, 3]"),
    "width": Field(int, lo=1, hi=512, doc="first-stage bottleneck width (ResNet50: 64), doubles per stage"),
    "expansion": Field(int, lo=1, hi=8, doc="block output channels = width * expansion (ResNet50: 4)"),
    "dropout": Field(float, lo=0.0, hi=0.9, doc="dropout before the classifier"),
    "epochs": Field(int, lo=1, hi=1000),
    "batch_size": Field(int, lo=1, hi=4096),
    "learning_rate": Field(float, lo=1e-7, hi=1.0, doc="AdamW peak rate, cosine-decayed to 1%"),
    "weight_decay": Field(float, lo=0.0, hi=1.0, doc="AdamW decoupled weight decay"),
    "class_weights": Field(bool, doc="weight the loss with data/sounds/class_weights.json (paper: yes)"),
    "threads": Field(int, lo=1, hi=64, doc="TensorFlow CPU threads for training"),
    "save_format": Field(str, choices=["keras", "h5"], doc="model.keras or model.h5 (the paper's HDF5)"),
    "eval_batch_size": Field(int, lo=1, hi=4096),
    "augment": {
        "time_shift": Field(bool, doc="random circular shift along time"),
        "gain_db": Field(float, lo=0.0, hi=40.0, doc="random gain in +-gain_db (0: off)"),
        "time_masks": Field(int, lo=0, hi=10, doc="SpecAugment time masks per frame"),
        "time_mask_max": Field(int, lo=0, hi=1000, doc="widest time mask (frames)"),
        "freq_masks": Field(int, lo=0, hi=10, doc="SpecAugment frequency masks per frame"),
        "freq_mask_max": Field(int, lo=0, hi=512, doc="widest frequency mask (mel bands)"),
    },
})

register("tflite_quant", {
    "representative_samples": Field(int, lo=1, hi=100000,
                                    doc="training frames in the int/full-int calibration set"),
    "calibration_probes": Field(list, item={
        "source": Field(str, choices=list(CALIBRATION_SOURCES),
                        doc="train: random training frames; one_class: frames of the first class "
                            "only; uniform_noise: U[0, 1) and normal_noise: N(0, 1) arrays, "
                            "the placeholders tutorials use"),
        "samples": Field(int, lo=1, hi=100000),
    }, doc="extra `int` conversions with an unrepresentative calibration set (may be empty)"),
    "latency": {
        "warmup": Field(int, lo=1, hi=10000),
        "repeats": Field(int, lo=30, hi=100000, doc="timed batch-1 calls per variant (>= 30)"),
        "builtin_kernels": Field(bool, doc="also time the TFLite variants with XNNPACK off "
                                           "(built-in kernels), to explain int8 speed"),
        "kernel_probe": Field(bool, doc="time one 3x3 convolution as float32 and int8: the "
                                        "CPU's raw int8-versus-float32 kernel throughput"),
    },
    "eval_threads": Field(int, lo=1, hi=64, doc="threads for the test-set pass (not for latency)"),
    "eval_batch_size": Field(int, lo=1, hi=4096),
})
