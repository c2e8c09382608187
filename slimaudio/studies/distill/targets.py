"""The distillation targets (stage distill_targets): patches of the speaker corpus and the
teacher's embedding of each, plus the probe set every student is scored on.

Distillation targets are per patch, as in FRILL/TRILL: the teacher (a wider ECAPA-TDNN from
the train_teacher stage, as ONNX) embeds each 0.96 s patch on its own (96 frames of its 80
log-mel bands, read from the speaker corpus's features), and the student learns to reproduce
that embedding from the same 0.96 s (its own 64-band log-mel, or the waveform). A patch
starting at STFT frame f covers samples [f * hop, f * hop + win + 95 * hop) of its utterance,
which are exactly the samples of the features' frames f .. f + 95 (features are uncentred),
so teacher and student see the same audio.

Outputs (data/distill/):
  train_patches.npy  float16 [N, 96, 64]   student inputs (frontend outside), train speakers
  train_waves.npy    int16   [N, samples]  the same patches as waveform (frontend inside)
  train_targets.npy  float32 [N, D]        the teacher's embeddings: the distillation targets
  probe_*.npy / probe_utts.csv             the probe set (test speakers), see probes.py
  teacher_probe.npy  float32 [M, D]        the teacher's embeddings of the probe patches
  teacher_predictions.csv                  the teacher's probe answers per probe-test
                                           utterance (the bootstrap's observations)
  teacher.json       features, normalisation, teacher size/latency/accuracies, counts
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from slimaudio import runtime
from slimaudio.audio import from_int16
from slimaudio.datasets import speakers
from slimaudio.datasets.speakers import SpeakerData
from slimaudio.errors import DataError
from slimaudio.features import LOG_EPS, MelConfig, hann, mel_filterbank
from slimaudio.latency import SIMPLE, Spread
from slimaudio.progress import progress_bar
from slimaudio.schemas import distill as schema
from slimaudio.studies.distill import probes
from slimaudio.studies.distill.data import TEACHER_PREDICTIONS, target_stats
from slimaudio.studies.distill.teacher import embed, teacher_cost, teacher_session, teacher_summary

# the manifest columns of a probe utterance (the labels of the probe tasks)
PROBE_COLUMNS = ("utt_id", "speaker", "masked", "arousal", "group")


def student_mel(corpus: SpeakerData, n_mels: int) -> MelConfig:
    """The students' log-mel: the corpus's STFT settings with their own number of bands."""
    i = corpus.info.stft()
    return MelConfig(sample_rate=int(i["sample_rate"]), n_mels=n_mels, n_fft=int(i["n_fft"]),
                     win_length=int(i["win_length"]), hop_length=int(i["hop_length"]),
                     f_min=float(i["f_min"]), f_max=float(i["f_max"]))


def require_probe_columns(corpus: SpeakerData) -> None:
    missing = [c for c in PROBE_COLUMNS if c not in corpus.manifest.columns]
    if missing:
        raise DataError(f"{corpus.root / 'manifest.csv'}: missing column(s) {', '.join(missing)} "
                        "(labels of the distillation probes)")


@dataclass
class Patches:
    """Patches of utterances: row i starts at frame `start[i]` of utterance row `utt[i]`."""

    utt: np.ndarray        # int64 index into the manifest
    start: np.ndarray      # int64 first STFT frame


def random_patches(corpus: SpeakerData, split: str, n: int, frames: int, seed: int) -> Patches:
    """n patches at uniformly random (utterance, offset) positions of one split."""
    m = corpus.manifest
    rows = np.flatnonzero((m["split"] == split).to_numpy() & (m["feat_frames"] >= frames).to_numpy())
    if rows.size == 0:
        raise DataError(f"no {split}-split utterance is at least {frames} frames long")
    rng = runtime.rng(seed, "distill.patches")
    utt = rng.choice(rows, size=n, replace=True)
    span = m["feat_frames"].to_numpy()[utt] - frames
    start = (rng.random(n) * (span + 1)).astype(np.int64)
    return Patches(utt.astype(np.int64), start)


def probe_rows(corpus: SpeakerData, pc: schema.Patches, seed: int) -> np.ndarray:
    """Manifest rows of the probe utterances: test speakers, long enough for a patch, at most
    `probe_max_utts` of them (a seeded random subset)."""
    m = corpus.manifest
    rows = np.flatnonzero((m["split"] == "test").to_numpy()
                          & (m["feat_frames"] >= pc.frames).to_numpy())
    if rows.size == 0:
        raise DataError(f"{corpus.root}: no test-split utterance is {pc.frames} frames long")
    if pc.probe_max_utts is not None and rows.size > pc.probe_max_utts:
        rng = runtime.rng(seed, "distill.probe_subset")
        rows = np.sort(rng.choice(rows, size=pc.probe_max_utts, replace=False))
    return rows


def spaced_patches(corpus: SpeakerData, rows: np.ndarray, per_utt: int, frames: int) -> Patches:
    """`per_utt` evenly spaced patches (first and last included) of each utterance row."""
    n_frames = corpus.manifest["feat_frames"].to_numpy()
    utt, start = [], []
    for r in rows:
        span = int(n_frames[r]) - frames
        if span < 0:
            raise DataError(f"utterance {corpus.manifest['utt_id'].iloc[r]} is shorter than a "
                            f"{frames}-frame patch")
        k = 1 if span == 0 else per_utt
        for s in np.unique(np.linspace(0, span, k).round().astype(np.int64)):
            utt.append(r)
            start.append(int(s))
    return Patches(np.asarray(utt, dtype=np.int64), np.asarray(start, dtype=np.int64))


def extract(corpus: SpeakerData, p: Patches, frames: int, mel: MelConfig,
            progress: bool = True, chunk: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(teacher feats float32 [N, frames, n_mels_teacher], student log-mel float16
    [N, frames, mel.n_mels], waveforms int16 [N, samples]) of the patches."""

    m, audio = corpus.manifest, corpus.audio
    hop = mel.hop_length
    samples = mel.win_length + (frames - 1) * hop
    f_off, a_off = m["feat_offset"].to_numpy(), m["audio_offset"].to_numpy()
    teacher = np.empty((len(p.utt), frames, corpus.n_mels), dtype=np.float32)
    student = np.empty((len(p.utt), frames, mel.n_mels), dtype=np.float16)
    waves = np.empty((len(p.utt), samples), dtype=np.int16)
    fb = mel_filterbank(mel)
    for i in range(len(p.utt)):
        u, s = int(p.utt[i]), int(p.start[i])
        teacher[i] = corpus.feats[f_off[u] + s: f_off[u] + s + frames]
        waves[i] = audio[a_off[u] + s * hop: a_off[u] + s * hop + samples]
    for i in progress_bar(range(0, len(p.utt), chunk), desc="log-mel patches", disable=not progress,
                          leave=False):
        student[i:i + chunk] = batch_log_mel(from_int16(waves[i:i + chunk]), mel, fb)
    return teacher, student, waves


