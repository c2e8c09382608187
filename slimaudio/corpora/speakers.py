"""Speaker corpora: synthetic, VoxCeleb, LibriSpeech and FSDD readers.

A reader returns a `SpeakerCorpus`: the utterances with their labels (speaker, session, voice
group, masked, arousal) and, where the corpus ships one, its official trial list. Audio is
loaded later, one utterance at a time, by `SpeakerCorpus.load` (picklable, so data workers
can call it).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, get_args

import numpy as np

from slimaudio import runtime
from slimaudio.audio import (
    SUPPORTED_SUFFIXES,
    AudioChecks,
    corpus_root,
    describe_dir,
    load_audio,
    walk_files,
)
from slimaudio.corpora import item
from slimaudio.errors import DataError
from slimaudio.schemas.data import SpeakerCorpusKind, SpeakerSource, SpeechSynth

SPEAKER_KINDS: tuple[str, ...] = get_args(SpeakerCorpusKind)
AUDIO_SUFFIXES = (".wav", ".flac")
# VoxCeleb1 trial lists, in order of preference (veri_test2 is the cleaned VoxCeleb1-O).
VOX_TRIAL_LISTS = ("veri_test2.txt", "veri_test.txt")


@dataclass(frozen=True)
class Utterance:
    utt_id: str
    speaker: str
    session: str
    group: str            # sex-like voice group ('f'/'m' for real corpora, 'unknown' if not known)
    masked: int = 0
    arousal: int = 0
    path: str | None = None   # the file, for real corpora
    spec: Any = None          # the synth UttSpec, for the synthetic corpus

    @property
    def source(self) -> str:
        return item.source(self.path, self.spec)


@dataclass
class SpeakerCorpus:
    kind: str
    root: str | None
    utterances: list[Utterance]
    # Official trials (label, enroll_utt_id, test_utt_id) and the list's file name, if shipped.
    trials: list[tuple[int, str, str]] | None = None
    trial_source: str | None = None
    synth_cfg: Any = None
    notes: dict[str, Any] = field(default_factory=dict)
    # (reason, one-line message) per file the reader found but cannot use (e.g. misnamed):
    # the stage counts them with the bad audio, or stops under on_bad_audio = fail.
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def speakers(self) -> list[str]:
        return sorted({u.speaker for u in self.utterances})

    def load(self, utt: Utterance, sample_rate: int, checks: AudioChecks) -> np.ndarray:
        """float32 mono audio at sample_rate, validated (raises slimaudio.audio.BadAudio)."""
        if utt.path is not None:
            return load_audio(utt.path, sample_rate, checks)
        from slimaudio.synth import speech

        return item.synthetic_audio(speech.render(utt.spec, self.synth_cfg).audio,
                                    self.synth_cfg.sample_rate, utt.utt_id, sample_rate, checks)


# --- synthetic ----------------------------------------------------------------------------------

def read_synthetic(cfg: Any) -> SpeakerCorpus:
    from slimaudio.synth import speech

    utts = [Utterance(utt_id=s.utt_id, speaker=str(s.speaker), session=str(s.session),
                      group=str(s.group), masked=int(bool(s.masked)), arousal=int(bool(s.arousal)),
                      spec=s)
            for s in speech.plan_corpus(cfg)]
    return SpeakerCorpus("synthetic", None, utts, synth_cfg=cfg)


# --- real corpora -------------------------------------------------------------------------------

def _audio_files(root: Path) -> list[Path]:
    """Audio files (wav/flac) at any depth, hidden files and folders excluded."""
    return walk_files(root, AUDIO_SUFFIXES)


def _unrecognised(files: Iterable[Path], expected: str) -> list[tuple[str, str]]:
    return [("unrecognised_name", f"{f}: name does not match {expected}; not used") for f in files]


def read_voxceleb(path: str | Path, trial_list: str | None = None) -> SpeakerCorpus:
    """VoxCeleb1/2: <root>/[wav/]idXXXXX/<video>/<n>.wav; trial list veri_test2.txt if present.

    Utterance ids are 'idXXXXX/<video>/<n>' (the trial list's paths without '.wav'); the
    session is the video. vox1_meta.csv (tab-separated, with a Gender column) gives the voice
    group when present.
    """
    root = corpus_root(path, "voxceleb")
    wav = root / "wav" if (root / "wav").is_dir() else root
    files = sorted(p for p in wav.glob("id*/*/*.wav") if not p.name.startswith("."))
    if not files:
        raise DataError(f"{wav}: no idXXXXX/<video>/<n>.wav files (VoxCeleb layout); "
                        f"found {describe_dir(wav)}")
    groups = _vox_groups(root)
    utts = []
    for f in files:
        spk, video = f.parent.parent.name, f.parent.name
        utts.append(Utterance(utt_id=f"{spk}/{video}/{f.stem}", speaker=spk, session=video,
                              group=groups.get(spk, "unknown"), path=str(f)))
    trials, source = None, None
    names = (trial_list,) if trial_list else VOX_TRIAL_LISTS
    for name in names:
        for cand in (root / name, root / "meta" / name, root.parent / name):
            if cand.is_file():
                trials, source = _read_vox_trials(cand), str(cand)
                break
        if trials is not None:
            break
    else:
        if trial_list:
            raise DataError(f"{root}: trial list '{trial_list}' not found (looked in {root}, "
                            f"{root / 'meta'}, {root.parent})")
    return SpeakerCorpus("voxceleb", str(root), utts, trials=trials, trial_source=source)


def _vox_groups(root: Path) -> dict[str, str]:
    for cand in (root / "vox1_meta.csv", root / "meta" / "vox1_meta.csv", root.parent / "vox1_meta.csv"):
        if cand.is_file():
            lines = cand.read_text(encoding="utf-8", errors="replace").splitlines()
            header = [h.strip().lower() for h in lines[0].split("\t")] if lines else []
            if "gender" not in header:
                return {}
            gi = header.index("gender")
            out = {}
            for line in lines[1:]:
                cols = [c.strip() for c in line.split("\t")]
                if len(cols) > gi and cols[0].startswith("id"):
                    out[cols[0]] = cols[gi].lower()[:1] or "unknown"
            return out
    return {}


def _read_vox_trials(path: Path) -> list[tuple[int, str, str]]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 3 or parts[0] not in ("0", "1"):
            raise DataError(f"{path}:{n}: expected 'label enroll.wav test.wav', got {line!r}")
        out.append((int(parts[0]), _strip_wav(parts[1]), _strip_wav(parts[2])))
    if not out:
        raise DataError(f"{path}: empty trial list")
    return out


def _strip_wav(p: str) -> str:
    return p[:-4] if p.lower().endswith(".wav") else p


_LIBRI_NAME = re.compile(r"^(\d+)-(\d+)-(\d+)$")


def read_librispeech(path: str | Path) -> SpeakerCorpus:
    """LibriSpeech: <spk>-<ch>-<n>.flac files found by name at any depth under the root
    (<speaker>/<chapter>/, <speaker>/ only, or flat); audio files with other names are
    reported as skipped ('unrecognised_name'), never silently dropped.

    SPEAKERS.TXT (in the root or a parent) gives each reader's sex: the voice group ('f'/'m');
    the session is the chapter.
    """
    root = corpus_root(path, "librispeech")
    sexes = _libri_sexes(root)
    utts, other, taken = [], [], {}
    dupes: list[tuple[str, str]] = []
    for f in _audio_files(root):
        m = _LIBRI_NAME.match(f.stem)
        if not m:
            other.append(f)
            continue
        if f.stem in taken:  # e.g. a .wav copy beside the .flac, or two subsets holding one file
            dupes.append(("duplicate", f"{f}: utterance {f.stem} already read from {taken[f.stem]}; not used"))
            continue
        taken[f.stem] = f
        spk, chap = m.group(1), m.group(2)
        utts.append(Utterance(utt_id=f.stem, speaker=spk, session=chap,
                              group=sexes.get(spk, "unknown"), path=str(f)))
    if not utts:
        raise DataError(f"{root}: no <speaker>-<chapter>-<n>.flac/.wav files at any depth "
                        f"(LibriSpeech layout); found {describe_dir(root)}")
    return SpeakerCorpus("librispeech", str(root), utts, notes={"speakers_txt": bool(sexes)},
                         skipped=_unrecognised(other, "<speaker>-<chapter>-<n> (LibriSpeech)") + dupes)


def _libri_sexes(root: Path) -> dict[str, str]:
    for d in (root, *list(root.parents)[:2]):
        f = d / "SPEAKERS.TXT"
        if f.is_file():
            out = {}
            for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.startswith(";") or "|" not in line:
                    continue
                cols = [c.strip() for c in line.split("|")]
                if len(cols) >= 2 and cols[0].isdigit() and cols[1] in ("F", "M"):
                    out[cols[0]] = cols[1].lower()
            return out
    return {}


_FSDD_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)$")


def read_fsdd(path: str | Path) -> SpeakerCorpus:
    """Free Spoken Digit Dataset: <root>/[recordings/]<digit>_<speaker>_<n>.wav (8 kHz).

    FSDD has no session or sex metadata: one session per speaker, group 'unknown'. Audio files
    there with other names are reported as skipped ('unrecognised_name').
    """
    root = corpus_root(path, "fsdd")
    rec = root / "recordings" if (root / "recordings").is_dir() else root
    utts, other = [], []
    for f in sorted(p for p in rec.iterdir() if not p.name.startswith(".") and not p.is_dir()):
        m = _FSDD_NAME.match(f.stem) if f.suffix.lower() == ".wav" else None
        if m:
            utts.append(Utterance(utt_id=f.stem, speaker=m.group(2), session="0",
                                  group="unknown", path=str(f)))
        elif f.suffix.lower() in SUPPORTED_SUFFIXES:
            other.append(f)
    if not utts:
        raise DataError(f"{rec}: no <digit>_<speaker>_<n>.wav files (FSDD layout); "
                        f"found {describe_dir(rec)}")
    return SpeakerCorpus("fsdd", str(root), utts,
                         skipped=_unrecognised(other, "<digit>_<speaker>_<n>.wav (FSDD)"))


# --- selection ----------------------------------------------------------------------------------

def subset(corpus: SpeakerCorpus, max_speakers: int | None, max_utts_per_speaker: int | None,
           seed: int) -> SpeakerCorpus:
    """Keep a seeded random choice of speakers (trial-list speakers first) and each one's
    first utterances in id order; official trials are filtered to what is kept."""
    by_spk: dict[str, list[Utterance]] = defaultdict(list)
    for u in corpus.utterances:
        by_spk[u.speaker].append(u)
    speakers = sorted(by_spk)
    if max_speakers is not None and len(speakers) > max_speakers:
        rng = runtime.rng(seed, "speakers.subset")
        trial_spk = trial_speakers(corpus)
        first = [s for s in speakers if s in trial_spk]
        rest = [s for s in speakers if s not in trial_spk]
        pick = list(rng.permutation(first)) + list(rng.permutation(rest))
        speakers = sorted(pick[:max_speakers])
    kept: list[Utterance] = []
    for s in speakers:
        us = sorted(by_spk[s], key=lambda u: u.utt_id)
        kept.extend(us if max_utts_per_speaker is None else us[:max_utts_per_speaker])
    ids = {u.utt_id for u in kept}
    trials = corpus.trials
    if trials is not None:
        trials = [t for t in trials if t[1] in ids and t[2] in ids]
    return replace(corpus, utterances=kept, trials=trials)


def trial_speakers(corpus: SpeakerCorpus) -> set[str]:
    """Speakers that appear in the corpus's official trial list (empty if it has none)."""
    if not corpus.trials:
        return set()
    spk = {u.utt_id: u.speaker for u in corpus.utterances}
    return {spk[i] for t in corpus.trials for i in t[1:] if i in spk}


def read_speaker_corpus(corpus: SpeakerSource, synthetic: SpeechSynth | None, sample_rate: int,
                        seed: int) -> SpeakerCorpus:
    """Dispatch on params `corpus.kind`, then apply the corpus.max_* subset options (synthetic:
    the synthesiser's knobs, read for the synthetic kind only)."""
    kind = corpus.kind
    if kind == "synthetic":
        from slimaudio.synth import speech

        out = read_synthetic(speech.SpeechCorpusConfig.of(synthetic, sample_rate, seed))
    elif kind == "voxceleb":
        out = read_voxceleb(corpus.path, corpus.trial_list)
    elif kind == "librispeech":
        out = read_librispeech(corpus.path)
    elif kind == "fsdd":
        out = read_fsdd(corpus.path)
    else:
        raise DataError(f"unknown speaker corpus kind '{kind}' (known: {', '.join(SPEAKER_KINDS)})")
    if kind != "voxceleb" and corpus.trial_list:
        out = with_trial_list(out, corpus.trial_list)
    check_trials(out)
    return subset(out, corpus.max_speakers, corpus.max_utts_per_speaker, seed)


def with_trial_list(corpus: SpeakerCorpus, trial_list: str) -> SpeakerCorpus:
    """The corpus with a trial list in VoxCeleb's format ('label enroll test' per line, the
    utterance ids of this corpus, '.wav' optional), a path or a file name in the corpus root."""
    path = Path(trial_list)
    if not path.is_absolute() and corpus.root and not path.is_file():
        path = Path(corpus.root) / trial_list
    if not path.is_file():
        raise DataError(f"{trial_list}: trial list not found (nor in {corpus.root})")
    return replace(corpus, trials=_read_vox_trials(path), trial_source=str(path))


def check_trials(corpus: SpeakerCorpus) -> None:
    """Every utterance a trial list names is in the corpus: one line naming the first that is
    not (a trial silently dropped would change the protocol)."""
    if not corpus.trials:
        return
    ids = {u.utt_id for u in corpus.utterances}
    for n, (_, a, b) in enumerate(corpus.trials, 1):
        for u in (a, b):
            if u not in ids:
                raise DataError(f"{corpus.trial_source}: trial {n} names utterance {u!r}, which "
                                f"is not in the {corpus.kind} corpus at {corpus.root}")


def evaluation_only(test: SpeakerCorpus, train: SpeakerCorpus) -> tuple[SpeakerCorpus, dict[str, str]]:
    """(one corpus, {speaker: split}) when the test side and the train side (calibration,
    fine-tuning, score-normalisation cohort) are separate corpora. The test side is what the
    trial list names (every utterance when there is none). Refuses, naming it, an audio file or
    a speaker on both sides: the train side must never see test audio."""
    keep = {i for t in test.trials for i in t[1:]} if test.trials else None
    test_utts = [u for u in test.utterances if keep is None or u.utt_id in keep]
    test_files = {str(Path(u.path).resolve()): u.utt_id for u in test_utts if u.path}
    test_spk = {u.speaker for u in test_utts}
    for u in train.utterances:
        if u.path and str(Path(u.path).resolve()) in test_files:
            raise DataError(f"{u.path}: in both the test corpus and prepare_speakers.train_corpus "
                            "(calibration and fine-tuning audio must not be test audio)")
        if u.speaker in test_spk:
            raise DataError(f"speaker {u.speaker!r} is in both the test corpus ({test.root}) and "
                            f"prepare_speakers.train_corpus ({train.root})")
    split = {u.speaker: "test" for u in test_utts} | {u.speaker: "train" for u in train.utterances}
    merged = replace(test, utterances=test_utts + train.utterances,
                     skipped=test.skipped + train.skipped,
                     notes={**test.notes, "train_corpus": {"kind": train.kind, "path": train.root}})
    return merged, split
