"""Procedural multi-speaker speech corpus (source-filter synthesis, no downloads).

A speaker is a fixed set of voice traits (F0 level and range, vocal-tract length, formant
idiosyncrasies, tilt, jitter, shimmer, breathiness, speaking rate); a voice group "A"/"B"
shifts the F0 and vocal-tract distributions, with overlap. Every utterance is a fresh random
sequence of phone-like segments rendered as a glottal pulse train through time-varying
formant resonators (plus frication, bursts, aspiration and pauses). Within-speaker drift
(per session and per utterance), a per-session channel (EQ, band limit, room, noise) and the
per-utterance 'masked' and 'arousal' conditions make the tasks realistic rather than trivial.

`plan_corpus` is cheap and lists every utterance; `render` turns one `UttSpec` into audio and
depends only on the spec and the config, so utterances can be rendered in any order or
process. Speaker indices are 0-based; ids are 1-based ("spk0001" is index 0).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from slimaudio.errors import ParamError
from slimaudio.schemas.data import SpeechSynth
from slimaudio.spec import values
from slimaudio.synth import dsp


@dataclass(frozen=True)
class SpeechCorpusConfig(SpeechSynth):
    """Params prepare_speakers.synthetic (the knobs, documented in slimaudio.schemas.data) plus
    base.sample_rate and base.seed."""
    sample_rate: int
    seed: int
    channel_pool: int = 64             # distinct recording setups shared by all sessions (0: every session its own); not a param

    def __post_init__(self) -> None:
        checks = [
            ("n_speakers", self.n_speakers >= 1), ("utts_per_speaker", self.utts_per_speaker >= 1),
            ("sessions_per_speaker", self.sessions_per_speaker >= 1),
            ("min_dur_s", 0.2 <= self.min_dur_s <= self.max_dur_s),
            ("snr_db_min", self.snr_db_min <= self.snr_db_max),
            ("masked_prob", 0.0 <= self.masked_prob <= 1.0),
            ("arousal_prob", 0.0 <= self.arousal_prob <= 1.0),
            ("sample_rate", self.sample_rate >= 8000),
            ("trait_spread", self.trait_spread >= 0.0), ("session_var", self.session_var >= 0.0),
            ("utt_var", self.utt_var >= 0.0), ("channel_eq_db", self.channel_eq_db >= 0.0),
            ("rt60_max_s", self.rt60_max_s >= 0.1),
            ("mask_db_min", 0.0 <= self.mask_db_min <= self.mask_db_max),
            ("arousal_strength", self.arousal_strength >= 0.0),
            ("channel_pool", self.channel_pool >= 0),
        ]
        for name, ok in checks:
            if not ok:
                raise ParamError(f"speech synth: {name}={getattr(self, name)!r} is out of range")

    @classmethod
    def of(cls, synthetic: SpeechSynth, sample_rate: int, seed: int) -> SpeechCorpusConfig:
        """From params prepare_speakers.synthetic, base.sample_rate and base.seed."""
        return cls(**values(synthetic, SpeechSynth), sample_rate=int(sample_rate), seed=int(seed))


@dataclass(frozen=True)
class UttSpec:
    utt_id: str
    speaker: str
    session: int          # 1-based
    group: str            # "A" or "B"
    masked: bool
    arousal: bool
    duration_s: float
    seed: int


@dataclass(frozen=True)
class SynthUtterance:
    spec: UttSpec
    audio: np.ndarray  # float32 mono in [-1, 1], len == round(duration_s * sample_rate)


@dataclass(frozen=True)
class VoiceTraits:
    group: str
    f0_hz: float              # median F0
    f0_range_st: float        # typical accent size in semitones
    vtl_scale: float          # formant scale (1 / relative vocal-tract length)
    formant_dev: tuple[float, ...]                 # per-formant (F1..F5) multiplicative idiosyncrasy
    vowel_dev: tuple[tuple[float, float], ...]     # per-vowel (F1, F2) multiplicative idiosyncrasy
    bw_scale: float           # formant bandwidth scale
    tilt_db_oct: float        # source spectral tilt offset (dB per octave)
    jitter: float             # period perturbation, sd as a fraction of the period
    shimmer_db: float         # per-period amplitude perturbation, sd in dB
    breathiness: float        # aspiration noise relative to voicing
    open_quotient: float      # glottal open phase fraction (shape of the pulse)
    rate_sps: float           # speaking rate, syllables per second
    fric_scale: float         # shift of fricative noise bands


# ----------------------------------------------------------------------------- phones
# Reference formants (Hz, F1..F3) for vtl_scale 1 (an average adult of group "A").
VOWELS: dict[str, tuple[float, float, float]] = {
    "i": (342, 2322, 3000), "I": (427, 2034, 2684), "e": (476, 2089, 2691),
    "E": (580, 1799, 2605), "ae": (588, 1952, 2601), "a": (768, 1333, 2522),
    "O": (652, 997, 2538), "o": (497, 910, 2459), "U": (469, 1122, 2434),
    "u": (378, 997, 2343), "V": (623, 1200, 2550), "3": (474, 1379, 1710),
}
_F45 = (3500.0, 4500.0)
_BW = np.array([70.0, 100.0, 140.0, 200.0, 280.0], dtype=np.float32)

# Consonants: (kind, F1..F3 target or None, voicing, frication level, band centre, band width)
# kinds: "son" sonorant (formants), "fric" fricative noise band, "stop" closure + burst.
_CONS: dict[str, tuple[str, tuple[float, float, float] | None, float, float, float, float]] = {
    "m": ("son", (250, 1100, 2300), 0.35, 0.0, 0, 0), "n": ("son", (250, 1500, 2500), 0.35, 0.0, 0, 0),
    "l": ("son", (360, 1300, 2900), 0.6, 0.0, 0, 0), "r": ("son", (330, 1060, 1380), 0.6, 0.0, 0, 0),
    "w": ("son", (300, 610, 2200), 0.6, 0.0, 0, 0), "j": ("son", (270, 2200, 3000), 0.6, 0.0, 0, 0),
    "s": ("fric", None, 0.0, 0.35, 6000, 3000), "S": ("fric", None, 0.0, 0.4, 3300, 2000),
    "f": ("fric", None, 0.0, 0.12, 4500, 7000), "T": ("fric", None, 0.0, 0.1, 5500, 7000),
    "z": ("fric", None, 0.35, 0.22, 6000, 3000), "v": ("fric", None, 0.35, 0.1, 4000, 6000),
    "h": ("asp", None, 0.0, 0.25, 0, 0),
    "p": ("stop", None, 0.0, 0.45, 900, 1500), "t": ("stop", None, 0.0, 0.5, 4500, 3000),
    "k": ("stop", None, 0.0, 0.5, 2200, 1200), "b": ("stop", None, 0.2, 0.3, 900, 1500),
    "d": ("stop", None, 0.2, 0.35, 4500, 3000), "g": ("stop", None, 0.2, 0.35, 2200, 1200),
}
_ONSETS = tuple(_CONS)
_CODAS = ("m", "n", "l", "r", "s", "S", "f", "z", "t", "k", "p", "d")


def _phone_table() -> tuple[list[str], dict[str, np.ndarray]]:
    """Rows: silence, vowels, consonant bodies, stop closures, stop releases."""
    names = ["sil"] + list(VOWELS) + [c for c in _CONS if _CONS[c][0] != "stop"] \
        + [f"{c}_clo" for c in _CONS if _CONS[c][0] == "stop"] \
        + [f"{c}_rel" for c in _CONS if _CONS[c][0] == "stop"]
    n = len(names)
    tab = {k: np.zeros(n, np.float32) for k in ("gv", "gfric", "gasp", "fc", "bw", "vowel")}
    tab["F"] = np.full((n, 3), np.nan, np.float32)
    tab["vowel"][:] = -1
    for i, name in enumerate(names):
        if name in VOWELS:
            tab["F"][i] = VOWELS[name]
            tab["gv"][i] = 1.0
            tab["vowel"][i] = list(VOWELS).index(name)
        elif name == "sil":
            pass
        elif name.endswith("_clo"):
            tab["gv"][i] = _CONS[name[:-4]][2]  # voice bar for b d g
        elif name.endswith("_rel"):
            _, _, gv, lev, fc, bw = _CONS[name[:-4]]
            tab["gfric"][i], tab["fc"][i], tab["bw"][i] = lev, fc, bw
            tab["gasp"][i] = 0.25 if gv == 0 else 0.05
            tab["gv"][i] = 0.5 if gv > 0 else 0.0
        else:
            kind, formants, gv, lev, fc, bw = _CONS[name]
            tab["gv"][i] = gv
            if formants is not None:
                tab["F"][i] = formants
            if kind == "fric":
                tab["gfric"][i], tab["fc"][i], tab["bw"][i] = lev, fc, bw
            elif kind == "asp":
                tab["gasp"][i] = lev
    return names, tab


_PHONES, _TAB = _phone_table()
_IDX = {p: i for i, p in enumerate(_PHONES)}
_VOWEL_IDX = np.array([_IDX[v] for v in VOWELS])
_ONSET_BODY = np.array([_IDX[c] if _CONS[c][0] != "stop" else -1 for c in _ONSETS])
_ONSET_CLO = np.array([_IDX[f"{c}_clo"] if _CONS[c][0] == "stop" else -1 for c in _ONSETS])
_ONSET_REL = np.array([_IDX[f"{c}_rel"] if _CONS[c][0] == "stop" else -1 for c in _ONSETS])
_CODA_BODY = np.array([_IDX[c] if _CONS[c][0] != "stop" else _IDX[f"{c}_clo"] for c in _CODAS])


# ----------------------------------------------------------------------------- traits
def speaker_id(index: int) -> str:
    return f"spk{index + 1:04d}"


def speaker_index(spk: str) -> int:
    """Inverse of `speaker_id` (0-based index)."""
    try:
        return int(spk.removeprefix("spk")) - 1
    except ValueError:
        raise ParamError(f"speech synth: bad speaker id {spk!r} (expected like 'spk0001')") from None


def _group(index: int) -> str:
    return "A" if index % 2 == 0 else "B"  # balanced groups, independent of n_speakers


def draw_traits(rng: np.random.Generator, group: str, spread: float = 1.0) -> VoiceTraits:
    """A random voice of a group; `spread` scales the between-speaker variation."""
    s = spread
    b = group == "B"
    # Group means overlap: A ~ 115 Hz / VTL scale 1.0, B ~ 200 Hz / 1.15 (sd ~3 st, ~5 %).
    f0 = (200.0 if b else 115.0) * np.exp(s * rng.normal(0.0, 0.17))
    vtl = (1.15 if b else 1.0) * np.exp(s * rng.normal(0.0, 0.055))
    return VoiceTraits(
        group=group,
        f0_hz=float(f0),
        f0_range_st=float(3.5 * np.exp(s * rng.normal(0.0, 0.3))),
        vtl_scale=float(vtl),
        formant_dev=tuple(float(x) for x in np.exp(s * rng.normal(0.0, [0.03, 0.03, 0.04, 0.05, 0.06]))),
        vowel_dev=tuple((float(a), float(c)) for a, c in np.exp(s * rng.normal(0.0, 0.05, (len(VOWELS), 2)))),
        bw_scale=float(np.exp(s * rng.normal(0.0, 0.18))),
        tilt_db_oct=float(s * rng.normal(0.0, 1.5) - (0.5 if b else 0.0)),
        jitter=float(0.008 * np.exp(s * rng.normal(0.0, 0.4))),
        shimmer_db=float(0.35 * np.exp(s * rng.normal(0.0, 0.4))),
        breathiness=float((0.12 if b else 0.07) * np.exp(s * rng.normal(0.0, 0.5))),
        open_quotient=float(np.clip(0.6 + s * rng.normal(0.0, 0.06), 0.4, 0.8)),
        rate_sps=float(4.5 * np.exp(s * rng.normal(0.0, 0.12))),
        fric_scale=float(np.exp(s * rng.normal(0.0, 0.06))),
    )


@functools.lru_cache(maxsize=4096)
def speaker_traits(cfg: SpeechCorpusConfig, speaker_index: int) -> VoiceTraits:
    """Fixed voice of one speaker (0-based index), derived only from cfg.seed and the index."""
    if speaker_index < 0:
        raise ParamError(f"speech synth: speaker index {speaker_index} is negative")
    rng = dsp.rng_for(cfg.seed, "speaker", speaker_index)
    return draw_traits(rng, _group(speaker_index), cfg.trait_spread)


# ----------------------------------------------------------------------------- planning
def plan_corpus(cfg: SpeechCorpusConfig) -> list[UttSpec]:
    """Every utterance of the corpus, in speaker/utterance order (deterministic)."""
    specs: list[UttSpec] = []
    for i in range(cfg.n_speakers):
        spk = speaker_id(i)
        rng = dsp.rng_for(cfg.seed, "plan", i)
        durs = rng.uniform(cfg.min_dur_s, cfg.max_dur_s, cfg.utts_per_speaker)
        masked = rng.random(cfg.utts_per_speaker) < cfg.masked_prob
        arousal = rng.random(cfg.utts_per_speaker) < cfg.arousal_prob
        for j in range(cfg.utts_per_speaker):
            session = j % cfg.sessions_per_speaker + 1
            specs.append(UttSpec(
                utt_id=f"{spk}-s{session}-u{j + 1:03d}", speaker=spk, session=session,
                group=_group(i), masked=bool(masked[j]), arousal=bool(arousal[j]),
                duration_s=round(float(durs[j]), 3),
                seed=dsp.derive_seed(cfg.seed, "utt", i, j)))
    return specs


# ----------------------------------------------------------------------------- synthesis
@dataclass(frozen=True)
class Delivery:
    """How one stretch of speech is produced (within-speaker and condition variation)."""
    f0_offset_st: float = 0.0      # shift of the whole F0 contour
    effort: float = 0.0            # vocal effort: flatter tilt, higher F0 (about -1 .. 1)
    rate_factor: float = 1.0       # speaking-rate multiplier
    range_factor: float = 1.0      # pitch-accent size multiplier
    wander_hz: float = 0.6         # knots per second of the slow random F0 wander
    wander_st: float = 0.6         # size of that wander in semitones
    artic_sd: float = 0.05         # per-vowel random formant deviation (coarticulation)
    formant_shift: float = 1.0     # global formant multiplier
    f1_shift: float = 1.0          # extra F1 multiplier (loud / aroused speech opens the jaw)


def _segments(rng: np.random.Generator, tr: VoiceTraits, dv: Delivery, dur_s: float
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Random phone sequence: (phone ids, durations s, accent st, phrase id, amplitude)."""
    rate = tr.rate_sps * dv.rate_factor
    k = int(np.ceil(dur_s * rate * 1.3)) + 6  # enough syllables to overfill the utterance
    slow = 4.5 / rate
    onset = rng.integers(0, len(_ONSETS), k)
    has_onset = rng.random(k) < 0.8
    vowel = rng.integers(0, len(VOWELS), k)
    coda = rng.integers(0, len(_CODAS), k)
    has_coda = rng.random(k) < 0.35
    stressed = rng.random(k) < 0.4
    word_end = rng.random(k) < 0.45
    phrase_end = rng.random(k) < 0.12
    d_cons = rng.uniform(0.05, 0.10, (k, 3)) * slow
    d_vow = rng.uniform(0.07, 0.16, k) * slow * np.where(stressed, 1.5, 1.0)
    d_gap = np.where(phrase_end, rng.uniform(0.15, 0.5, k),
                     np.where(word_end & (rng.random(k) < 0.3), rng.uniform(0.02, 0.08, k), 0.0))
    accent = rng.uniform(0.0, 1.0, k) * np.where(stressed, 1.0, 0.3) * tr.f0_range_st * dv.range_factor
    amp = np.where(stressed, 1.0, 0.75) * rng.uniform(0.8, 1.1, k)

    # 6 slots per syllable: stop closure, stop release, onset body, vowel, coda, gap.
    is_stop = _ONSET_BODY[onset] < 0
    ph = np.full((k, 6), _IDX["sil"], np.int64)
    du = np.zeros((k, 6))
    ph[:, 0] = np.where(is_stop, _ONSET_CLO[onset], 0)
    du[:, 0] = np.where(has_onset & is_stop, d_cons[:, 0] * 0.8, 0.0)
    ph[:, 1] = np.where(is_stop, _ONSET_REL[onset], 0)
    du[:, 1] = np.where(has_onset & is_stop, d_cons[:, 1] * 0.35, 0.0)
    ph[:, 2] = np.where(is_stop, 0, _ONSET_BODY[onset])
    du[:, 2] = np.where(has_onset & ~is_stop, d_cons[:, 1], 0.0)
    ph[:, 3] = _VOWEL_IDX[vowel]
    du[:, 3] = d_vow
    ph[:, 4] = _CODA_BODY[coda]
    du[:, 4] = np.where(has_coda, d_cons[:, 2], 0.0)
    du[:, 5] = d_gap
    phrase = np.cumsum(np.concatenate([[0], phrase_end[:-1]]))
    lead = rng.uniform(0.05, 0.3)
    ph = np.concatenate([[_IDX["sil"]], ph.ravel()])
    du = np.concatenate([[lead], du.ravel()])
    acc = np.concatenate([[0.0], np.repeat(accent, 6)])
    phr = np.concatenate([[0], np.repeat(phrase, 6)])
    am = np.concatenate([[0.0], np.repeat(amp, 6)])
    keep = du > 0
    return ph[keep], du[keep], acc[keep], phr[keep], am[keep]


