"""Trial lists and cosine scoring, kept pure so any embedding extractor can be scored.

Trial lists use the VoxCeleb format: `label enroll_id test_id` per line, label 1 (target) or
0 (non-target). Ids are utterance ids of data/speakers/manifest.csv.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slimaudio.errors import DataError
from slimaudio.progress import progress_bar


@dataclass(frozen=True)
class Trials:
    labels: np.ndarray  # int8, 1 target / 0 non-target
    enroll: list[str]
    test: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def utterances(self) -> list[str]:
        """Every utterance id the trials need, sorted."""
        return sorted(set(self.enroll) | set(self.test))


def read_trials(path: str | os.PathLike[str]) -> Trials:
    labels, enroll, test = [], [], []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 3 or parts[0] not in ("0", "1"):
            raise DataError(f"{path}:{n}: expected 'label enroll test' with label 0/1, got {line!r}")
        labels.append(int(parts[0]))
        enroll.append(parts[1])
        test.append(parts[2])
    if not labels:
        raise DataError(f"{path}: no trials")
    return Trials(np.asarray(labels, dtype=np.int8), enroll, test)


def write_trials_text(trials: Trials) -> str:
    return "".join(f"{lab} {e} {t}\n" for lab, e, t in zip(trials.labels, trials.enroll, trials.test, strict=True))


def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def cosine_scores(embeddings: Mapping[str, np.ndarray], trials: Trials) -> np.ndarray:
    """Cosine similarity of each trial's enrolment and test embeddings."""
    missing = [u for u in trials.utterances if u not in embeddings]
    if missing:
        raise DataError(f"no embedding for {len(missing)} trial utterance(s), e.g. {missing[0]}")
    ids = trials.utterances
    index = {u: i for i, u in enumerate(ids)}
    mat = l2_normalise(np.stack([embeddings[u] for u in ids]))
    e = mat[[index[u] for u in trials.enroll]]
    t = mat[[index[u] for u in trials.test]]
    return np.einsum("ij,ij->i", e, t)


def embed_all(embed: Callable[[np.ndarray], np.ndarray], feats: Mapping[str, np.ndarray] | None = None,
              ids: Iterable[str] = (), loader: Callable[[str], np.ndarray] | None = None,
              progress: bool = True) -> dict[str, np.ndarray]:
    """Embed whole utterances one at a time (batch 1, as on a device).

    `embed` maps float32 [frames, n_mels] to a 1-D embedding; features come from `feats[id]`
    or `loader(id)`.
    """

    ids = list(ids)
    out: dict[str, np.ndarray] = {}
    for u in progress_bar(ids, desc="embedding", disable=not progress, leave=False):
        x = loader(u) if loader is not None else feats[u]  # type: ignore[index]
        out[u] = np.asarray(embed(np.asarray(x, dtype=np.float32))).reshape(-1)
    return out


def as_norm(scores: np.ndarray, embeddings: Mapping[str, np.ndarray], trials: Trials,
            cohort: np.ndarray, top_k: int) -> np.ndarray:
    """Adaptive symmetric score normalisation (AS-norm; Matejka et al., 2017, as WeSpeaker's
    recipes): each side of a trial is scored against the cohort, and its `top_k` best cohort
    scores give the mean and sd that normalise the trial score; the two sides are averaged.
    `cohort` holds embeddings from the non-test side (one row each, any scale)."""
    if len(cohort) == 0:
        raise DataError("AS-norm: the cohort is empty (no train-split utterances)")
    k = min(int(top_k), len(cohort))
    ids = trials.utterances
    index = {u: i for i, u in enumerate(ids)}
    mat = l2_normalise(np.stack([embeddings[u] for u in ids]))
    top = np.sort(mat @ l2_normalise(cohort).T, axis=1)[:, -k:]
    mu, sd = top.mean(axis=1), np.maximum(top.std(axis=1), 1e-6)
    e = np.array([index[u] for u in trials.enroll])
    t = np.array([index[u] for u in trials.test])
    return 0.5 * ((scores - mu[e]) / sd[e] + (scores - mu[t]) / sd[t])


def speaker_means(embeddings: Mapping[str, np.ndarray], speaker_of: Mapping[str, str]) -> np.ndarray:
    """One unit-length mean embedding per speaker (the cohort WeSpeaker's AS-norm uses)."""
    by: dict[str, list[np.ndarray]] = {}
    for u, e in embeddings.items():
        by.setdefault(speaker_of[u], []).append(l2_normalise(e))
    return np.stack([l2_normalise(np.mean(v, axis=0)) for _, v in sorted(by.items())])
