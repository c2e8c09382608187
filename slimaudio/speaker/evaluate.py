"""Verification evaluation: embed whole test utterances (batch 1), cosine-score the trials,
EER / minDCF (slimaudio.metrics) and DET curves."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from slimaudio import metrics
from slimaudio.datasets.speakers import SpeakerData
from slimaudio.errors import DataError
from slimaudio.progress import progress_bar
from slimaudio.speaker.scoring import Trials, cosine_scores, embed_all


@dataclass
class Verification:
    metrics: dict[str, float]    # eer (percent), min_dcf, min_dcf_p05
    scores: np.ndarray
    labels: np.ndarray
    embeddings: Mapping[str, np.ndarray] | None = None  # of the trial utterances, when kept

    def as_dict(self) -> dict[str, object]:
        return {**self.metrics, "scores": self.scores, "labels": self.labels,
                "embeddings": self.embeddings}


def score_trials(embeddings: Mapping[str, np.ndarray], trials: Trials) -> Verification:
    scores = cosine_scores(embeddings, trials)
    return Verification(metrics.verification_metrics(scores, trials.labels), scores,
                        np.asarray(trials.labels), embeddings)


def torch_embedder(model: nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    model.eval()

    def embed(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x)[None]).numpy()[0]

    return embed


def evaluate_torch(model: nn.Module, data: SpeakerData, progress: bool = True) -> Verification:
    emb = embed_all(torch_embedder(model), ids=data.trials.utterances, loader=data.utterance,
                    progress=progress)
    return score_trials(emb, data.trials)


def cohort_embeddings(embed: Callable[[np.ndarray], np.ndarray], data: SpeakerData,
                      per_speaker: int, progress: bool = True) -> np.ndarray:
    """Speaker-mean embeddings of the train split (its first `per_speaker` utterances each):
    the AS-norm cohort, never test audio."""
    from slimaudio.speaker.scoring import speaker_means

    train = data.split("train")
    if train.empty:
        raise DataError(f"{data.root}: no train-split utterances for the AS-norm cohort")
    picked = train.groupby("speaker", sort=True).head(per_speaker)
    emb = embed_all(embed, ids=picked["utt_id"], loader=data.utterance, progress=progress)
    return speaker_means(emb, dict(zip(picked["utt_id"], picked["speaker"], strict=True)))


def normalised(ver: Verification, trials: Trials, cohort: np.ndarray, top_k: int) -> Verification:
    """The same trials scored with AS-norm."""
    from slimaudio.speaker.scoring import as_norm

    assert ver.embeddings is not None, "score_trials keeps the embeddings"
    scores = as_norm(ver.scores, ver.embeddings, trials, cohort, top_k)
    return Verification(metrics.verification_metrics(scores, trials.labels), scores, ver.labels)


# -------------------------------------------------------- frozen-trunk caching (PWL study)


def trunk_cache(model: nn.Module, data: SpeakerData, progress: bool = True) -> dict[str, torch.Tensor]:
    """Trunk outputs [1, mfa_channels, frames] of every trial utterance, for head-only scoring."""

    model.eval()
    out: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for u in progress_bar(data.trials.utterances, desc="trunk", disable=not progress, leave=False):
            out[u] = model.trunk(torch.from_numpy(data.utterance(u))[None]).clone()
    return out


def evaluate_head(model: nn.Module, cache: Mapping[str, torch.Tensor], trials: Trials) -> Verification:
    """Score with the model's head on cached trunk outputs (same numbers as the full model)."""
    model.eval()
    with torch.inference_mode():
        emb = {u: model.head(x).numpy()[0] for u, x in cache.items()}
    return score_trials(emb, trials)


# ------------------------------------------------------------------------------- DET plots


def det_frame(scores: np.ndarray, labels: np.ndarray, max_points: int = 400) -> pd.DataFrame:
    """DET points (FAR, FRR in percent), thinned to at most `max_points` rows."""
    d = metrics.det_curve(scores, labels)
    idx = np.unique(np.linspace(0, len(d.far) - 1, min(max_points, len(d.far))).astype(int))
    return pd.DataFrame({"far": 100 * d.far[idx], "frr": 100 * d.frr[idx]})


def det_figure(curves: Mapping[str, Verification], title: str = "DET") -> Any:
    """DET curves on normal-deviate axes, one line per system, EER in the legend (a matplotlib
    Figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    ticks = np.array([0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 40])
    fig, ax = plt.subplots(figsize=(5.5, 5))
    clip = (1e-4, 1 - 1e-4)
    for name, v in curves.items():
        d = metrics.det_curve(v.scores, v.labels)
        ax.plot(norm.ppf(np.clip(d.far, *clip)), norm.ppf(np.clip(d.frr, *clip)),
                label=f"{name} (EER {v.metrics['eer']:.2f}%)", lw=1.2)
    pos = norm.ppf(ticks / 100)
    ax.set_xticks(pos, [f"{t:g}" for t in ticks])
    ax.set_yticks(pos, [f"{t:g}" for t in ticks])
    ax.set_xlim(pos[0], pos[-1])
    ax.set_ylim(pos[0], pos[-1])
    ax.set_xlabel("false alarm rate (%)")
    ax.set_ylabel("miss rate (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig
