"""Bounds without branching: hand-derived values, CROWN vs IBP, alpha, batching over boxes."""

from __future__ import annotations

import math

import pytest
import torch

import graphver as gv

METHODS = ("ibp", "crown", "alpha")


def one_var(lb, ub):
    m = gv.Model("t")
    return m, m.var("x", lb, ub)


def test_x_squared_minus_x_hand_derived():
    """On [-1, 2]: IBP adds the separate ranges [0, 4] and [-2, 1] -> [-2, 5]. CROWN relaxes x**2 with
    the chord x + 2 above and the parallel tangent x - 1/4 below, so x**2 - x lies in [-1/4, 2]: exact."""
    m, x = one_var(-1, 2)
    ibp = m.interval(x**2 - x, method="ibp")
    crown = m.interval(x**2 - x, method="crown")
    assert ibp.lower == pytest.approx(-2, abs=1e-12) and ibp.upper == pytest.approx(5, abs=1e-12)
    assert ibp.lower <= -2 and ibp.upper >= 5
    assert crown.lower == pytest.approx(-0.25, abs=1e-12) and crown.upper == pytest.approx(2, abs=1e-12)
    assert crown.lower <= -0.25 and crown.upper >= 2


def test_x_sin_x_crown_strictly_tighter():
    """x*sin(x) on [1, 3]: exact range [sin(3)*3 = 0.4234, 1.8197]; IBP gives [0.1411, 3]."""
    m, x = one_var(1, 3)
    ibp = m.interval(x * gv.sin(x), method="ibp")
    crown = m.interval(x * gv.sin(x), method="crown")
    alpha = m.interval(x * gv.sin(x), method="alpha")
    assert ibp.lower == pytest.approx(math.sin(3), rel=1e-12) and ibp.upper == pytest.approx(3, rel=1e-12)
    assert crown.width < ibp.width - 0.5
    assert alpha.width <= crown.width
    exact_high = max(v * math.sin(v) for v in [1 + 2e-6 * i for i in range(1_000_001)])
    assert alpha.lower <= 3 * math.sin(3) and alpha.upper >= exact_high


@pytest.mark.parametrize(
    "make, exact",
    [
        (lambda x: gv.exp(x), (math.exp(-1), math.exp(2))),
        (lambda x: gv.sin(x), (math.sin(-1), 1.0)),
        (lambda x: gv.cos(x), (math.cos(2), 1.0)),
        (lambda x: gv.atan(x), (math.atan(-1), math.atan(2))),
        (lambda x: gv.tanh(x), (math.tanh(-1), math.tanh(2))),
        (lambda x: gv.sigmoid(x), (1 / (1 + math.e), 1 / (1 + math.exp(-2)))),
        (lambda x: gv.relu(x), (0.0, 2.0)),
        (lambda x: gv.Abs(x), (0.0, 2.0)),
        (lambda x: x**3, (-1.0, 8.0)),
        (lambda x: x**4, (0.0, 16.0)),
        (lambda x: gv.sqrt(x + 1), (0.0, math.sqrt(3))),
        (lambda x: gv.log(x + 2), (0.0, math.log(4))),
        (lambda x: (x + 2) ** 1.5, (1.0, 8.0)),
        (lambda x: 1 / (x + 2), (0.25, 1.0)),
        (lambda x: (x + 2) ** -2, (1 / 16, 1.0)),
        (lambda x: gv.tan(x / 2), (math.tan(-0.5), math.tan(1.0))),
        (lambda x: gv.Max(x, 0.5), (0.5, 2.0)),
        (lambda x: gv.Min(x, 0.5), (-1.0, 0.5)),
        (lambda x: 3 * x - 1, (-4.0, 5.0)),
    ],
)
def test_single_op_ranges_are_tight_and_sound(make, exact):
    """Each op alone over x in [-1, 2]: every method encloses the exact range; alpha is tight to 1e-6.

    (IBP is exact for a single op, but not for Min/Max, which lower to b + relu(a - b).)"""
    m, x = one_var(-1, 2)
    for method in METHODS:
        iv = m.interval(make(x), method=method, alpha_iterations=100)
        assert iv.lower <= exact[0] and iv.upper >= exact[1], (method, iv)
    assert iv.lower == pytest.approx(exact[0], abs=1e-6) and iv.upper == pytest.approx(exact[1], abs=1e-6)


def test_crown_never_looser_than_ibp_and_alpha_never_looser_than_crown():
    m = gv.Model("t")
    x, y = m.var("x", -1, 2), m.var("y", 0.5, 1.5)
    exprs = [x * gv.sin(y) + y**2 * x, gv.exp(x * y) - x * y, gv.tanh(x - y) * (x + y), (x - y) ** 2 - x**2 - y**2]
    ibp = m.interval(exprs, method="ibp")
    crown = m.interval(exprs, method="crown")
    alpha = m.interval(exprs, method="alpha")
    for a, b, c in zip(ibp, crown, alpha):
        assert b.width <= a.width and c.width <= b.width
    # exp(xy) - xy: CROWN relates the two uses of xy; alpha also the products and squares.
    assert crown[1].width < ibp[1].width - 4.0
    assert alpha[1].lower > 0.9 and alpha[3].width < ibp[3].width - 1.5