def batch_log_mel(x: np.ndarray, mel: MelConfig, fb: np.ndarray | None = None) -> np.ndarray:
    """slimaudio.features.log_mel over a batch of equal-length signals [N, samples]."""
    x = np.asarray(x, dtype=np.float64)
    n = mel.n_frames(x.shape[1])
    fb = mel_filterbank(mel) if fb is None else fb
    frames = np.lib.stride_tricks.sliding_window_view(x, mel.win_length, axis=1)[:, ::mel.hop_length][:, :n]
    spec = np.fft.rfft(frames * hann(mel.win_length), n=mel.n_fft, axis=-1)
    power = spec.real ** 2 + spec.imag ** 2
    return np.log(power @ fb.T + LOG_EPS).astype(np.float32)


def input_stats(patches: np.ndarray) -> tuple[float, float]:
    """Global mean and std of the student inputs (the model's fixed normalisation)."""
    x = np.asarray(patches, dtype=np.float64)
    return float(x.mean()), float(max(x.std(), 1e-6))


def save_arrays(out: Path, arrays: dict[str, np.ndarray]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, arr in arrays.items():
        np.save(out / f"{name}.npy", arr)


def make_targets(corpus_dir: str | os.PathLike[str], teacher_path: str | os.PathLike[str],
                 out_dir: str | os.PathLike[str], cfg: schema.Distill, seed: int,
                 latency_threads: int, progress: bool = True, spread: Spread = SIMPLE
                 ) -> dict[str, Any]:
    """Write data/distill/ (see the module docstring); returns teacher.json's content."""
    from slimaudio.atomic import write_csv, write_json

    out = Path(out_dir)
    corpus = speakers.load(corpus_dir)
    require_probe_columns(corpus)
    pc, tc = cfg.patches, cfg.teacher
    mel = student_mel(corpus, pc.n_mels)

    train = random_patches(corpus, "train", pc.train, pc.frames, seed)
    rows = probe_rows(corpus, pc, seed)
    probe = spaced_patches(corpus, rows, pc.probe_per_utt, pc.frames)

    t_train, s_train, w_train = extract(corpus, train, pc.frames, mel, progress)
    t_probe, s_probe, w_probe = extract(corpus, probe, pc.frames, mel, progress)
    sess = teacher_session(teacher_path, tc.threads)
    want = sess.get_inputs()[0].shape[-1]
    if isinstance(want, int) and want != corpus.n_mels:
        raise DataError(f"{teacher_path}: the teacher takes {want} mel bands but "
                        f"{corpus_dir}/feats.npy has {corpus.n_mels}")
    targets = embed(sess, t_train, tc.batch_size, progress)
    teacher_probe = embed(sess, t_probe, tc.batch_size, progress)

    utts = probes.assign_roles(corpus.manifest.iloc[rows][list(PROBE_COLUMNS)], seed)
    pos = {int(r): i for i, r in enumerate(rows)}
    patch_utt = np.array([pos[int(u)] for u in probe.utt], dtype=np.int32)
    results = probes.evaluate(probes.utterance_embeddings(teacher_probe, patch_utt, len(rows)),
                              utts, list(cfg.probe.tasks), cfg.probe.c, seed)
    cost = teacher_cost(teacher_path, pc.frames, corpus.n_mels, latency_threads,
                        tc.latency.warmup, tc.latency.repeats, spread)
    mean, std = input_stats(s_train)
    t_mean, t_std = target_stats(targets)

    save_arrays(out, {"train_patches": s_train, "train_waves": w_train, "train_targets": targets,
                      "probe_patches": s_probe, "probe_waves": w_probe, "probe_utt": patch_utt,
                      "teacher_probe": teacher_probe})
    write_csv(out / "probe_utts.csv", utts)
    write_csv(out / TEACHER_PREDICTIONS, probes.predictions_frame(results))
    info = {
        "frames": pc.frames, "samples": int(w_train.shape[1]), "mel": mel.as_dict(),
        "input_norm": [mean, std], "target_mean": t_mean.tolist(), "target_std": t_std.tolist(),
        "teacher": {**teacher_summary(teacher_path, cost, int(targets.shape[1])),
                    "n_mels": corpus.n_mels},
        "accuracy": probes.accuracy_columns(results),
        "chance": {t: r.chance for t, r in results.items()},
        "tasks": list(cfg.probe.tasks),
        "counts": {"train_patches": len(train.utt), "probe_patches": len(probe.utt),
                   "probe_utterances": len(rows), "probe_speakers": int(utts["speaker"].nunique()),
                   "train_utterances_sampled": int(np.unique(train.utt).size)},
    }
    write_json(out / "teacher.json", info)
    return info
