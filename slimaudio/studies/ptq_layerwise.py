"""Study: per-layer INT8 post-training quantization of ECAPA-TDNN, with a choice under a budget.

Reproduces Hong, Chung, Kang, "Optimizing DNN-Based Speaker Verification: A Framework for
Efficient Model Quantization": quantize each layer group of a trained ECAPA-TDNN alone (the
rest stays float), measure EER and size, then quantize a chosen set. The paper used
pytorch-quantization + TensorRT on a GPU; here the engine is ONNX Runtime on the CPU.

Rows (each one an ONNX file that loads on its own):
  none                 the float model (after ORT pre-processing, the graph every row derives from)
  conv_in ... fc       one layer group quantized (static QDQ, per-channel symmetric INT8 weights)
  all                  every node of the quantized op types (ptq.op_types), including the few
                       outside the groups (the input transpose, the dense sums, the MFA concat)
  paper_choice         every group except block2 and block3 (the paper's proposal)
  proposed             the automatic choice (`greedy_search`) under ptq.budget_eer; a final
                       check keeps instead any already-measured row (a group alone, all,
                       paper_choice) that is within the budget and smaller
  dynamic, float16     comparison rows: ORT dynamic quantization, float16 weights and compute

Every quantized row shares one calibration (activation ranges cached as JSON), so rows differ
only in which nodes are quantized.

Evaluation: every trial utterance is embedded one at a time (batch 1, whole utterance unless
ptq.eval.max_frames crops it), cosine-scored; EER in percent. Latency: slimaudio.latency,
batch 1, `ptq.latency.frames` frames, base.threads threads, all rows interleaved.
"""

from __future__ import annotations

import os
import platform
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from slimaudio.compress import onnx_ptq as ptq
from slimaudio.errors import DataError
from slimaudio.latency import measure_interleaved, onnx_runner
from slimaudio.metrics import file_size, verification_metrics
from slimaudio.speaker.scoring import Trials, cosine_scores, read_trials

GROUPS = ptq.GROUPS
PAPER_CHOICE: tuple[str, ...] = ("conv_in", "block1", "conv_mfa", "asp", "fc")
ROWS: tuple[str, ...] = ("none", *GROUPS, "all", "paper_choice", "proposed", "dynamic", "float16")
COLUMNS = ["quantized", "eer", "delta_eer", "min_dcf", "size_bytes", "size_mib", "size_ratio",
           "latency_ms", "speedup"]
INPUT = "feats"
OUTPUT = "embedding"


# ----------------------------------------------------------------------------- evaluation


class EvalSet:
    """The trial list and the features of every trial utterance, loaded once for all rows."""

    def __init__(self, utts: ptq.Utterances, trials: Trials, max_frames: int | None = None) -> None:
        index = utts.index()
        missing = [u for u in trials.utterances if u not in index]
        if missing:
            raise DataError(f"trials.txt names {len(missing)} utterance(s) not in manifest.csv, "
                            f"e.g. {missing[0]}")
        bad = [u for u in trials.utterances if utts.split[index[u]] != "test"]
        if bad:
            raise DataError(f"trials.txt uses non-test utterance(s), e.g. {bad[0]}")
        self.trials = trials
        self.inputs = {u: utts.feats_of(index[u], 0, max_frames)[None] for u in trials.utterances}

    def embed(self, model: str | os.PathLike[str], threads: int = 1, progress: bool = True,
              config: Mapping[str, str] | None = None) -> dict[str, np.ndarray]:
        from tqdm import tqdm

        sess = ptq.ort_session(model, threads, config)
        name = sess.get_inputs()[0].name
        return {u: sess.run(None, {name: x})[0].reshape(-1)
                for u, x in tqdm(self.inputs.items(), desc=f"eval {Path(model).stem}",
                                 disable=not progress, leave=False)}

    def evaluate(self, model: str | os.PathLike[str], threads: int = 1, progress: bool = True,
                 config: Mapping[str, str] | None = None) -> dict[str, float]:
        emb = self.embed(model, threads, progress, config)
        return verification_metrics(cosine_scores(emb, self.trials), self.trials.labels)


# ----------------------------------------------------------------------------- proposed search


@dataclass
class SearchResult:
    """The greedy search for `proposed`, step by step (what metrics.json records)."""

    budget: float
    order: list[str]  # groups by saving per unit of EER loss, best first
    efficiency: dict[str, float]  # bytes saved per EER point lost (inf: no loss)
    predicted: list[str]  # the greedy pick under the additive prediction
    predicted_delta: float
    chosen: list[str]
    chosen_delta: float | None  # measured EER increase of `chosen` (None: the float model)
    steps: list[dict[str, Any]] = field(default_factory=list)
    source: str = "greedy"  # or the already-measured row that replaced it in the final check

    def as_dict(self) -> dict[str, Any]:
        return {k: (v if not isinstance(v, float) or np.isfinite(v) else "inf")
                for k, v in self.__dict__.items()} | {
            "efficiency": {g: (e if np.isfinite(e) else "inf") for g, e in self.efficiency.items()}}


