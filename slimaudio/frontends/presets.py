"""The named frontends as settings of the general one (slimaudio.frontends.spectral); each gives
the bytes of the frontend it names (tests/test_frontends.py checks them against the references).

  log_mel            slimaudio.features.log_mel: uncentred frames, periodic Hann, power
                     spectrum, HTK triangles, ln(x + 1e-6): the project's models.
  speechbrain_fbank  speechbrain.lobes.features.Fbank of speechbrain 1.1.2 with its defaults
                     (the ECAPA-TDNN recipes): 25 ms periodic Hamming window, 10 ms hop, n_fft 400,
                     centred frames (zero padding), power spectrum, SpeechBrain's triangles
                     (0 .. sample_rate // 2), 10 log10(max(x, 1e-10)) floored at the utterance's
                     maximum - 80 dB.
  kaldi_fbank        Kaldi fbank as kaldi-native-fbank computes it with dither 0 (WeSpeaker and
                     3D-Speaker models): 25 ms frames every 10 ms inside the signal (snip_edges),
                     DC removal, pre-emphasis 0.97, symmetric Povey window (WeSpeaker trains with
                     Hamming), FFT size the next power of two, Kaldi's triangles 20 Hz .. Nyquist,
                     ln(max(x, float32 eps)).
`mean_norm` (every kind) is SpeechBrain's InputNormalization(norm_type="sentence",
std_norm=False) and the CMN of WeSpeaker / 3D-Speaker.
"""

from __future__ import annotations

import numpy as np

from slimaudio.errors import ParamError
from slimaudio.features import LOG_EPS, MelConfig
from slimaudio.frontends.spectral import Spectral

# Kaldi reads int16 samples unscaled and WeSpeaker multiplies its [-1, 1] waveform by 1 << 15
# to match; 3D-Speaker feeds [-1, 1] as is (scale 1.0). The scale only shifts the log by
# 2*log(scale), which mean_norm removes, except where the energy floor bites.
KALDI_SCALE = float(1 << 15)
SB_N_FFT, SB_AMIN, SB_TOP_DB = 400, 1e-10, 80.0
KALDI_PREEMPH, KALDI_LOW_HZ = 0.97, 20.0
KALDI_EPS = float(np.finfo(np.float32).eps)  # Kaldi's floor: std::numeric_limits<float>::epsilon()

_NO_PREP = {"scale": 1.0, "remove_dc": False, "preemphasis": 0.0}
_POWER_MEL = {"power": 2.0, "filter_norm": "none", "top_db": None, "var_norm": False}


def log_mel(mel: MelConfig, mean_norm: bool) -> Spectral:
    return Spectral(**mel.as_dict(), mean_norm=mean_norm, window="hann", periodic=True,
                    center=False, pad_mode="constant", filters="htk", compression="log",
                    log_offset=LOG_EPS, floor=0.0, **_NO_PREP, **_POWER_MEL)


def speechbrain_fbank(sample_rate: int, n_mels: int, mean_norm: bool) -> Spectral:
    # SpeechBrain's STFT rounds 25 / 10 ms to samples
    win, hop = round(sample_rate / 1000.0 * 25), round(sample_rate / 1000.0 * 10)
    if win > SB_N_FFT:
        raise ParamError(f"features: speechbrain_fbank's 25 ms window ({win} samples) exceeds its "
                         f"n_fft {SB_N_FFT}: needs sample_rate <= 16000 (got {sample_rate})")
    return Spectral(sample_rate=sample_rate, n_mels=n_mels, n_fft=SB_N_FFT, win_length=win,
                    hop_length=hop, f_min=0.0, f_max=float(sample_rate // 2),
                    mean_norm=mean_norm, window="hamming", periodic=True, center=True,
                    pad_mode="constant", filters="speechbrain", compression="db", log_offset=0.0,
                    floor=SB_AMIN, **_NO_PREP, **{**_POWER_MEL, "top_db": SB_TOP_DB})


def kaldi_fbank(sample_rate: int, n_mels: int, mean_norm: bool, window: str,
                scale: float) -> Spectral:
    # Kaldi's FrameExtractionOptions: truncated 25 / 10 ms, FFT rounded up to a power of two
    length, shift = int(sample_rate * 0.025), int(sample_rate * 0.010)
    return Spectral(sample_rate=sample_rate, n_mels=n_mels, n_fft=1 << (length - 1).bit_length(),
                    win_length=length, hop_length=shift, f_min=KALDI_LOW_HZ,
                    f_max=sample_rate / 2, mean_norm=mean_norm, window=window, periodic=False,
                    center=False, pad_mode="constant", scale=scale, remove_dc=True,
                    preemphasis=KALDI_PREEMPH, filters="kaldi", compression="log",
                    log_offset=0.0, floor=KALDI_EPS, **_POWER_MEL)
