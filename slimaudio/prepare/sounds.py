"""prepare_sounds: sound-event corpus -> data/sounds/ (see docs/architecture.md, Prepared data).

Clips are split train/val/test by source recording, cut into fixed windows (2.0 s every
1.6 s by default, the sound paper's framing), featurised as log-mel frames, and the train
split is undersampled per class to a cap (the paper's Fig. 1); balanced class weights are
computed on what remains.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from slimaudio import runtime
from slimaudio.atomic import atomic_dir
from slimaudio.audio import AudioChecks, BadAudio, peak_dbfs
from slimaudio.corpora.events import Clip, EventCorpus, read_event_corpus
from slimaudio.errors import DataError
from slimaudio.features import MelConfig, frame_signal, log_mel, mel_filterbank, n_windows
from slimaudio.prepare.common import (
    NpyAppender,
    PrepResult,
    SkipLog,
    histogram,
    run_chunks,
    summary,
)
from slimaudio.sampling import balanced_class_weights, class_counts, undersample
from slimaudio.schemas.data import PrepareSounds, ShortClip

MANIFEST_COLUMNS = ["frame_id", "clip_id", "group", "label", "class_name", "split", "start_s",
                    "source"]
log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")


def split_groups(clips: list[Clip], val_fraction: float, test_fraction: float,
                 seed: int) -> dict[str, str]:
    """{group: split}: whole source recordings go to one split, stratified by class.

    Per class (a recording's class is its clips' most common label), the recordings are
    shuffled and the first round(test_fraction * n) go to test, the next round(val_fraction * n)
    to val; a class with at least 3 recordings gets at least one in each split asked for.
    """
    labels: dict[str, Counter[int]] = defaultdict(Counter)
    for c in clips:
        labels[c.group][c.label] += 1
    by_class: dict[int, list[str]] = defaultdict(list)
    for g, cnt in sorted(labels.items()):
        by_class[min(cnt, key=lambda lab: (-cnt[lab], lab))].append(g)
    out: dict[str, str] = {}
    for lab, groups in sorted(by_class.items()):
        n = len(groups)
        n_test, n_val = round(test_fraction * n), round(val_fraction * n)
        if n >= 3:
            n_test = max(n_test, 1 if test_fraction > 0 else 0)
            n_val = max(n_val, 1 if val_fraction > 0 else 0)
        while n_test + n_val > n - 1 and (n_test or n_val):  # keep a train recording
            if n_val >= n_test and n_val:
                n_val -= 1
            else:
                n_test -= 1
        order = runtime.rng(seed, "sounds.recording_split", lab).permutation(groups)
        for i, g in enumerate(order):
            out[str(g)] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return out


@dataclass(frozen=True)
class _Ctx:
    corpus: EventCorpus   # without its clip list
    sample_rate: int
    checks: AudioChecks
    mel: MelConfig
    window: int           # samples
    stride: int           # samples
    short_clip: ShortClip
    drop_silent_frames: bool


def _work(ctx: _Ctx, clips: list[Clip]) -> list[tuple]:
    fb = mel_filterbank(ctx.mel)
    out: list[tuple] = []
    for c in clips:
        try:
            audio = ctx.corpus.load(c, ctx.sample_rate, ctx.checks)
            if n_windows(audio.size, ctx.window, ctx.stride, ctx.short_clip) == 0:
                raise BadAudio(c.path or c.clip_id, "too_short",
                               f"shorter than one frame ({audio.size / ctx.sample_rate:.2f} s < "
                               f"{ctx.window / ctx.sample_rate:g} s; framing.short_clip = drop)")
        except BadAudio as exc:
            out.append(("bad", exc.reason, str(exc)))
            continue
        windows = frame_signal(audio, ctx.window, ctx.stride, ctx.short_clip)
        starts = np.arange(len(windows)) * ctx.stride / ctx.sample_rate
        keep = np.ones(len(windows), dtype=bool)
        if ctx.drop_silent_frames:
            keep = np.array([peak_dbfs(w) >= ctx.checks.silence_dbfs for w in windows], dtype=bool)
        frames = np.stack([log_mel(w, ctx.mel, fb).T for w in windows[keep]]) if keep.any() else \
            np.zeros((0, ctx.mel.n_mels, ctx.mel.n_frames(ctx.window)), dtype=np.float32)
        out.append(("ok", frames.astype(np.float16), starts[keep].tolist(),
                    int((~keep).sum()), audio.size < ctx.window, audio.size / ctx.sample_rate))
    return out


def prepare_sounds(section: PrepareSounds, out_dir: str | Path, *, sample_rate: int, seed: int,
                   on_bad_audio: str, workers: int = 2, chunk_size: int = 16,
                   progress: bool = True) -> PrepResult:
    """data/sounds/ from params `section`; `sample_rate`, `seed`, `on_bad_audio`: params
    base's."""
    sr = sample_rate
    corpus = read_event_corpus(section.corpus, section.synthetic, sr, seed)
    ctx = _context(corpus, section, sr)
    sp = section.split
    split = split_groups(corpus.clips, sp.val_fraction, sp.test_fraction, seed)
    n_classes = len(corpus.classes)
    skips = SkipLog(on_bad_audio)
    skips.add_all(corpus.skipped)
    with atomic_dir(out_dir) as tmp:
        framed = _frame_clips(ctx, corpus, split, skips, tmp, workers, chunk_size, progress)
        check_splits(framed.rows, sp.val_fraction, sp.test_fraction)
        import pandas as pd  # here, not at the top: worker processes never need it

        allm = pd.DataFrame(framed.rows, columns=MANIFEST_COLUMNS)
        before = {s: class_counts(allm.label[allm.split == s], n_classes) for s in SPLITS}
        manifest = _undersample_train(allm, section.undersample.cap, seed, tmp)
        train_labels = manifest.label[manifest.split == "train"].to_numpy()
        if section.class_weights == "balanced":
            weights = balanced_class_weights(train_labels, n_classes)
        else:
            weights = np.ones(n_classes)
        manifest.to_csv(tmp / "manifest.csv", index=False)
        _dump(tmp / "classes.json", corpus.classes)
        _dump(tmp / "class_weights.json",
              {name: round(float(w), 6) for name, w in zip(corpus.classes, weights, strict=True)})
        counts = {"before": before, "after": {**before, "train": class_counts(train_labels, n_classes)}}
        info = _info(corpus, section, ctx, seed, framed, counts, allm, manifest, skips)
        _dump(tmp / "info.json", info)
    return PrepResult(metrics=_metrics(info), info=info)


