"""Sections `prepare_speakers` and `prepare_sounds`: the data stages.

The `synthetic` subsections are the knobs of the synthesisers: slimaudio.synth.speech's
SpeechCorpusConfig and slimaudio.synth.events's EventCorpusConfig extend `SpeechSynth` and
`EventSynth` with base.sample_rate and base.seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from slimaudio.config import register_check
from slimaudio.errors import ParamError
from slimaudio.spec import param, section

# The choices other modules dispatch on (slimaudio.frontends, slimaudio.corpora, features).
FeatureKind = Literal["log_mel", "speechbrain_fbank", "kaldi_fbank", "custom"]
KaldiWindow = Literal["povey", "hamming"]
Window = Literal["hann", "hamming", "povey", "rectangular"]
PadMode = Literal["constant", "reflect"]
MelFilters = Literal["htk", "slaney", "speechbrain", "kaldi"]
FilterNorm = Literal["none", "slaney"]
Compression = Literal["none", "log", "log10", "db", "log1p"]
SpeakerCorpusKind = Literal["synthetic", "voxceleb", "librispeech", "fsdd"]
SoundCorpusKind = Literal["synthetic", "esc50", "urbansound8k", "folder"]
ShortClip = Literal["pad", "drop"]

# Pairs of keys that must be ordered (lower <= upper; True: strictly), checked with their full
# key paths after each key alone.
_FEATURE_ORDERS = [("features.win_length", "features.n_fft"),
                   ("features.f_min", "features.f_max", True)]
_SYNTH_ORDERS = [("synthetic.min_dur_s", "synthetic.max_dur_s"),
                 ("synthetic.snr_db_min", "synthetic.snr_db_max")]


# --- shared by both sections ---------------------------------------------------------------------

@dataclass(frozen=True)
class Mel:
    """Log-mel features (slimaudio.features). The pretrained speaker frontends fix their own
    STFT and mel settings (slimaudio.frontends) and use only n_mels of these."""

    n_mels: int = param("log-mel bands (80 for ECAPA-TDNN, 64 for the ResNet50 sound model); "
                        "the filterbank size for every speaker frontend kind", lo=8, hi=256)
    n_fft: int = param("DFT points, any number >= win_length (prepare_speakers: its log_mel "
                       "and custom kinds only)", lo=16, hi=16384)
    win_length: int = param("STFT window in samples (<= n_fft; prepare_speakers: its log_mel "
                            "and custom kinds only)", lo=16, hi=16384)
    hop_length: int = param("STFT hop in samples (prepare_speakers: its log_mel and custom kinds "
                            "only)", lo=1, hi=16384)
    f_min: float = param("lowest mel filter edge (Hz; prepare_speakers: its log_mel and custom "
                         "kinds only)", lo=0.0)
    f_max: float = param("highest mel filter edge (Hz, <= sample_rate / 2; prepare_speakers: "
                         "its log_mel and custom kinds only)", lo=100.0)


@dataclass(frozen=True)
class Audio:
    """Audio checks of every file before featurising."""

    silence_dbfs: float = param("a file whose peak is below this level is all-silent (bad)",
                                lo=-150.0, hi=0.0)
    min_duration_s: float = param("shorter files are bad (never less than one STFT window)",
                                  lo=0.0, hi=60.0)


# --- prepare_speakers ----------------------------------------------------------------------------

@dataclass(frozen=True)
class SpeakerSource:
    """The speaker corpus."""

    kind: SpeakerCorpusKind = param("the speaker corpus: synthetic (slimaudio.synth.speech) or a "
                                    "real one on disk")
    path: str | None = param("corpus root for the real kinds; null for synthetic")
    trial_list: str | None = param(
        "trial list ('label enroll test' per line, VoxCeleb's format) as a path or a file name "
        "in the corpus root (voxceleb, null: veri_test2.txt or veri_test.txt when present); "
        "every utterance it names must be in the corpus")
    max_speakers: int | None = param("keep a seeded subset of this many speakers, trial-list "
                                     "speakers first (null: all)", lo=1)
    max_utts_per_speaker: int | None = param("keep each speaker's first utterances in id order "
                                             "(null: all)", lo=1)


@dataclass(frozen=True)
class TrainSource:
    """Evaluation-only protocols: the corpus of the train side."""

    kind: Literal["voxceleb", "librispeech", "fsdd"] | None = param(
        "null: carve the train speakers out of `corpus` (split.test_speakers); else the corpus "
        "that gives calibration, fine-tuning and cohort audio while every utterance of `corpus` "
        "(or of its trial list) is test; a file or speaker on both sides is refused")
    path: str | None = param("its root")
    max_speakers: int | None = param("keep a seeded subset of this many train speakers (null: "
                                     "all)", lo=1)
    max_utts_per_speaker: int | None = param("keep each train speaker's first utterances in id "
                                             "order (null: all)", lo=1)


@dataclass(frozen=True)
class SpeechSynth:
    """The synthetic speaker corpus (slimaudio.synth.speech; larger spreads and variances make
    it harder)."""

    n_speakers: int = param("speakers in the corpus (ids spk0001 ...)", lo=2, hi=100000)
    utts_per_speaker: int = param("utterances per speaker, spread round-robin over sessions",
                                  lo=1, hi=10000)
    sessions_per_speaker: int = param("recording sessions per speaker (each its own channel, "
                                      "room and noise)", lo=1)
    min_dur_s: float = param("shortest utterance (s)", lo=0.2, hi=120.0)
    max_dur_s: float = param("longest utterance (s; durations uniform in between)",
                             lo=0.2, hi=120.0)
    snr_db_min: float = param("lowest additive-noise SNR (dB)", lo=-30.0, hi=80.0)
    snr_db_max: float = param("highest additive-noise SNR (dB)", lo=-30.0, hi=80.0)
    masked_prob: float = param("probability that an utterance is spoken through a mask",
                               lo=0.0, hi=1.0)
    arousal_prob: float = param("probability that an utterance is high-arousal", lo=0.0, hi=1.0)
    trait_spread: float = param("between-speaker spread of every voice trait (smaller: speakers "
                                "more alike, harder)", lo=0.0, hi=10.0)
    session_var: float = param("within-speaker drift per session: F0, vocal effort, rate, "
                               "articulation", lo=0.0, hi=10.0)
    utt_var: float = param("within-speaker drift per utterance", lo=0.0, hi=10.0)
    channel_eq_db: float = param("depth of the random per-session channel EQ (dB)",
                                 lo=0.0, hi=40.0)
    rt60_max_s: float = param("longest per-session reverberation time (rt60 uniform in "
                              "[0.1, this])", lo=0.1, hi=3.0)
    mask_db_min: float = param("weakest mask attenuation of high frequencies (dB; smaller: a "
                               "mask harder to detect)", lo=0.0, hi=60.0)
    mask_db_max: float = param("strongest mask attenuation (dB)", lo=0.0, hi=60.0)
    arousal_strength: float = param("scales the pitch-range, pitch-rate, rate and effort changes "
                                    "of arousal", lo=0.0, hi=10.0)


@dataclass(frozen=True)
class SpectralShape:
    """The frontend beyond the STFT and mel settings (slimaudio.frontends.spectral). The values
    in conf/ describe log_mel, so kind custom with them computes log_mel's features exactly."""

    window: Window = param("analysis window (povey: Kaldi's, a Hann window to the power 0.85)")
    periodic: bool = param("window denominator N (periodic: torch, librosa, SpeechBrain) or "
                           "N - 1 (symmetric: Kaldi)")
    center: bool = param(
        "true: the signal padded by n_fft // 2 each side and frame t centred on sample t * hop "
        "(torch.stft, librosa); false: frames of win_length samples from sample 0 (Kaldi's "
        "snip_edges; librosa's center=False starts each frame (n_fft - win_length) // 2 later)")
    pad_mode: PadMode = param("padding of centred frames (librosa >= 0.10: constant)")
    scale: float = param("waveform scale ([-1, 1] times this)", lo=1e-6, hi=1e6)
    remove_dc: bool = param("subtract each frame's mean before the window (Kaldi)")
    preemphasis: float = param("pre-emphasis within each frame, x[t] - c x[t - 1] (Kaldi: 0.97; "
                               "0: none)", lo=0.0, hi=0.999)
    power: float = param("1: magnitude spectrum, 2: power spectrum", choices=[1.0, 2.0])
    filters: MelFilters = param(
        "mel filter design: htk (HTK mel scale, torchaudio's default), slaney (librosa's "
        "default scale), speechbrain or kaldi (those toolkits' own designs)")
    filter_norm: FilterNorm = param("slaney: each triangle scaled to unit area in Hz (librosa's "
                                    "norm='slaney'); htk and slaney filters only")
    compression: Compression = param(
        "none (float32 storage), log (natural), log10, db (10 log10, librosa's power_to_db with "
        "ref 1) or log1p")
    log_offset: float = param("log, log10: added to the mel energy before the log", lo=0.0)
    floor: float = param("log, log10: clamp after the offset; db: amin", lo=0.0)
    top_db: float | None = param("db: floor at the utterance's maximum minus this (null: none)",
                                 lo=0.0)
    var_norm: bool = param("also divide each band by its standard deviation over the utterance "
                           "(needs mean_norm)")