def _speaker_formants(tr: VoiceTraits, dv: Delivery) -> np.ndarray:
    """[n_phones, 5] formant targets of this speaker (NaN where the phone has none)."""
    f = np.full((len(_PHONES), 5), np.nan, np.float32)
    f[:, :3] = _TAB["F"]
    has = ~np.isnan(f[:, 0])
    f[has, 3], f[has, 4] = _F45
    vdev = np.asarray(tr.vowel_dev, np.float32)
    vi = _TAB["vowel"].astype(int)
    isv = vi >= 0
    f[isv, 0] *= vdev[vi[isv], 0]
    f[isv, 1] *= vdev[vi[isv], 1]
    f = f * np.asarray(tr.formant_dev, np.float32) * (tr.vtl_scale * dv.formant_shift)
    f[:, 0] *= dv.f1_shift
    return f


def synthesize_voice(rng: np.random.Generator, tr: VoiceTraits, n_samples: int, sr: int,
                     dv: Delivery = Delivery(), spectral_gain: np.ndarray | None = None,
                     bw_extra: np.ndarray | None = None) -> np.ndarray:
    """Dry speech of one voice (float32, unnormalised), fully vectorised.

    spectral_gain [n_bins] is a fixed magnitude applied in the STFT domain (channel, mask);
    bw_extra [5] multiplies the formant bandwidths (a mask damps the upper formants).
    """
    r_content, r_f0, r_src, r_noise, r_artic = dsp.child_rngs(int(rng.integers(2**63)), 5)
    freqs = dsp.frame_freqs(sr)
    ph, du, acc, phr, amp = _segments(r_content, tr, dv, n_samples / sr)
    seg = _frame_segments(du, dsp.n_frames(n_samples), sr)
    pid = ph[seg]
    H = _formant_filter(r_artic, tr, dv, ph, seg, freqs, bw_extra)
    gains = _frame_gains(tr, amp[seg], pid)
    f0 = _f0_track(r_f0, tr, dv, du, acc, phr, seg, n_samples, sr)
    src = dsp.glottal_pulses(np.clip(f0, 50.0, 600.0), sr, r_src, tr.jitter, tr.shimmer_db,
                             tr.open_quotient)
    tilt = dsp.tilt_gain(freqs, tr.tilt_db_oct + 2.0 * dv.effort)
    Yv = dsp.stft(src) * (H * tilt * gains.voice[:, None])
    Y = Yv + dsp.noise_stft(r_noise, n_samples) * _noise_shape(Yv, H, gains, freqs)
    if spectral_gain is not None:
        Y *= spectral_gain
    return dsp.istft(Y, n_samples)