def _context(corpus: EventCorpus, section: PrepareSounds, sr: int) -> _Ctx:
    """What a worker needs: the corpus without its clips, audio checks, mel and framing."""
    mel = MelConfig.of(section.features, sr)
    fr = section.framing
    window, stride = round(fr.window_s * sr), round(fr.stride_s * sr)
    if mel.n_frames(window) == 0:
        raise DataError(f"prepare_sounds: framing.window_s = {fr.window_s} is shorter than "
                        f"one STFT window ({mel.win_length} samples)")
    checks = AudioChecks(silence_dbfs=section.audio.silence_dbfs,
                         min_duration_s=max(section.audio.min_duration_s, mel.win_length / sr))
    return _Ctx(replace(corpus, clips=[], skipped=[]), sr, checks, mel, window, stride,
                fr.short_clip, fr.drop_silent_frames)


@dataclass
class _Framed:
    """What framing every clip gave: manifest rows (before undersampling) and tallies."""
    rows: list[dict[str, Any]] = field(default_factory=list)
    durations: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    framing: Counter[str] = field(default_factory=Counter)


def _frame_clips(ctx: _Ctx, corpus: EventCorpus, split: dict[str, str], skips: SkipLog,
                 tmp: Path, workers: int, chunk_size: int, progress: bool) -> _Framed:
    """Frame and featurise every clip in the worker pool into tmp/_all_frames.npy; stops when no
    frame, or no frame of some class, is left."""
    out = _Framed()
    class_skips: dict[int, Counter[str]] = defaultdict(Counter)
    staged = NpyAppender(tmp / "_all_frames.npy", np.float16,
                         (ctx.mel.n_mels, ctx.mel.n_frames(ctx.window)))
    results = run_chunks(_work, ctx, corpus.clips, workers=workers, chunk_size=chunk_size,
                         desc="sounds", progress=progress)
    for c, res in zip(corpus.clips, results, strict=True):
        if res[0] == "bad":
            skips.add(res[1], res[2])
            class_skips[c.label][res[1]] += 1
            continue
        _, frames, starts, n_silent, padded, dur = res
        s = split[c.group]
        out.durations[s].append(dur)
        out.framing["clips"] += 1
        out.framing["silent_frames_dropped"] += n_silent
        out.framing["short_clips_padded"] += int(padded)
        out.framing["clips_without_frames"] += int(len(frames) == 0)
        staged.append(frames)
        for k, st in enumerate(starts):
            out.rows.append({"frame_id": f"{c.clip_id}#{k}", "clip_id": c.clip_id,
                             "group": c.group,  # the source recording: the bootstrap's unit
                             "label": c.label, "class_name": c.class_name, "split": s,
                             "start_s": round(st, 4), "source": c.source})
    staged.close()
    if not out.rows:
        raise DataError(f"prepare_sounds: no frames left ({skips.total} file(s) skipped: "
                        f"{skips.as_dict()['by_reason']})")
    _check_every_class_has_frames(corpus, out.rows, class_skips)
    return out


