"""Step 2 (stage pwl_softmax): every method before and after fine-tuning, ONNX exports, speed.

For every method: EER/minDCF with the baseline weights ('before FT'), then fine-tuning for the
same steps on the same batches ('after FT'); the unchanged baseline is fine-tuned alike
(`baseline_ft_control`) so that extra training is not credited to the approximation.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from slimaudio.datasets.speakers import SpeakerData
from slimaudio.latency import SIMPLE, Spread, onnx_session
from slimaudio.models.ecapa import EcapaTdnn
from slimaudio.schemas.base import Bootstrap
from slimaudio.schemas.pwl_softmax import PwlSoftmax
from slimaudio.speaker.aamsoftmax import AAMSoftmax
from slimaudio.speaker.evaluate import (
    Verification,
    evaluate_head,
    evaluate_torch,
    trunk_cache,
)
from slimaudio.speaker.export import export_bytes
from slimaudio.speaker.train import TrainConfig, TrainResult
from slimaudio.speaker.uncertainty import TrialStats, speakers_of
from slimaudio.studies.pwl_softmax import intervals, timing
from slimaudio.studies.pwl_softmax.finetune import (
    FtPlan,
    cache_sampler,
    finetune_all,
    finetune_head,
    head_cache,
    static_module,
)
from slimaudio.studies.pwl_softmax.fit import FitResult
from slimaudio.studies.pwl_softmax.result import StudyResult
from slimaudio.studies.pwl_softmax.variants import Variant, build_variants

CONTROL = "baseline_ft_control"
# latency.csv column -> the table's column of the same ratio
REL_TIME_COLUMNS = {"rel_time_softmax_torch": "rel_time_softmax",
                    "rel_time_softmax_onnx": "rel_time_softmax_onnx",
                    "rel_time_model_torch": "rel_time_model_torch",
                    "rel_time_model_onnx": "rel_time_model_onnx"}


@dataclass
class Tuned:
    """One variant after fine-tuning, in its deployed (static) form."""

    model: EcapaTdnn
    curve: list[dict[str, float]]
    verification: Verification
    seconds: float
    learned_coeffs: str | None   # learnable, consmax: the coefficients it ended with


@contextlib.contextmanager
def timed(seconds: dict[str, float], key: str) -> Iterator[None]:
    t0 = time.perf_counter()
    yield
    seconds[key] = time.perf_counter() - t0


def evaluate_before(model: EcapaTdnn, variants: Sequence[Variant], test_cache: Any,
                    data: SpeakerData
                    ) -> tuple[dict[str, dict[str, Any]], Verification, dict[str, np.ndarray]]:
    """Rows with every variant's metrics on the baseline weights (the control's are the
    baseline's), the baseline's verification (its only scores: it is not fine-tuned), and
    every variant's trial scores."""
    rows: dict[str, dict[str, Any]] = {}
    scores: dict[str, np.ndarray] = {}
    for v in variants:
        m = copy.deepcopy(model).set_softmax(v.module())
        before = evaluate_head(m, test_cache, data.trials)
        scores[v.name] = before.scores
        if v.name == "baseline":
            baseline = before
        rows[v.name] = {"method": v.name, **{f"{k}_before_ft": val for k, val in before.metrics.items()}}
    rows[CONTROL] = {"method": CONTROL, **{k: rows["baseline"][k] for k in rows["baseline"] if k != "method"}}
    return rows, baseline, scores


def finetune_replicates(names: Sequence[str], tune: Callable[[str, FtPlan], Tuned],
                        plan: FtPlan, replicates: int
                        ) -> tuple[dict[str, Tuned], dict[str, list[np.ndarray]]]:
    """Every method fine-tuned `replicates` times (seeds plan.seed + r, the same for every
    method): the first replicate is the deployed model; every replicate's trial scores."""
    first: dict[str, Tuned] = {}
    scores: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for r in range(replicates):
        p = replace(plan, seed=plan.seed + r)
        for name in names:
            t = tune(name, p)
            first.setdefault(name, t)
            scores[name].append(t.verification.scores)
    return first, scores