def greedy_search(delta: Mapping[str, float], saving: Mapping[str, float], budget: float,
                  verify: Callable[[tuple[str, ...]], float]) -> SearchResult:
    """Pick the layer groups to quantize: smallest model whose EER increase stays in budget.

    1. Rank groups by saving per unit of EER loss (saving / max(delta, 0)); a group whose
       solo quantization did not raise the EER ranks first, larger saving first.
    2. Walk the ranking, adding a group while the summed solo increases (an additive
       prediction of the joint increase) stay within the budget.
    3. Verify: quantize the pick and measure its EER (`verify` returns the measured increase).
       While it exceeds the budget, back off by dropping the least efficient group left, and
       verify again. The empty set (the float model) is within any budget.
    4. Extend: the joint increase is rarely the sum, so once a set is verified, each group
       left out (in ranking order) whose solo increase still fits next to the measured one is
       added and verified in turn, and kept when the measurement stays within the budget.
    """
    groups = [g for g in delta if g in saving]
    eff = {g: (float("inf") if delta[g] <= 0 else saving[g] / delta[g]) for g in groups}
    order = sorted(groups, key=lambda g: (-eff[g], -saving[g]))
    pick: list[str] = []
    predicted = 0.0
    for g in order:
        cost = max(float(delta[g]), 0.0)
        if saving[g] > 0 and predicted + cost <= budget + 1e-12:
            pick.append(g)
            predicted += cost
    res = SearchResult(budget=budget, order=order, efficiency=eff, predicted=list(pick),
                       predicted_delta=predicted, chosen=[], chosen_delta=None)
    seen: dict[tuple[str, ...], float] = {}

    def check(groups: list[str], action: str) -> float:
        key = tuple(sorted(groups))
        if key in seen:  # measured before (a back-off step): no second evaluation
            return seen[key]
        measured = seen[key] = float(verify(tuple(groups)))
        res.steps.append({"action": action, "groups": list(groups),
                          "measured_delta_eer": measured,
                          "within_budget": measured <= budget + 1e-12})
        return measured

    current = list(pick)
    while current:
        measured = check(current, "verify" if current == pick else "back off")
        if measured <= budget + 1e-12:
            res.chosen, res.chosen_delta = list(current), measured
            break
        current = current[:-1]  # back off: drop the least efficient group
    base = res.chosen_delta if res.chosen_delta is not None else 0.0
    for g in order:
        if g in res.chosen or saving[g] <= 0 or base + max(delta[g], 0.0) > budget + 1e-12:
            continue
        measured = check([*res.chosen, g], "extend")
        if measured <= budget + 1e-12:
            res.chosen, res.chosen_delta, base = [*res.chosen, g], measured, measured
    return res


# ----------------------------------------------------------------------------- study


@dataclass
class Row:
    name: str
    path: Path
    kind: str  # float | static | dynamic | float16
    groups: list[str]
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class StudyResult:
    rows: dict[str, Row]
    search: SearchResult
    errors: list[ptq.ActivationError]
    ablation: list[dict[str, Any]]
    profile: list[dict[str, Any]]
    timings: dict[str, float]
    n_nodes: dict[str, int]
    info: dict[str, Any]

    def table(self) -> Any:
        import pandas as pd

        recs = [{"quantized": r.name, **{c: r.metrics.get(c) for c in COLUMNS[1:]}}
                for r in self.rows.values()]
        return pd.DataFrame(recs, columns=COLUMNS)


def cpu_info() -> dict[str, Any]:
    """CPU model and the SIMD features that decide ORT's integer kernels."""
    flags: set[str] = set()
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("unknown", "x86_64", ""):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {"cpu": model, "avx2": "avx2" in flags, "avx512f": "avx512f" in flags,
            "avx512_vnni": "avx512_vnni" in flags, "avx_vnni": "avx_vnni" in flags,
            "cores": os.cpu_count()}


def _latency_input(utts: ptq.Utterances, frames: int) -> np.ndarray:
    """A real test utterance, `frames` long (the first long enough one; tiled if none is)."""
    test = np.flatnonzero(utts.split == "test")
    if len(test) == 0:
        raise DataError("manifest.csv has no test-split utterances")
    longest = max(test, key=lambda i: utts.frames[i])
    x = utts.feats_of(int(longest))
    if len(x) < frames:
        x = np.resize(x, (frames, x.shape[1]))
    return x[:frames][None].astype(np.float32)


def _model_n_mels(model: Path) -> int | None:
    import onnx

    m = onnx.load(str(model), load_external_data=False)
    dims = m.graph.input[0].type.tensor_type.shape.dim
    return dims[-1].dim_value if dims and dims[-1].HasField("dim_value") else None


