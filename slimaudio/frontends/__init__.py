"""Speaker feature frontends: one general mel-spectrogram pipeline described by params
(`spectral`), the named frontends of pretrained speaker models as its presets (`presets`), their
windows and filter designs (`filters`), and the params' choice of one (`config`)."""

from slimaudio.frontends.config import KINDS, FrontendConfig, compute
from slimaudio.frontends.presets import KALDI_SCALE
from slimaudio.frontends.spectral import Spectral

__all__ = ["KALDI_SCALE", "KINDS", "FrontendConfig", "Spectral", "compute"]