@dataclass(frozen=True)
class SpeakerFeatures(Mel):
    """Mel plus the frontend choice (slimaudio.frontends)."""

    kind: FeatureKind = param(
        "frontend: log_mel (the project's), speechbrain_fbank (SpeechBrain's Fbank, in dB), "
        "kaldi_fbank (Kaldi fbank of WeSpeaker / 3D-Speaker, int16 scale), each a preset of the "
        "general frontend, or custom (the STFT and mel settings here and `custom`); the "
        "SpeechBrain and Kaldi kinds use only n_mels of the STFT and mel settings")
    mean_norm: bool = param("subtract each utterance's mean over frames (the sentence mean norm "
                            "/ CMN the pretrained recipes apply)")
    kaldi_window: KaldiWindow = param(
        "kaldi_fbank: window (WeSpeaker: hamming; Kaldi, 3D-Speaker: povey)")
    kaldi_scale: float = param("kaldi_fbank: waveform scale ([-1, 1] times this; WeSpeaker and "
                               "Kaldi: 32768, 3D-Speaker: 1)", lo=1e-6, hi=1e6)
    custom: SpectralShape = param()


@dataclass(frozen=True)
class SpeakerSplit:
    test_speakers: float = param("test speakers: a count (>= 1) or a fraction (< 1) of all",
                                 lo=0.0)