# ORT on x86 rewrites int8 (S8S8) QDQ activations to uint8 unless this entry allows int8.
NATIVE_S8S8 = {"session.qdqisint8allowed": "1"}


def _ablation_settings(base: ptq.QuantSettings, name: str
                       ) -> tuple[ptq.QuantSettings, dict[str, str]] | None:
    """`all` with one setting changed (and the session config it runs with); None when the
    configuration already is that variant."""
    from dataclasses import replace

    new = {"s8s8": replace(base, activation_type="int8"),
           "s8s8_native": replace(base, activation_type="int8"),
           "qoperator": replace(base, quant_format="QOperator"),
           "per_tensor": replace(base, per_channel=False),
           "reduce_range": replace(base, reduce_range=True),
           "full_range": replace(base, reduce_range=False),
           "all_ops": replace(base, op_types=None)}[name]
    config = dict(NATIVE_S8S8) if name == "s8s8_native" else {}
    return None if (new == base and not config) else (new, config)


def run_study(cfg: Mapping[str, Any], base: Mapping[str, Any], model: str | os.PathLike[str],
              data_dir: str | os.PathLike[str], models_dir: str | os.PathLike[str],
              progress: bool = True) -> StudyResult:
    """Run every row of the study; quantized models are written into `models_dir`."""
    from tqdm import tqdm

    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    models_dir, data_dir = Path(models_dir), Path(data_dir)
    models_dir.mkdir(parents=True, exist_ok=True)

    def lap(key: str, t0: float) -> None:
        timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0

    t0 = time.perf_counter()
    float_path = ptq.preprocess(model, models_dir / "none.onnx")
    gmap = ptq.group_nodes(float_path)
    utts = ptq.load_utterances(data_dir)
    n_mels = _model_n_mels(float_path)
    if n_mels is not None and n_mels != utts.feats.shape[1]:
        raise DataError(f"{model}: takes {n_mels} mel bands but {data_dir}/feats.npy has "
                        f"{utts.feats.shape[1]}")
    trials = read_trials(data_dir / "trials.txt")
    evalset = EvalSet(utts, trials, cfg["eval"]["max_frames"])
    lap("load", t0)

    t0 = time.perf_counter()
    cal = cfg["calibration"]
    reader = ptq.SpeakerCalibrationReader(utts, cal["utterances"], cal["crop_frames"],
                                          int(base["seed"]), INPUT)
    cache = ptq.calibrate(float_path, reader, cal["method"], models_dir / "calibration.json",
                          percentile=cal["percentile"])
    lap("calibrate", t0)
    settings = ptq.QuantSettings.from_params(cfg)
    threads_eval = int(cfg["eval"]["threads"])

    rows: dict[str, Row] = {}
    evaluated: dict[tuple[str, ...], Row] = {}

    def evaluate(row: Row) -> Row:
        t = time.perf_counter()
        row.metrics.update(evalset.evaluate(row.path, threads_eval, progress))
        row.metrics.update(file_size(row.path))
        lap("evaluate", t)
        return row

    def static_row(name: str, groups: Sequence[str] | None) -> Row:
        t = time.perf_counter()
        nodes = None if groups is None else gmap.union(groups)
        path = ptq.quantize_static_nodes(float_path, models_dir / f"{name}.onnx", cache, nodes,
                                         settings)
        ptq.compact_names(path, float_path)
        lap("quantize", t)
        return evaluate(Row(name, path, "static", list(GROUPS) if groups is None else list(groups)))

    bar = tqdm(total=len(ROWS), desc="ptq rows", disable=not progress)
    rows["none"] = evaluate(Row("none", float_path, "float", []))
    bar.update()
    for g in GROUPS:
        rows[g] = static_row(g, [g])
        evaluated[(g,)] = rows[g]
        bar.update()
    rows["all"] = static_row("all", None)
    bar.update()
    rows["paper_choice"] = static_row("paper_choice", PAPER_CHOICE)
    evaluated[tuple(sorted(PAPER_CHOICE))] = rows["paper_choice"]
    bar.update()

    eer0, size0 = rows["none"].metrics["eer"], rows["none"].metrics["size_bytes"]
    delta = {g: rows[g].metrics["eer"] - eer0 for g in GROUPS}
    saving = {g: size0 - rows[g].metrics["size_bytes"] for g in GROUPS}
    budget = float(cfg["budget_eer"])

    def verify(groups: tuple[str, ...]) -> float:
        key = tuple(sorted(groups))
        if key not in evaluated:
            evaluated[key] = static_row(f"search_{len(evaluated)}", groups)
        return evaluated[key].metrics["eer"] - eer0

    search = greedy_search(delta, saving, budget, verify)
    # Final check: the greedy pick against every configuration already measured (each group
    # alone, all, paper_choice); the smallest model within the budget wins.
    candidates: list[tuple[str, list[str], Row | None]] = [
        ("greedy", search.chosen, evaluated.get(tuple(sorted(search.chosen))))]
    candidates += [(n, rows[n].groups, rows[n]) for n in (*GROUPS, "paper_choice", "all")]
    best_src, best_groups, best_row = "greedy", search.chosen, candidates[0][2]
    best_size = best_row.metrics["size_bytes"] if best_row else size0
    for src, groups, row in candidates[1:]:
        if row is None or row.metrics["eer"] - eer0 > budget + 1e-12:
            continue
        if row.metrics["size_bytes"] < best_size:
            best_src, best_groups, best_row, best_size = src, groups, row, row.metrics["size_bytes"]
    search.source = best_src
    if best_src != "greedy":
        search.chosen = list(best_groups)
        search.chosen_delta = best_row.metrics["eer"] - eer0 if best_row else None
    src_row = best_row or rows["none"]
    prop_path = models_dir / "proposed.onnx"
    shutil.copyfile(src_row.path, prop_path)  # the verified model itself, byte for byte
    rows["proposed"] = Row("proposed", prop_path, src_row.kind, list(search.chosen),
                           dict(src_row.metrics))
    for key, row in list(evaluated.items()):  # search-only models are not rows
        if row.name.startswith("search_"):
            row.path.unlink(missing_ok=True)
            del evaluated[key]
    bar.update()

    t = time.perf_counter()
    dyn = ptq.quantize_dynamic_model(float_path, models_dir / "dynamic.onnx",
                                     per_channel=cfg["per_channel"])
    f16 = ptq.convert_float16(float_path, models_dir / "float16.onnx")
    for p in (dyn, f16):
        ptq.compact_names(p, float_path)
    lap("quantize", t)
    rows["dynamic"] = evaluate(Row("dynamic", dyn, "dynamic", []))
    bar.update()
    rows["float16"] = evaluate(Row("float16", f16, "float16", []))
    bar.update()
    bar.close()

    # Per-group activation error (each group's model has only that group quantized).
    t0 = time.perf_counter()
    lat_x = _latency_input(utts, cfg["latency"]["frames"])
    err_inputs = [{INPUT: x[:, :cfg["latency"]["frames"]]} for x in
                  list(evalset.inputs.values())[:cfg["error_analysis"]["utterances"]]]
    errors = [ptq.group_output_error(float_path, rows[g].path, g, gmap, err_inputs, OUTPUT,
                                     threads_eval) for g in GROUPS]
    for row in rows.values():  # how far each row's embedding moved, on the same inputs
        row.metrics["emb_cos"] = _embedding_cosine(float_path, row.path, err_inputs, threads_eval)
    lap("error_analysis", t0)

    # Ablations: `all` with one setting changed (EER, size, latency, embedding cosine).
    t0 = time.perf_counter()
    ablation: list[dict[str, Any]] = []
    ab_paths: dict[str, Path] = {}
    configs: dict[str, dict[str, str]] = {}
    for name in cfg["ablation"]:
        got = _ablation_settings(settings, name)
        if got is None:
            continue
        st, configs[name] = got
        variant = name if name.startswith("all_") else f"all_{name}"
        configs[variant] = configs.pop(name)
        p = ptq.quantize_static_nodes(float_path, models_dir / "ablation" / f"{variant}.onnx",
                                      cache, None, st)
        ptq.compact_names(p, float_path)
        ab_paths[variant] = p
        ev = (evalset.evaluate(p, threads_eval, progress, configs[variant])
              if name in cfg["ablation_eer"] else {"eer": float("nan"), "min_dcf": float("nan")})
        ablation.append({"variant": variant, "activation_type": st.activation_type,
                         "quant_format": st.quant_format, "per_channel": st.per_channel,
                         "reduce_range": st.reduce_range,
                         "op_types": " ".join(st.op_types) if st.op_types else "every",
                         "eer": ev["eer"], "delta_eer": ev["eer"] - rows["none"].metrics["eer"],
                         "session_config": " ".join(f"{k}={v}" for k, v in configs[variant].items()),
                         "min_dcf": ev["min_dcf"], **file_size(p),
                         "emb_cos": _embedding_cosine(float_path, p, err_inputs, threads_eval,
                                                      configs[variant])})
    lap("ablation", t0)

    # Latency: every row and ablation variant interleaved in this one process.
    t0 = time.perf_counter()
    threads = int(base["threads"])
    feeds = {INPUT: lat_x}
    lat_models = {n: r.path for n, r in rows.items()} | ab_paths
    runners = {n: onnx_runner(ptq.ort_session(p, threads, configs.get(n)), feeds, threads)
               for n, p in lat_models.items()}
    lat = measure_interleaved(runners, warmup=cfg["latency"]["warmup"],
                              repeats=cfg["latency"]["repeats"], threads=threads,
                              seed=int(base["seed"]))
    lap("latency", t0)
    ref = lat["none"].median_ms
    for n, r in rows.items():
        r.metrics.update(lat[n].as_dict())
    for a in ablation:
        a.update(lat[a["variant"]].as_dict())
        a["speedup"] = ref / a["latency_ms"]
        a["size_ratio"] = a["size_bytes"] / size0
    for r in rows.values():
        m = r.metrics
        m["delta_eer"] = m["eer"] - eer0
        m["size_ratio"] = m["size_bytes"] / size0
        m["speedup"] = ref / m["latency_ms"]

    # ORT's per-operator profile: where the time goes in the float and the INT8 graphs.
    t0 = time.perf_counter()
    profile: list[dict[str, Any]] = []
    profs = ptq.op_profiles({n: lat_models[n] for n in ("none", "all", *ab_paths)}, feeds,
                            runs=cfg["profile_runs"], threads=threads, configs=configs)
    for n, prof in profs.items():
        total = sum(v["ms"] for v in prof.values()) or 1.0
        for op, v in sorted(prof.items(), key=lambda kv: -kv[1]["ms"]):
            profile.append({"model": n, "op_type": op, "ms_per_run": v["ms"],
                            "count_per_run": v["count"], "share": v["ms"] / total})
    for a in ablation:
        a["float_conv_kernels"] = _float_convs(profile, a["variant"])
    lap("profile", t0)

    timings["total"] = time.perf_counter() - t_start
    return StudyResult(
        rows=rows, search=search, errors=errors, ablation=ablation, profile=profile,
        timings=timings, n_nodes={g: len(v) for g, v in gmap.nodes.items()},
        info={**cpu_info(), "float_conv_kernels_all": _float_convs(profile, "all"),
              "size_breakdown": {n: ptq.size_breakdown(rows[n].path) for n in ("none", "all")},
              "calibration_utterances": len(reader), "eval_utterances": len(evalset.inputs),
              "trials": len(trials), "target_trials": int(trials.labels.sum())})


