"""The pipeline's log-mel settings as conf/ composes them, for tests that build features or
models without a params file (their one home is conf/config.yaml, not a code default)."""

from __future__ import annotations

from dataclasses import replace

from slimaudio.compose import compose
from slimaudio.features import MelConfig
from slimaudio.schemas.data import Mel, SpeakerFeatures
from slimaudio.spec import build

_PARAMS = compose([])
_RATE = _PARAMS["base"]["sample_rate"]
# prepare_speakers.features: 80 bands, 25 ms / 10 ms at 16 kHz (ECAPA-TDNN's input)
SPEAKER_FEATURES = build(SpeakerFeatures, _PARAMS["prepare_speakers"]["features"])
SPEAKER = MelConfig.of(SPEAKER_FEATURES, _RATE)
# prepare_speakers.features.custom: the general frontend's settings beyond the STFT and mel
CUSTOM = SPEAKER_FEATURES.custom
# prepare_sounds.features: 64 bands, 40 ms / 20 ms
SOUND = MelConfig.of(build(Mel, _PARAMS["prepare_sounds"]["features"]), _RATE)


def speaker(**changes) -> MelConfig:
    """SPEAKER with some settings changed (e.g. n_mels=64)."""
    return replace(SPEAKER, **changes)