def _frame_segments(du: np.ndarray, t_frames: int, sr: int) -> np.ndarray:
    """The segment each STFT frame falls in, from the segment durations."""
    fps = sr / dsp.HOP
    bounds = np.cumsum(du)
    return np.minimum(np.searchsorted(bounds, np.arange(t_frames) / fps, side="right"), len(du) - 1)


def _formant_filter(r_artic: np.random.Generator, tr: VoiceTraits, dv: Delivery, ph: np.ndarray,
                    seg: np.ndarray, freqs: np.ndarray, bw_extra: np.ndarray | None) -> np.ndarray:
    """The vocal-tract magnitude per frame [frames, n_bins]. Formant tracks: phone targets with
    per-segment articulation noise, gaps interpolated (coarticulation), then smoothed into
    transitions; nasals widen the bandwidths."""
    t_frames, pid = len(seg), ph[seg]
    ftab = _speaker_formants(tr, dv)
    seg_f = ftab[ph] * np.exp(r_artic.normal(0.0, dv.artic_sd, (len(ph), 5))).astype(np.float32)
    seg_f[:, 3:] = ftab[ph][:, 3:]
    F = seg_f[seg]
    valid = ~np.isnan(F[:, 0])
    if not valid.any():
        F[:] = ftab[_VOWEL_IDX[0]]
    else:
        idx = np.arange(t_frames)
        for j in range(5):
            F[:, j] = np.interp(idx, idx[valid], F[valid, j])
    F = dsp.smooth_frames(F, 4)
    B = np.broadcast_to(_BW * tr.bw_scale * (bw_extra if bw_extra is not None else 1.0), F.shape)
    B = B * (1.0 + 0.6 * (pid[:, None] == _IDX["m"]) + 0.6 * (pid[:, None] == _IDX["n"]))
    return dsp.formant_envelope(freqs, F, B)


