"""Schemas of the data stages: prepare_speakers and prepare_sounds."""

from dataclasses import replace

from slimaudio.config import Field, register, register_check
from slimaudio.errors import ParamError

_pos_int = Field(int, lo=1)
_opt_pos_int = Field(int, lo=1, nullable=True)
_prob = Field(float, lo=0.0, hi=1.0)
_db = Field(float, lo=-30.0, hi=80.0)
_dur_speech = Field(float, lo=0.2, hi=120.0)    # the speech synthesiser's shortest utterance
_dur_events = Field(float, lo=0.1, hi=120.0)    # the event synthesiser's shortest clip


def _features(n_mels_default_doc: str) -> dict:
    return {
        "n_mels": Field(int, lo=8, hi=256, doc=n_mels_default_doc),
        "n_fft": Field(int, choices=[128, 256, 512, 1024, 2048, 4096], doc="DFT points"),
        "win_length": Field(int, lo=16, hi=4096, doc="STFT window in samples (<= n_fft)"),
        "hop_length": Field(int, lo=1, hi=4096, doc="STFT hop in samples"),
        "f_min": Field(float, lo=0.0, doc="lowest mel filter edge (Hz)"),
        "f_max": Field(float, lo=100.0, doc="highest mel filter edge (Hz, <= sample_rate / 2)"),
    }


def _speaker_features() -> dict:
    """_features plus the frontend choice. The pretrained frontends fix their own STFT and mel
    settings (slimaudio.frontends), so they use only n_mels of these."""
    fixed = "; log_mel only: the pretrained kinds fix it as their reference does"
    plain = _features("log-mel bands (80 for ECAPA-TDNN); the filterbank size for every kind")
    return {
        "kind": Field(str, choices=["log_mel", "speechbrain_fbank", "kaldi_fbank"],
                      doc="frontend: log_mel (the project's), speechbrain_fbank (SpeechBrain's "
                          "Fbank, in dB) or kaldi_fbank (Kaldi fbank of WeSpeaker / 3D-Speaker, "
                          "int16 scale); see slimaudio.frontends"),
        "mean_norm": Field(bool, doc="subtract each utterance's mean over frames (the sentence "
                                     "mean norm / CMN the pretrained recipes apply)"),
        "kaldi_window": Field(str, choices=["povey", "hamming"],
                              doc="kaldi_fbank: window (WeSpeaker: hamming; Kaldi, 3D-Speaker: povey)"),
        "kaldi_scale": Field(float, lo=1e-6, hi=1e6,
                             doc="kaldi_fbank: waveform scale ([-1, 1] times this; WeSpeaker and "
                                 "Kaldi: 32768, 3D-Speaker: 1)"),
        **{k: (replace(f, doc=f.doc + fixed) if k != "n_mels" else f) for k, f in plain.items()},
    }


def _audio_checks() -> dict:
    return {
        "silence_dbfs": Field(float, lo=-150.0, hi=0.0,
                              doc="a file whose peak is below this level is all-silent (bad)"),
        "min_duration_s": Field(float, lo=0.0, hi=60.0,
                                doc="shorter files are bad (never less than one STFT window)"),
    }


def _synth_ranges(duration: Field) -> dict:
    """The duration and SNR ranges both synthesisers draw from (ordered by _SYNTH_ORDERS)."""
    return {"min_dur_s": duration, "max_dur_s": duration, "snr_db_min": _db, "snr_db_max": _db}


# Pairs of keys that must be ordered (lower <= upper; True: strictly), checked with their full
# key paths after each key alone.
_FEATURE_ORDERS = [("features.win_length", "features.n_fft"), ("features.f_min", "features.f_max", True)]
_SYNTH_ORDERS = [("synthetic.min_dur_s", "synthetic.max_dur_s"),
                 ("synthetic.snr_db_min", "synthetic.snr_db_max")]

