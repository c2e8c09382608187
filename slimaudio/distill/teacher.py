"""The teacher side of the study: patches, the teacher's embeddings of them, its cost.

Distillation targets are per patch, as in FRILL/TRILL: the teacher (a wider ECAPA-TDNN from
the train_teacher stage, as ONNX) embeds each 0.96 s patch on its own (96 frames of its 80 log-mel bands, read from
data/speakers/feats.npy), and the student learns to reproduce that embedding from the same
0.96 s (its own 64-band log-mel, or the waveform). A patch starting at STFT frame f covers
samples [f * hop, f * hop + win + 95 * hop) of its utterance, which are exactly the samples
of feats.npy's frames f .. f + 95 (features are uncentred), so teacher and student see the
same audio.

Outputs (data/distill/):
  train_patches.npy  float16 [N, 96, 64]   student inputs (frontend outside), train speakers
  train_waves.npy    int16   [N, samples]  the same patches as waveform (frontend inside)
  train_targets.npy  float32 [N, D]        the teacher's embeddings: the distillation targets
  probe_*.npy / probe_utts.csv             the probe set (test speakers), see probes.py
  teacher_probe.npy  float32 [M, D]        the teacher's embeddings of the probe patches
  teacher.json       features, normalisation, teacher size/latency/accuracies, counts
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from slimaudio.audio import from_int16
from slimaudio.errors import DataError
from slimaudio.features import LOG_EPS, MelConfig, hann, mel_filterbank

NEEDED = ("utt_id", "speaker", "split", "group", "masked", "arousal", "feat_offset",
          "feat_frames", "audio_offset", "audio_samples")


@dataclass
class Corpus:
    manifest: pd.DataFrame
    feats: np.ndarray      # float16 [total_frames, n_mels] (memory-mapped)
    audio: np.ndarray      # int16 [total_samples] (memory-mapped)
    info: dict[str, Any]

    def student_mel(self, n_mels: int) -> MelConfig:
        i = self.info
        return MelConfig(sample_rate=int(i["sample_rate"]), n_mels=n_mels, n_fft=int(i["n_fft"]),
                         win_length=int(i["win_length"]), hop_length=int(i["hop_length"]),
                         f_min=float(i["f_min"]), f_max=float(i["f_max"]))


def load_corpus(root: str | os.PathLike[str]) -> Corpus:
    root = Path(root)
    for name in ("manifest.csv", "feats.npy", "audio.npy", "info.json"):
        if not (root / name).exists():
            raise DataError(f"{root / name}: missing (run the prepare_speakers stage)")
    m = pd.read_csv(root / "manifest.csv", dtype={"utt_id": str, "speaker": str, "group": str})
    missing = [c for c in NEEDED if c not in m.columns]
    if missing:
        raise DataError(f"{root / 'manifest.csv'}: missing column(s) {', '.join(missing)}")
    info = json.loads((root / "info.json").read_text(encoding="utf-8"))
    for key in ("sample_rate", "n_fft", "win_length", "hop_length", "f_min", "f_max"):
        if key not in info:
            raise DataError(f"{root / 'info.json'}: missing '{key}'")
    feats = np.load(root / "feats.npy", mmap_mode="r")
    audio = np.load(root / "audio.npy", mmap_mode="r")
    if feats.ndim != 2 or audio.ndim != 1:
        raise DataError(f"{root}: feats.npy must be [frames, n_mels] and audio.npy [samples]")
    if (m["audio_offset"] + m["audio_samples"]).max() > audio.shape[0]:
        raise DataError(f"{root / 'manifest.csv'}: audio rows beyond the end of audio.npy")
    if (m["feat_offset"] + m["feat_frames"]).max() > feats.shape[0]:
        raise DataError(f"{root / 'manifest.csv'}: feature rows beyond the end of feats.npy")
    win, hop = int(info["win_length"]), int(info["hop_length"])
    expect = 1 + (m["audio_samples"] - win) // hop
    if not (expect == m["feat_frames"]).all():
        raise DataError(f"{root}: feat_frames disagree with audio_samples for uncentred STFT "
                        f"frames (win {win}, hop {hop}); features and audio are misaligned")
    return Corpus(m, feats, audio, info)


@dataclass
class Patches:
    """Patches of utterances: row i starts at frame `start[i]` of utterance row `utt[i]`."""

    utt: np.ndarray        # int64 index into the manifest
    start: np.ndarray      # int64 first STFT frame


def random_patches(corpus: Corpus, split: str, n: int, frames: int, seed: int) -> Patches:
    """n patches at uniformly random (utterance, offset) positions of one split."""
    m = corpus.manifest
    rows = np.flatnonzero((m["split"] == split).to_numpy() & (m["feat_frames"] >= frames).to_numpy())
    if rows.size == 0:
        raise DataError(f"no {split}-split utterance is at least {frames} frames long")
    rng = np.random.default_rng([seed, 6, 0])
    utt = rng.choice(rows, size=n, replace=True)
    span = m["feat_frames"].to_numpy()[utt] - frames
    start = (rng.random(n) * (span + 1)).astype(np.int64)
    return Patches(utt.astype(np.int64), start)


def spaced_patches(corpus: Corpus, rows: np.ndarray, per_utt: int, frames: int) -> Patches:
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


def extract(corpus: Corpus, p: Patches, frames: int, mel: MelConfig,
            progress: bool = True, chunk: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(teacher feats float32 [N, frames, n_mels_teacher], student log-mel float16
    [N, frames, mel.n_mels], waveforms int16 [N, samples]) of the patches."""
    from tqdm import tqdm

    m = corpus.manifest
    hop = mel.hop_length
    samples = mel.win_length + (frames - 1) * hop
    f_off, a_off = m["feat_offset"].to_numpy(), m["audio_offset"].to_numpy()
    teacher = np.empty((len(p.utt), frames, corpus.feats.shape[1]), dtype=np.float32)
    student = np.empty((len(p.utt), frames, mel.n_mels), dtype=np.float16)
    waves = np.empty((len(p.utt), samples), dtype=np.int16)
    fb = mel_filterbank(mel)
    for i in range(len(p.utt)):
        u, s = int(p.utt[i]), int(p.start[i])
        teacher[i] = corpus.feats[f_off[u] + s: f_off[u] + s + frames]
        waves[i] = corpus.audio[a_off[u] + s * hop: a_off[u] + s * hop + samples]
    for i in tqdm(range(0, len(p.utt), chunk), desc="log-mel patches", disable=not progress,
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


def embed(session: Any, feats: np.ndarray, batch: int = 64, progress: bool = True) -> np.ndarray:
    """The teacher's embeddings of [N, frames, n_mels] feature patches (ONNX Runtime)."""
    from tqdm import tqdm

    name = session.get_inputs()[0].name
    out = []
    for i in tqdm(range(0, len(feats), batch), desc="teacher", disable=not progress, leave=False):
        out.append(session.run(None, {name: np.ascontiguousarray(feats[i:i + batch])})[0])
    emb = np.concatenate(out).astype(np.float32)
    if not np.isfinite(emb).all():
        raise DataError("the teacher produced NaN/inf embeddings")
    return emb


def teacher_session(path: str | os.PathLike[str], threads: int) -> Any:
    from slimaudio.latency import onnx_session

    if not Path(path).exists():
        raise DataError(f"{path}: teacher model missing (run the train_ecapa stage)")
    try:
        return onnx_session(path, threads)
    except Exception as exc:  # noqa: BLE001 - ORT raises several types for a bad file
        raise DataError(f"{path}: cannot load the teacher ONNX model ({exc})") from None


def teacher_cost(path: str | os.PathLike[str], frames: int, n_mels: int, threads: int,
                 warmup: int, repeats: int) -> dict[str, float]:
    """Size of the ONNX file and ONNX Runtime latency for one patch (batch 1)."""
    from slimaudio import latency
    from slimaudio.metrics import file_size

    x = np.random.default_rng(0).standard_normal((1, frames, n_mels)).astype(np.float32)
    sess = teacher_session(path, threads)
    run = latency.onnx_runner(sess, {sess.get_inputs()[0].name: x})
    lat = latency.measure(run, warmup=warmup, repeats=repeats, threads=threads)
    return {**file_size(path), **lat.as_dict()}


def onnx_params(path: str | os.PathLike[str]) -> int:
    import onnx

    model = onnx.load(os.fspath(path))
    return int(sum(int(np.prod(t.dims)) for t in model.graph.initializer))


def input_stats(patches: np.ndarray) -> tuple[float, float]:
    """Global mean and std of the student inputs (the model's fixed normalisation)."""
    x = np.asarray(patches, dtype=np.float64)
    return float(x.mean()), float(max(x.std(), 1e-6))


def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def target_stats(targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and std: students regress standardised targets, so every
    embedding dimension weighs the same in the MSE."""
    t = np.asarray(targets, dtype=np.float64)
    return t.mean(0), np.maximum(t.std(0), 1e-6)


def teacher_summary(path: str | os.PathLike[str], cost: Mapping[str, float],
                    dim: int) -> dict[str, Any]:
    return {"path": os.fspath(path), "runtime": "ONNX Runtime", "embedding_dim": dim,
            "params": onnx_params(path), **cost}


# ------------------------------------------------------------------------------ the stage


def prepare(corpus_dir: str | os.PathLike[str], teacher_path: str | os.PathLike[str],
            out_dir: str | os.PathLike[str], section: Mapping[str, Any], seed: int,
            latency_threads: int, progress: bool = True) -> dict[str, Any]:
    """Write data/distill/ (see the module docstring); returns teacher.json's content."""
    from slimaudio.atomic import write_csv, write_json
    from slimaudio.distill import probes

    out = Path(out_dir)
    corpus = load_corpus(corpus_dir)
    pc, tc, pr = section["patches"], section["teacher"], section["probe"]
    frames = int(pc["frames"])
    mel = corpus.student_mel(int(pc["n_mels"]))
    m = corpus.manifest

    train = random_patches(corpus, "train", int(pc["train"]), frames, seed)
    rows = np.flatnonzero((m["split"] == "test").to_numpy() & (m["feat_frames"] >= frames).to_numpy())
    if rows.size == 0:
        raise DataError(f"{corpus_dir}: no test-split utterance is {frames} frames long")
    if pc["probe_max_utts"] is not None and rows.size > int(pc["probe_max_utts"]):
        rng = np.random.default_rng([seed, 6, 2])
        rows = np.sort(rng.choice(rows, size=int(pc["probe_max_utts"]), replace=False))
    probe = spaced_patches(corpus, rows, int(pc["probe_per_utt"]), frames)

    t_train, s_train, w_train = extract(corpus, train, frames, mel, progress)
    t_probe, s_probe, w_probe = extract(corpus, probe, frames, mel, progress)
    sess = teacher_session(teacher_path, int(tc["threads"]))
    want = sess.get_inputs()[0].shape[-1]
    if isinstance(want, int) and want != corpus.feats.shape[1]:
        raise DataError(f"{teacher_path}: the teacher takes {want} mel bands but "
                        f"{corpus_dir}/feats.npy has {corpus.feats.shape[1]}")
    targets = embed(sess, t_train, int(tc["batch_size"]), progress)
    teacher_probe = embed(sess, t_probe, int(tc["batch_size"]), progress)

    utts = probes.assign_roles(m.iloc[rows][["utt_id", "speaker", "masked", "arousal", "group"]],
                               seed)
    pos = {int(r): i for i, r in enumerate(rows)}
    patch_utt = np.array([pos[int(u)] for u in probe.utt], dtype=np.int32)
    results = probes.evaluate(probes.utterance_embeddings(teacher_probe, patch_utt, len(rows)),
                              utts, list(pr["tasks"]), float(pr["c"]), seed)
    cost = teacher_cost(teacher_path, frames, corpus.feats.shape[1], latency_threads,
                        int(tc["latency"]["warmup"]), int(tc["latency"]["repeats"]))
    mean, std = input_stats(s_train)
    t_mean, t_std = target_stats(targets)

    out.mkdir(parents=True, exist_ok=True)
    for name, arr in (("train_patches", s_train), ("train_waves", w_train),
                      ("train_targets", targets), ("probe_patches", s_probe),
                      ("probe_waves", w_probe), ("probe_utt", patch_utt),
                      ("teacher_probe", teacher_probe)):
        np.save(out / f"{name}.npy", arr)
    write_csv(out / "probe_utts.csv", utts)
    info = {
        "frames": frames, "samples": int(w_train.shape[1]), "mel": mel.as_dict(),
        "input_norm": [mean, std], "target_mean": t_mean.tolist(), "target_std": t_std.tolist(),
        "teacher": {**teacher_summary(teacher_path, cost, int(targets.shape[1])),
                    "n_mels": int(corpus.feats.shape[1])},
        "accuracy": probes.accuracy_columns(results),
        "chance": {t: r.chance for t, r in results.items()},
        "tasks": list(pr["tasks"]),
        "counts": {"train_patches": len(train.utt), "probe_patches": len(probe.utt),
                   "probe_utterances": len(rows), "probe_speakers": int(utts["speaker"].nunique()),
                   "train_utterances_sampled": int(np.unique(train.utt).size)},
    }
    write_json(out / "teacher.json", info)
    return info


@dataclass
class DistillData:
    """data/distill/ loaded for a student stage."""

    root: Path
    info: dict[str, Any]
    train_patches: np.ndarray
    train_waves: np.ndarray
    train_targets: np.ndarray
    probe_patches: np.ndarray
    probe_waves: np.ndarray
    probe_utt: np.ndarray
    probe_utts: pd.DataFrame

    @property
    def mel(self) -> MelConfig:
        return MelConfig(**self.info["mel"])

    def inputs(self, frontend: str, which: str) -> np.ndarray:
        """float32 student inputs: log-mel patches (outside) or waveforms in [-1, 1] (inside)."""
        if frontend == "inside":
            return from_int16(self.train_waves if which == "train" else self.probe_waves)
        return np.asarray(self.train_patches if which == "train" else self.probe_patches,
                          dtype=np.float32)


def load_distill(root: str | os.PathLike[str]) -> DistillData:
    root = Path(root)
    names = ("train_patches", "train_waves", "train_targets", "probe_patches", "probe_waves",
             "probe_utt")
    for name in (*(f"{n}.npy" for n in names), "probe_utts.csv", "teacher.json"):
        if not (root / name).exists():
            raise DataError(f"{root / name}: missing (run the distill_teacher stage)")
    arrays = {n: np.load(root / f"{n}.npy", mmap_mode="r") for n in names}
    if len(arrays["train_patches"]) != len(arrays["train_targets"]):
        raise DataError(f"{root}: train_patches and train_targets differ in length")
    utts = pd.read_csv(root / "probe_utts.csv", dtype={"utt_id": str, "speaker": str, "group": str})
    info = json.loads((root / "teacher.json").read_text(encoding="utf-8"))
    return DistillData(root, info, probe_utts=utts, **arrays)
