"""Schema of the ECAPA-TDNN section `ecapa` (model, training, evaluation)."""

from slimaudio.config import Field, register

MODEL = {
    "channels": Field(int, lo=8, hi=4096, doc="C, the SE-Res2Block width (paper: 1024)"),
    "mfa_channels": Field(int, lo=8, hi=8192, doc="output of the aggregation conv (paper: 1536)"),
    "attention_channels": Field(int, lo=4, hi=1024, doc="attention bottleneck (paper: 128)"),
    "embedding_dim": Field(int, choices=[192], doc="the embedding size the contract fixes"),
    "scale": Field(int, lo=2, hi=16, doc="Res2Net scale (must divide channels)"),
    "se_bottleneck": Field(int, lo=4, hi=1024, doc="squeeze-excitation bottleneck"),
}

TRAIN = {
    "steps": Field(int, lo=1, doc="optimizer steps"),
    "batch_size": Field(int, lo=2, hi=1024),
    "crop_s": Field(float, lo=0.2, hi=10.0, doc="random crop length in seconds"),
    "lr": Field(float, lo=1e-6, hi=1.0, doc="peak Adam learning rate"),
    "lr_min": Field(float, lo=0.0, hi=1.0, doc="learning rate at the end of the cosine decay"),
    "warmup_steps": Field(int, lo=0, doc="linear warm-up steps"),
    "weight_decay": Field(float, lo=0.0, hi=1.0),
    "margin": Field(float, lo=0.0, hi=1.0, doc="AAM-softmax margin"),
    "margin_warmup_steps": Field(int, lo=0, doc="steps over which the margin ramps up from 0"),
    "scale": Field(float, lo=1.0, hi=100.0, doc="AAM-softmax scale"),
    "noise_prob": Field(float, lo=0.0, hi=1.0, doc="share of crops given additive noise"),
    "snr_db": Field(list, item=Field(float, lo=-20.0, hi=60.0), min_len=2,
                    doc="[low, high] SNR range of the noise augmentation"),
    "log_every": Field(int, lo=1, doc="steps between training-curve points"),
    "threads": Field(int, lo=1, hi=64, doc="torch threads for training"),
}
TRAIN_ORDERS = [("train.snr_db.0", "train.snr_db.1")]   # the augmentation SNR range [lo, hi]

INIT = {
    "kind": Field(str, choices=["train", "speechbrain", "onnx"],
                  doc="train: train ECAPA-TDNN here (ecapa.model, ecapa.train); speechbrain: "
                      "import a SpeechBrain ECAPA-TDNN folder; onnx: any speaker-embedding ONNX "
                      "file (input [batch, frames, n_mels]; evaluation and PTQ only). Nothing "
                      "is trained unless kind is train"),
    "path": Field(str, doc="speechbrain: the folder with hyperparams.yaml and "
                           "embedding_model.ckpt; onnx: the .onnx file (a dependency of "
                           "ecapa_model: DVC reruns it when the files change); train: unused"),
    "input": {
        "name": Field(str, nullable=True,
                      doc="onnx: the model input fed the features (null: its first)"),
        "layout": Field(str, choices=["BTF", "BFT"],
                        doc="onnx: BTF [batch, frames, features] or BFT [batch, features, "
                            "frames]; the frames dimension must be dynamic"),
    },
}

register("ecapa", {
    "init": INIT,
    "model": MODEL,
    "train": TRAIN,
    "eval": {
        "threads": Field(int, lo=1, hi=64, doc="threads for embedding test utterances (batch 1)"),
        "onnx_opset": Field(int, lo=17, hi=21),
        "onnx_max_eer_diff": Field(float, lo=0.0, hi=100.0,
                                   doc="largest allowed |EER(torch) - EER(onnx)| in points"),
        "score_norm": {
            "kind": Field(str, choices=["none", "as_norm"],
                          doc="as_norm: also report AS-norm scores (cohort: train split)"),
            "top_k": Field(int, lo=1, hi=100000, doc="AS-norm: best cohort scores per side"),
            "cohort_per_speaker": Field(int, lo=1, hi=10000,
                                        doc="AS-norm: train utterances averaged per cohort speaker"),
        },
    },
}, orders=TRAIN_ORDERS)