class _Gains(NamedTuple):
    voice: np.ndarray  # voicing gain per frame
    fric: np.ndarray   # frication gain
    asp: np.ndarray    # aspiration gain
    fc: np.ndarray     # frication band centre (Hz)
    bw: np.ndarray     # frication bandwidth (Hz)


def _frame_gains(tr: VoiceTraits, amp: np.ndarray, pid: np.ndarray) -> _Gains:
    """Gains per frame (short smoothing avoids clicks at segment edges)."""
    a = amp.astype(np.float32)
    gv = dsp.smooth_frames(_TAB["gv"][pid] * np.where(_TAB["vowel"][pid] >= 0, a, 1.0), 2)
    return _Gains(voice=gv, fric=_TAB["gfric"][pid],
                  asp=dsp.smooth_frames(_TAB["gasp"][pid] + tr.breathiness * (gv > 0.3), 2),
                  fc=np.maximum(_TAB["fc"][pid] * tr.fric_scale * np.sqrt(tr.vtl_scale), 300.0),
                  bw=np.maximum(_TAB["bw"][pid], 300.0))


def _f0_track(r_f0: np.random.Generator, tr: VoiceTraits, dv: Delivery, du: np.ndarray,
              acc: np.ndarray, phr: np.ndarray, seg: np.ndarray, n_samples: int,
              sr: int) -> np.ndarray:
    """F0 per sample (Hz): in semitones, phrase declination + smoothed pitch accents + slow
    wander, shifted by the delivery's offset and effort."""
    t_frames, dur = len(seg), n_samples / sr
    pos = np.zeros(len(du))
    for p in np.unique(phr):  # relative position within each phrase
        m = phr == p
        c = np.cumsum(du[m])
        pos[m] = (c - du[m] / 2) / max(c[-1], 1e-3)
    decl = r_f0.uniform(1.0, 4.0)
    st = (0.5 - pos[seg]) * decl + dsp.smooth_frames(acc[seg].astype(np.float32), 8)
    st += dsp.smooth_random(r_f0, t_frames, int(dur * dv.wander_hz) + 2, dv.wander_st)
    f0_frames = tr.f0_hz * 2.0 ** ((st + dv.f0_offset_st + 1.5 * dv.effort) / 12.0)
    return np.interp(np.arange(n_samples) / dsp.HOP, np.arange(t_frames), f0_frames).astype(np.float32)


