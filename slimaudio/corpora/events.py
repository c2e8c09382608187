"""Sound-event corpora: synthetic, ESC-50 (or its ESC-10 part), UrbanSound8K, folder-per-class.

A reader returns an `EventCorpus`: class names in label order and the clips with their label
and source recording (`group`): clips cut from one recording share a group, and the splits
keep a group whole so no recording has frames in both train and test.
"""

from __future__ import annotations

import csv
import logging
import os
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, get_args

import numpy as np

from slimaudio import runtime
from slimaudio.audio import (
    AudioChecks,
    corpus_root,
    describe_dir,
    load_audio,
)
from slimaudio.corpora import item
from slimaudio.errors import DataError
from slimaudio.schemas.data import EventSynth, SoundCorpusKind, SoundSource

EVENT_KINDS: tuple[str, ...] = get_args(SoundCorpusKind)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Clip:
    clip_id: str
    label: int
    class_name: str
    group: str                 # source recording
    path: str | None = None
    spec: Any = None           # the synth ClipSpec, for the synthetic corpus

    @property
    def source(self) -> str:
        return item.source(self.path, self.spec)


@dataclass
class EventCorpus:
    kind: str
    root: str | None
    classes: list[str]
    clips: list[Clip]
    synth_cfg: Any = None
    # (reason, one-line message) per file the reader found but cannot use: the stage counts
    # them with the bad audio, or stops under on_bad_audio = fail.
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def class_place(self, name: str) -> str:
        """Where a class's clips come from, for errors: its folder, else the corpus."""
        if self.kind == "folder" and self.root is not None:
            return str(Path(self.root) / name)
        return self.root or f"{self.kind} corpus"

    def load(self, clip: Clip, sample_rate: int, checks: AudioChecks) -> np.ndarray:
        """float32 mono audio at sample_rate, validated (raises slimaudio.audio.BadAudio)."""
        if clip.path is not None:
            return load_audio(clip.path, sample_rate, checks)
        from slimaudio.synth import events

        return item.synthetic_audio(events.render(clip.spec, self.synth_cfg).audio,
                                    self.synth_cfg.sample_rate, clip.clip_id, sample_rate, checks)


def _read_csv(root: Path, rel: str, required: tuple[str, ...]) -> list[dict[str, str]]:
    path = root / rel
    if not path.is_file():
        inside = sorted(p.parents[len(Path(rel).parts) - 1] for p in root.glob(f"*/{rel}"))
        if inside:  # e.g. <path>/UrbanSound8K/metadata/...: the corpus is one folder down
            raise DataError(f"{root}: {rel} not found here but in {inside[0]}: give "
                            f"{inside[0]} as the corpus path")
        raise DataError(f"{root}: {rel} not found (metadata file); found {describe_dir(root)}")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        header = list(reader.fieldnames or [])
    missing = [c for c in required if rows and c not in rows[0]] or ([] if rows else ["(rows)"])
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)} "
                        f"(found columns: {', '.join(header) or 'none'})")
    return rows


def _missing(paths: list[str]) -> list[str]:
    return [p for p in paths if not os.path.lexists(p)]


def _check_listed(root: Path, meta: str, expects: str, paths: list[str],
                  missing: list[str]) -> None:
    """Stop when no file the metadata lists exists (the layout does not match); warn when
    some are missing (the stage then counts each as skipped 'missing')."""
    if not missing:
        return
    example = Path(missing[0]).relative_to(root).as_posix()
    if len(missing) == len(paths):
        raise DataError(f"{root}: layout does not match {meta}: none of its {len(paths)} file(s) "
                        f"is where it says ({expects}, e.g. {example}); found {describe_dir(root)}")
    log.warning("%s: %d of %d file(s) listed in %s are missing where it says (%s, e.g. %s); "
                "counted as skipped 'missing'", root, len(missing), len(paths), meta, expects, example)


def _labelled(kind: str, root: str | None, items: list[tuple[int, str, dict[str, Any]]]) -> EventCorpus:
    """Map original class ids (sorted) to contiguous labels 0..K-1."""
    ids = sorted({orig for orig, _, _ in items})
    names = {orig: name for orig, name, _ in items}
    to_label = {orig: i for i, orig in enumerate(ids)}
    clips = [Clip(label=to_label[orig], class_name=name, **kw) for orig, name, kw in items]
    return EventCorpus(kind, root, [names[o] for o in ids], clips)


# --- readers ------------------------------------------------------------------------------------

def read_synthetic(cfg: Any) -> EventCorpus:
    from slimaudio.synth import events

    specs = events.plan_corpus(cfg)
    classes = list(cfg.classes)
    clips = [Clip(clip_id=s.clip_id, label=int(s.label), class_name=str(s.class_name),
                  group=s.clip_id, spec=s) for s in specs]
    for c in clips:
        if classes[c.label] != c.class_name:
            raise DataError(f"synthetic clip {c.clip_id}: label {c.label} is not class {c.class_name}")
    return EventCorpus("synthetic", None, classes, clips, synth_cfg=cfg)