def _float_convs(profile: Sequence[Mapping[str, Any]], model: str) -> float:
    """Conv/Gemm kernels still running in float in a model's profile (per run)."""
    return float(sum(p["count_per_run"] for p in profile
                     if p["model"] == model and p["op_type"] in ("Conv", "FusedConv", "Gemm",
                                                                  "FusedGemm", "MatMul")))


def _embedding_cosine(float_model: Path, quant_model: Path,
                      inputs: Sequence[Mapping[str, np.ndarray]], threads: int,
                      config: Mapping[str, str] | None = None) -> float:
    fs, qs = ptq.ort_session(float_model, threads), ptq.ort_session(quant_model, threads, config)
    cos = []
    for feed in inputs:
        a, b = fs.run(None, dict(feed))[0].ravel(), qs.run(None, dict(feed))[0].ravel()
        cos.append(float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12)))
    return float(np.mean(cos))


# ----------------------------------------------------------------------------- reports

_PAPER_LABELS = {"none": "No quantization", "conv_in": "Conv1d (conv_in)",
                 "block1": "1st SE-Res2Block", "block2": "2nd SE-Res2Block",
                 "block3": "3rd SE-Res2Block", "conv_mfa": "Conv1d (conv_mfa)",
                 "asp": "Attentive stat pooling", "fc": "Linear (fc)"}


