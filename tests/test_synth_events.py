"""Procedural sound-event corpus: plan, imbalance, rendering, SNR and class separability."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from slimaudio.compose import compose
from slimaudio.errors import ParamError
from slimaudio.schemas.data import EventSynth
from slimaudio.spec import build
from slimaudio.synth import dsp, events

SR = 16000
SYNTH = build(EventSynth, compose([])["prepare_sounds"]["synthetic"])


def corpus(**over: Any) -> events.EventCorpusConfig:
    """conf/config.yaml's synthetic sound corpus at 16 kHz, seed 0, with `over` changed."""
    cfg = events.EventCorpusConfig.of(SYNTH, SR, 0)
    return replace(cfg, **over)


def _fingerprint(x: np.ndarray) -> np.ndarray:
    """Mean log power in 48 linear bands: the 'simple feature' for nearest-centroid tests."""
    p = np.mean(np.abs(dsp.stft(x)) ** 2, axis=0)
    v = np.log(np.array([b.mean() for b in np.array_split(p, 48)]) + 1e-10)
    return v - v.mean()


def _nearest_centroid_accuracy(x: np.ndarray, y: np.ndarray) -> float:
    correct = 0
    for i in range(len(y)):  # leave-one-out
        others = np.arange(len(y)) != i
        labels = np.unique(y)
        cents = np.stack([x[others & (y == k)].mean(axis=0) for k in labels])
        correct += labels[np.argmin(np.sum((cents - x[i]) ** 2, axis=1))] == y[i]
    return correct / len(y)


def test_at_least_twelve_alert_classes() -> None:
    assert len(events.EVENT_CLASSES) >= 12
    assert set(events.EVENT_CLASSES) == set(events.GENERATORS)
    assert {"siren_wail", "siren_yelp", "doorbell", "phone_ringing", "baby_crying",
            "speech_babble"} <= set(events.EVENT_CLASSES)


def test_class_sizes_are_geometrically_imbalanced() -> None:
    cfg = corpus()
    sizes = events.class_sizes(cfg)
    assert list(sizes) == list(cfg.classes)
    counts = np.array(sorted(sizes.values(), reverse=True))
    assert counts[0] == cfg.clips_per_class_max
    assert counts[-1] == round(cfg.imbalance * cfg.clips_per_class_max)
    ratios = counts[1:] / counts[:-1]
    assert np.all(np.abs(ratios - cfg.imbalance ** (1 / 13)) < 0.08)  # geometric spacing
    assert events.class_sizes(replace(cfg, seed=3)) != sizes  # seeded class order
    plan = events.plan_corpus(cfg)
    assert {c: sum(s.class_name == c for s in plan) for c in cfg.classes} == sizes


def test_plan_is_deterministic_and_in_range() -> None:
    cfg = corpus()
    plan = events.plan_corpus(cfg)
    assert plan == events.plan_corpus(cfg)
    assert len({s.clip_id for s in plan}) == len(plan)
    for s in plan:
        assert cfg.min_dur_s <= s.duration_s <= cfg.max_dur_s
        assert cfg.snr_db_min <= s.snr_db <= cfg.snr_db_max
        assert s.background in events.BACKGROUNDS
        assert cfg.classes[s.label] == s.class_name
    assert {s.background for s in plan} == set(events.BACKGROUNDS)


@pytest.mark.parametrize("name", events.EVENT_CLASSES)
def test_every_class_renders(name: str) -> None:
    cfg = corpus(classes=(name, "doorbell") if name != "doorbell" else (name, "knocking"),
                                   clips_per_class_max=2, imbalance=1.0, min_dur_s=0.5, max_dur_s=3.0)
    for spec in [s for s in events.plan_corpus(cfg) if s.class_name == name]:
        for dur in (spec.duration_s, cfg.min_dur_s):
            clip = events.render(replace(spec, duration_s=dur), cfg)
            assert clip.audio.dtype == np.float32
            assert len(clip.audio) == round(dur * SR)
            assert np.all(np.isfinite(clip.audio))
            assert 0.2 < np.max(np.abs(clip.audio)) <= 1.0
            parts = events.render_parts(replace(spec, duration_s=dur), cfg, background=False)
            assert dsp.power(parts.event) > 0  # the event always sounds inside its span
    low = replace(cfg, sample_rate=8000)
    spec = next(s for s in events.plan_corpus(low) if s.class_name == name)
    clip = events.render(spec, low)
    assert len(clip.audio) == round(spec.duration_s * 8000) and np.all(np.isfinite(clip.audio))


