"""Piecewise-linear softmax replacements: continuity, clipping, normalisation, fitting, the
learnable variant, the pooling shortcuts, and ONNX export of every variant."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from slimaudio.compress import pwl
from slimaudio.compress.exp_free import Base2Softmax, ConSmax, IBertSoftmax
from slimaudio.compress.pwl import ClipSoftmax, LearnablePwlSoftmax, PwlCoeffs, PwlSoftmax
from slimaudio.models.ecapa import AttentiveStatsPool, EcapaTdnn, Softmax

CONVEX2 = PwlCoeffs(c0=0.8, s0=0.15, d=(0.6,), t=(-1.2,), floor=0.02)
CONVEX4 = PwlCoeffs(c0=0.9, s0=0.02, d=(0.1, 0.3, 0.5), t=(-4.0, -2.0, -0.8), floor=0.005)
NONCONVEX = PwlCoeffs(c0=0.9, s0=0.3, d=(0.4, -0.2), t=(-1.5, -0.5), floor=0.01)
PWL1 = PwlCoeffs(c0=0.7, s0=0.2, floor=0.03)


def _modules() -> dict[str, torch.nn.Module]:
    return {"softmax": Softmax(), "clip": ClipSoftmax(0.05), "pwl1": PwlSoftmax(PWL1),
            "pwl2": PwlSoftmax(CONVEX2), "pwl4": PwlSoftmax(CONVEX4),
            "nonconvex": PwlSoftmax(NONCONVEX), "learnable": LearnablePwlSoftmax(CONVEX2),
            "ibert": IBertSoftmax(), "base2": Base2Softmax(), "consmax": ConSmax(1.0, 0.5)}


NORMALISED = [n for n in _modules() if n != "consmax"]  # consmax's weights need not sum to one


def _logits(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    e = torch.randn(3, 16, 50, generator=g) * 3
    e[0, 0] = -50.0  # a row far below every breakpoint: all weights at the floor
    e[1, 1] = 40.0 + torch.randn(50, generator=g)  # large magnitudes
    return e


def _jump(f, t: float, eps: float = 1e-4) -> float:
    return abs(float(f(t + eps)) - float(f(t - eps)))


@pytest.mark.parametrize("coeffs", [PWL1, CONVEX2, CONVEX4, NONCONVEX], ids=["1", "2", "4", "nc"])
def test_pwl_is_continuous_at_every_breakpoint(coeffs: PwlCoeffs) -> None:
    mod = PwlSoftmax(coeffs)

    def g(z: float) -> float:  # the module's own unnormalised output at z = e - max
        e = torch.tensor([[0.0, z]])
        return float(mod.unnormalised(e)[0, 1]) * (coeffs.s0 if mod.convex else 1.0)

    knots = list(coeffs.t)
    # where f crosses the floor, the clipping also has a knot
    zs = np.linspace(-10, 0, 20001)
    knots += list(zs[np.flatnonzero(np.diff(np.sign(coeffs(zs) - coeffs.floor)))])
    assert knots
    max_slope = abs(coeffs.s0) + sum(abs(v) for v in coeffs.d)
    for t in knots:
        for eps in (1e-2, 1e-4):  # a jump would not shrink with eps
            assert _jump(g, t, eps) <= max_slope * 2 * eps * 1.01 + 1e-6, f"jump at {t}"
            assert _jump(coeffs.clipped, t, eps) <= max_slope * 2 * eps * 1.01 + 1e-9
    # and the module computes the documented function
    for z in (-7.0, -3.3, -1.0, -0.2, 0.0):
        assert g(z) == pytest.approx(float(coeffs.clipped(np.array(z))), abs=1e-5)


@pytest.mark.parametrize("name", NORMALISED)
def test_weights_are_non_negative_and_sum_to_one(name: str) -> None:
    mod = _modules()[name]
    e = _logits()
    w = mod(e)
    assert torch.isfinite(w).all()
    assert (w >= 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1]), atol=1e-5, rtol=0)
    with torch.no_grad():  # the in-place inference path computes the same weights
        torch.testing.assert_close(mod(e.clone()), w.detach(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(e, _logits())  # and never writes into its input


def test_numpy_reference_matches_modules() -> None:
    e = _logits(1).reshape(-1, 50).double()
    cols = e.numpy()
    for method, params, mod in [("clip", {"floor": 0.05}, ClipSoftmax(0.05)),
                                ("pwl", CONVEX4.as_dict(), PwlSoftmax(CONVEX4)),
                                ("pwl", NONCONVEX.as_dict(), PwlSoftmax(NONCONVEX))]:
        np.testing.assert_allclose(mod(e).numpy(), pwl.weights_np(cols, method, params), atol=1e-9)


def test_clip_and_pwl_reject_bad_floors() -> None:
    with pytest.raises(ValueError, match="floor"):
        ClipSoftmax(0.0)
    with pytest.raises(ValueError, match="floor"):
        PwlSoftmax(PwlCoeffs(c0=1.0, s0=1.0, floor=0.0))
    with pytest.raises(ValueError, match="unknown softmax method"):
        pwl.make_softmax("lut")


@pytest.mark.parametrize("name", ["softmax", "clip", "pwl1", "pwl2", "nonconvex", "ibert",
                                  "base2", "consmax"])
def test_pooling_shortcuts_equal_plain_weighted_statistics(name: str) -> None:
    torch.manual_seed(0)
    pool = AttentiveStatsPool(24, 8).eval()
    pool.softmax = _modules()[name]
    x = torch.relu(torch.randn(2, 24, 40)) * 2
    with torch.no_grad():
        got = pool(x)
        e = pool.logits(x)
        w = pool.softmax(e)
        mu = (x * w).sum(-1)
        sg = torch.sqrt(torch.clamp((x * x * w).sum(-1) - mu * mu, min=1e-4))
    torch.testing.assert_close(got, torch.cat([mu, sg], 1), atol=2e-4, rtol=1e-4)


def _hist(lo: float = -9.0) -> pwl.LogitHistogram:
    rng = np.random.default_rng(0)
    cols = rng.normal(0, 2.5, (400, 60))
    h = pwl.histogram(cols, 200)
    assert h.z_edges[0] < lo + 5
    return h


def test_fit_improves_with_segments_and_beats_naive_lines() -> None:
    h = _hist()
    errs = {k: pwl.exp_mse(h, pwl.fit_pwl(h, k)) for k in (1, 2, 4, 8)}
    assert errs[8] < errs[4] < errs[2] < errs[1]
    naive = PwlCoeffs(c0=1.0, s0=1.0, floor=1e-3)  # tangent of exp at 0
    assert errs[1] < pwl.exp_mse(h, naive)
    for k in (2, 4, 8):
        c = pwl.fit_pwl(h, k)
        assert len(c.t) == k - 1 and all(np.diff(c.t) >= 0) and all(v >= 0 for v in c.d)
        assert c.floor >= 1e-4 and c.s0 > 0


def test_fit_clip_floor_minimises_weight_distance() -> None:
    rng = np.random.default_rng(1)
    cols = rng.normal(0.5, 2.0, (300, 50))
    floor = pwl.fit_clip(cols)
    assert floor > 0
    best = pwl.total_variation(cols, "clip", {"floor": floor})
    for other in (floor * 0.2, floor * 5):
        assert best <= pwl.total_variation(cols, "clip", {"floor": other}) + 1e-9


def test_learnable_keeps_continuity_after_an_optimizer_step() -> None:
    mod = LearnablePwlSoftmax(CONVEX4)
    before = {n: p.detach().clone() for n, p in mod.named_parameters()}
    opt = torch.optim.SGD(mod.parameters(), lr=0.5)
    target = torch.softmax(_logits(2) * 0.5, -1)
    loss = ((mod(_logits(2)) - target) ** 2).sum()
    loss.backward()
    opt.step()
    changed = [n for n, p in mod.named_parameters() if not torch.equal(p, before[n])]
    assert {"c0", "s0", "d", "t"} <= set(changed)
    with torch.no_grad():
        max_slope = float(mod.s0.abs() + mod.d.abs().sum())
        for t in mod.t.tolist():
            for eps in (1e-2, 1e-4):  # a jump would not shrink with eps
                jump = abs(float(mod.approx(torch.tensor(t + eps)) - mod.approx(torch.tensor(t - eps))))
                assert jump <= max_slope * 2 * eps * 1.01 + 1e-6
        w = mod(_logits(3))
        assert (w >= 0).all()
        torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1]))
        # the deployed (static) form computes the same weights
        torch.testing.assert_close(mod.to_static()(_logits(3)), w, atol=1e-5, rtol=1e-4)


def _small_model(seed: int = 0) -> EcapaTdnn:
    torch.manual_seed(seed)
    m = EcapaTdnn(channels=32, mfa_channels=48, attention_channels=16, se_bottleneck=16)
    for mod in m.modules():  # non-trivial BN statistics
        if isinstance(mod, torch.nn.BatchNorm1d):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 2.0)
    return m.eval()


@pytest.mark.parametrize("name", list(_modules()) + ["learnable_static"])
def test_every_variant_exports_to_onnx_and_matches_torch(name: str) -> None:
    from slimaudio.speaker.export import export_bytes, onnx_embedder

    mods = _modules()
    norm = mods["learnable"].to_static() if name == "learnable_static" else mods[name]
    model = copy.deepcopy(_small_model()).set_softmax(norm)
    blob = export_bytes(model, 80)
    embed = onnx_embedder(blob)
    for frames in (57, 230):  # dynamic frames
        x = torch.randn(1, frames, 80)
        with torch.no_grad():
            ref = model(x).numpy()[0]
        np.testing.assert_allclose(embed(x[0].numpy()), ref, atol=2e-4, rtol=1e-3)


def test_pwl_graph_has_no_exp_and_no_lookup() -> None:
    import onnx

    from slimaudio.speaker.export import export_bytes

    for norm in (PwlSoftmax(PWL1), PwlSoftmax(CONVEX4), ClipSoftmax(0.1)):
        g = onnx.load_from_string(export_bytes(_small_model().set_softmax(norm), 80)).graph
        asp = [n for n in g.node if n.name.startswith("/asp/")]
        assert not {n.op_type for n in asp} & {"Exp", "Softmax", "Pow", "Log"}
        shapes = {o for n in g.node if n.op_type == "Shape" for o in n.output}
        for n in asp:  # gathers only ever index tensor shapes, never a table of values
            if n.op_type.startswith("Gather"):
                assert n.input[0] in shapes, n.name
