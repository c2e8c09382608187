"""Procedural audio corpora generated from a seed (no downloads).

- `slimaudio.synth.speech`: multi-speaker speech with session nuisance and 'masked' /
  'arousal' conditions (speaker verification and paralinguistic probes).
- `slimaudio.synth.events`: alert-relevant sound events for deaf and hard-of-hearing users,
  mixed into background noise, deliberately class-imbalanced.
- `slimaudio.synth.dsp`: the shared vectorised DSP.
"""