def _noise_shape(Yv: np.ndarray, H: np.ndarray, gains: _Gains, freqs: np.ndarray) -> np.ndarray:
    """Frication and aspiration magnitude per frame, levelled against the voiced power:
    level 1 == as loud as a vowel."""
    voiced = gains.voice > 0.5
    p_v = float(np.mean(np.sum(np.abs(Yv[voiced]) ** 2, axis=1))) if voiced.any() else 1.0
    w_n = dsp.WINDOW_POWER
    s_f = dsp.bandpass_gain(freqs[None, :], gains.fc[:, None], gains.bw[:, None])
    s_a = H * (1.0 - 0.9 * dsp.lowpass_gain(freqs, 1200.0, 1.0))  # aspiration is mostly high
    g_f = gains.fric * np.sqrt(p_v / (w_n * np.sum(s_f**2, axis=1) + 1e-9))
    g_a = gains.asp * np.sqrt(p_v / (w_n * np.sum(s_a**2, axis=1) + 1e-9))
    return s_f * g_f[:, None] + s_a * g_a[:, None]


# ----------------------------------------------------------------------------- nuisance
def vary_traits(tr: VoiceTraits, rng: np.random.Generator, amount: float) -> VoiceTraits:
    """The same voice on another day (amount 1 ~ one session's drift).

    Every trait that separates speakers also drifts within a speaker, so no trait is a
    perfect fingerprint (its between/within spread ratio is set by trait_spread / session_var).
    Always draws the same number of random values.
    """
    a = amount
    z = rng.normal(0.0, 1.0, 11 + len(VOWELS) * 2)
    vd = np.asarray(tr.vowel_dev) * np.exp(a * 0.025 * z[11:].reshape(-1, 2))
    return replace(
        tr,
        f0_hz=tr.f0_hz * float(np.exp(a * 0.07 * z[0])),  # ~1.2 st
        f0_range_st=tr.f0_range_st * float(np.exp(a * 0.15 * z[1])),
        vtl_scale=tr.vtl_scale * float(np.exp(a * 0.015 * z[2])),
        formant_dev=tuple(float(f * np.exp(a * 0.015 * z[3])) for f in tr.formant_dev),
        vowel_dev=tuple((float(x), float(y)) for x, y in vd),
        bw_scale=tr.bw_scale * float(np.exp(a * 0.1 * z[4])),
        tilt_db_oct=tr.tilt_db_oct + a * 0.8 * float(z[5]),
        jitter=tr.jitter * float(np.exp(a * 0.2 * z[6])),
        shimmer_db=tr.shimmer_db * float(np.exp(a * 0.2 * z[7])),
        breathiness=tr.breathiness * float(np.exp(a * 0.3 * z[8])),
        open_quotient=float(np.clip(tr.open_quotient + a * 0.03 * z[9], 0.35, 0.85)),
        rate_sps=tr.rate_sps * float(np.exp(a * 0.06 * z[10])),
    )


