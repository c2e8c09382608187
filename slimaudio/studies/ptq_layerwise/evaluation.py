"""Scoring a model: EER over the trial list, embedding drift, the latency input.

Every trial utterance is embedded one at a time (batch 1, whole utterance unless
`eval.max_frames` crops it) and cosine-scored; EER in percent.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from slimaudio.compress import onnx_int8
from slimaudio.datasets.speakers import SpeakerData
from slimaudio.errors import DataError
from slimaudio.metrics import verification_metrics
from slimaudio.speaker.scoring import cosine_scores
from slimaudio.speaker.uncertainty import speakers_of

INPUT = "feats"
OUTPUT = "embedding"


class EvalSet:
    """The trial list and the features of every trial utterance, loaded once for all rows."""

    def __init__(self, corpus: SpeakerData, max_frames: int | None = None) -> None:
        trials = corpus.trials
        index = {u: i for i, u in enumerate(corpus.manifest["utt_id"])}
        split = corpus.manifest["split"]
        bad = [u for u in trials.utterances if split.iat[index[u]] != "test"]
        if bad:
            raise DataError(f"trials.txt uses non-test utterance(s), e.g. {bad[0]}")
        self.trials = trials
        self.speaker_of = speakers_of(corpus.manifest)
        self.inputs = {u: corpus.feats_of(index[u], 0, max_frames)[None]
                       for u in trials.utterances}

    def embed(self, model: str | os.PathLike[str], threads: int = 1, progress: bool = True,
              config: Mapping[str, str] | None = None) -> dict[str, np.ndarray]:
        from tqdm import tqdm

        sess = onnx_int8.ort_session(model, threads, config)
        name = sess.get_inputs()[0].name
        return {u: sess.run(None, {name: x})[0].reshape(-1)
                for u, x in tqdm(self.inputs.items(), desc=f"eval {Path(model).stem}",
                                 disable=not progress, leave=False)}

    def scores(self, model: str | os.PathLike[str], threads: int = 1, progress: bool = True,
               config: Mapping[str, str] | None = None) -> np.ndarray:
        """The cosine score of every trial."""
        return cosine_scores(self.embed(model, threads, progress, config), self.trials)

    def evaluate(self, model: str | os.PathLike[str], threads: int = 1, progress: bool = True,
                 config: Mapping[str, str] | None = None) -> dict[str, float]:
        return verification_metrics(self.scores(model, threads, progress, config),
                                    self.trials.labels)


def embedding_cosine(float_model: Path, quant_model: Path,
                     inputs: Sequence[Mapping[str, np.ndarray]], threads: int,
                     config: Mapping[str, str] | None = None) -> float:
    """Mean cosine between the float and the quantized model's embeddings of `inputs`."""
    fs = onnx_int8.ort_session(float_model, threads)
    qs = onnx_int8.ort_session(quant_model, threads, config)
    cos = []
    for feed in inputs:
        a, b = fs.run(None, dict(feed))[0].ravel(), qs.run(None, dict(feed))[0].ravel()
        cos.append(float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12)))
    return float(np.mean(cos))


def latency_input(corpus: SpeakerData, frames: int) -> np.ndarray:
    """A real test utterance, `frames` long (the longest one; tiled if it is shorter)."""
    test = np.flatnonzero(corpus.manifest["split"].to_numpy(str) == "test")
    if len(test) == 0:
        raise DataError("manifest.csv has no test-split utterances")
    lengths = corpus.manifest["feat_frames"].to_numpy()
    longest = max(test, key=lambda i: lengths[i])
    x = corpus.feats_of(int(longest))
    if len(x) < frames:
        x = np.resize(x, (frames, x.shape[1]))
    return x[:frames][None].astype(np.float32)


def check_n_mels(model: str | os.PathLike[str], float_model: Path, corpus: SpeakerData) -> None:
    """The model takes as many mel bands as the corpus has (when its input says)."""
    import onnx

    m = onnx.load(str(float_model), load_external_data=False)
    dims = m.graph.input[0].type.tensor_type.shape.dim
    n_mels = dims[-1].dim_value if dims and dims[-1].HasField("dim_value") else None
    if n_mels is not None and n_mels != corpus.n_mels:
        raise DataError(f"{model}: takes {n_mels} mel bands but {corpus.root}/feats.npy has "
                        f"{corpus.n_mels}")