register("prepare_speakers", {
    "corpus": {
        "kind": Field(str, choices=["synthetic", "voxceleb", "librispeech", "fsdd"]),
        "path": Field(str, nullable=True, doc="corpus root for the real kinds; null for synthetic"),
        "trial_list": Field(str, nullable=True,
                            doc="trial list ('label enroll test' per line, VoxCeleb's format) as "
                                "a path or a file name in the corpus root (voxceleb, null: "
                                "veri_test2.txt or veri_test.txt when present); every utterance "
                                "it names must be in the corpus"),
        "max_speakers": _opt_pos_int,
        "max_utts_per_speaker": _opt_pos_int,
    },
    # evaluation-only: `corpus` is all test side, this corpus the train side
    "train_corpus": {
        "kind": Field(str, nullable=True, choices=["voxceleb", "librispeech", "fsdd"],
                      doc="null: carve the train speakers out of `corpus` (split.test_speakers); "
                          "else the corpus that gives calibration, fine-tuning and cohort audio "
                          "while every utterance of `corpus` (or of its trial list) is test; "
                          "a file or speaker on both sides is refused"),
        "path": Field(str, nullable=True, doc="its root"),
        "max_speakers": _opt_pos_int,
        "max_utts_per_speaker": _opt_pos_int,
    },
    # the fields of slimaudio.synth.speech.SpeechCorpusConfig (sample_rate and seed come from base)
    "synthetic": {
        "n_speakers": Field(int, lo=2, hi=100000),
        "utts_per_speaker": Field(int, lo=1, hi=10000),
        "sessions_per_speaker": _pos_int,
        **_synth_ranges(_dur_speech),
        "masked_prob": _prob,
        "arousal_prob": _prob,
        "trait_spread": Field(float, lo=0.0, hi=10.0),
        "session_var": Field(float, lo=0.0, hi=10.0),
        "utt_var": Field(float, lo=0.0, hi=10.0),
        "channel_eq_db": Field(float, lo=0.0, hi=40.0),
        "rt60_max_s": Field(float, lo=0.1, hi=3.0),
        "mask_db_min": Field(float, lo=0.0, hi=60.0),
        "mask_db_max": Field(float, lo=0.0, hi=60.0),
        "arousal_strength": Field(float, lo=0.0, hi=10.0),
    },
    "features": _speaker_features(),
    "split": {
        "test_speakers": Field(float, lo=0.0, doc="test speakers: a count (>= 1) or a fraction (< 1)"),
    },
    "trials": {
        "targets": Field(int, lo=1, nullable=True,
                         doc="generated target trials (null: every same-speaker pair of test "
                             "utterances); ignored when the corpus ships a trial list"),
        "nontargets": Field(int, lo=1, doc="generated non-target trials: random pairs of "
                                           "different test speakers' utterances"),
    },
    "audio": _audio_checks(),
}, orders=[*_FEATURE_ORDERS, *_SYNTH_ORDERS,
           ("synthetic.mask_db_min", "synthetic.mask_db_max")])

register("prepare_sounds", {
    "corpus": {
        "kind": Field(str, choices=["synthetic", "esc50", "urbansound8k", "folder"]),
        "path": Field(str, nullable=True, doc="corpus root for the real kinds; null for synthetic"),
        "esc10_only": Field(bool, doc="esc50: keep only the ESC-10 rows"),
        "max_clips_per_class": _opt_pos_int,
    },
    # the fields of slimaudio.synth.events.EventCorpusConfig (sample_rate and seed come from base)
    "synthetic": {
        "classes": Field(list, nullable=True, item=Field(str), min_len=2,
                         doc="class names (null: all of slimaudio.synth.events.EVENT_CLASSES)"),
        "clips_per_class_max": _pos_int,
        "imbalance": Field(float, lo=0.001, hi=1.0,
                           doc="smallest class = imbalance * largest (geometric in between)"),
        **_synth_ranges(_dur_events),
        "min_occupancy": Field(float, lo=0.05, hi=1.0),
        "variability": Field(float, lo=0.0, hi=10.0),
    },
    "features": _features("log-mel bands (64 for the ResNet50 sound model)"),
    "framing": {
        "window_s": Field(float, lo=0.1, hi=30.0, doc="frame (model input) length"),
        "stride_s": Field(float, lo=0.05, hi=30.0, doc="hop between frames"),
        "short_clip": Field(str, choices=["pad", "drop"],
                            doc="a clip shorter than one frame: zero-pad it to one frame, or "
                                "drop it (counted as a too_short file)"),
        "drop_silent_frames": Field(bool, doc="drop frames whose peak is below audio.silence_dbfs"),
    },
    "split": {
        "val_fraction": Field(float, lo=0.0, hi=0.5),
        "test_fraction": Field(float, lo=0.0, hi=0.5),
    },
    "undersample": {
        "cap": Field(int, lo=1, nullable=True,
                     doc="most train frames kept per class (random, seeded); null keeps all"),
    },
    "class_weights": Field(str, choices=["balanced", "none"],
                           doc="balanced: n / (n_classes * count), on the undersampled train split"),
    "audio": _audio_checks(),
}, orders=[*_FEATURE_ORDERS, *_SYNTH_ORDERS, ("framing.stride_s", "framing.window_s")])


@register_check
def _mel_below_nyquist(data: dict) -> None:
    """f_max of each corpus's features must lie at or below half of base.sample_rate."""
    nyquist = data["base"]["sample_rate"] / 2
    for section in ("prepare_speakers", "prepare_sounds"):
        f_max = data[section]["features"]["f_max"]
        if f_max > nyquist:
            raise ParamError(f"params: {section}.features.f_max = {f_max!r} must not exceed "
                             f"base.sample_rate / 2 = {nyquist:g}")