@dataclass(frozen=True)
class Channel:
    """A recording setup: microphone/line colouring, band limits, room and noise floor."""
    eq: np.ndarray          # [n_bins] magnitude
    rt60_s: float
    drr_db: float
    noise_exponent: float   # colour of the additive noise (0 white .. 2 brown)
    hum_db: float           # mains hum level relative to the noise (-120: none)
    hum_hz: float


@functools.lru_cache(maxsize=1024)
def channel(cfg: SpeechCorpusConfig, speaker: int, session: int) -> Channel:
    """The setup of one session: from a shared pool (cfg.channel_pool > 0) or its own."""
    if cfg.channel_pool > 0:
        pick = dsp.rng_for(cfg.seed, "session-channel", speaker, session).integers(cfg.channel_pool)
        rs = dsp.rng_for(cfg.seed, "channel", int(pick))
    else:
        rs = dsp.rng_for(cfg.seed, "channel", speaker, session)
    sr = cfg.sample_rate
    freqs = dsp.frame_freqs(sr)
    eq = dsp.random_eq_gain(rs, freqs, cfg.channel_eq_db)
    band_hi = rs.uniform(min(5500.0, 0.4 * sr), 0.5 * sr)  # some setups are band-limited
    band = dsp.lowpass_gain(freqs, band_hi, 6.0) * (1.0 - dsp.lowpass_gain(freqs, rs.uniform(60, 250), 2.0))
    hum = rs.random() < 0.3
    return Channel(eq=(eq * band).astype(np.float32), rt60_s=float(rs.uniform(0.1, cfg.rt60_max_s)),
                   drr_db=float(rs.uniform(0.0, 12.0)), noise_exponent=float(rs.uniform(0.0, 2.0)),
                   hum_db=float(rs.uniform(-30.0, 0.0)) if hum else -120.0,
                   hum_hz=float(rs.choice([50.0, 60.0])))