def test_short_clips_always_contain_their_event() -> None:
    # Cadenced classes (alarms, rings, chimes) must sound even in the shortest clip.
    cfg = corpus()
    for name in events.EVENT_CLASSES:
        for k in range(12):
            spec = events.ClipSpec(f"{name}-t{k}", name, 0, cfg.min_dur_s, 0.0, "traffic",
                                   dsp.derive_seed(99, name, k))
            ev = events.render_parts(spec, cfg, background=False).event
            frames = ev[: len(ev) // 400 * 400].reshape(-1, 400)
            assert np.max(np.mean(frames**2, axis=1)) > 0.1, (name, k)


def test_render_is_deterministic_and_order_independent() -> None:
    cfg = corpus(clips_per_class_max=2, imbalance=1.0, max_dur_s=2.0)
    plan = events.plan_corpus(cfg)
    picks = [plan[0], plan[7], plan[-1]]
    first = [events.render(s, cfg).audio for s in picks]
    again = [events.render(s, cfg).audio for s in reversed(picks)][::-1]
    for x, y in zip(first, again, strict=True):
        np.testing.assert_array_equal(x, y)


def test_event_is_mixed_at_the_requested_snr() -> None:
    cfg = corpus(clips_per_class_max=1, imbalance=1.0, max_dur_s=4.0)
    for spec in events.plan_corpus(cfg)[:6]:
        parts = events.render_parts(spec, cfg)
        ev = parts.event[parts.span]
        assert np.all(parts.event[: parts.span.start] == 0)
        measured = 10 * np.log10(dsp.active_power(ev, SR) / dsp.power(parts.background))
        assert measured == pytest.approx(spec.snr_db, abs=0.05)


def _fingerprints(cfg: events.EventCorpusConfig, background: bool) -> tuple[np.ndarray, np.ndarray]:
    x, y = [], []
    for spec in events.plan_corpus(cfg):
        p = events.render_parts(spec, cfg, background=background)
        x.append(_fingerprint(p.event + p.background))
        y.append(spec.label)
    return np.stack(x), np.array(y)


def test_classes_separable_when_clean_but_not_trivially_in_noise() -> None:
    base = dict(clips_per_class_max=6, imbalance=1.0, min_dur_s=2.0, max_dur_s=2.0, min_occupancy=1.0)
    clean_cfg = corpus(**base, snr_db_min=20.0, snr_db_max=20.0)
    noisy_cfg = corpus(**base, snr_db_min=-5.0, snr_db_max=-5.0)
    acc_clean = _nearest_centroid_accuracy(*_fingerprints(clean_cfg, background=False))
    acc_noisy = _nearest_centroid_accuracy(*_fingerprints(noisy_cfg, background=True))
    chance = 1 / len(events.EVENT_CLASSES)
    assert acc_clean > 0.6
    assert chance < acc_noisy < acc_clean - 0.1


def test_bad_config_raises_param_error() -> None:
    with pytest.raises(ParamError, match="classes"):
        corpus(classes=("siren_wail", "unicorn"))
    with pytest.raises(ParamError, match="imbalance"):
        corpus(imbalance=0.0)
    with pytest.raises(ParamError, match="unknown class"):
        spec = events.plan_corpus(corpus())[0]
        events.render(replace(spec, class_name="unicorn"), corpus())


def test_config_is_the_params_plus_rate_and_seed() -> None:
    """Every knob comes from prepare_sounds.synthetic, rate and seed from base; classes null
    means every class."""
    assert SYNTH.classes is None
    assert events.EventCorpusConfig.of(SYNTH, SR, 0).classes == events.EVENT_CLASSES
    cfg = events.EventCorpusConfig.of(replace(SYNTH, classes=("doorbell", "knocking")), SR, 3)
    assert (cfg.classes, cfg.sample_rate, cfg.seed) == (("doorbell", "knocking"), SR, 3)
