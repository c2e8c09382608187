"""The pretrained-model frontends (slimaudio.frontends) give their references' numbers on real
recordings: SpeechBrain's Fbank (speechbrain 1.1.2, torch) and kaldi-native-fbank's OnlineFbank.

Needs the `reference` extra (conftest's `speechbrain` fixture explains the stand-in torchaudio).
The references compute in float32 (ours repeats only their float32 filter design), so values
agree to float32 rounding where the energy is; bins 60-90 dB below their frame's peak (below ~100 Hz in LibriSpeech, the
empty 4-8 kHz band of the upsampled 8 kHz FSDD digits) carry the float32 FFT's noise floor
(checked: our own pipeline run in float32 moves those bins by as much). Hence three figures per
comparison: max |diff| everywhere, max |diff| on loud bins (within 40 dB of their frame's
peak) and mean |diff|.
"""

from __future__ import annotations

import math
from pathlib import Path

import mel_configs
import numpy as np
import pytest

from slimaudio import compose as composer
from slimaudio import frontends as fe
from slimaudio.audio import load_audio
from slimaudio.errors import ParamError
from slimaudio.features import log_mel

N_MELS = 80
LOUD_DB = 40.0
# Tolerances: 2-3x the worst measured here (torch 2.13 CPU, kaldi-native-fbank 1.23.0), raw and
# mean-normalised alike. SpeechBrain's Fbank is in dB: measured max 1.3e-3, loud 2.7e-4 (at
# 8 kHz, where torch's vectorised linspace rounds a few filter centres its own way; 7e-5 at
# 16 kHz), mean 1.3e-5 dB.
SB_TOL_MAX, SB_TOL_LOUD, SB_TOL_MEAN = 3e-3, 6e-4, 4e-5
# Kaldi fbank is in nats (natural log): measured max 3.7e-3, loud 3.6e-5, mean 2.3e-5.
KALDI_TOL_MAX, KALDI_TOL_LOUD, KALDI_TOL_MEAN = 8e-3, 1e-4, 6e-5

LIBRI = "librispeech-train-clean-100-1utt"
FSDD = ["fsdd/recordings/0_george_0.wav", "fsdd/recordings/3_lucas_0.wav",
        "fsdd/recordings/7_jackson_0.wav"]


def _recordings(root: Path) -> list[tuple[str, int, np.ndarray]]:
    """(name, sample_rate, float32 waveform): 3 LibriSpeech files (16 kHz), 3 FSDD digits (8 kHz)
    resampled to 16 kHz by the project's loader, and one FSDD digit at its own 8 kHz."""
    libri = sorted((root / LIBRI).rglob("*.flac"))[:3]
    if len(libri) < 3:
        pytest.skip(f"LibriSpeech samples not found under {root / LIBRI}")
    out = [(p.name, 16000, load_audio(p, 16000)) for p in libri]
    out += [(Path(f).name, 16000, load_audio(root / f, 16000)) for f in FSDD]
    out.append((Path(FSDD[0]).name, 8000, load_audio(root / FSDD[0], 8000)))
    return out


@pytest.fixture
def recordings(shared_data: Path) -> list[tuple[str, int, np.ndarray]]:
    return _recordings(shared_data)


def _cfg(kind: str, sample_rate: int, mean_norm: bool = False, kaldi_scale: float = fe.KALDI_SCALE,
         kaldi_window: str = "povey") -> fe.FrontendConfig:
    return fe.FrontendConfig(n_mels=N_MELS, n_fft=512, win_length=400, hop_length=160, f_min=20.0,
                             f_max=min(7600.0, sample_rate / 2), kind=kind, mean_norm=mean_norm,
                             kaldi_scale=kaldi_scale, kaldi_window=kaldi_window,
                             custom=mel_configs.CUSTOM, sample_rate=sample_rate)


def _figures(ours: np.ndarray, ref: np.ndarray, loud: np.ndarray) -> tuple[float, float, float]:
    """(max, max over the loud mask, mean) |ours - ref|; shapes must agree."""
    assert ours.shape == ref.shape and ours.dtype == np.float32, (ours.shape, ref.shape, ours.dtype)
    d = np.abs(ours.astype(np.float64) - ref)
    return float(d.max()), float(d[loud].max()), float(d.mean())


def _check(label: str, rows: list[tuple[str, tuple[float, float, float]]],
           tols: tuple[float, float, float]) -> None:
    for name, f in rows:
        print(f"{label} {name:24s} max {f[0]:.2e}  loud {f[1]:.2e}  mean {f[2]:.2e}")
    worst = [max(f[i] for _, f in rows) for i in range(3)]
    print(f"{label} worst: max {worst[0]:.2e}  loud {worst[1]:.2e}  mean {worst[2]:.2e}  "
          f"(tolerances {tols[0]:.0e} / {tols[1]:.0e} / {tols[2]:.0e})")
    assert all(w <= t for w, t in zip(worst, tols, strict=True)), (label, worst, tols)


