"""Training of ECAPA-TDNN with AAM-softmax: Adam, linear warm-up then cosine decay, random
crops with noise augmentation. Also used for whole-model fine-tuning in the PWL study."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from slimaudio import runtime
from slimaudio.datasets.speakers import SpeakerData
from slimaudio.models.ecapa import EcapaConfig, EcapaTdnn
from slimaudio.progress import progress_bar
from slimaudio.schemas.ecapa import Model, Train
from slimaudio.speaker.aamsoftmax import AAMSoftmax
from slimaudio.speaker.data import CropSampler, NoiseConfig

# The ecapa experiment's key metrics (training and evaluation), first in its MLflow runs table.
KEY_METRICS = ("eer", "min_dcf", "min_dcf_p05", "train_loss", "train_accuracy")


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Every value comes from params (ecapa.train, or a study's fine-tuning
    section), so there are no defaults here: they live in conf/config.yaml."""
    steps: int
    batch_size: int
    crop_frames: int
    lr: float
    lr_min: float
    warmup_steps: int
    weight_decay: float
    margin: float
    margin_warmup_steps: int
    scale: float
    noise: NoiseConfig
    log_every: int
    threads: int
    seed: int

    @classmethod
    def of(cls, train: Train, data: SpeakerData, seed: int) -> TrainConfig:
        """The run that params `train` (ecapa.train's fields) asks for on `data`."""
        lo, hi = train.snr_db[:2]
        return cls(steps=train.steps, batch_size=train.batch_size,
                   crop_frames=data.frames(train.crop_s), lr=train.lr, lr_min=train.lr_min,
                   warmup_steps=train.warmup_steps, weight_decay=train.weight_decay,
                   margin=train.margin, margin_warmup_steps=train.margin_warmup_steps,
                   scale=train.scale, noise=NoiseConfig(prob=noise_prob(train, data),
                                                        snr_db=(lo, hi)),
                   log_every=train.log_every, threads=train.threads, seed=seed)


def noise_prob(train: Train, data: SpeakerData) -> float:
    """ecapa.train.noise_prob, or 0 for features other than log-mel: the noise is added in the
    log-mel domain (slimaudio.speaker.data), which dB or normalised features are not."""
    kind = data.info.kind
    if kind != "log_mel" and train.noise_prob > 0:
        print(f"note: no noise augmentation on {kind} features (ecapa.train.noise_prob applies "
              "to log_mel only)")
        return 0.0
    return train.noise_prob


def lr_at(step: int, steps: int, lr: float, lr_min: float, warmup: int) -> float:
    """Linear warm-up to `lr`, then cosine decay to `lr_min` at the last step."""
    if warmup and step < warmup:
        return lr * (step + 1) / warmup
    span = max(steps - warmup, 1)
    frac = min(max(step - warmup, 0) / span, 1.0)
    return lr_min + 0.5 * (lr - lr_min) * (1.0 + math.cos(math.pi * frac))


def model_config(model: Model, n_mels: int) -> EcapaConfig:
    """The network params `model` (ecapa.model's fields) ask for, on `n_mels` bands."""
    return EcapaConfig(n_mels=n_mels, **vars(model))


@dataclass
class TrainResult:
    curve: list[dict[str, float]]
    seconds: float


