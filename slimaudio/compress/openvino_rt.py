"""OpenVINO CPU runtime for the ECAPA-TDNN ONNX exports: float IR, NNCF INT8 IR, bf16 execution.

- `save_float`, `quantize_nncf`: an ONNX model to OpenVINO IR (.xml + .bin, written atomically),
  float32 as is or INT8 by NNCF post-training quantization.
- `input_norm_scope`: the ops NNCF must leave float (the in-graph cepstral mean normalisation).
- `compile`, `ov_embedder`, `OpenVinoFactory`: a compiled model, an embedding function like
  slimaudio.speaker.export.onnx_embedder, a picklable latency runner factory.
- `has_bf16`, `model_size`, `ignored_names`, `ov_available`: what a report states.

Telemetry: importing openvino (its ovc converter) and nncf sends usage events and writes a client
id under ~/intel unless the user opted out; this module declines consent before either is
imported (`_disable_telemetry`, run when this module is imported: import it before anything
imports openvino), so nothing tries the network.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from slimaudio.errors import DataError, ParamError

if TYPE_CHECKING:
    import openvino as ov

PathLike = str | os.PathLike[str]
PRECISIONS = ("f32", "bf16")
CONV_TYPES = frozenset({"Convolution", "GroupConvolution"})
_NNCF_IGNORED = ["nncf", "quantization", "ignored_scope", "names"]  # where NNCF records it


def ov_available() -> bool:
    """Whether openvino and nncf are installed (without importing them)."""
    return all(importlib.util.find_spec(m) is not None for m in ("openvino", "nncf"))


def _disable_telemetry() -> None:
    """Decline telemetry consent for openvino_telemetry (used by openvino's converter and NNCF).

    Its only switches are a consent file in the home folder and CI=true; the former is a change
    outside the project and the latter changes torch and dvc behaviour too, so the consent check
    is answered 'declined' in this process. NNCF_CI=1 makes NNCF use its telemetry stub.
    """
    os.environ.setdefault("NNCF_CI", "1")
    try:
        from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker
    except ImportError:
        return

    def declined(self: Any, *args: Any, **kwargs: Any) -> Any:
        return ConsentCheckResult.DECLINED

    OptInChecker.check = declined  # type: ignore[method-assign]


# At import, so that importing this module before openvino is all it takes (an `import openvino`
# that comes first has already sent its event).
_disable_telemetry()


def _ov() -> Any:
    import openvino

    return openvino


def _nncf() -> Any:
    import nncf

    return nncf


@contextlib.contextmanager
def _quiet_nncf() -> Iterator[None]:
    """NNCF logs INFO lines and draws rich progress bars on the global rich console."""
    import rich

    from slimaudio.runtime import quiet_logger

    console = rich.get_console()
    old = console.quiet
    console.quiet = True
    try:
        with quiet_logger("nncf", logging.WARNING):
            yield
    finally:
        console.quiet = old


def _read(model: PathLike | ov.Model) -> ov.Model:
    """An ov.Model from a path (ONNX or IR) or an ov.Model."""
    if not isinstance(model, str | os.PathLike):
        return model
    if not Path(model).is_file():
        raise DataError(f"{model}: no such model")
    return _ov().Core().read_model(os.fspath(model))


# ----------------------------------------------------------------------------- quantization


def input_norm_scope(model: PathLike | ov.Model) -> list[str]:
    """Names of the ops from the first input to the first convolution, that one excluded.

    In our ECAPA graph these are Transpose, ReduceMean and Subtract: the per-utterance mean
    subtraction. NNCF otherwise quantizes the raw features and their mean before the Subtract,
    and quantizing a small deviation around a large offset lost most of the embedding (cosine
    0.81 on real features). `model`: an ov.Model or a path to ONNX / IR.
    """
    ov_model = _read(model)
    param = ov_model.get_parameters()[0]
    after: set[str] = {param.get_friendly_name()}  # everything fed (transitively) by the input
    conv = None
    for op in ov_model.get_ordered_ops():
        if any(v.get_node().get_friendly_name() in after for v in op.input_values()):
            if op.get_type_name() in CONV_TYPES:
                conv = op
                break
            after.add(op.get_friendly_name())
    if conv is None:
        raise DataError("no convolution is fed by the model's first input")
    # Walk back from the convolution's data input, staying on the input's side.
    names: list[str] = []
    stack = [conv.input_value(0).get_node()]
    while stack:
        node = stack.pop()
        name = node.get_friendly_name()
        if name not in after or name in names or node.get_type_name() == "Parameter":
            continue
        names.append(name)
        stack.extend(v.get_node() for v in node.input_values())
    return sorted(names)


def quantize_nncf(float_onnx: PathLike, out_xml: PathLike, calibration: Sequence[np.ndarray],
                  ignored: Sequence[str] | None = None) -> Path:
    """INT8 IR by NNCF (performance preset: symmetric activations and weights) from every
    calibration feed (float32 [1, frames, n_mels] for the first input).

    `ignored`: op names left float; None means `input_norm_scope`. NNCF records them in the IR
    (`ignored_names` reads them back).
    """
    if not calibration:
        raise ParamError("quantize_nncf: no calibration inputs")
    nncf = _nncf()
    model = _read(float_onnx)
    names = input_norm_scope(model) if ignored is None else list(ignored)
    feed = model.get_parameters()[0].get_friendly_name()
    data = nncf.Dataset(list(calibration), lambda x: {feed: np.asarray(x, np.float32)})
    with _quiet_nncf():
        quantized = nncf.quantize(
            model, data, preset=nncf.QuantizationPreset.PERFORMANCE,
            subset_size=len(calibration), ignored_scope=nncf.IgnoredScope(names=names))
    return _save_ir(quantized, out_xml)


def ignored_names(xml_path: PathLike) -> list[str]:
    """The ignored-scope names NNCF recorded in a quantized IR ([] when none or not NNCF's)."""
    model = _read(xml_path)
    try:  # has_rt_info raises, rather than answers False, when a parent key is missing
        value = model.get_rt_info(_NNCF_IGNORED).astype(str)
    except RuntimeError:
        return []
    return list(ast.literal_eval(value))  # NNCF writes the Python repr of the list


# ----------------------------------------------------------------------------- IR files


def save_float(float_onnx: PathLike, out_xml: PathLike) -> Path:
    """The float32 model as OpenVINO IR (weights kept float32)."""
    return _save_ir(_read(float_onnx), out_xml)


def _save_ir(model: ov.Model, out_xml: PathLike) -> Path:
    """ov.save_model into a scratch folder, then each file through slimaudio.atomic: the .bin is
    moved into place first, the .xml last (an .xml present means its .bin is), and a writer
    killed outright leaves only temporaries that the next write removes."""
    from slimaudio.atomic import atomic_path

    xml = Path(out_xml)
    if xml.suffix != ".xml":
        raise ParamError(f"{xml}: an OpenVINO IR path must end in .xml")
    with (tempfile.TemporaryDirectory() as scratch, atomic_path(xml) as tmp_xml,
          atomic_path(xml.with_suffix(".bin")) as tmp_bin):
        saved = Path(scratch) / xml.name
        # compress_to_fp16 defaults to True: the float baseline would silently become fp16.
        _ov().save_model(model, os.fspath(saved), compress_to_fp16=False)
        shutil.move(saved.with_suffix(".bin"), tmp_bin)
        shutil.move(saved, tmp_xml)
    return xml


def model_size(xml_path: PathLike) -> int:
    """Bytes of the IR: .xml plus .bin."""
    xml = Path(xml_path)
    return xml.stat().st_size + xml.with_suffix(".bin").stat().st_size


# ----------------------------------------------------------------------------- execution


def has_bf16() -> bool:
    """Whether the CPU computes bf16 natively (AVX512-BF16 or AMX-BF16) and OpenVINO says so;
    elsewhere OpenVINO falls back to f32 and a "bf16" timing would be a float one."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").split()
    except OSError:
        return False
    if not {"avx512_bf16", "amx_bf16"} & set(flags) or not ov_available():
        return False
    return "BF16" in _ov().Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def compile(model_path: PathLike | ov.Model, threads: int = 1, precision: str = "f32",
            shape: Sequence[int] | None = None) -> ov.CompiledModel:
    """An ov.CompiledModel on the CPU: one stream of `threads` threads, latency hint, no pinning
    (the machine is shared; ORT does not pin either), `precision` f32 or bf16 (native only).

    `shape`: make the first input static (e.g. [1, frames, n_mels]) before compiling; None keeps
    the dynamic batch and frames, as ONNX Runtime runs them.
    """
    if threads < 1:
        raise ParamError(f"threads {threads}: expected >= 1")
    if precision not in PRECISIONS:
        raise ParamError(f"precision {precision!r}: expected one of {PRECISIONS}")
    if precision == "bf16" and not has_bf16():
        raise ParamError("precision bf16: this CPU has no native bf16 (avx512_bf16 / amx_bf16)")
    core = _ov().Core()
    model = _read(model_path)
    if shape is not None:
        model.reshape({0: list(shape)})
    config: dict[str, Any] = {
        "INFERENCE_NUM_THREADS": int(threads), "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": precision, "ENABLE_CPU_PINNING": False,
    }
    supported = core.get_property("CPU", "SUPPORTED_PROPERTIES")
    config = {k: v for k, v in config.items() if k in supported}  # names vary by release
    return core.compile_model(model, "CPU", config)


def ov_embedder(model_path: PathLike | ov.Model, threads: int = 1,
                precision: str = "f32") -> Callable[[np.ndarray], np.ndarray]:
    """A function float32 [frames, n_mels] -> embedding (batch 1, input [1, frames, n_mels])."""
    request = compile(model_path, threads, precision).create_infer_request()

    def embed(x: np.ndarray) -> np.ndarray:
        feed = np.ascontiguousarray(np.asarray(x, dtype=np.float32)[None])
        return request.infer({0: feed})[0].reshape(-1)  # infer copies the output out

    return embed


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no truth value, hence no __eq__
class OpenVinoFactory:
    """Picklable: a worker process calls it to compile the model and get a runner (a
    zero-argument callable doing one inference, for slimaudio.latency).

    `feeds`: input name -> array, or one array for the first input. `static`: compile for the
    feeds' shapes (OpenVINO's advice for latency) instead of the dynamic graph.
    """

    model: str
    feeds: Mapping[str, np.ndarray] | np.ndarray
    threads: int = 1
    precision: str = "f32"
    static: bool = False

    def __call__(self) -> Callable[[], Any]:
        raw = self.feeds if isinstance(self.feeds, Mapping) else {0: self.feeds}
        feeds = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in raw.items()}
        shape = next(iter(feeds.values())).shape if self.static else None  # first input's
        request = compile(self.model, self.threads, self.precision, shape).create_infer_request()

        def run() -> Any:
            # Shared memory both ways: no copy of the features in, nor of the embedding out.
            return request.infer(feeds, share_inputs=True, share_outputs=True)

        return run
