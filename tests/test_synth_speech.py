"""Procedural speech corpus: determinism, shapes, traits, conditions and the shared DSP."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from slimaudio.compose import compose
from slimaudio.errors import ParamError
from slimaudio.schemas.data import SpeechSynth
from slimaudio.spec import build
from slimaudio.synth import dsp, speech

SYNTH = build(SpeechSynth, compose([])["prepare_speakers"]["synthetic"])


def corpus(**over: Any) -> speech.SpeechCorpusConfig:
    """conf/config.yaml's synthetic speaker corpus at 16 kHz, seed 0, with `over` changed."""
    cfg = speech.SpeechCorpusConfig.of(SYNTH, 16000, 0)
    return replace(cfg, **over)


# the tests were written with these between-speaker traits and corpus shape
SMALL = corpus(n_speakers=6, utts_per_speaker=4, min_dur_s=1.0, max_dur_s=2.0, trait_spread=1.0)


def _band_fraction(x: np.ndarray, sr: int, lo_hz: float) -> float:
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1.0 / sr)
    return float(spec[f >= lo_hz].sum() / spec.sum())


def _log_spectrum(x: np.ndarray) -> np.ndarray:
    """Mean and sd of log power in 40 bands over the louder frames: a crude voice fingerprint."""
    p = np.abs(dsp.stft(x)[:, 1:]) ** 2
    bands = np.log(np.stack([b.mean(axis=1) for b in np.array_split(p, 40, axis=1)], axis=1) + 1e-10)
    loud = bands.mean(axis=1) > np.percentile(bands.mean(axis=1), 30)
    return np.concatenate([bands[loud].mean(axis=0), bands[loud].std(axis=0)])


def test_plan_is_deterministic_and_well_formed() -> None:
    a, b = speech.plan_corpus(SMALL), speech.plan_corpus(SMALL)
    assert a == b
    assert len(a) == SMALL.n_speakers * SMALL.utts_per_speaker
    assert len({s.utt_id for s in a}) == len(a)
    assert a[0].speaker == "spk0001" and re.fullmatch(r"spk0001-s1-u001", a[0].utt_id)
    for s in a:
        assert re.fullmatch(r"spk\d{4}-s\d+-u\d{3}", s.utt_id)
        assert s.utt_id.startswith(f"{s.speaker}-s{s.session}-")
        assert 1 <= s.session <= SMALL.sessions_per_speaker
        assert SMALL.min_dur_s <= s.duration_s <= SMALL.max_dur_s
        assert s.group == speech.speaker_traits(SMALL, speech.speaker_index(s.speaker)).group
    assert speech.plan_corpus(replace(SMALL, seed=1)) != a


def test_condition_rates_follow_the_config() -> None:
    cfg = corpus(n_speakers=100, utts_per_speaker=16, masked_prob=0.3, arousal_prob=0.5)
    plan = speech.plan_corpus(cfg)
    assert abs(np.mean([s.masked for s in plan]) - 0.3) < 0.05
    assert abs(np.mean([s.arousal for s in plan]) - 0.5) < 0.05
    assert {s.group for s in plan} == {"A", "B"}