def fit(step_fn: Callable[[int, float], tuple[float, float]], steps: int,
        lr_fn: Callable[[int], float], optimizer: torch.optim.Optimizer, log_every: int,
        desc: str, progress: bool = True,
        on_log: Callable[[dict[str, float]], None] | None = None) -> TrainResult:
    """Run `step_fn(step, lr) -> (loss, acc)` for `steps` steps with a scheduled lr;
    `on_log` sees every curve point (e.g. for a periodic validation)."""

    curve: list[dict[str, float]] = []
    acc_loss, acc_acc, n = 0.0, 0.0, 0
    t0, c0 = time.perf_counter(), time.process_time()
    bar = progress_bar(range(steps), desc=desc, disable=not progress, leave=False)
    for step in bar:
        lr = lr_fn(step)
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_mult", 1.0)
        loss, acc = step_fn(step, lr)
        if not math.isfinite(loss):
            raise FloatingPointError(f"{desc}: loss became {loss} at step {step}")
        acc_loss, acc_acc, n = acc_loss + loss, acc_acc + acc, n + 1
        if (step + 1) % log_every == 0 or step == steps - 1:
            curve.append({"step": step + 1, "loss": acc_loss / n, "accuracy": acc_acc / n,
                          "lr": lr, "seconds": time.perf_counter() - t0,
                          "cpu_seconds": time.process_time() - c0})
            # refresh=False: a refresh redraws at once, past the bar's mininterval (slimaudio.progress)
            bar.set_postfix(loss=f"{acc_loss / n:.3f}", acc=f"{acc_acc / n:.2f}", refresh=False)
            if on_log is not None:
                on_log(curve[-1])
            acc_loss, acc_acc, n = 0.0, 0.0, 0
    return TrainResult(curve, time.perf_counter() - t0)


def train(model: nn.Module, aam: AAMSoftmax, sampler: CropSampler, cfg: TrainConfig,
          params: Iterable[Any] | None = None, desc: str = "train",
          progress: bool = True,
          on_log: Callable[[dict[str, float]], None] | None = None) -> TrainResult:
    """Train `params` (default: model and AAM head) on random crops from `sampler`."""
    torch.set_num_threads(cfg.threads)
    groups = list(params) if params is not None else [
        {"params": list(model.parameters()) + list(aam.parameters())}]
    opt = torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    model.train()
    aam.train()

    def step_fn(step: int, lr: float) -> tuple[float, float]:
        if cfg.margin_warmup_steps:  # AAM margin ramped up linearly: early steps learn faster
            aam.set_margin(cfg.margin * min(1.0, step / cfg.margin_warmup_steps))
        x, y = sampler.batch(cfg.batch_size)
        loss, acc = aam(model(torch.from_numpy(x)), torch.from_numpy(y))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach()), float(acc)

    res = fit(step_fn, cfg.steps,
              lambda s: lr_at(s, cfg.steps, cfg.lr, cfg.lr_min, cfg.warmup_steps),
              opt, cfg.log_every, desc, progress, on_log)
    aam.set_margin(cfg.margin)
    model.eval()
    return res


# ---------------------------------------------------------------------------- checkpoints


def save_checkpoint(path: str | Path, model: EcapaTdnn, aam: AAMSoftmax, speakers: list[str],
                    extra: Mapping[str, Any] | None = None) -> None:
    """Tensors and plain data only, so that load_checkpoint can refuse anything else."""
    from slimaudio.atomic import atomic_path

    # state_dicts go as they are: tensors, in an OrderedDict whose _metadata load_state_dict reads
    blob = {"model_cfg": plain(model.cfg.as_dict()), "model": model.state_dict(),
            "aam": aam.state_dict(), "aam_cfg": plain({"margin": aam.margin, "scale": aam.scale}),
            "speakers": plain(list(speakers)), "extra": plain(dict(extra or {}))}
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


