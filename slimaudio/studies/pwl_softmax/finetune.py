"""Step 2b: fine-tuning a variant, identically for every method and the control.

Scope `head` freezes the trunk (conv_in .. conv_mfa) and trains asp, bn_asp, fc, bn_fc and the
AAM head on trunk features of noisy training crops computed once (`head_cache`) and shared by
every method; scope `all` trains the whole model on fresh crops. The same seed gives every
method the same batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from slimaudio.compress import pwl
from slimaudio.datasets.speakers import SpeakerData
from slimaudio.models.ecapa import EcapaTdnn
from slimaudio.progress import progress_bar
from slimaudio.schemas.pwl_softmax import Ft
from slimaudio.speaker.aamsoftmax import AAMSoftmax
from slimaudio.speaker.data import CropSampler
from slimaudio.speaker.train import TrainConfig, TrainResult, fit, lr_at, train
from slimaudio.studies.pwl_softmax.config import FT_CACHE_SEED_OFFSET

HEAD = ("asp", "bn_asp", "fc", "bn_fc")


@dataclass(frozen=True)
class FtPlan:
    """Fine-tuning as run: the `pwl_softmax.ft` section plus what it borrows from elsewhere."""

    ft: Ft
    learnable_lr_mult: float   # pwl_softmax.learnable_lr_mult
    weight_decay: float        # ecapa.train.weight_decay, as the baseline was trained
    seed: int                  # base.seed: the same batches for every method


def cache_sampler(data: SpeakerData, base: TrainConfig, seed: int) -> CropSampler:
    """Noisy training crops of the baseline's length for the head cache (its own crop stream)."""
    return CropSampler(data, base.crop_frames, seed + FT_CACHE_SEED_OFFSET, base.noise)


def head_cache(model: EcapaTdnn, sampler: CropSampler, crops: int, batch_size: int = 64,
               progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen-trunk features (float16 [crops, mfa_channels, frames]) of noisy training crops."""

    model.eval()
    xs, ys = [], []
    with torch.no_grad():
        for start in progress_bar(range(0, crops, batch_size), desc="ft cache", disable=not progress,
                                  leave=False):
            x, y = sampler.batch(min(batch_size, crops - start))
            xs.append(model.trunk(torch.from_numpy(x)).to(torch.float16))
            ys.append(torch.from_numpy(y))
    return torch.cat(xs), torch.cat(ys)


def param_groups(model: EcapaTdnn, aam: AAMSoftmax, modules: Sequence[nn.Module],
                 lr_mult: float) -> list[dict[str, Any]]:
    """The trained parameters; the normaliser's own (learnable only) at `lr_mult` times the lr."""
    norm = list(model.asp.softmax.parameters())
    ids = {id(p) for p in norm}
    rest = [p for m in modules for p in m.parameters() if id(p) not in ids] + list(aam.parameters())
    groups: list[dict[str, Any]] = [{"params": rest}]
    if norm:
        groups.append({"params": norm, "lr_mult": lr_mult})
    return groups


def finetune_head(model: EcapaTdnn, aam: AAMSoftmax, cache: tuple[torch.Tensor, torch.Tensor],
                  plan: FtPlan, desc: str, progress: bool = True) -> TrainResult:
    """Train asp/bn_asp/fc/bn_fc (+ normaliser coefficients) and the AAM head on cached
    trunk features; the same seed gives every method the same batches."""
    cfg = plan.ft
    xs, ys = cache
    modules = [getattr(model, n) for n in HEAD]
    opt = torch.optim.Adam(param_groups(model, aam, modules, plan.learnable_lr_mult), lr=cfg.lr,
                           weight_decay=plan.weight_decay)
    model.eval()
    for m in modules:
        m.train()
    aam.train()
    rng = np.random.default_rng(plan.seed)

    def step_fn(step: int, lr: float) -> tuple[float, float]:
        idx = torch.from_numpy(rng.integers(0, len(ys), size=cfg.batch_size))
        loss, acc = aam(model.head(xs[idx].float()), ys[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach()), float(acc)

    res = fit(step_fn, cfg.steps, lambda s: lr_at(s, cfg.steps, cfg.lr, cfg.lr_min, 0), opt,
              max(1, cfg.steps // 20), desc, progress)
    model.eval()
    aam.eval()
    return res


def finetune_all(model: EcapaTdnn, aam: AAMSoftmax, data: SpeakerData, base: TrainConfig,
                 plan: FtPlan, desc: str, progress: bool = True) -> TrainResult:
    """Train the whole model on fresh noisy crops (scope `all`)."""
    cfg = plan.ft
    sampler = CropSampler(data, base.crop_frames, plan.seed, base.noise)
    tc = TrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, crop_frames=base.crop_frames,
                     lr=cfg.lr, lr_min=cfg.lr_min, warmup_steps=0, weight_decay=plan.weight_decay,
                     margin=base.margin, margin_warmup_steps=0, scale=base.scale, noise=base.noise,
                     log_every=max(1, cfg.steps // 20), threads=base.threads, seed=plan.seed)
    groups = param_groups(model, aam, [model], plan.learnable_lr_mult)
    return train(model, aam, sampler, tc, params=groups, desc=desc, progress=progress)


def static_module(module: nn.Module) -> nn.Module:
    """The deployed form of a normaliser (learnable -> fixed coefficients)."""
    return module.to_static() if isinstance(module, pwl.LearnablePwlSoftmax) else module