@dataclass(frozen=True)
class TrialCounts:
    targets: int | None = param(
        "generated target trials (null: every same-speaker pair of test utterances); ignored "
        "when the corpus ships a trial list", lo=1)
    nontargets: int = param("generated non-target trials: random pairs of different test "
                            "speakers' utterances (scoring is a dot product: cheap)", lo=1)


@dataclass(frozen=True)
class PrepareSpeakers:
    """Stage prepare_speakers -> data/speakers/ (the speaker corpus of the ECAPA studies)."""

    corpus: SpeakerSource = param()
    train_corpus: TrainSource = param()
    synthetic: SpeechSynth = param()
    features: SpeakerFeatures = param()
    split: SpeakerSplit = param()
    trials: TrialCounts = param()
    audio: Audio = param()


# --- prepare_sounds ------------------------------------------------------------------------------

@dataclass(frozen=True)
class SoundSource:
    """The sound-event corpus."""

    kind: SoundCorpusKind = param("the sound-event corpus: synthetic (slimaudio.synth.events) or "
                                  "a real one on disk")
    path: str | None = param("corpus root for the real kinds; null for synthetic")
    esc10_only: bool = param("esc50: keep only the ESC-10 rows")
    max_clips_per_class: int | None = param("keep a seeded subset of this many clips per class "
                                            "(null: all)", lo=1)