def add_intervals(rows: dict[str, dict[str, Any]], ts: TrialStats,
                  before: Mapping[str, np.ndarray], after: Mapping[str, Sequence[np.ndarray]],
                  seed: int) -> None:
    """Each row's EER/minDCF (after FT: the replicate mean) with intervals and paired
    differences: before FT from the baseline, after FT from the fine-tuned control."""
    for name, rec in intervals.before_ft(ts, before, "baseline").items():
        rows[name].update(rec)
    rows[CONTROL].update(rows["baseline"] | {"method": CONTROL})
    for name, rec in intervals.after_ft(ts, after, CONTROL, seed).items():
        rows[name].update(rec)


def finetune_one(model: EcapaTdnn, aam: AAMSoftmax, name: str, variant: Variant,
                 data: SpeakerData, plan: FtPlan, base_train: TrainConfig, cache: Any,
                 test_cache: Any, threads_eval: int, progress: bool) -> Tuned:
    """Fine-tune a copy of the baseline with `variant`'s normaliser, then evaluate it."""
    m = copy.deepcopy(model).set_softmax(variant.module())
    a = copy.deepcopy(aam)
    torch.manual_seed(plan.seed)
    torch.set_num_threads(base_train.threads)
    if plan.ft.steps == 0:
        res = TrainResult([], 0.0)
    elif plan.ft.scope == "head":
        assert cache is not None
        res = finetune_head(m, a, cache, plan, f"ft {name}", progress)
    else:
        res = finetune_all(m, a, data, base_train, plan, f"ft {name}", progress)
    torch.set_num_threads(threads_eval)
    norm = m.asp.softmax  # learnable, consmax: what training made of its coefficients
    coeffs = json.dumps(norm.trained_params()) if hasattr(norm, "trained_params") else None
    m.set_softmax(static_module(norm)).eval()
    # Scope head leaves the trunk untouched, so the cached test features stay valid.
    ver = (evaluate_head(m, test_cache, data.trials) if plan.ft.scope == "head"
           else evaluate_torch(m, data, progress))
    return Tuned(m, res.curve, ver, res.seconds, coeffs)


def export_onnx(tuned: Mapping[str, EcapaTdnn], order: Sequence[str], data: SpeakerData,
                n_mels: int, opset: int) -> tuple[dict[str, bytes], dict[str, float]]:
    """Every variant's ONNX export and its largest |torch - ORT| embedding difference."""
    blobs = {n: export_bytes(tuned[n], n_mels, opset) for n in order}
    check_x = torch.from_numpy(data.utterance(data.trials.utterances[0]))[None]
    diffs = {}
    for n in order:
        with torch.inference_mode():
            ref = tuned[n](check_x).numpy()
        got = onnx_session(blobs[n], 1).run(None, {"feats": check_x.numpy()})[0]
        diffs[n] = float(np.abs(ref - got).max())
    return blobs, diffs


