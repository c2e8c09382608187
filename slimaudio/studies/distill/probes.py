"""The downstream suite (NOSS-like): logistic-regression probes on frozen embeddings.

Every probe utterance comes from the test-split speakers, whom neither the teacher nor any
student saw in training. An utterance's embedding is the mean of its patches' embeddings
(as NOSS averages TRILL frames). Tasks and their train/test splits:

  speaker  speaker identification: each speaker's utterances alternate between probe-train
           and probe-test (so both sides hold every speaker)
  masked   masked-speech detection (the synthetic corpus's `masked` label)
  arousal  high/low arousal (`arousal`)
  group    sex-like voice group (`group`)

The paralinguistic tasks are split by speaker (half of the probe speakers train the probe,
the other half test it), so a probe cannot pass by recognising voices. The roles are decided
once, in the distill_targets stage, and every student is scored on the same splits. Quality is the
mean accuracy over the tasks. Each probing stage saves its answer for every probe-test
utterance (predictions_frame), from which the report draws the intervals (intervals.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from slimaudio import runtime
from slimaudio.errors import DataError, ParamError
from slimaudio.schemas.distill import TASKS
from slimaudio.studies.distill.data import QUALITY

if TYPE_CHECKING:  # pandas is imported lazily: a probe-free caller need not load it
    import pandas as pd

LABEL_COLUMN = {"speaker": "speaker", "masked": "masked", "arousal": "arousal", "group": "group"}
ROLE_COLUMN = {"speaker": "role_speaker", "masked": "role_label", "arousal": "role_label",
               "group": "role_label"}


def assign_roles(utts: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Add `role_speaker` (alternating within speaker) and `role_label` (by speaker halves)."""
    out = utts.reset_index(drop=True).copy()
    rank = out.groupby("speaker").cumcount()
    out["role_speaker"] = np.where(rank % 2 == 0, "train", "test")
    speakers = np.array(sorted(out["speaker"].unique()))
    order = runtime.rng(seed, "distill.probe_split").permutation(len(speakers))
    train_spk = set(speakers[order[: (len(speakers) + 1) // 2]])
    out["role_label"] = np.where(out["speaker"].isin(train_spk), "train", "test")
    return out


def utterance_embeddings(patch_emb: np.ndarray, patch_utt: np.ndarray, n_utts: int) -> np.ndarray:
    """Mean of the patch embeddings of each utterance ([n_utts, dim])."""
    patch_emb = np.asarray(patch_emb, dtype=np.float64)
    patch_utt = np.asarray(patch_utt, dtype=np.int64)
    if len(patch_emb) != len(patch_utt):
        raise ValueError("one utterance index per patch embedding is needed")
    sums = np.zeros((n_utts, patch_emb.shape[1]))
    np.add.at(sums, patch_utt, patch_emb)
    counts = np.bincount(patch_utt, minlength=n_utts)
    if (counts == 0).any():
        raise DataError(f"{int((counts == 0).sum())} probe utterance(s) have no patch")
    return sums / counts[:, None]


@dataclass(frozen=True, eq=False)
class ProbeResult:
    accuracy: float
    n_train: int
    n_test: int
    n_classes: int
    chance: float          # accuracy of always answering the probe-train majority class
    # per probe-test utterance (the bootstrap's observations): its row in probe_utts.csv,
    # its label and the probe's answer
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    truth: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=str))
    predicted: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=str))


def probe(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
          c: float = 1.0, max_iter: int = 2000, seed: int = 0) -> ProbeResult:
    """Standardise, fit a multinomial logistic regression, return test accuracy."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    if len(x_train) == 0 or len(x_test) == 0:
        raise DataError("a probe needs both train and test utterances")
    classes, counts = np.unique(y_train, return_counts=True)
    majority = classes[np.argmax(counts)]
    chance = float(np.mean(y_test == majority))
    if len(classes) < 2:
        # Only on tiny corpora: one class to learn, so the probe is the majority rule.
        return ProbeResult(chance, len(y_train), len(y_test), 1, chance,
                           truth=np.asarray(y_test), predicted=np.full(len(y_test), majority))
    scaler = StandardScaler().fit(x_train)
    clf = LogisticRegression(C=c, max_iter=max_iter, random_state=seed)
    clf.fit(scaler.transform(x_train), y_train)
    pred = clf.predict(scaler.transform(x_test))
    acc = float(np.mean(pred == y_test))
    return ProbeResult(acc, len(y_train), len(y_test), len(classes), chance,
                       truth=np.asarray(y_test), predicted=np.asarray(pred))


def evaluate(utt_emb: np.ndarray, utts: pd.DataFrame, tasks: Sequence[str],
             c: float = 1.0, seed: int = 0) -> dict[str, ProbeResult]:
    """Run every probe task on utterance embeddings (rows aligned with `utts`)."""
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ParamError(f"params: distill.probe.tasks has unknown task(s) {unknown} "
                         f"(known: {', '.join(TASKS)})")
    if len(utt_emb) != len(utts):
        raise ValueError("one embedding per probe utterance is needed")
    if not np.isfinite(utt_emb).all():
        raise DataError("probe embeddings contain NaN or inf")
    from threadpoolctl import threadpool_limits

    out = {}
    # One BLAS thread: these problems are tiny, and OpenBLAS threads fighting over two busy
    # cores made the 40-class probe 50x slower (14 s instead of 0.3 s) on this machine.
    with threadpool_limits(1):
        for task in tasks:
            y = utts[LABEL_COLUMN[task]].astype(str).to_numpy()
            role = utts[ROLE_COLUMN[task]].to_numpy()
            tr, te = role == "train", role == "test"
            res = probe(utt_emb[tr], y[tr], utt_emb[te], y[te], c=c, seed=seed)
            out[task] = replace(res, rows=np.flatnonzero(te))
    return out


def accuracy_columns(results: Mapping[str, ProbeResult]) -> dict[str, float]:
    """{acc_<task>: accuracy, ..., mean_accuracy: mean over tasks}."""
    cols = {f"acc_{t}": r.accuracy for t, r in results.items()}
    cols[QUALITY] = float(np.mean([r.accuracy for r in results.values()]))
    return cols


PREDICTIONS_COLUMNS = ("task", "row", "label", "predicted")


def predictions_frame(results: Mapping[str, ProbeResult]) -> pd.DataFrame:
    """One row per (task, probe-test utterance): `row` in probe_utts.csv, label, answer. The
    stage that probes a model saves it, so intervals can be drawn without probing again."""
    import pandas as pd

    parts = [pd.DataFrame({"task": t, "row": r.rows, "label": r.truth, "predicted": r.predicted})
             for t, r in results.items()]
    if not parts:
        return pd.DataFrame(columns=list(PREDICTIONS_COLUMNS))
    return pd.concat(parts, ignore_index=True)[list(PREDICTIONS_COLUMNS)]


def read_predictions(path: str | os.PathLike[str], stage: str) -> pd.DataFrame:
    """A predictions.csv as predictions_frame wrote it (labels read as text)."""
    import pandas as pd

    if not os.path.exists(path):
        raise DataError(f"{path}: missing (run the {stage} stage)")
    df = pd.read_csv(path, dtype={"task": str, "label": str, "predicted": str})
    missing = [c for c in PREDICTIONS_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{path}: not a probe predictions file (missing {', '.join(missing)})")
    return df