def render(spec: UttSpec, cfg: SpeechCorpusConfig) -> SynthUtterance:
    """Audio for one utterance; a pure function of (spec, cfg)."""
    sr = cfg.sample_rate
    n = int(round(spec.duration_s * sr))
    if n < dsp.HOP:
        raise ParamError(f"speech synth: utterance {spec.utt_id} is too short ({spec.duration_s} s)")
    si = speaker_index(spec.speaker)
    ch = channel(cfg, si, spec.session)
    # Utterance: independent streams so that a condition flag does not reshuffle the rest.
    r_voice, r_utt, r_mask, r_arousal, r_room, r_noise = dsp.child_rngs(spec.seed, 6)
    tr, effort, snr, peak = _voice_of_the_day(cfg, si, spec.session, r_utt)
    dv = _delivery(cfg, spec.arousal, r_arousal, effort)
    gain, bw_extra = _channel_and_mask(cfg, spec.masked, r_mask, ch.eq)
    speech = synthesize_voice(r_voice, tr, n, sr, dv, spectral_gain=gain, bw_extra=bw_extra)
    mix = _record(speech, ch, r_room, r_noise, spec.duration_s, snr, sr)
    return SynthUtterance(spec=spec, audio=dsp.normalise_peak(mix, peak))


def _voice_of_the_day(cfg: SpeechCorpusConfig, si: int, session: int,
                      r_utt: np.random.Generator) -> tuple[VoiceTraits, float, float, float]:
    """(traits, vocal effort, SNR dB, peak) of one utterance. Session: the voice drifts, the
    vocal effort and the noise level are those of the day; then the utterance's own drift."""
    rs = dsp.rng_for(cfg.seed, "session", si, session)
    tr = vary_traits(speaker_traits(cfg, si), rs, cfg.session_var)
    s_effort = rs.normal(0.0, 0.3) * cfg.session_var
    snr_base = rs.uniform(cfg.snr_db_min, cfg.snr_db_max)
    tr = vary_traits(tr, r_utt, 0.5 * cfg.utt_var)
    u_effort = r_utt.normal(0.0, 0.2) * cfg.utt_var
    snr = float(np.clip(snr_base + r_utt.normal(0.0, 3.0), cfg.snr_db_min, cfg.snr_db_max))
    peak = r_utt.uniform(0.3, 0.95)
    return tr, s_effort + u_effort, snr, peak


