"""The exp-free softmax forms beside the PWL paper's: I-BERT's polynomial exp, the base-2
shift-and-linear exp, ConSmax. (Non-negativity, sums, pooling and ONNX export of each are in
test_pwl.py with every other normaliser.)"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from slimaudio.compress import exp_free, pwl
from slimaudio.compress.exp_free import LN2, Base2Softmax, ConSmax, IBertSoftmax
from slimaudio.errors import ParamError


def _unnormalised_at(mod: torch.nn.Module, z: float) -> float:
    return float(mod.unnormalised(torch.tensor([[0.0, z]], dtype=torch.float64))[0, 1])


@pytest.mark.parametrize(("mod", "knots", "tol"), [
    (IBertSoftmax(), [-k * LN2 for k in range(1, 12)], 1e-3),  # I-BERT's fit: tiny jumps
    (Base2Softmax(), [-k * LN2 for k in range(1, 12)], 1e-7),  # integer u: exact (the
    # tolerance is the change of a continuous function over the 2e-9 step)
    (Base2Softmax(1.0), [-float(k) for k in range(1, 12)], 1e-7),
], ids=["ibert", "base2", "base2_scale1"])
def test_range_reduction_is_continuous_at_its_knots(mod: torch.nn.Module, knots: list[float],
                                                     tol: float) -> None:
    for t in knots:
        lo, hi = _unnormalised_at(mod, t - 1e-9), _unnormalised_at(mod, t + 1e-9)
        assert abs(hi - lo) <= tol * hi, f"jump of {hi - lo:.3g} at z={t:.3f}"


def test_each_form_approximates_exp_within_its_known_bound() -> None:
    z = np.linspace(-12.0, 0.0, 40001)
    rel = {m: np.max(np.abs(exp_free.approx_exp_np(m, z, {}) - np.exp(z)) / np.exp(z))
           for m in ("ibert", "base2")}
    assert rel["ibert"] < 0.005            # I-BERT: second-order fit on [-ln2, 0]
    assert 0.05 < rel["base2"] < 0.0615    # Mitchell's linear mantissa: at most ~6.1 %
    # and the torch modules compute the documented functions
    for mod, m in ((IBertSoftmax(), "ibert"), (Base2Softmax(), "base2")):
        for zz in (-7.3, -2.0, -0.4, 0.0):
            assert _unnormalised_at(mod, zz) == pytest.approx(
                float(exp_free.approx_exp_np(m, np.array(zz), {})), rel=1e-9)


def test_numpy_references_match_the_modules() -> None:
    e = (torch.randn(40, 30, generator=torch.Generator().manual_seed(0)) * 3).double()
    for method, params in (("ibert", {}), ("base2", {"scale": 1.0}),
                           ("consmax", {"beta": 1.5, "gamma": 0.2})):
        got = pwl.make_softmax(method, params).double()(e).detach().numpy()
        np.testing.assert_allclose(got, pwl.weights_np(e.numpy(), method, params), rtol=1e-6)


def test_consmax_uses_neither_max_nor_sum_and_is_length_invariant() -> None:
    mod = ConSmax(beta=2.0, gamma=0.5)
    e = torch.randn(2, 4, 30)
    w = mod(e)
    torch.testing.assert_close(w, torch.exp(e - 2.0) / (0.5 * 30))
    # shifting one frame's logit leaves every other weight unchanged (no max, no sum)
    e2 = e.clone()
    e2[..., 0] += 5.0
    torch.testing.assert_close(mod(e2)[..., 1:], w[..., 1:])
    # per-frame gamma: an utterance repeated twice as long has the same weighted statistics
    x = torch.randn(1, 4, 30)
    stats = [(x_ * mod(e_[:1])).sum(-1) for x_, e_ in ((x, e), (x.repeat(1, 1, 2), e.repeat(1, 1, 2)))]
    torch.testing.assert_close(stats[0], stats[1])


def test_consmax_constants_train_and_start_from_the_logits() -> None:
    rng = np.random.default_rng(0)
    cols = rng.normal(1.0, 2.0, (500, 80))
    c = exp_free.fit_consmax(cols)
    sums = exp_free.weights_np(cols, "consmax", c).sum(axis=1)
    assert np.median(sums) == pytest.approx(1.0, rel=0.2)  # a typical row sums to about one
    mod = ConSmax(**c)
    assert mod.constants() == pytest.approx(c)
    loss = mod(torch.from_numpy(cols[:4]).float()).pow(2).sum()
    loss.backward()
    assert mod.beta.grad is not None and mod.log_gamma.grad is not None
    with pytest.raises(ValueError, match="gamma"):
        ConSmax(0.0, 0.0)
    with pytest.raises(ValueError, match="scale"):
        Base2Softmax(-1.0)


def test_exported_graphs_drop_exp_or_the_reductions() -> None:
    import onnx

    from slimaudio.models.ecapa import EcapaTdnn
    from slimaudio.speaker.export import export_bytes

    torch.manual_seed(0)
    model = EcapaTdnn(channels=32, mfa_channels=48, attention_channels=16, se_bottleneck=16).eval()

    def asp_ops(norm: torch.nn.Module) -> set[str]:
        g = onnx.load_from_string(export_bytes(model.set_softmax(norm), 80)).graph
        return {n.op_type for n in g.node if n.name.startswith("/asp/")}

    for norm in (IBertSoftmax(), Base2Softmax()):
        assert not asp_ops(norm) & {"Exp", "Softmax", "Log"}
    ops = asp_ops(ConSmax(1.0, 0.5))
    assert "Exp" in ops and "ReduceMax" not in ops and "Softmax" not in ops


def test_bench_variants_are_built_and_checked() -> None:
    from slimaudio.compress.pwl import PwlCoeffs
    from slimaudio.studies.pwl_softmax.fit import FitResult
    from slimaudio.studies.pwl_softmax.variants import build_variants

    h = pwl.uniform_histogram()
    c = PwlCoeffs(c0=0.8, s0=0.2, floor=0.01)
    c2 = PwlCoeffs(c0=0.8, s0=0.15, d=(0.6,), t=(-1.2,), floor=0.02)
    fit = FitResult(h, 0.1, {1: c, 2: c2}, {}, {}, {}, {"beta": 1.0, "gamma": 0.3})
    names = [v.name for v in build_variants(fit, 2, {}, ("ibert", "base2", "consmax"))]
    assert names[-3:] == ["ibert", "base2", "consmax"]
    over = build_variants(fit, 2, {"consmax": {"gamma": 0.7}, "base2": {"scale": 1.0}},
                          ("base2", "consmax"))
    assert over[-1].params == {"beta": 1.0, "gamma": 0.7} and over[-2].params == {"scale": 1.0}
    assert [v.name for v in build_variants(fit, 2, {}, ())][-1] == "learnable"
    with pytest.raises(ParamError, match="pwl_softmax.bench: unknown form 'lut'"):
        build_variants(fit, 2, {}, ("lut",))
    with pytest.raises(ParamError, match=r"overrides.consmax.floor"):
        build_variants(fit, 2, {"consmax": {"floor": 1.0}}, ("consmax",))
    assert math.isclose(over[-2].module().scale, 1.0)