def plain(obj: Any) -> Any:
    """obj as what torch.load(weights_only=True) accepts: tensors, dicts, lists, str, numbers
    (dataclasses become dicts, tuples lists, numpy scalars Python numbers, paths strings)."""
    from dataclasses import asdict, is_dataclass

    if isinstance(obj, np.generic):  # first: np.float64 is also a float
        return obj.item()
    if isinstance(obj, torch.Tensor | str | bool | int | float) or obj is None:
        return obj
    if is_dataclass(obj) and not isinstance(obj, type):
        return plain(asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store a {type(obj).__name__} in a checkpoint")


def load_checkpoint(path: str | Path) -> tuple[EcapaTdnn, AAMSoftmax, dict[str, Any]]:
    """(model in eval mode with the softmax normaliser, AAM head, the raw checkpoint)."""
    blob = load_weights(path)
    if "onnx_import" in blob:
        from slimaudio.errors import CheckpointError

        raise CheckpointError(f"{path}: the model is the ONNX file {blob['onnx_import']} "
                              "(ecapa.init.kind: onnx), without torch weights; this study "
                              "needs them (use ecapa.init.kind: speechbrain or train)")
    model = EcapaTdnn(EcapaConfig.from_dict(blob["model_cfg"]))
    model.load_state_dict(blob["model"])
    model.eval()
    n_classes, dim = blob["aam"]["weight"].shape
    aam = AAMSoftmax(dim, n_classes, **blob["aam_cfg"])
    aam.load_state_dict(blob["aam"])
    return model, aam, blob


def load_weights(path: str | Path) -> dict[str, Any]:
    """torch.load with weights_only=True: a checkpoint holding anything but tensors and plain
    data (a tampered file can make unpickling run code) is refused with CheckpointError."""
    import pickle
    import re

    from slimaudio.errors import CheckpointError

    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if found:  # a class or function to call: what a tampered file needs to run code
            raise CheckpointError(f"{path}: refused: the checkpoint references {found.group(1)}, "
                                  "not only tensors and plain data; loading it could run code") from None
        why = re.search(r"WeightsUnpickler error:\s*(.+)", str(exc))
        raise CheckpointError(f"{path}: cannot load checkpoint "
                              f"({why.group(1).strip() if why else 'not a torch file'})") from None
    except (OSError, RuntimeError, EOFError) as exc:
        raise CheckpointError(f"{path}: cannot load checkpoint ({str(exc).splitlines()[0]})") from None
    if not isinstance(blob, dict):
        raise CheckpointError(f"{path}: not a slimaudio checkpoint (a {type(blob).__name__})")
    return blob


# ---------------------------------------------------------------------------- the baseline


def train_baseline(data: SpeakerData, model_params: Model, train_params: Train, seed: int,
                   progress: bool = True) -> tuple[EcapaTdnn, AAMSoftmax, CropSampler, TrainResult]:
    """Build ECAPA-TDNN as `model_params` ask and train it as `train_params` ask (the fields
    of ecapa.model and ecapa.train)."""
    runtime.seed_torch(seed)
    cfg = TrainConfig.of(train_params, data, seed)
    model = EcapaTdnn(model_config(model_params, data.n_mels))
    sampler = CropSampler(data, cfg.crop_frames, seed, cfg.noise)
    aam = AAMSoftmax(model.cfg.embedding_dim, sampler.n_classes, cfg.margin, cfg.scale)
    result = train(model, aam, sampler, cfg, progress=progress)
    return model, aam, sampler, result


def write_curve(curve: list[dict[str, float]], csv_path: str | Path, png_path: str | Path,
                title: str = "ECAPA-TDNN training") -> None:
    """The training curve as a DVC-plots CSV (step, loss, accuracy, lr) and a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from slimaudio.atomic import save_figure, write_csv

    df = pd.DataFrame(curve, columns=["step", "loss", "accuracy", "lr", "seconds", "cpu_seconds"])
    write_csv(csv_path, df)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for ax, col in zip(axes, ("loss", "accuracy", "lr"), strict=True):
        ax.plot(df["step"], df[col], lw=1.3)
        ax.set_xlabel("step")
        ax.set_ylabel(col)
        ax.grid(alpha=0.3)
    axes[0].set_title(title)
    save_figure(png_path, fig)


def training_summary(res: TrainResult, n_classes: int) -> dict[str, float]:
    """The metrics a training stage writes for `dvc metrics` and logs to MLflow."""
    last = res.curve[-1]
    return {"train_loss": last["loss"], "train_accuracy": last["accuracy"],
            "train_seconds": res.seconds, "n_speakers": n_classes}


def log_curve(run: Any, curve: Iterable[Mapping[str, float]]) -> None:
    """Loss, accuracy and learning rate per logged step, on a tracking.RunRecord."""
    for p in curve:
        for key in ("loss", "accuracy", "lr"):
            run.log_metric_step(key, p[key], int(p["step"]))
