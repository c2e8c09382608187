"""Params prepare_speakers.features -> the frontend that computes the speaker features."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, get_args

import numpy as np

from slimaudio.errors import ParamError
from slimaudio.features import MelConfig
from slimaudio.frontends.presets import kaldi_fbank, log_mel, speechbrain_fbank
from slimaudio.frontends.spectral import Spectral
from slimaudio.frontends.spectral import compute as compute_spectral
from slimaudio.schemas.data import FeatureKind, KaldiWindow, Mel, SpeakerFeatures, SpectralShape
from slimaudio.spec import values

KINDS: tuple[str, ...] = get_args(FeatureKind)
KALDI_WINDOWS: tuple[str, ...] = get_args(KaldiWindow)


@dataclass(frozen=True)
class FrontendConfig(SpeakerFeatures):
    """Params prepare_speakers.features at base.sample_rate: which frontend, and its settings."""

    sample_rate: int

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ParamError(f"params: prepare_speakers.features.kind = {self.kind!r} is not one "
                             f"of {', '.join(map(repr, KINDS))}")
        if self.kaldi_window not in KALDI_WINDOWS:
            raise ParamError(f"features: kaldi_window {self.kaldi_window!r} is not one of "
                             f"{', '.join(KALDI_WINDOWS)}")
        _ = self.spectral  # the settings check themselves

    @classmethod
    def of(cls, feats: SpeakerFeatures, sample_rate: int) -> FrontendConfig:
        """The frontend params `feats` (prepare_speakers.features) give at `sample_rate`."""
        return cls(**values(feats, SpeakerFeatures), sample_rate=sample_rate)

    @cached_property
    def mel(self) -> MelConfig:
        """The log_mel and custom kinds' STFT and mel settings, as params give them."""
        return MelConfig.of(self, self.sample_rate)

    @cached_property
    def spectral(self) -> Spectral:
        """Every setting of the features, whichever the kind."""
        return _RESOLVE[self.kind](self)

    def describe(self) -> dict[str, Any]:
        """What the features are, for info.json: the STFT settings used (a preset's own, not
        the log_mel params), the kind, and every setting under `frontend`."""
        s = self.spectral
        stft = {k: getattr(s, k) for k in ("sample_rate", *values(s, Mel))}
        return {**stft, "kind": self.kind, "center": s.center, "mean_norm": self.mean_norm,
                "frontend": s.as_dict()}

    @property
    def min_samples(self) -> int:
        return self.spectral.min_samples

    def n_frames(self, n_samples: int) -> int:
        return self.spectral.n_frames(n_samples)

    def filterbank(self) -> np.ndarray:
        """The filters, built once per worker."""
        return self.spectral.filterbank()


# Each kind's settings; its keys are KINDS (a test checks).
_RESOLVE: dict[str, Callable[[FrontendConfig], Spectral]] = {
    "log_mel": lambda c: log_mel(c.mel, c.mean_norm),
    "speechbrain_fbank": lambda c: speechbrain_fbank(c.sample_rate, c.n_mels, c.mean_norm),
    "kaldi_fbank": lambda c: kaldi_fbank(c.sample_rate, c.n_mels, c.mean_norm,
                                                 c.kaldi_window, c.kaldi_scale),
    "custom": lambda c: Spectral(**values(c, Mel), **values(c.custom, SpectralShape),
                                 sample_rate=c.sample_rate, mean_norm=c.mean_norm),
}


def compute(wave: np.ndarray, cfg: FrontendConfig, fb: np.ndarray | None = None) -> np.ndarray:
    """float32 [cfg.n_frames(len(wave)), n_mels] features of a mono float waveform in [-1, 1];
    fb: cfg.filterbank(), to skip rebuilding the filters per call."""
    return compute_spectral(wave, cfg.spectral, fb)