def check_splits(rows: list[dict[str, Any]], val_fraction: float, test_fraction: float) -> None:
    """Stop on an empty train split; warn on an empty val or test split that was asked for.
    Splits go by source recording, so a corpus with few recordings per class can leave one
    empty."""
    frames = Counter(r["split"] for r in rows)
    recordings = len({r["group"] for r in rows})
    asked = {"train": True, "val": val_fraction > 0, "test": test_fraction > 0}
    for s in SPLITS:
        if frames[s] or not asked[s]:
            continue
        msg = (f"prepare_sounds: the {s} split has no frames ({recordings} source recording(s) "
               f"with frames, val_fraction {val_fraction}, test_fraction {test_fraction}): give "
               "more recordings per class, or change prepare_sounds.split")
        if s == "train":
            raise DataError(msg)
        log.warning("%s; %s", msg, "training continues without validation" if s == "val" else
                    "the studies' test metrics will have nothing to measure")


def _undersample_train(allm: Any, cap: int | None, seed: int, tmp: Path) -> Any:
    """The manifest with the train frames undersampled to `cap` per class; their frames are
    copied from tmp/_all_frames.npy to tmp/frames.npy (the staging file is removed)."""
    train_idx = np.flatnonzero(allm.split.to_numpy() == "train")
    kept_train = train_idx[undersample(allm.label.to_numpy()[train_idx], cap, seed)]
    keep = np.sort(np.concatenate([kept_train, np.flatnonzero(allm.split.to_numpy() != "train")]))
    src = np.load(tmp / "_all_frames.npy", mmap_mode="r")
    with NpyAppender(tmp / "frames.npy", np.float16, src.shape[1:]) as dst:
        for i in range(0, len(keep), 512):
            dst.append(src[keep[i:i + 512]])
    del src
    (tmp / "_all_frames.npy").unlink()
    return allm.iloc[keep].reset_index(drop=True)


