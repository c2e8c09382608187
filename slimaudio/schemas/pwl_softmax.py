"""Schemas of the piecewise-linear softmax study's sections `pwl_fit` and `pwl_softmax`
(typed as slimaudio.studies.pwl_softmax.config)."""

from slimaudio.config import Field, register

register("pwl_fit", {
    "crops": Field(int, lo=1, doc="training crops whose attention logits are collected"),
    "crop_s": Field(float, lo=0.2, hi=10.0),
    "max_columns": Field(int, lo=100, doc="(utterance, channel) logit rows kept for fitting"),
    "bins": Field(int, lo=20, hi=5000, doc="histogram bins of z = e - max e"),
    "segments": Field(list, item=Field(int, lo=1, hi=32), min_len=2,
                      doc="k of every fitted pwl<k>; must include 1 and 2"),
    "min_floor": Field(float, lo=1e-8, hi=1.0, doc="lower bound of fitted floors"),
    "uniform_range": Field(list, item=Field(float, lo=-100.0, hi=0.0), min_len=2,
                           doc="[lo, hi] of z where pwl1_uniform / pwl2_uniform fit exp "
                               "evenly, without the model's logits (a reader of the paper's fit)"),
})

register("pwl_softmax", {
    "learnable_segments": Field(int, lo=1, hi=32,
                                doc="segments of `learnable`, initialised from pwl<k>'s fit"),
    "learnable_lr_mult": Field(float, lo=0.0, hi=1000.0,
                               doc="learning-rate multiplier of the PWL coefficients"),
    "overrides": Field(dict, doc="{method: {c0|s0|d|t|floor: value}} replacing fitted values "
                                 "(base2: {scale}; consmax: {beta, gamma})"),
    "bench": Field(list, item=Field(str, choices=["ibert", "base2", "consmax"]),
                   doc="exp-free softmax forms measured beside the paper's methods: I-BERT's "
                       "polynomial exp, a base-2 shift+linear exp, ConSmax ([] for none)"),
    "ft": {
        "scope": Field(str, choices=["head", "all"],
                       doc="head: asp, bn_asp, fc, bn_fc and the AAM head train on cached "
                           "frozen-trunk features; all: the whole model"),
        "steps": Field(int, lo=0, doc="fine-tuning steps (identical for every method)"),
        "batch_size": Field(int, lo=2, hi=1024),
        "lr": Field(float, lo=1e-7, hi=1.0),
        "lr_min": Field(float, lo=0.0, hi=1.0),
        "cache_crops": Field(int, lo=2, doc="scope=head: noisy training crops cached once"),
        "replicates": Field(int, lo=1, hi=100,
                            doc="fine-tunings per method (seeds base.seed + 0..n-1); the "
                                "after-FT intervals resample them with the speakers"),
    },
    "latency": {
        "frames": Field(int, lo=10, doc="whole-model input length (300 = 3 s)"),
        "warmup": Field(int, lo=1),
        "repeats": Field(int, lo=30),
        "softmax_repeats": Field(int, lo=30, doc="repeats of the softmax-alone timing"),
    },
})