def read_esc50(path: str | Path, esc10_only: bool = False) -> EventCorpus:
    """ESC-50: meta/esc50.csv (filename, fold, target, category, esc10, src_file, take) + audio/.

    esc10_only keeps the rows whose esc10 column is True (the ESC-10 subset, 10 classes).
    """
    root = corpus_root(path, "esc50")
    rows = _read_csv(root, "meta/esc50.csv",
                     ("filename", "fold", "target", "category", "esc10", "src_file"))
    items = []
    for r in rows:
        if esc10_only and r["esc10"].strip().lower() != "true":
            continue
        fname = r["filename"]
        items.append((int(r["target"]), r["category"],
                      {"clip_id": Path(fname).stem, "group": f"esc50:{r['src_file']}",
                       "path": str(root / "audio" / fname)}))
    if not items:
        raise DataError(f"{root}: meta/esc50.csv lists no clips" + (" with esc10=True" if esc10_only else ""))
    paths = [kw["path"] for _, _, kw in items]
    _check_listed(root, "meta/esc50.csv", "audio/<filename>", paths, _missing(paths))
    return _labelled("esc50", str(root), items)


def read_urbansound8k(path: str | Path) -> EventCorpus:
    """UrbanSound8K: metadata/UrbanSound8K.csv + audio/fold<N>/<slice_file_name>.

    Slices cut from one freesound recording (fsID) share a group.
    """
    root = corpus_root(path, "urbansound8k")
    rows = _read_csv(root, "metadata/UrbanSound8K.csv",
                     ("slice_file_name", "fsID", "fold", "classID", "class"))
    items = [(int(r["classID"]), r["class"],
              {"clip_id": Path(r["slice_file_name"]).stem, "group": f"us8k:{r['fsID']}",
               "path": str(root / "audio" / f"fold{r['fold']}" / r["slice_file_name"])})
             for r in rows]
    if not items:
        raise DataError(f"{root}: metadata/UrbanSound8K.csv lists no clips")
    paths = [kw["path"] for _, _, kw in items]
    missing = _missing(paths)
    _check_other_folds(root, [Path(p) for p in missing])
    _check_listed(root, "metadata/UrbanSound8K.csv", "audio/fold<fold>/<slice_file_name>", paths,
                  missing)
    return _labelled("urbansound8k", str(root), items)


def _check_other_folds(root: Path, missing: list[Path]) -> None:
    """Say so when clips missing from the fold the metadata names sit in another foldN folder:
    the audio and metadata disagree (the fold is the split), so they still count as missing."""
    if not missing:
        return
    found = {f.name: f for f in root.glob("audio/fold*/*")}
    moved = [(p, found[p.name]) for p in missing if p.name in found]
    if moved:
        listed, actual = (x.relative_to(root).as_posix() for x in moved[0])
        log.warning("%s: %d of the %d missing file(s) are in another fold folder than "
                    "metadata/UrbanSound8K.csv says (e.g. %s is at %s): the metadata and the "
                    "audio folders disagree; they are counted as skipped 'missing'",
                    root, len(moved), len(missing), listed, actual)


def read_folder(path: str | Path) -> EventCorpus:
    """One sub-folder per class (sorted names = labels); every non-hidden entry in it that is
    not a folder is a clip, so a non-audio file or a dangling symlink is reported as skipped
    (unsupported format, unreadable), never silently ignored. A class folder with no such
    entry stops the run: the class would otherwise vanish from the labels."""
    root = corpus_root(path, "folder")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise DataError(f"{root}: no class folders (folder layout: <root>/<class>/<clip>); "
                        f"found {describe_dir(root)}")
    items = []
    for label, d in enumerate(class_dirs):
        files = _class_files(d)
        if not files:
            raise DataError(f"{d}: class '{d.name}' has no files (folder layout: "
                            f"<root>/<class>/<clip>); found {describe_dir(d)}")
        for f in files:
            rel = f.relative_to(root).with_suffix("").as_posix()
            items.append((label, d.name, {"clip_id": rel, "group": rel, "path": str(f)}))
    return _labelled("folder", str(root), items)


def _class_files(d: Path) -> list[Path]:
    """Non-hidden entries under a class folder that are not folders (dangling symlinks too)."""
    return sorted(p for p in d.rglob("*") if not p.is_dir()
                  and not any(part.startswith(".") for part in p.relative_to(d).parts))


def cap_clips(corpus: EventCorpus, max_clips_per_class: int | None, seed: int) -> EventCorpus:
    """Keep at most max_clips_per_class clips of each class (seeded), for quick subsets."""
    if max_clips_per_class is None:
        return corpus
    by_label: dict[int, list[int]] = defaultdict(list)
    for i, c in enumerate(corpus.clips):
        by_label[c.label].append(i)
    keep: list[int] = []
    for lab, idx in sorted(by_label.items()):
        if len(idx) > max_clips_per_class:
            rng = runtime.rng(seed, "sounds.subset", lab)
            idx = sorted(rng.choice(idx, size=max_clips_per_class, replace=False).tolist())
        keep.extend(idx)
    return replace(corpus, clips=[corpus.clips[i] for i in sorted(keep)])


def read_event_corpus(corpus: SoundSource, synthetic: EventSynth | None, sample_rate: int,
                      seed: int) -> EventCorpus:
    """Dispatch on params `corpus.kind`, then apply corpus.max_clips_per_class (synthetic:
    the synthesiser's knobs, read for the synthetic kind only)."""
    kind = corpus.kind
    if kind == "synthetic":
        from slimaudio.synth import events

        out = read_synthetic(events.EventCorpusConfig.of(synthetic, sample_rate, seed))
    elif kind == "esc50":
        out = read_esc50(corpus.path, corpus.esc10_only)
    elif kind == "urbansound8k":
        out = read_urbansound8k(corpus.path)
    elif kind == "folder":
        out = read_folder(corpus.path)
    else:
        raise DataError(f"unknown sound corpus kind '{kind}' (known: {', '.join(EVENT_KINDS)})")
    return cap_clips(out, corpus.max_clips_per_class, seed)