def _delivery(cfg: SpeechCorpusConfig, arousal: bool, r_arousal: np.random.Generator,
              effort: float) -> Delivery:
    """Arousal: higher, wider and faster-moving pitch, more effort, slightly faster speech."""
    a = cfg.arousal_strength * r_arousal.uniform(0.5, 1.0) if arousal else 0.0
    return Delivery(
        f0_offset_st=5.0 * a,
        effort=effort + 1.5 * a,
        rate_factor=1.0 + 0.2 * a,
        range_factor=1.0 + 2.0 * a,
        wander_hz=0.6 * (1.0 + 2.0 * a),
        wander_st=0.6 * (1.0 + 1.0 * a),
        formant_shift=1.0,
        f1_shift=1.0 + 0.08 * a,
    )


def _channel_and_mask(cfg: SpeechCorpusConfig, masked: bool, r_mask: np.random.Generator,
                      eq: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(STFT-domain gain, formant bandwidth factors or None): the channel's EQ, and for a masked
    utterance a mask that muffles the highs and damps the upper formants."""
    m_db = r_mask.uniform(cfg.mask_db_min, cfg.mask_db_max)
    m_fc = r_mask.uniform(600.0, 1600.0)
    m_bw = r_mask.uniform(1.2, 1.8)
    if not masked:
        return eq, None
    gain = eq * dsp.lowpass_gain(dsp.frame_freqs(cfg.sample_rate), m_fc, 1.5, floor_db=-m_db)
    return gain, np.array([1.0, m_bw, m_bw, m_bw, m_bw], np.float32)


def _record(speech: np.ndarray, ch: Channel, r_room: np.random.Generator,
            r_noise: np.random.Generator, duration_s: float, snr: float, sr: int) -> np.ndarray:
    """Dry speech through the session's room, plus its noise floor (and mains hum) at `snr`."""
    n = int(round(duration_s * sr))
    speech = dsp.apply_reverb(speech, dsp.reverb_ir(r_room, sr, ch.rt60_s, ch.drr_db))
    noise = dsp.coloured_noise(r_noise, n, ch.noise_exponent, sr)
    noise *= 1.0 + 0.3 * dsp.smooth_random(r_noise, n, int(duration_s * 2) + 2)
    if ch.hum_db > -100:
        ph = (2 * np.pi * ch.hum_hz / sr) * np.arange(n, dtype=np.float32)
        hum = sum(np.sin(k * ph + k) / k for k in (1, 2, 3, 5))
        noise += (10 ** (ch.hum_db / 20) * hum / np.sqrt(np.mean(hum**2))).astype(np.float32)
    return dsp.mix_at_snr(speech, noise, snr)
