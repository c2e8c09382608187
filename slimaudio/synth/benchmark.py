"""How fast the synthetic corpora render: `python -m slimaudio.synth.benchmark` renders a few
utterances and clips of conf/'s default corpora in this process and prints the real-time
factor on CPU time (kept apart from the renderers, which the data stages import)."""

from __future__ import annotations

from dataclasses import replace

from slimaudio.compose import compose
from slimaudio.schemas.data import EventSynth, SpeechSynth
from slimaudio.spec import build
from slimaudio.synth import dsp, events, speech


def speech_speed(n_utts: int = 40, seed: int = 0) -> dict[str, float]:
    params = compose([])
    synth = build(SpeechSynth, params["prepare_speakers"]["synthetic"])
    cfg = speech.SpeechCorpusConfig.of(synth, params["base"]["sample_rate"], seed)
    return dsp.realtime_factor(lambda spec: speech.render(spec, cfg),
                               speech.plan_corpus(cfg)[:n_utts])


def events_speed(clips_per_class: int = 4, seed: int = 0) -> dict[str, float]:
    params = compose([])
    synth = build(EventSynth, params["prepare_sounds"]["synthetic"])
    cfg = replace(events.EventCorpusConfig.of(synth, params["base"]["sample_rate"], seed),
                  clips_per_class_max=clips_per_class, imbalance=1.0)
    return dsp.realtime_factor(lambda spec: events.render(spec, cfg), events.plan_corpus(cfg))


if __name__ == "__main__":
    for name, fn in (("speech", speech_speed), ("events", events_speed)):
        r = fn()
        print(f"{name}: {r['audio_s']:.0f} s of audio in {r['cpu_s']:.2f} s CPU -> "
              f"{r['realtime_factor']:.0f}x real time per core")
