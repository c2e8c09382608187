"""The compared normalisers: baseline softmax, clip, every fitted pwl<k> and `learnable`, with
the user's coefficient overrides (params `pwl_softmax.overrides`) applied and checked."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from slimaudio.compress import exp_free, pwl
from slimaudio.errors import ParamError
from slimaudio.schemas.pwl_softmax import BENCH
from slimaudio.studies.pwl_softmax.fit import FitResult

COEFF_KEYS = {"clip": {"floor"}, "pwl": {"c0", "s0", "d", "t", "floor"}, "ibert": set(),
              "base2": {"scale"}, "consmax": {"beta", "gamma"}}


@dataclass
class Variant:
    name: str
    method: str                       # softmax | clip | pwl | learnable | ibert | base2 | consmax
    params: dict[str, Any] = field(default_factory=dict)   # the normaliser's coefficients

    def module(self) -> nn.Module:
        return pwl.make_softmax(self.method, self.params)

    def run_params(self) -> dict[str, str]:
        """The variant's MLflow params."""
        return {"method": self.method, "coeffs": json.dumps(self.params)}


def _override(name: str, kind: str, base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    over = overrides.get(name)
    if over is None:
        return base
    if not isinstance(over, Mapping):
        raise ParamError(f"params: pwl_softmax.overrides.{name} must be a mapping")
    bad = set(over) - COEFF_KEYS[kind]
    if bad:
        raise ParamError(f"params: unknown key 'pwl_softmax.overrides.{name}.{sorted(bad)[0]}' "
                         f"(allowed: {', '.join(sorted(COEFF_KEYS[kind]))})")
    out = {**base, **{k: v for k, v in over.items() if v is not None}}
    if kind == "pwl" and len(out["d"]) != len(out["t"]):
        raise ParamError(f"params: pwl_softmax.overrides.{name}: d and t need equal lengths")
    return out


def build_variants(fit_res: FitResult, learnable_segments: int,
                   overrides: Mapping[str, Any], bench: Sequence[str] = ()) -> list[Variant]:
    """baseline, clip, pwl1, pwl2, the other pwl<k>, the data-free pwl<k>_uniform, learnable
    (init from pwl<learnable_segments>), then the `bench` forms (consmax from its fit)."""
    for k in (1, 2, learnable_segments):
        if k not in fit_res.pwl:
            raise ParamError(f"params: pwl_fit.segments must include {k} (fitted: "
                             f"{sorted(fit_res.pwl)})")
    known = ({"clip", "learnable"} | {f"pwl{k}" for k in fit_res.pwl}
             | {f"pwl{k}_uniform" for k in fit_res.uniform} | set(bench))
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ParamError(f"params: pwl_softmax.overrides.{unknown[0]} names no method "
                         f"(known: {', '.join(sorted(known))})")
    out = [Variant("baseline", "softmax"),
           Variant("clip", "clip", _override("clip", "clip", {"floor": fit_res.clip_floor}, overrides))]
    for k in sorted(fit_res.pwl, key=lambda k: (k > 2, k)):
        out.append(Variant(f"pwl{k}", "pwl",
                           _override(f"pwl{k}", "pwl", fit_res.pwl[k].as_dict(), overrides)))
    for k, c in sorted(fit_res.uniform.items()):
        name = f"pwl{k}_uniform"
        out.append(Variant(name, "pwl", _override(name, "pwl", c.as_dict(), overrides)))
    init = next(v for v in out if v.name == f"pwl{learnable_segments}").params
    out.append(Variant("learnable", "learnable", _override("learnable", "pwl", dict(init), overrides)))
    starts = {"ibert": {}, "base2": {"scale": exp_free.LOG2E}, "consmax": dict(fit_res.consmax)}
    for name in bench:
        if name not in BENCH:
            raise ParamError(f"params: pwl_softmax.bench: unknown form {name!r} "
                             f"(known: {', '.join(BENCH)})")
        out.append(Variant(name, name, _override(name, name, starts[name], overrides)))
    return out


def control_variant() -> Variant:
    """The unchanged baseline, fine-tuned like every method (`baseline_ft_control`)."""
    return Variant("baseline_ft_control", "softmax")