def test_speechbrain_fbank_matches_speechbrain(speechbrain, recordings) -> None:
    import torch
    from speechbrain.lobes.features import Fbank
    from speechbrain.processing.features import InputNormalization

    norm = InputNormalization(norm_type="sentence", std_norm=False)  # the ECAPA recipes' setting
    raw, normed = [], []
    for name, sr, x in recordings:
        with torch.no_grad():
            ref_t = Fbank(n_mels=N_MELS, sample_rate=sr)(torch.from_numpy(x)[None])
            ref_n = norm(ref_t, torch.ones(1))[0].double().numpy()
        ref = ref_t[0].double().numpy()
        loud = ref >= ref.max(axis=1, keepdims=True) - LOUD_DB
        assert _cfg("speechbrain_fbank", sr).n_frames(x.size) == ref.shape[0]
        raw.append((f"{name}@{sr}", _figures(fe.compute(x, _cfg("speechbrain_fbank", sr)), ref, loud)))
        normed.append((f"{name}@{sr}", _figures(
            fe.compute(x, _cfg("speechbrain_fbank", sr, mean_norm=True)), ref_n, loud)))
    _check("speechbrain_fbank [dB]", raw, (SB_TOL_MAX, SB_TOL_LOUD, SB_TOL_MEAN))
    _check("speechbrain_fbank + sentence norm [dB]", normed, (SB_TOL_MAX, SB_TOL_LOUD, SB_TOL_MEAN))


def _kaldi_reference(x: np.ndarray, sr: int, window: str, scale: float) -> np.ndarray:
    knf = pytest.importorskip("kaldi_native_fbank")
    opts = knf.FbankOptions()
    f = opts.frame_opts
    f.samp_freq, f.frame_length_ms, f.frame_shift_ms = sr, 25.0, 10.0
    f.dither, f.preemph_coeff, f.remove_dc_offset = 0.0, 0.97, True
    f.window_type, f.snip_edges = window, True
    opts.mel_opts.num_bins, opts.mel_opts.low_freq, opts.mel_opts.high_freq = N_MELS, 20.0, 0.0
    opts.use_energy = False
    fbank = knf.OnlineFbank(opts)
    fbank.accept_waveform(sr, (x.astype(np.float64) * scale).tolist())
    fbank.input_finished()
    return np.array([fbank.get_frame(i) for i in range(fbank.num_frames_ready)], dtype=np.float64)


# Kaldi's own scale and window; WeSpeaker (int16 scale, Hamming); 3D-Speaker ([-1, 1], Povey)
@pytest.mark.parametrize("window, scale", [("povey", fe.KALDI_SCALE), ("hamming", fe.KALDI_SCALE),
                                           ("povey", 1.0)], ids=["kaldi", "wespeaker", "3dspeaker"])
def test_kaldi_fbank_matches_kaldi_native_fbank(recordings, window: str, scale: float) -> None:
    raw, normed = [], []
    loud_nats = LOUD_DB * math.log(10) / 10
    for name, sr, x in recordings:
        ref = _kaldi_reference(x, sr, window, scale)
        loud = ref >= ref.max(axis=1, keepdims=True) - loud_nats
        cfg = _cfg("kaldi_fbank", sr, kaldi_scale=scale, kaldi_window=window)
        assert cfg.n_frames(x.size) == ref.shape[0]
        raw.append((f"{name}@{sr}", _figures(fe.compute(x, cfg), ref, loud)))
        cmn = _cfg("kaldi_fbank", sr, mean_norm=True, kaldi_scale=scale, kaldi_window=window)
        normed.append((f"{name}@{sr}", _figures(fe.compute(x, cmn), ref - ref.mean(axis=0), loud)))
    tols = (KALDI_TOL_MAX, KALDI_TOL_LOUD, KALDI_TOL_MEAN)
    _check(f"kaldi_fbank {window} x{scale:g} [nats]", raw, tols)
    _check(f"kaldi_fbank {window} x{scale:g} + CMN [nats]", normed, tols)


def test_log_mel_kind_is_features_log_mel_exactly() -> None:
    x = np.random.default_rng(0).uniform(-0.5, 0.5, 16000 + 123).astype(np.float32)
    mel = mel_configs.SPEAKER
    cfg = _cfg("log_mel", 16000)
    assert cfg.mel == mel
    ours = fe.compute(x, cfg, cfg.filterbank())
    assert ours.dtype == np.float32 and ours.tobytes() == log_mel(x, mel).tobytes()
    assert cfg.n_frames(x.size) == ours.shape[0] == mel.n_frames(x.size)