@dataclass(frozen=True)
class EventSynth:
    """The synthetic sound-event corpus (slimaudio.synth.events)."""

    classes: tuple[str, ...] | None = param(
        "class names, in label order (null: all of slimaudio.synth.events.EVENT_CLASSES)",
        min_len=2)
    clips_per_class_max: int = param("clips of the largest class", lo=1)
    imbalance: float = param("smallest class = imbalance * largest (geometric in between, "
                             "seeded class order)", lo=0.001, hi=1.0)
    min_dur_s: float = param("shortest clip (s)", lo=0.1, hi=120.0)
    max_dur_s: float = param("longest clip (s; uniform in between)", lo=0.1, hi=120.0)
    snr_db_min: float = param("lowest event-to-background SNR (dB, active level of the event)",
                              lo=-30.0, hi=80.0)
    snr_db_max: float = param("highest event-to-background SNR (dB)", lo=-30.0, hi=80.0)
    min_occupancy: float = param("the event spans a fraction U(min_occupancy, 1) of the clip "
                                 "(smaller: more event-free frames)", lo=0.05, hi=1.0)
    variability: float = param("scales the per-clip random variation of every generator's "
                               "parameters", lo=0.0, hi=10.0)


@dataclass(frozen=True)
class Framing:
    """Fixed windows cut from every clip: the model's inputs."""

    window_s: float = param("frame (model input) length (s)", lo=0.1, hi=30.0)
    stride_s: float = param("hop between frames (s)", lo=0.05, hi=30.0)
    short_clip: ShortClip = param("a clip shorter than one frame: zero-pad it to one frame, or "
                                  "drop it (counted as a too_short file)")
    drop_silent_frames: bool = param("drop frames whose peak is below audio.silence_dbfs")


@dataclass(frozen=True)
class SoundSplit:
    """By source recording: no recording has frames in two splits."""

    val_fraction: float = param("fraction of each class's source recordings for validation "
                                "(whole recordings: none has frames in two splits)",
                                lo=0.0, hi=0.5)
    test_fraction: float = param("fraction of each class's source recordings for test (whole "
                                 "recordings)", lo=0.0, hi=0.5)


@dataclass(frozen=True)
class Undersample:
    cap: int | None = param("most train frames kept per class (random, seeded); null keeps all",
                            lo=1)


@dataclass(frozen=True)
class PrepareSounds:
    """Stage prepare_sounds -> data/sounds/ (sound-event frames of the ResNet / TFLite study)."""

    corpus: SoundSource = param()
    synthetic: EventSynth = param()
    features: Mel = param()
    framing: Framing = param()
    split: SoundSplit = param()
    undersample: Undersample = param()
    class_weights: Literal["balanced", "none"] = param(
        "balanced: n / (n_classes * count), on the undersampled train split; none: all 1")
    audio: Audio = param()


section("prepare_speakers", PrepareSpeakers,
        orders=[*_FEATURE_ORDERS, *_SYNTH_ORDERS,
                ("synthetic.mask_db_min", "synthetic.mask_db_max")])
section("prepare_sounds", PrepareSounds,
        orders=[*_FEATURE_ORDERS, *_SYNTH_ORDERS, ("framing.stride_s", "framing.window_s")])


@register_check
def _mel_below_nyquist(data: dict) -> None:
    """f_max of each corpus's features must lie at or below half of base.sample_rate."""
    nyquist = data["base"]["sample_rate"] / 2
    for name in ("prepare_speakers", "prepare_sounds"):
        f_max = data[name]["features"]["f_max"]
        if f_max > nyquist:
            raise ParamError(f"params: {name}.features.f_max = {f_max!r} must not exceed "
                             f"base.sample_rate / 2 = {nyquist:g}")
