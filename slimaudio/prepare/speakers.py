"""prepare_speakers: speaker corpus -> data/speakers/ (see docs/architecture.md, Prepared data).

Audio is loaded (or synthesised), resampled to base.sample_rate, validated and featurised in
a pool of worker processes; the main process streams int16 audio and float16 log-mel rows to
audio.npy / feats.npy, so memory stays bounded whatever the corpus size.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from slimaudio import runtime
from slimaudio.atomic import atomic_dir
from slimaudio.audio import AudioChecks, BadAudio, from_int16, to_int16
from slimaudio.corpora.speakers import (
    SpeakerCorpus,
    Utterance,
    evaluation_only,
    read_speaker_corpus,
    trial_speakers,
)
from slimaudio.errors import DataError, ParamError
from slimaudio.frontends import FrontendConfig, compute
from slimaudio.prepare.common import (
    NpyAppender,
    PrepResult,
    SkipLog,
    histogram,
    run_chunks,
    summary,
)
from slimaudio.schemas.data import Audio, PrepareSpeakers, SpeakerSource, TrialCounts
from slimaudio.speaker.scoring import Trials, write_trials_text

MANIFEST_COLUMNS = ["utt_id", "speaker", "split", "session", "group", "masked", "arousal",
                    "duration_s", "feat_offset", "feat_frames", "audio_offset", "audio_samples",
                    "source"]


# --- splits and trials --------------------------------------------------------------------------

def split_speakers(speaker_groups: dict[str, str], test_speakers: float, seed: int) -> dict[str, str]:
    """{speaker: 'train'|'test'}; test_speakers is a count (>= 1) or a fraction (< 1).

    Test speakers are drawn per voice group in proportion to its size (largest remainder), so
    both groups are represented in the test split.
    """
    n = len(speaker_groups)
    n_test = int(round(test_speakers * n)) if test_speakers < 1 else int(test_speakers)
    if not 1 <= n_test <= n - 1:
        raise ParamError(f"params: prepare_speakers.split.test_speakers = {test_speakers} gives "
                         f"{n_test} test speaker(s) of {n}; need 1..{n - 1}")
    by_group: dict[str, list[str]] = defaultdict(list)
    for spk, grp in sorted(speaker_groups.items()):
        by_group[grp].append(spk)
    groups = sorted(by_group)
    exact = {g: n_test * len(by_group[g]) / n for g in groups}
    quota = {g: int(exact[g]) for g in groups}
    for g in sorted(groups, key=lambda g: (-(exact[g] - quota[g]), g))[: n_test - sum(quota.values())]:
        quota[g] += 1
    split = {}
    for gi, g in enumerate(groups):
        order = runtime.rng(seed, "speakers.test_split", gi).permutation(by_group[g])
        for i, spk in enumerate(order):
            split[str(spk)] = "test" if i < quota[g] else "train"
    return split


def make_trials(utt_ids: list[str], speakers: list[str], targets: int | None, nontargets: int,
                seed: int) -> Trials:
    """Trials among the given (test) utterances: every target pair (same speaker, two
    different utterances), or a random `targets` of them, and `nontargets` random pairs of
    different speakers from the same utterances; no pair twice, shuffled. Scoring a trial is a
    dot product, so a large list costs nothing once the embeddings exist and only sharpens the
    EER. Fewer when the utterances cannot supply that many."""
    rng = runtime.rng(seed, "speakers.trials")
    spk = np.asarray(speakers)
    by_spk = [np.flatnonzero(spk == s) for s in sorted(set(speakers))]
    sizes = np.array([len(ix) for ix in by_spk], dtype=np.int64)
    pair_counts = sizes * (sizes - 1) // 2
    n_total_target = int(pair_counts.sum())
    n_total_non = (len(utt_ids) ** 2 - int((sizes ** 2).sum())) // 2
    n_tar = n_total_target if targets is None else min(targets, n_total_target)
    n_non = min(nontargets, n_total_non)
    if n_tar == 0 or n_non == 0:
        raise DataError(f"cannot make trials: {len(by_spk)} test speaker(s) with "
                        f"{len(utt_ids)} utterance(s) give no target or no non-target pair")
    # targets: sample global pair ranks without replacement, then unrank per speaker
    cum = np.concatenate([[0], np.cumsum(pair_counts)])
    ranks = np.sort(rng.choice(n_total_target, size=n_tar, replace=False))
    pairs: list[tuple[int, int, int]] = []
    triu_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for r in ranks:
        s = int(np.searchsorted(cum, r, side="right") - 1)
        n = int(sizes[s])
        if n not in triu_cache:
            triu_cache[n] = np.triu_indices(n, 1)
        i, j = triu_cache[n][0][r - cum[s]], triu_cache[n][1][r - cum[s]]
        a, b = by_spk[s][i], by_spk[s][j]
        pairs.append((1, *((a, b) if rng.random() < 0.5 else (b, a))))
    # non-targets: unique unordered pairs of different speakers
    non: list[tuple[int, int, int]] = []
    if 2 * n_non > n_total_non:  # most of them are needed: enumerate instead of rejecting
        a_all, b_all = np.triu_indices(len(utt_ids), 1)
        diff = spk[a_all] != spk[b_all]
        pick = rng.choice(np.flatnonzero(diff), size=n_non, replace=False)
        non = [(0, int(a_all[k]), int(b_all[k])) for k in pick]
    seen: set[tuple[int, int]] = set()
    while len(non) < n_non:
        a, b = (int(v) for v in rng.integers(0, len(utt_ids), size=2))
        key = (min(a, b), max(a, b))
        if spk[a] == spk[b] or key in seen:
            continue
        seen.add(key)
        non.append((0, a, b))
    allp = pairs + non
    order = rng.permutation(len(allp))
    allp = [allp[i] for i in order]
    return Trials(np.array([p[0] for p in allp], dtype=np.int8),
                  [utt_ids[p[1]] for p in allp], [utt_ids[p[2]] for p in allp])


# --- worker -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Ctx:
    corpus: SpeakerCorpus   # without its utterance list (pickled once per chunk)
    sample_rate: int
    checks: AudioChecks
    frontend: FrontendConfig  # features.kind and its settings


def _work(ctx: _Ctx, utts: list[Utterance]) -> list[tuple]:
    fb = ctx.frontend.filterbank()
    out: list[tuple] = []
    for u in utts:
        try:
            audio = ctx.corpus.load(u, ctx.sample_rate, ctx.checks)
        except BadAudio as exc:
            out.append(("bad", exc.reason, str(exc)))
            continue
        pcm = to_int16(audio)
        # featurise the stored int16 waveform, so that the features are those of audio.npy
        feats = compute(from_int16(pcm), ctx.frontend, fb).astype(ctx.frontend.spectral.storage_dtype)
        out.append(("ok", pcm, feats))
    return out


# --- the stage ----------------------------------------------------------------------------------

def checks_from(audio: Audio, frontend: FrontendConfig) -> AudioChecks:
    # a file too short for one feature frame has no features: count it as too short
    return AudioChecks(silence_dbfs=audio.silence_dbfs,
                       min_duration_s=max(audio.min_duration_s,
                                          frontend.min_samples / frontend.sample_rate))


def prepare_speakers(section: PrepareSpeakers, out_dir: str | Path, *, sample_rate: int,
                     seed: int, on_bad_audio: str, workers: int = 2, chunk_size: int = 32,
                     progress: bool = True) -> PrepResult:
    """data/speakers/ from params `section`; `sample_rate`, `seed`, `on_bad_audio`: params
    base's."""
    sr = sample_rate
    corpus, split = read_sides(section, sr, seed)
    frontend = FrontendConfig.of(section.features, sr)
    checks = checks_from(section.audio, frontend)
    skips = SkipLog(on_bad_audio)
    skips.add_all(corpus.skipped)
    ctx = _Ctx(replace(corpus, utterances=[], trials=None, skipped=[]), sr, checks, frontend)
    with atomic_dir(out_dir) as tmp:
        rows = _featurise(ctx, corpus.utterances, split, skips, tmp, workers, chunk_size, progress)
        import pandas as pd  # here, not at the top: worker processes never need it

        manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
        test = manifest[manifest.split == "test"]
        trials, trials_from, dropped = _trials(corpus, test, section.trials, seed)
        manifest.to_csv(tmp / "manifest.csv", index=False)
        (tmp / "trials.txt").write_text(write_trials_text(trials), encoding="utf-8")
        info = _info(corpus, manifest, trials, trials_from, dropped, frontend, skips, section)
        (tmp / "info.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n",
                                       encoding="utf-8")
    return PrepResult(metrics=_metrics(info), info=info)