@pytest.mark.parametrize("kind", fe.KINDS)
def test_n_frames_is_the_output_length(kind: str) -> None:
    cfg = _cfg(kind, 16000)
    rng = np.random.default_rng(1)
    for n in (cfg.min_samples, 399, 400, 401, 559, 560, 16000):
        if n < cfg.min_samples:
            assert cfg.n_frames(n) == 0
            continue
        feats = fe.compute(rng.standard_normal(n).astype(np.float32) * 0.1, cfg)
        assert feats.shape == (cfg.n_frames(n), N_MELS), (kind, n, feats.shape)
    assert cfg.n_frames(cfg.min_samples - 1) == 0


def test_mean_norm_centres_every_band() -> None:
    x = np.random.default_rng(2).standard_normal(8000).astype(np.float32) * 0.1
    for kind in fe.KINDS:
        feats = fe.compute(x, _cfg(kind, 16000, mean_norm=True))
        assert np.abs(feats.mean(axis=0)).max() < 1e-4, kind


def test_bad_kind_is_a_one_line_param_error() -> None:
    with pytest.raises(ParamError, match=r"prepare_speakers\.features\.kind = 'mfcc'") as info:
        _cfg("mfcc", 16000)
    assert "\n" not in str(info.value)


def test_every_frontend_kind_the_params_offer_is_resolved() -> None:
    from slimaudio import config
    from slimaudio.frontends.config import _RESOLVE

    config.validate(composer.compose([]))  # the default (log_mel) validates
    assert set(_RESOLVE) == set(fe.KINDS)
    assert "kind" not in config.SCHEMAS["prepare_sounds"]["features"]
    with pytest.raises(ParamError, match=r"prepare_speakers\.features\.kind = 'mfcc'") as info:
        composer.compose(["prepare_speakers.features.kind=mfcc"])
    assert "\n" not in str(info.value)


def test_speechbrain_fbank_refuses_rates_above_16k() -> None:
    with pytest.raises(ParamError, match="sample_rate <= 16000"):
        _cfg("speechbrain_fbank", 22050)


def test_custom_with_conf_values_is_log_mel_exactly() -> None:
    """conf's `custom` section describes log_mel: the kind custom with it changes nothing."""
    x = np.random.default_rng(3).uniform(-0.5, 0.5, 16000 + 77).astype(np.float32)
    custom, preset = _cfg("custom", 16000), _cfg("log_mel", 16000)
    assert custom.spectral == preset.spectral
    assert fe.compute(x, custom).tobytes() == fe.compute(x, preset).tobytes()


@pytest.mark.parametrize("change, message", [
    ({"n_fft": 300}, "win_length 400 > n_fft 300"),
    ({"compression": "log", "log_offset": 0.0, "floor": 0.0}, "needs log_offset > 0 or floor > 0"),
    ({"compression": "db", "floor": 0.0}, "db needs floor"),
    ({"filters": "kaldi", "filter_norm": "slaney"}, "applies to htk and slaney filters"),
    ({"var_norm": True}, "var_norm needs mean_norm"),
])
def test_impossible_frontend_settings_are_one_line_param_errors(change, message) -> None:
    from dataclasses import replace

    shape = {k: v for k, v in change.items() if k != "n_fft"}
    with pytest.raises(ParamError, match=message) as info:
        replace(_cfg("custom", 16000), custom=replace(mel_configs.CUSTOM, **shape),
                n_fft=change.get("n_fft", 512)).filterbank()
    assert "\n" not in str(info.value)


def test_any_n_fft_at_or_above_the_window_is_accepted() -> None:
    from dataclasses import replace

    from slimaudio import config

    config.validate(composer.compose(["prepare_speakers.features.kind=custom",
                                      "prepare_speakers.features.n_fft=400"]))
    cfg = replace(_cfg("custom", 16000), n_fft=400)
    assert fe.compute(np.full(1600, 0.01), cfg).shape == (8, N_MELS)


@pytest.mark.parametrize("compression, dtype", [("log", np.float16), ("db", np.float16),
                                                ("log1p", np.float16), ("none", np.float32)])
def test_storage_type_follows_the_compression(compression: str, dtype) -> None:
    from dataclasses import replace

    cfg = replace(_cfg("custom", 16000),
                  custom=replace(mel_configs.CUSTOM, compression=compression, floor=1e-10))
    assert cfg.spectral.storage_dtype is dtype