def _f(x: Any, nd: int = 3, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "n/a"
    return f"{x:+.{nd}f}" if sign else f"{x:.{nd}f}"


def metrics_summary(res: StudyResult) -> dict[str, Any]:
    """metrics.json: the figures the issue's 'done when' asks for, plus the search and timing."""
    r = res.rows
    out: dict[str, Any] = {
        "eer_none": r["none"].metrics["eer"],
        "size_bytes_none": r["none"].metrics["size_bytes"],
        "latency_ms_none": r["none"].metrics["latency_ms"],
        "runtime_s": res.timings["total"],
        "timings_s": res.timings,
        "machine": res.info,
        "proposed_groups": res.search.chosen,
        "search": res.search.as_dict(),
    }
    for n in ("all", "paper_choice", "proposed", "dynamic", "float16"):
        m = r[n].metrics
        out |= {f"{k}_{n}": m[k] for k in ("eer", "delta_eer", "size_ratio", "speedup")}
    out["rows"] = {n: row.metrics for n, row in r.items()}
    if len(res.errors) > 2:
        import warnings

        from scipy.stats import spearmanr

        d = [r[e.group].metrics["delta_eer"] for e in res.errors]
        for key in ("out_rel_err", "emb_rel_err"):
            with warnings.catch_warnings():  # all-equal ΔEERs: no correlation, NaN below
                warnings.simplefilter("ignore")
                rho = spearmanr([getattr(e, key) for e in res.errors], d).statistic
            out[f"spearman_{key}_vs_delta_eer"] = None if np.isnan(rho) else float(rho)
    return out


def table_markdown(res: StudyResult, cfg: Mapping[str, Any]) -> str:
    from slimaudio.papers import PTQ_LAYERWISE as P

    r = res.rows
    p_eer, p_size = P["eer"], P["size_mb"]
    info = res.info
    lines = [
        "# Per-layer INT8 post-training quantization of ECAPA-TDNN",
        "",
        f"Reproduces: {P['title']}.",
        "",
        f"Engine: ONNX Runtime, CPU, static {cfg['quant_format']} quantization, "
        f"{'per-channel' if cfg['per_channel'] else 'per-tensor'} symmetric INT8 weights, "
        f"{cfg['activation_type']} activations, {cfg['calibration']['method']} calibration on "
        f"{info['calibration_utterances']} train-split utterances "
        f"({cfg['calibration']['crop_frames']}-frame crops). EER over {info['trials']} trials "
        f"({info['eval_utterances']} test utterances, batch 1). Latency: batch 1, "
        f"{cfg['latency']['frames']} frames, median; CPU: {info['cpu']} "
        f"(AVX2 {info['avx2']}, AVX-512 {info['avx512f']}, AVX-512 VNNI {info['avx512_vnni']}, "
        f"AVX-VNNI {info['avx_vnni']}).",
        "",
        "Quantized op types inside a chosen group: "
        f"{', '.join(cfg['op_types']) if cfg['op_types'] else 'every type ORT can quantize'} "
        "(the weight layers, as the paper's pytorch-quantization toolkit quantizes, plus the "
        "ops that let ORT chain integer kernels; the `all_ops` variant below quantizes every "
        "op ORT can). Tensors and nodes a converter adds get short names in the saved file "
        "(original names are kept); doc strings are dropped.",
        "",
        "Sizes: the paper's model size includes the AAM-softmax classifier head for the 5994 "
        "VoxCeleb2 training speakers; ours is the size of the ONNX file of the embedding "
        "extractor alone (no classifier head), so compare ratios, not megabytes.",
        "",
        "## Table 1: each layer group quantized alone",
        "",
        "| Quantized layer | paper EER (%) | paper ΔEER | paper size (MB) | paper size ratio "
        "| our EER (%) | our ΔEER | our size (MiB) | our size ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n in ("none", *GROUPS):
        m = r[n].metrics
        lines.append(
            f"| {_PAPER_LABELS[n]} | {p_eer[n]:.3f} | {p_eer[n] - p_eer['none']:+.3f} "
            f"| {p_size[n]:.3f} | {p_size[n] / p_size['none']:.3f} | {m['eer']:.3f} "
            f"| {m['delta_eer']:+.3f} | {m['size_mib']:.3f} | {m['size_ratio']:.3f} |")
    lines += [
        "",
        "## Table 2: the chosen mix",
        "",
        "| Quantized layers | paper EER (%) | paper size (MB) | paper size ratio | our EER (%) "
        "| our ΔEER | our size (MiB) | our size ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, label, pk in (("none", "No quantization", "none"),
                         ("paper_choice", "Proposed by the paper (all but blocks 2-3)",
                          "paper_choice"),
                         ("proposed", f"Ours, automatic (budget {cfg['budget_eer']} points): "
                          f"{', '.join(res.search.chosen) or 'nothing'}", None),
                         ("all", "All layers", None)):
        m = r[n].metrics
        pe = f"{p_eer[pk]:.3f}" if pk else "-"
        ps = f"{p_size[pk]:.3f}" if pk else "-"
        pr = f"{p_size[pk] / p_size['none']:.3f}" if pk else "-"
        lines.append(f"| {label} | {pe} | {ps} | {pr} | {m['eer']:.3f} | {m['delta_eer']:+.3f} "
                     f"| {m['size_mib']:.3f} | {m['size_ratio']:.3f} |")
    sb = info["size_breakdown"]
    kinds = sorted({k for d in sb.values() for k in d})
    size0 = r["none"].metrics["size_bytes"]
    lines += ["", "What the files are made of (bytes; `graph_and_names` is everything that is not "
              "an initializer: nodes, names, shapes):", "",
              "| model | " + " | ".join(kinds) + " | total | ratio |",
              "|---|" + "---|" * (len(kinds) + 2)]
    for n, d in sb.items():
        tot = sum(d.values())
        lines.append(f"| {n} | " + " | ".join(str(d.get(k, 0)) for k in kinds)
                     + f" | {tot} | {tot / size0:.3f} |")
    init_all = sum(v for k, v in sb["all"].items() if k.startswith("init_"))
    lines += ["", f"Initializers alone give `all` a ratio of {init_all / size0:.3f}: INT8 weights "
              "are a quarter of their float32 bytes, but biases (int32), BatchNorm parameters "
              "and per-channel scales stay 4 bytes per channel, which weighs more the narrower "
              "the model is."]
    tab = res.table()
    lines += ["", "## Every row", "", "| " + " | ".join(COLUMNS) + " |",
              "|" + "---|" * len(COLUMNS)]
    for _, row in tab.iterrows():
        lines.append("| " + " | ".join(
            [str(row["quantized"])] + [_f(row[c], 0 if c == "size_bytes" else 3)
                                       for c in COLUMNS[1:]]) + " |")
    s = res.search
    lines += [
        "",
        "## How `proposed` was chosen",
        "",
        "Groups ranked by bytes saved per EER point lost (a group whose solo quantization did "
        "not raise the EER first): " + ", ".join(
            f"{g} ({'no loss' if not np.isfinite(s.efficiency[g]) else _f(s.efficiency[g] / 2**20, 2) + ' MiB/pt'})"
            for g in s.order) + ".",
        f"Greedy pick under the additive prediction: {', '.join(s.predicted) or 'nothing'} "
        f"(predicted ΔEER {s.predicted_delta:+.3f}).",
    ]
    for st in s.steps:
        lines.append(f"- {st['action']}: {', '.join(st['groups'])}: measured ΔEER "
                     f"{st['measured_delta_eer']:+.3f} "
                     f"({'within' if st['within_budget'] else 'over'} budget)")
    lines.append(f"- final check against the rows already measured: kept the {s.source} set "
                 f"({', '.join(s.chosen) or 'nothing'}).")
    lines += ["", "## Why the groups differ: activation error per group", "",
              "Relative error ‖q − f‖/‖f‖ of the group's output activations (and of the "
              "embedding) with only that group quantized, and the weight SQNR.", "",
              "| group | ΔEER | output rel. error | embedding rel. error | embedding cosine "
              "| weight SQNR (dB) |", "|---|---|---|---|---|---|"]
    for e in res.errors:
        lines.append(f"| {e.group} | {r[e.group].metrics['delta_eer']:+.3f} "
                     f"| {e.out_rel_err:.4f} | {e.emb_rel_err:.4f} | {e.emb_cos:.5f} "
                     f"| {e.weight_sqnr_db:.1f} |")
    summ = metrics_summary(res)
    if "spearman_emb_rel_err_vs_delta_eer" in summ:
        lines += ["", "Rank correlation (Spearman) of the error with ΔEER across groups: output "
                  f"{_f(summ['spearman_out_rel_err_vs_delta_eer'], 2)}, embedding "
                  f"{_f(summ['spearman_emb_rel_err_vs_delta_eer'], 2)}. One target trial moves the EER "
                  f"by about {100 / max(info['target_trials'], 1):.3f} points: ΔEER differences "
                  "of a few trials are within the noise of the trial list."]
    if res.ablation:
        lines += ["", "## `all` with one setting changed", "",
                  "s8s8: int8 activations, which ORT's x86 CPU provider rewrites to uint8 where "
                  "it can (float Conv kernels left show where it cannot); s8s8_native: the same "
                  f"model with `{', '.join(f'{k}={v}' for k, v in NATIVE_S8S8.items())}`, so "
                  "the S8S8 kernels run as such. qoperator: QLinear operators instead of QDQ; "
                  "per_tensor: one weight scale per tensor; reduce_range / full_range: 7-bit / "
                  "8-bit weights (whichever the configuration does not use); "
                  "all_ops: every op type ORT can quantize (Softmax, Mul, Sigmoid, reductions "
                  "included). EER is measured for the variants in ptq.ablation_eer (n/a: "
                  "embedding cosine only).", "",
                  "| variant | EER (%) | ΔEER | size ratio | embedding cosine | latency (ms) "
                  "| speedup | float Conv/Gemm kernels left |", "|---|---|---|---|---|---|---|---|"]
        m = r["all"].metrics
        lines.append(f"| all (as configured) | {m['eer']:.3f} | {m['delta_eer']:+.3f} "
                     f"| {m['size_ratio']:.3f} | {m['emb_cos']:.5f} | {m['latency_ms']:.2f} "
                     f"| {m['speedup']:.2f} "
                     f"| {_f(info['float_conv_kernels_all'], 0)} |")
        for a in res.ablation:
            lines.append(f"| {a['variant']} | {_f(a['eer'])} | {_f(a['delta_eer'], sign=True)} "
                         f"| {a['size_ratio']:.3f} | {a['emb_cos']:.5f} | {a['latency_ms']:.2f} "
                         f"| {a['speedup']:.2f} | {_f(a['float_conv_kernels'], 0)} |")
    lines += ["", "## Where the time goes (ORT per-operator profile, top 8 per model)", "",
              "| model | op | ms/run | kernels/run | share |", "|---|---|---|---|---|"]
    seen: dict[str, int] = {}
    for p in res.profile:
        seen[p["model"]] = seen.get(p["model"], 0) + 1
        if seen[p["model"]] <= 8:
            lines.append(f"| {p['model']} | {p['op_type']} | {p['ms_per_run']:.2f} "
                         f"| {p['count_per_run']:.0f} | {p['share']:.2f} |")
    lines += ["", f"Study run time: {res.timings['total']:.1f} s "
              f"({', '.join(f'{k} {v:.1f} s' for k, v in res.timings.items() if k != 'total')}).",
              ""]
    return "\n".join(lines)


def plot_sensitivity(res: StudyResult) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = res.rows
    d = [r[g].metrics["delta_eer"] for g in GROUPS]
    s = [100 * (1 - r[g].metrics["size_ratio"]) for g in GROUPS]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    a1.bar(GROUPS, d, color=["C3" if v > res.search.budget else "C0" for v in d])
    a1.axhline(res.search.budget, color="k", ls="--", lw=1, label="budget")
    a1.axhline(0, color="k", lw=0.5)
    a1.set_ylabel("EER increase (points)")
    a1.set_title("EER increase, group quantized alone")
    a1.legend()
    a2.bar(GROUPS, s, color="C2")
    a2.set_ylabel("size saving (% of float model)")
    a2.set_title("Size saving, group quantized alone")
    for ax in (a1, a2):
        ax.tick_params(axis="x", rotation=40)
    fig.tight_layout()
    return fig


def plot_size_vs_eer(res: StudyResult) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    eer0 = res.rows["none"].metrics["eer"]
    labels: dict[tuple[float, float], list[str]] = {}
    for n, row in res.rows.items():
        m = row.metrics
        mark = {"float": "s", "static": "o", "dynamic": "^", "float16": "D"}[row.kind]
        col = "C3" if n == "proposed" else ("C1" if n in ("all", "paper_choice") else "C0")
        ax.scatter(m["size_mib"], m["eer"], marker=mark, color=col, zorder=3)
        labels.setdefault((round(m["size_mib"], 4), round(m["eer"], 4)), []).append(n)
    for (x, y), names in labels.items():  # rows on the same point share one label
        ax.annotate(" = ".join(names), (x, y), textcoords="offset points", xytext=(4, 3),
                    fontsize=8)
    ax.axhline(eer0 + res.search.budget, color="k", ls="--", lw=1, label="float EER + budget")
    ax.set_xlabel("ONNX file size (MiB)")
    ax.set_ylabel("EER (%)")
    ax.set_title("Size versus EER of every row")
    ax.legend()
    fig.tight_layout()
    return fig


REPORT_FILES = {  # stage argument -> default file name in a report folder
    "table": "table.csv", "table_md": "table.md", "metrics": "metrics.json",
    "errors": "error_analysis.csv", "op_profile": "op_profile.csv", "ablation": "ablation.csv",
    "sensitivity_png": "sensitivity.png", "size_png": "size_vs_eer.png",
}


def write_reports(res: StudyResult, cfg: Mapping[str, Any],
                  out: str | os.PathLike[str] | Mapping[str, str | os.PathLike[str]]
                  ) -> dict[str, Path]:
    """Write every report file atomically; `out` is a folder or a path per REPORT_FILES key."""
    import pandas as pd

    from slimaudio.atomic import save_figure, write_csv, write_json, write_text

    if isinstance(out, Mapping):
        paths = {k: Path(out[k]) for k in REPORT_FILES}
    else:
        paths = {k: Path(out) / f for k, f in REPORT_FILES.items()}
    err = pd.DataFrame([{"group": e.group, "delta_eer": res.rows[e.group].metrics["delta_eer"],
                         "out_rel_err": e.out_rel_err, "emb_rel_err": e.emb_rel_err,
                         "emb_cos": e.emb_cos, "weight_sqnr_db": e.weight_sqnr_db,
                         "n_nodes": res.n_nodes[e.group], "tensors": " ".join(e.tensors)}
                        for e in res.errors])
    return {
        "table": write_csv(paths["table"], res.table()),
        "table_md": write_text(paths["table_md"], table_markdown(res, cfg)),
        "metrics": write_json(paths["metrics"], metrics_summary(res)),
        "errors": write_csv(paths["errors"], err),
        "op_profile": write_csv(paths["op_profile"], pd.DataFrame(
            res.profile, columns=["model", "op_type", "ms_per_run", "count_per_run", "share"])),
        "ablation": write_csv(paths["ablation"], pd.DataFrame(
            res.ablation, columns=["variant", "activation_type", "quant_format", "per_channel",
                                   "reduce_range", "op_types", "session_config", "eer",
                                   "delta_eer", "min_dcf",
                                   "size_bytes", "size_mib", "size_ratio", "emb_cos",
                                   "latency_ms", "latency_p90_ms", "latency_std_ms", "speedup",
                                   "float_conv_kernels"])),
        "sensitivity_png": save_figure(paths["sensitivity_png"], plot_sensitivity(res)),
        "size_png": save_figure(paths["size_png"], plot_size_vs_eer(res)),
    }
