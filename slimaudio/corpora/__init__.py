"""Corpus readers: each lists a corpus's items (with their labels) without loading audio.

`speakers` reads speaker-verification corpora, `events` sound-event corpora; both also wrap
the synthetic generators of slimaudio.synth behind the same interface.
"""