def read_sides(section: PrepareSpeakers, sr: int, seed: int) -> tuple[SpeakerCorpus, dict[str, str]]:
    """The corpus to prepare and each speaker's split: train speakers carved from `corpus`, or,
    evaluation-only, the whole `corpus` as the test side and `train_corpus` as the train side."""
    corpus = read_speaker_corpus(section.corpus, section.synthetic, sr, seed)
    side = section.train_corpus
    if side.kind is None:
        return corpus, assign_splits(corpus, section.split.test_speakers, seed)
    train = read_speaker_corpus(SpeakerSource(kind=side.kind, path=side.path, trial_list=None,
                                              max_speakers=side.max_speakers,
                                              max_utts_per_speaker=side.max_utts_per_speaker),
                                section.synthetic, sr, seed)
    return evaluation_only(corpus, train)


def assign_splits(corpus: SpeakerCorpus, test_speakers: float, seed: int) -> dict[str, str]:
    """{speaker: 'train'|'test'}: the official trial list's speakers are the test speakers when
    the corpus has one, else a seeded per-group draw (split_speakers)."""
    official_test = trial_speakers(corpus)
    groups = {u.speaker: u.group for u in corpus.utterances}
    if not official_test:
        return split_speakers(groups, test_speakers, seed)
    split = {s: ("test" if s in official_test else "train") for s in groups}
    if all(v == "test" for v in split.values()):
        raise DataError(f"{corpus.trial_source}: every speaker is in the trial list; "
                        "no training speakers are left")
    return split