def _info(corpus: EventCorpus, section: PrepareSounds, ctx: _Ctx, seed: int, framed: _Framed,
          counts: dict[str, Any], allm: Any, manifest: Any, skips: SkipLog) -> dict[str, Any]:
    """info.json: the corpus, framing, split, undersampling and every count."""
    fr, sp = section.framing, section.split
    before = counts["before"]
    return {
        **ctx.mel.as_dict(),
        "corpus": {"kind": corpus.kind, "path": corpus.root, "options": asdict(section.corpus)},
        "classes": corpus.classes,
        "framing": {"window_s": fr.window_s, "stride_s": fr.stride_s,
                    "window_samples": ctx.window, "stride_samples": ctx.stride,
                    "short_clip": fr.short_clip, "drop_silent_frames": fr.drop_silent_frames,
                    "time_steps": ctx.mel.n_frames(ctx.window), "layout": "[n_frames, n_mels, time]",
                    "dtype": "float16", **{k: int(v) for k, v in framed.framing.items()}},
        "split": {"by": "source recording", "val_fraction": sp.val_fraction,
                  "test_fraction": sp.test_fraction},
        "undersample": {"cap": section.undersample.cap, "seed": seed},
        "class_weights": section.class_weights,
        "class_counts": counts,
        "counts": {
            "clips": {s: int(allm[allm.split == s].clip_id.nunique()) for s in SPLITS},
            "frames_before": {s: int(sum(before[s])) for s in SPLITS},
            "frames_after": {s: int((manifest.split == s).sum()) for s in SPLITS},
            "corpus_clips": len(corpus.clips),
        },
        "durations": _durations(framed.durations),
        "skipped": skips.as_dict(),
    }


def _check_every_class_has_frames(corpus: EventCorpus, rows: list[dict[str, Any]],
                                  class_skips: dict[int, Counter[str]]) -> None:
    """Stop on a class with no usable audio, whatever on_bad_audio says: it would stay in
    classes.json with 0 frames and weight 0, and the model would train without it."""
    have = {r["label"] for r in rows}
    clips = Counter(c.label for c in corpus.clips)
    for label, name in enumerate(corpus.classes):
        if label in have:
            continue
        skipped = class_skips[label]
        why = [f"{skipped.total()} skipped: {dict(sorted(skipped.items()))}"] if skipped else []
        if clips[label] > skipped.total():
            why.append(f"{clips[label] - skipped.total()} with every frame silent")
        raise DataError(f"prepare_sounds: class '{name}' ({corpus.class_place(name)}) has no "
                        f"usable audio: none of its {clips[label]} clip(s) gave a frame "
                        f"({'; '.join(why)})")


def _durations(durations: dict[str, list[float]]) -> dict[str, Any]:
    every = [d for s in SPLITS for d in durations[s]]
    lo, hi = (min(every), max(every)) if every else (0.0, 1.0)
    return {s: {**summary(durations[s]), "hist": histogram(durations[s], bins=20, lo=lo, hi=hi)}
            for s in SPLITS}


def _dump(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=isinstance(obj, dict)) + "\n", encoding="utf-8")


def _imbalance(counts: list[int]) -> float:
    nz = [c for c in counts if c > 0]
    return round(max(nz) / min(nz), 3) if nz else 0.0


def _metrics(info: dict[str, Any]) -> dict[str, float]:
    c, cc = info["counts"], info["class_counts"]
    out: dict[str, float] = {"classes": len(info["classes"]),
                             "clips": sum(c["clips"].values()),
                             "skipped_files": info["skipped"]["total"],
                             "silent_frames_dropped": info["framing"].get("silent_frames_dropped", 0),
                             "train_imbalance_before": _imbalance(cc["before"]["train"]),
                             "train_imbalance_after": _imbalance(cc["after"]["train"])}
    for s in SPLITS:
        out[f"{s}_clips"] = c["clips"][s]
        out[f"{s}_frames_before"] = c["frames_before"][s]
        out[f"{s}_frames"] = c["frames_after"][s]
    for reason, n in info["skipped"]["by_reason"].items():
        out[f"skipped_{reason}"] = n
    return out