def test_list_of_expressions_matches_one_at_a_time():
    m = gv.Model("t")
    x, y = m.var("x", -1, 1), m.var("y", 0, 2)
    exprs = [x * y, gv.exp(x) + y, gv.sin(x + y)]
    together = m.interval(exprs, method="crown")
    for e, iv in zip(exprs, together):
        alone = m.interval(e, method="crown")
        assert iv.lower == pytest.approx(alone.lower, abs=1e-12) and iv.upper == pytest.approx(alone.upper, abs=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_batched_boxes_match_single_boxes(method):
    """Many boxes in one pass give the same bounds as one box at a time."""
    m = gv.Model("t")
    x, y = m.var("x", -2, 2), m.var("y", -2, 2)
    expr = x * gv.cos(y) + gv.sigmoid(x * y) - (x - y) ** 2
    gen = torch.Generator().manual_seed(0)
    lower = torch.rand(64, 2, generator=gen, dtype=torch.float64) * 3 - 2
    upper = lower + torch.rand(64, 2, generator=gen, dtype=torch.float64)
    batch = m.interval(expr, method=method, lower=lower, upper=upper, alpha_iterations=10)
    assert batch.lower.shape == (64,)
    for b in (0, 17, 63):
        single = m.interval(expr, method=method, lower=lower[b], upper=upper[b], alpha_iterations=10)
        assert float(batch.lower[b]) == pytest.approx(single.lower, abs=1e-9)
        assert float(batch.upper[b]) == pytest.approx(single.upper, abs=1e-9)
    pts = lower[:, None] + (upper - lower)[:, None] * torch.rand(64, 500, 2, generator=gen, dtype=torch.float64)
    values = m.evaluate(expr, pts.reshape(-1, 2)).reshape(64, 500)
    assert bool((values >= batch.lower[:, None]).all() and (values <= batch.upper[:, None]).all())


def test_thousands_of_boxes_in_one_call():
    m = gv.Model("t")
    x = m.vars("x", 4, -1, 1)
    expr = sum(gv.sin(x[i]) * x[(i + 1) % 4] for i in range(4)) + gv.exp(x[0] - x[3])
    gen = torch.Generator().manual_seed(1)
    lower = torch.rand(4096, 4, generator=gen, dtype=torch.float64) * 2 - 1
    upper = torch.minimum(lower + 0.2, torch.ones(1, dtype=torch.float64))
    iv = m.interval(expr, method="crown", lower=lower, upper=upper)
    assert iv.lower.shape == (4096,) and bool((iv.lower <= iv.upper).all())


def test_intermediate_crown_refinement_tightens_deep_graphs():
    """A composition where the inner node's IBP interval is loose (x - x*x style cancellation)."""
    m = gv.Model("t")
    x = m.var("x", 0, 1)
    inner = x - x**2  # exact range [0, 1/4]; IBP says [-1, 1]
    expr = gv.exp(4 * inner)
    ibp = m.interval(expr, method="ibp")
    crown = m.interval(expr, method="crown")
    no_refine = m.interval(expr, method="crown", crown_intermediate=False)
    assert crown.upper < no_refine.upper <= ibp.upper + 1e-12
    assert crown.upper >= math.e and crown.upper < 3.0


def test_alpha_improves_with_iterations_and_keeps_best():
    m = gv.Model("t")
    x, y = m.var("x", -1, 1), m.var("y", -1, 1)
    expr = x * gv.exp(y) - y**2
    crown = m.interval(expr, method="crown")
    few = m.interval(expr, method="alpha", alpha_iterations=1)
    many = m.interval(expr, method="alpha", alpha_iterations=60)
    assert many.width < crown.width and few.width <= crown.width


def test_bounds_on_overflow_are_infinite_not_nan():
    m, x = one_var(0, 1000)
    iv = m.interval(gv.exp(x), method="crown")
    assert iv.upper == math.inf and iv.lower <= 1.0 and not math.isnan(iv.lower)
    iv = m.interval(gv.exp(gv.exp(x)) - gv.exp(x), method="alpha", alpha_iterations=3)
    assert not math.isnan(iv.lower) and not math.isnan(iv.upper)


def test_interval_to_json_and_str():
    m, x = one_var(0, 1)
    iv = m.interval(x**2)
    d = iv.to_dict()
    assert d["method"] == "crown" and d["lower"] <= 0 and d["upper"] >= 1
    assert "[" in str(iv)
    low, high = iv
    assert low == iv.lower and high == iv.upper