def _featurise(ctx: _Ctx, utterances: list[Utterance], split: dict[str, str], skips: SkipLog,
               tmp: Path, workers: int, chunk_size: int, progress: bool) -> list[dict[str, Any]]:
    """Load, validate and featurise every utterance in the worker pool, appending int16 audio
    to tmp/audio.npy and features to tmp/feats.npy (the frontend's storage type); the manifest
    rows of those kept."""
    sr = ctx.sample_rate
    rows: list[dict[str, Any]] = []
    audio_w = NpyAppender(tmp / "audio.npy", np.int16)
    spec = ctx.frontend.spectral
    feats_w = NpyAppender(tmp / "feats.npy", spec.storage_dtype, (spec.n_mels,))
    results = run_chunks(_work, ctx, utterances, workers=workers,
                         chunk_size=chunk_size, desc="speakers", progress=progress)
    for u, res in zip(utterances, results, strict=True):
        if res[0] == "bad":
            skips.add(res[1], res[2])
            continue
        _, audio, feats = res
        rows.append({"utt_id": u.utt_id, "speaker": u.speaker, "split": split[u.speaker],
                     "session": u.session, "group": u.group, "masked": u.masked,
                     "arousal": u.arousal, "duration_s": round(audio.size / sr, 4),
                     "feat_offset": feats_w.append(feats), "feat_frames": feats.shape[0],
                     "audio_offset": audio_w.append(audio), "audio_samples": audio.size,
                     "source": u.source})
    audio_w.close()
    feats_w.close()
    if not rows:
        raise DataError(f"prepare_speakers: every utterance was skipped ({skips.as_dict()['by_reason']})")
    return rows