def run_study(model: EcapaTdnn, aam: AAMSoftmax, data: SpeakerData, fit_res: FitResult,
              cfg: PwlSoftmax, base_train: TrainConfig, opset: int, seed: int,
              threads_latency: int, boot: Bootstrap, progress: bool = True,
              threads_eval: int = 1, spread: Spread = SIMPLE) -> StudyResult:
    """Every method before and after fine-tuning, ONNX exports, and speed; see the module
    docstring. Fine-tuning runs on `base_train.threads` threads, embedding on `threads_eval`."""
    t_start = time.perf_counter()
    seconds: dict[str, float] = {}
    plan = FtPlan(cfg.ft, cfg.learnable_lr_mult, base_train.weight_decay, seed)
    variants = build_variants(fit_res, cfg.learnable_segments, cfg.overrides, cfg.bench)
    torch.set_num_threads(threads_eval)
    model.eval()
    with timed(seconds, "test_trunk_cache"):
        test_cache = trunk_cache(model, data, progress)
    with timed(seconds, "eval_before_ft"):
        rows, baseline_ver, before_scores = evaluate_before(model, variants, test_cache, data)

    cache = None
    if cfg.ft.scope == "head" and cfg.ft.steps > 0:
        with timed(seconds, "ft_cache"):
            torch.set_num_threads(base_train.threads)
            cache = head_cache(model, cache_sampler(data, base_train, seed), cfg.ft.cache_crops,
                               progress=progress)

    ft_names = [CONTROL] + [v.name for v in variants if v.name != "baseline"]
    by_name = {v.name: v for v in variants}
    with timed(seconds, "finetune_and_eval"):
        tuned, after_scores = finetune_replicates(
            ft_names, lambda name, p: finetune_one(
                model, aam, name, by_name.get(name, by_name["baseline"]), data, p, base_train,
                cache, test_cache, threads_eval, progress), plan, cfg.ft.replicates)
    for name, t in tuned.items():
        rows[name]["ft_seconds"] = t.seconds
        rows[name]["min_dcf_p05_after_ft"] = t.verification.metrics["min_dcf_p05"]
        if t.learned_coeffs is not None:
            rows[name]["learned_coeffs"] = t.learned_coeffs
    with timed(seconds, "intervals"):
        ts = TrialStats.build(data.trials, speakers_of(data.manifest), boot.resamples,
                              boot.level, seed)
        add_intervals(rows, ts, before_scores, after_scores, seed)
    models = {"baseline": copy.deepcopy(model).eval(), **{n: t.model for n, t in tuned.items()}}

    order = ["baseline"] + ft_names
    with timed(seconds, "onnx_export"):
        blobs, diffs = export_onnx(models, order, data, model.cfg.n_mels, opset)
    for n, d in diffs.items():
        rows[n]["onnx_max_abs_diff"] = d
    with timed(seconds, "latency"):
        latency_df = timing.latency_table(model, data, models, blobs, order, cfg.latency,
                                          threads_latency, seed, opset, boot, spread)
    for rec in latency_df.to_dict("records"):
        if rec["method"] in rows:
            rows[rec["method"]].update({col + end: rec.get(src + end)
                                        for src, col in REL_TIME_COLUMNS.items()
                                        for end in ("", "_lo", "_hi")})
    seconds["total"] = time.perf_counter() - t_start
    after = {"baseline": baseline_ver, **{n: t.verification for n, t in tuned.items()}}
    curves = {n: t.curve for n, t in tuned.items()}
    return StudyResult(make_table(rows, order), rows, after, curves, latency_df, blobs, seconds,
                       variants)


def _with_iv(*cols: str) -> list[str]:
    return [c + s for c in cols for s in ("", "_lo", "_hi")]


# The table's columns after `method`; after-FT columns stay blank for the (untuned) baseline.
BEFORE_COLUMNS = _with_iv("eer_before_ft", "delta_eer_before_ft")
AFTER_COLUMNS = [*_with_iv("eer_after_ft", "delta_eer_after_ft"), "eer_after_ft_sd",
                 *_with_iv("min_dcf_after_ft", "delta_min_dcf_after_ft")]
TIME_COLUMNS = _with_iv("rel_time_softmax", "rel_time_model_torch", "rel_time_model_onnx")
EXTRA_COLUMNS = [*_with_iv("min_dcf_before_ft", "delta_min_dcf_before_ft"), "min_dcf_p05_after_ft",
                 "rel_time_softmax_onnx", "onnx_max_abs_diff"]

TABLE_COLUMNS = ["method", *BEFORE_COLUMNS, *AFTER_COLUMNS, *TIME_COLUMNS, *EXTRA_COLUMNS]


def make_table(rows: Mapping[str, Mapping[str, Any]], order: Sequence[str]) -> pd.DataFrame:
    recs = []
    for n in order:
        r = rows[n]
        is_base = n == "baseline"  # the baseline is not fine-tuned (the control is)
        rec = {"method": n} | {c: r.get(c) for c in [*BEFORE_COLUMNS, *TIME_COLUMNS,
                                                      *EXTRA_COLUMNS]}
        rec |= {c: None if is_base else r.get(c)
                for c in [*AFTER_COLUMNS, "min_dcf_p05_after_ft"]}
        recs.append(rec)
    return pd.DataFrame(recs, columns=TABLE_COLUMNS)
