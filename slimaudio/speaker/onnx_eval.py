"""An ONNX speaker-embedding model scored as every study that quantizes or converts one does
(ptq_layerwise, pwl_int8, runtimes): EER over the trial list, embedding drift, the latency input.

Every trial utterance is embedded one at a time (batch 1, whole utterance unless
`eval.max_frames` crops it) and cosine-scored; EER in percent. Features are held as
[1, frames, features] and fed to the model's input in its layout (ModelIO, params
`ecapa.init.input`); the embedding is the model's first output.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slimaudio.compress import onnx_int8
from slimaudio.datasets.speakers import SpeakerData
from slimaudio.errors import DataError, ParamError
from slimaudio.metrics import verification_metrics
from slimaudio.progress import progress_bar
from slimaudio.schemas.ecapa import ModelInput
from slimaudio.speaker.scoring import cosine_scores
from slimaudio.speaker.uncertainty import speakers_of


@dataclass(frozen=True)
class ModelIO:
    """Where the study feeds a model its features and reads its embedding."""

    input: str
    layout: str  # BTF [batch, frames, features] | BFT [batch, features, frames]
    output: str

    def feed(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """{input: x} for features x [batch, frames, features], in the model's layout."""
        return {self.input: x if self.layout == "BTF"
                else np.ascontiguousarray(x.transpose(0, 2, 1))}


def model_io(model: str | os.PathLike[str], float_model: Path, corpus: SpeakerData,
             cfg: ModelInput) -> ModelIO:
    """The input (params `input.name`, else the first) and first output of the float model,
    checked: three dimensions, a dynamic frames axis (utterances of any length are fed) and,
    when the input says, as many features as the corpus has. `model` names the file."""
    import onnx

    g = onnx.load(str(float_model), load_external_data=False).graph
    inits = {i.name for i in g.initializer}
    inputs = {i.name: i for i in g.input if i.name not in inits}
    if not inputs or not g.output:
        raise DataError(f"{model}: the model has no input or no output")
    name = cfg.name or next(iter(inputs))
    if name not in inputs:
        raise ParamError(f"params: ecapa.init.input.name = {name!r}: {model} has no such "
                         f"input (inputs: {', '.join(inputs)})")
    t = inputs[name].type.tensor_type
    if t.HasField("shape"):
        _check_dims(model, name, list(t.shape.dim), cfg.layout, corpus)
    return ModelIO(input=name, layout=cfg.layout, output=g.output[0].name)


def _check_dims(model: str | os.PathLike[str], name: str, dims: list, layout: str,
                corpus: SpeakerData) -> None:
    if len(dims) != 3:
        raise DataError(f"{model}: input {name!r} has {len(dims)} dimensions; the study feeds "
                        f"3 (layout {layout})")
    frames, feats = (dims[1], dims[2]) if layout == "BTF" else (dims[2], dims[1])
    if frames.HasField("dim_value"):
        raise DataError(f"{model}: input {name!r} has a fixed frames dimension "
                        f"({frames.dim_value}, layout {layout}); the study feeds utterances of any "
                        "length: export it with a dynamic frames axis (or check "
                        "ecapa.init.input.layout)")
    n_mels = feats.dim_value if feats.HasField("dim_value") else None
    if n_mels is not None and n_mels != corpus.n_mels:
        raise DataError(f"{model}: takes {n_mels} mel bands but {corpus.root}/feats.npy has "
                        f"{corpus.n_mels}")


class EvalSet:
    """The trial list and the features of every trial utterance ([1, frames, features]),
    loaded once for all rows; `io` says how they are fed."""

    def __init__(self, corpus: SpeakerData, io: ModelIO, max_frames: int | None = None) -> None:
        trials = corpus.trials
        index = {u: i for i, u in enumerate(corpus.manifest["utt_id"])}
        split = corpus.manifest["split"]
        bad = [u for u in trials.utterances if split.iat[index[u]] != "test"]
        if bad:
            raise DataError(f"trials.txt uses non-test utterance(s), e.g. {bad[0]}")
        self.trials = trials
        self.io = io
        self.speaker_of = speakers_of(corpus.manifest)
        self.inputs = {u: corpus.feats_of(index[u], 0, max_frames)[None]
                       for u in trials.utterances}

    def embed(self, model: str | os.PathLike[str], threads: int = 1, progress: bool = True,
              config: Mapping[str, str] | None = None) -> dict[str, np.ndarray]:
        sess = onnx_int8.ort_session(model, threads, config)
        out = [self.io.output]
        return {u: sess.run(out, self.io.feed(x))[0].reshape(-1)
                for u, x in progress_bar(self.inputs.items(), desc=f"eval {Path(model).stem}",
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
    """Mean cosine between the float and the quantized model's embeddings (first outputs) of
    `inputs` (feeds)."""
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