def _trials(corpus: SpeakerCorpus, test: Any, sizes: TrialCounts,
            seed: int) -> tuple[Trials, str | None, int]:
    """(trials, where they come from, official trials dropped): the corpus's official trials
    among the prepared test utterances, or balanced generated ones (make_trials)."""
    if corpus.trials is None:
        return make_trials(test.utt_id.tolist(), test.speaker.tolist(), sizes.targets,
                           sizes.nontargets, seed), "generated", 0
    kept = set(test.utt_id)
    tr = [t for t in corpus.trials if t[1] in kept and t[2] in kept]
    if not tr:
        raise DataError(f"{corpus.trial_source}: no trial has both utterances prepared")
    trials = Trials(np.array([t[0] for t in tr], dtype=np.int8), [t[1] for t in tr], [t[2] for t in tr])
    return trials, corpus.trial_source, len(corpus.trials) - len(tr)


def _info(corpus: SpeakerCorpus, m: Any, trials: Trials, trials_from: str | None,
          dropped: int, frontend: FrontendConfig, skips: SkipLog, section: PrepareSpeakers) -> dict[str, Any]:
    lo, hi = float(m.duration_s.min()), float(m.duration_s.max())
    per_split = {}
    for name in ("train", "test"):
        part = m[m.split == name]
        per_split[name] = {
            "utterances": int(len(part)), "speakers": int(part.speaker.nunique()),
            "hours": round(float(part.duration_s.sum()) / 3600, 4),
            "frames": int(part.feat_frames.sum()),
            "groups": {str(k): int(v) for k, v in Counter(part.drop_duplicates("speaker").group).items()},
            "masked": int(part.masked.sum()), "arousal": int(part.arousal.sum()),
            "duration_s": summary(part.duration_s),
            "duration_hist": histogram(part.duration_s, bins=24, lo=lo, hi=hi),
        }
    return {
        **frontend.describe(),
        "corpus": {"kind": corpus.kind, "path": corpus.root, "options": asdict(section.corpus),
                   "trials": trials_from},
        "features": _storage(frontend),
        "audio": {"dtype": "int16", "scale": 32767, "silence_dbfs": section.audio.silence_dbfs,
                  "min_duration_s": section.audio.min_duration_s},
        "counts": {"utterances": int(len(m)), "speakers": int(m.speaker.nunique()),
                   "total_frames": int(m.feat_frames.sum()), "total_samples": int(m.audio_samples.sum()),
                   "hours": round(float(m.duration_s.sum()) / 3600, 4),
                   "trials": len(trials), "target_trials": int(trials.labels.sum()),
                   "nontarget_trials": int(len(trials) - trials.labels.sum()),
                   "trials_dropped": int(dropped), "corpus_utterances": len(corpus.utterances)},
        "splits": per_split,
        "skipped": skips.as_dict(),
    }


def _storage(frontend: FrontendConfig) -> dict[str, Any]:
    """How feats.npy holds the features, and why that type (slimaudio.frontends.spectral)."""
    s = frontend.spectral
    why = ("compressed features: float16 keeps them to 1e-3 relative" if s.storage_dtype == np.float16
           else "uncompressed spectra span many decades and overflow float16")
    norm = "utterance mean and variance" if s.var_norm else "utterance mean" if s.mean_norm else "none"
    return {"dtype": np.dtype(s.storage_dtype).name, "why": why,
            "layout": "[total_frames, n_mels]", "compression": s.compression, "normalisation": norm}


def _metrics(info: dict[str, Any]) -> dict[str, float]:
    c, s = info["counts"], info["splits"]
    out = {"utterances": c["utterances"], "speakers": c["speakers"], "hours": c["hours"],
           "total_frames": c["total_frames"], "trials": c["trials"],
           "target_trials": c["target_trials"], "skipped_files": info["skipped"]["total"]}
    for name, part in s.items():
        out[f"{name}_speakers"] = part["speakers"]
        out[f"{name}_utterances"] = part["utterances"]
        out[f"{name}_mean_duration_s"] = part["duration_s"]["mean"]
    for reason, n in info["skipped"]["by_reason"].items():
        out[f"skipped_{reason}"] = n
    return out