def test_render_is_deterministic_and_order_independent() -> None:
    plan = speech.plan_corpus(SMALL)
    picks = [plan[0], plan[9], plan[-1]]
    first = [speech.render(s, SMALL).audio for s in picks]
    speech.speaker_traits.cache_clear()
    again = [speech.render(s, SMALL).audio for s in reversed(picks)][::-1]
    for x, y in zip(first, again, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(first[0][:1000], first[1][:1000])


def test_audio_length_dtype_range() -> None:
    for spec in speech.plan_corpus(SMALL)[::3]:
        utt = speech.render(spec, SMALL)
        assert utt.spec == spec
        assert utt.audio.dtype == np.float32 and utt.audio.ndim == 1
        assert len(utt.audio) == round(spec.duration_s * SMALL.sample_rate)
        assert np.all(np.isfinite(utt.audio))
        assert np.max(np.abs(utt.audio)) <= 1.0
        assert np.max(np.abs(utt.audio)) > 0.2  # not silent


def test_other_sample_rate_and_odd_lengths() -> None:
    cfg = replace(SMALL, sample_rate=8000)
    spec = replace(speech.plan_corpus(cfg)[0], duration_s=0.777)
    assert len(speech.render(spec, cfg).audio) == round(0.777 * 8000)


def test_traits_stable_within_and_different_across_speakers() -> None:
    cfg = corpus(trait_spread=1.0)
    t0 = speech.speaker_traits(cfg, 0)
    speech.speaker_traits.cache_clear()
    assert speech.speaker_traits(cfg, 0) == t0
    traits = [speech.speaker_traits(cfg, i) for i in range(200)]
    assert len({t.f0_hz for t in traits}) == 200 and len({t.vtl_scale for t in traits}) == 200
    a = np.array([t.f0_hz for t in traits if t.group == "A"])
    b = np.array([t.f0_hz for t in traits if t.group == "B"])
    assert np.median(b) > 1.4 * np.median(a)
    assert b.min() < a.max()  # the groups overlap
    spread = [speech.speaker_traits(replace(cfg, trait_spread=0.3), i).f0_hz for i in range(0, 200, 2)]
    assert np.std(np.log(spread)) < 0.5 * np.std(np.log(a))


def _speaker_id_accuracy(cfg: speech.SpeechCorpusConfig) -> float:
    plan = speech.plan_corpus(cfg)
    x = np.stack([_log_spectrum(speech.render(s, cfg).audio) for s in plan])
    x -= x.mean(axis=1, keepdims=True)  # drop overall level
    y = np.array([s.speaker for s in plan])
    correct = 0
    for i in range(len(plan)):  # leave-one-out nearest centroid
        others = np.arange(len(plan)) != i
        cents = {k: x[others & (y == k)].mean(axis=0) for k in set(y)}
        correct += min(cents, key=lambda k: np.sum((x[i] - cents[k]) ** 2)) == y[i]
    return correct / len(plan)


def test_voice_traits_reach_the_audio_and_trait_spread_controls_them() -> None:
    # One studio setup, no drift, noise, room or conditions: only the voices differ.
    studio = corpus(
        trait_spread=1.0, n_speakers=8, utts_per_speaker=6, min_dur_s=2.0, max_dur_s=2.0, session_var=0.0,
        utt_var=0.0, channel_eq_db=0.0, channel_pool=1, snr_db_min=60.0, snr_db_max=60.0,
        rt60_max_s=0.1, masked_prob=0.0, arousal_prob=0.0)
    distinct = _speaker_id_accuracy(studio)
    # With no between-speaker spread only the two voice groups remain (chance 1/4 within one).
    clones = _speaker_id_accuracy(replace(studio, trait_spread=0.0))
    assert distinct > 0.45 and clones < 0.4 and distinct > clones + 0.2


def test_traits_drift_within_a_speaker() -> None:
    tr = speech.speaker_traits(SMALL, 3)
    a = speech.vary_traits(tr, np.random.default_rng(0), 1.0)
    b = speech.vary_traits(tr, np.random.default_rng(0), 1.0)
    assert a == b and a != tr and a.group == tr.group
    assert abs(np.log(a.f0_hz / tr.f0_hz)) < 0.4
    assert speech.vary_traits(tr, np.random.default_rng(0), 0.0) == tr


def test_sessions_draw_channels_from_a_shared_pool() -> None:
    pool = replace(SMALL, channel_pool=2)
    eqs = {speech.channel(pool, spk, ses).eq.tobytes() for spk in range(6) for ses in (1, 2, 3)}
    assert len(eqs) <= 2
    own = replace(SMALL, channel_pool=0)
    assert len({speech.channel(own, spk, 1).eq.tobytes() for spk in range(6)}) == 6


def test_mask_removes_high_frequencies() -> None:
    plan = speech.plan_corpus(SMALL)
    for spec in plan[:6]:
        open_ = speech.render(replace(spec, masked=False), SMALL).audio
        masked = speech.render(replace(spec, masked=True), SMALL).audio
        assert _band_fraction(masked, SMALL.sample_rate, 2500) < _band_fraction(open_, SMALL.sample_rate, 2500)


def test_arousal_changes_the_audio_but_not_length() -> None:
    spec = speech.plan_corpus(SMALL)[1]
    calm = speech.render(replace(spec, arousal=False), SMALL).audio
    aroused = speech.render(replace(spec, arousal=True), SMALL).audio
    assert len(calm) == len(aroused) and not np.allclose(calm, aroused)


def test_bad_config_and_ids_raise_param_errors() -> None:
    with pytest.raises(ParamError, match="snr_db_min"):
        corpus(snr_db_min=40.0, snr_db_max=10.0)
    with pytest.raises(ParamError, match="masked_prob"):
        corpus(masked_prob=1.5)
    with pytest.raises(ParamError, match="speaker id"):
        speech.speaker_index("alice")


def test_config_is_the_params_plus_rate_and_seed() -> None:
    """Every knob comes from prepare_speakers.synthetic; rate and seed from base."""
    cfg = speech.SpeechCorpusConfig.of(SYNTH, 8000, 3)
    assert (cfg.n_speakers, cfg.sample_rate, cfg.seed) == (SYNTH.n_speakers, 8000, 3)


# ----------------------------------------------------------------------------- shared DSP
def test_mix_at_snr_hits_the_requested_snr() -> None:
    rng = np.random.default_rng(0)
    clean = np.sin(np.linspace(0, 300, 16000)).astype(np.float32)
    noise = dsp.coloured_noise(rng, 16000, 1.0)
    for target in (-5.0, 0.0, 12.5, 30.0):
        mix = dsp.mix_at_snr(clean, noise, target)
        assert dsp.snr_db(clean, mix - clean) == pytest.approx(target, abs=0.01)


def test_stft_round_trip_and_noise_colour() -> None:
    rng = np.random.default_rng(1)
    for n in (1, 300, 16001):
        x = rng.standard_normal(n).astype(np.float32)
        np.testing.assert_allclose(dsp.istft(dsp.stft(x), n), x, atol=1e-5)
    brown = dsp.coloured_noise(rng, 32000, 2.0)
    white = dsp.coloured_noise(rng, 32000, 0.0)
    assert _band_fraction(brown, 16000, 2000) < 0.05 < _band_fraction(white, 16000, 2000)
    assert dsp.power(white) == pytest.approx(1.0, rel=1e-3)


def test_reverb_ir_and_seeds() -> None:
    ir = dsp.reverb_ir(np.random.default_rng(0), 16000, 0.3, 6.0)
    assert ir[0] == pytest.approx(1.0, abs=0.1)
    tail = np.sum(ir[1:] ** 2)
    assert 10 * np.log10(1.0 / tail) == pytest.approx(6.0, abs=0.5)
    assert dsp.derive_seed(1, "a", 2) == dsp.derive_seed(1, "a", 2) != dsp.derive_seed(1, "a", 3)
    assert dsp.derive_seed("ab", "c") != dsp.derive_seed("a", "bc")
