"""Constraints: modeling, feasibility-based bound tightening (fuzzed for soundness), infeasibility
certificates, and certified bounds over constrained sets (models/constrained.py)."""

from __future__ import annotations

import math
import os
from collections import Counter

import pytest
import sympy
import torch
from hypothesis import HealthCheck, given, settings
from test_fuzz import N_VARS, boxes, expressions

import graphver as gv
from graphver.bounds.fbbt import fbbt
from graphver.tape import compile_expressions
from graphver.tape.evaluate import evaluate
from models.constrained import CONSTRAINED, FAST

DT = torch.float64
SAMPLES = 400


# --- modeling -----------------------------------------------------------------------------------------
def test_constrain_accepts_relations_and_rejects_bools():
    m = gv.Model("c")
    x, y = m.var("x", -2, 2), m.var("y", -2, 2)
    m.constrain(gv.Eq(x * y, 1))
    m.constrain([x + y <= 3, x >= -1, y > -1.5])
    assert [c.kind for c in m.constraints] == ["eq", "le", "le", "le"]
    assert len(m.constraint_rows) == 5  # the equality gives two rows
    with pytest.raises(gv.ModelError, match="gv.Eq"):
        m.constrain(x * y == 1)  # Python's == on sympy objects is a structural comparison: a bool
    with pytest.raises(gv.ModelError, match="not supported"):
        m.constrain(sympy.Ne(x, y))
    with pytest.raises(gv.ModelError, match="not variables"):
        m.constrain(sympy.Symbol("z") <= 1)
    assert m.max_violation({"x": 2.0, "y": 0.5}) == 0.0
    assert m.max_violation({"x": 1.0, "y": 2.0}) == pytest.approx(1.0)


# --- FBBT soundness: random graphs, random boxes, random constraint levels -------------------------------
def check_fbbt(expr, lower, upper, seed, stats, dtype=DT):
    """FBBT on boxes of ``dtype`` (the tape moved to it); feasibility is decided in float64 with a margin."""
    symbols = sorted(expr.free_symbols, key=lambda s: s.name)
    if dtype != DT:  # a box of the other dtype; the points are drawn inside it
        lower, upper = lower.to(dtype).to(DT), upper.to(dtype).to(DT)
        lower, upper = torch.minimum(lower, upper), torch.maximum(lower, upper)
    variables = [sympy.Symbol(f"x_{i}", real=True) for i in range(N_VARS)]
    tape = compile_expressions(variables, [expr, -expr])
    gen = torch.Generator().manual_seed(seed)
    t = torch.rand(lower.shape[0], SAMPLES, N_VARS, generator=gen, dtype=DT)
    points = lower[:, None] + (upper - lower)[:, None] * t
    values = evaluate(tape, points.reshape(-1, N_VARS))[:, 0].reshape(lower.shape[0], SAMPLES)
    finite = torch.isfinite(values)
    if not bool(finite.any()) or not symbols:
        return
    # per box: a band c1 <= g <= c2 between two sampled quantiles (an equality when they coincide)
    filled = torch.where(finite, values, torch.full_like(values, math.nan))
    c1 = torch.nanquantile(filled, 0.2, dim=1)
    c2 = torch.nanquantile(filled, 0.6, dim=1)
    c1, c2 = c1.nan_to_num(nan=0.0), c2.nan_to_num(nan=0.0)  # boxes without a finite value: any level
    c1, c2 = c1.to(dtype).to(DT), c2.to(dtype).to(DT)  # levels the other dtype can hold exactly
    # rows g - c2 <= 0 and c1 - g <= 0; the per-box levels enter the tape as two extra inputs, each fixed
    # by a zero-width interval
    c = [sympy.Symbol("c_hi", real=True), sympy.Symbol("c_lo", real=True)]
    band_tape = compile_expressions(variables + c, [expr - c[0], c[1] - expr])
    fixed = torch.stack([c2, c1], 1)
    low = torch.cat([lower, fixed], 1)
    high = torch.cat([upper, fixed], 1)
    new_low, new_high, infeasible = fbbt(band_tape.to(dtype=dtype), low.to(dtype), high.to(dtype), torch.arange(2), rounds=2)
    assert new_low.dtype == dtype
    new_low, new_high = new_low.to(DT), new_high.to(DT)
    assert bool((new_low >= low).all() & (new_high <= high).all())  # tightening only shrinks
    scale = 1e-7 * (1 + values.abs().nan_to_num(posinf=0.0))
    inside = finite & (values <= c2[:, None] - scale - 1e-7 * c2.abs()[:, None]) & (values >= c1[:, None] + scale + 1e-7 * c1.abs()[:, None])
    for b in range(lower.shape[0]):
        feasible = points[b][inside[b]]
        if feasible.shape[0] == 0:
            continue
        stats["boxes"] += 1
        stats["points"] += feasible.shape[0]
        assert not bool(infeasible[b]), f"box {b} declared infeasible but {feasible[0].tolist()} satisfies {expr}"
        ok = (feasible >= new_low[b, :N_VARS]) & (feasible <= new_high[b, :N_VARS])
        assert bool(ok.all()), (f"FBBT cut off a feasible point of {c1[b]:.6g} <= {expr} <= {c2[b]:.6g}: "
                                f"{feasible[~ok.all(1)][0].tolist()} not in {new_low[b].tolist()}..{new_high[b].tolist()}")
        shrunk = float(((upper[b] - lower[b]) - (new_high[b, :N_VARS] - new_low[b, :N_VARS])).clamp(min=0).sum())
        stats["shrunk"] += shrunk > 0


def run_fbbt_fuzz(examples: int, fixed: bool, dtype=DT) -> Counter:
    stats: Counter = Counter()
    symbols = [sympy.Symbol(f"x_{i}", real=True) for i in range(N_VARS)]

    @settings(max_examples=examples, deadline=None, derandomize=fixed, database=None,
              suppress_health_check=list(HealthCheck))
    @given(expr=expressions(symbols, 5), box=boxes())
    def check(expr, box):
        lower, upper, seed = box
        if expr.is_number:
            return
        try:
            check_fbbt(expr, lower, upper, seed, stats, dtype)
        except gv.DomainError:
            pass

    check()
    print(dict(stats))
    return stats


def test_fbbt_never_cuts_off_a_feasible_point():
    stats = run_fbbt_fuzz(250, os.environ.get("GRAPHVER_FUZZ_SEED", "fixed") == "fixed")
    assert stats["boxes"] >= 1500 and stats["points"] >= 50_000
    assert stats["shrunk"] >= 100  # tightening does something


@pytest.mark.slow
def test_fbbt_fuzz_many_more_cases():
    stats = run_fbbt_fuzz(3000, False)
    assert stats["boxes"] >= 20_000


@pytest.mark.parametrize("expr", ["Min(x_0, exp(exp(2.0/x_0)))", "Min(x_0, exp(exp(-2.0*x_0)))"])
def test_fbbt_overflow_regressions(expr):
    """exp(exp(6.7)) overflows float64 but is a finite real: an infinite end point must read as no
    information (it once marked feasible boxes infeasible, and clamping inf to the largest float cut
    off feasible points)."""
    stats: Counter = Counter()
    x0 = sympy.Symbol("x_0", real=True)
    parsed = sympy.sympify(expr, locals={"x_0": x0})
    gen = torch.Generator().manual_seed(0)
    width = (10.0 ** (torch.rand(24, 3, generator=gen, dtype=DT) * 15.0 - 12.0)).clamp(max=4.0)
    centre = (torch.rand(24, 3, generator=gen, dtype=DT) * 2 - 1) * 3.0
    check_fbbt(parsed, centre - width / 2, centre + width / 2, 0, stats)
    assert stats["boxes"] >= 5


def test_fbbt_on_a_circle_and_an_impossible_system():
    m = gv.Model("circle")
    x, y = m.var("x", -2, 2), m.var("y", 0.5, 2)
    tape = compile_expressions(m.variables, [x**2 + y**2 - 1, 1 - x**2 - y**2])
    low, high, empty = fbbt(tape, torch.tensor([[-2.0, 0.5]], dtype=DT), torch.tensor([[2.0, 2.0]], dtype=DT),
                            torch.arange(2), rounds=3)
    assert not bool(empty[0])
    # on the unit circle with y >= 0.5: |x| <= sqrt(3)/2 and y <= 1
    assert float(high[0, 0]) == pytest.approx(math.sqrt(0.75), abs=1e-6) and float(high[0, 0]) >= math.sqrt(0.75)
    assert float(low[0, 0]) <= -math.sqrt(0.75) and float(high[0, 1]) >= 1.0 and float(high[0, 1]) <= 1.0 + 1e-9
    tape = compile_expressions(m.variables, [x**2 + y**2 - 1, 2 - x - y])  # inside the circle, above x + y = 2
    _, _, empty = fbbt(tape, torch.tensor([[-2.0, 0.5]], dtype=DT), torch.tensor([[2.0, 2.0]], dtype=DT),
                       torch.arange(2), rounds=3)
    assert bool(empty[0])


# --- certified bounds over constrained sets -------------------------------------------------------------
def check_problem(name, timeout):
    problem = CONSTRAINED[name]()
    result = problem.model.bound(problem.expr, sense=problem.sense, timeout=timeout)
    if problem.known_value is None:
        assert result.status == "infeasible", str(result)
        assert result.stats.constraint_infeasible >= 1
        return result
    assert result.status == "solved", str(result)
    known = problem.known_value
    proven = result.lower if problem.sense == "min" else result.upper
    assert (proven <= known + 1e-9 * (1 + abs(known))) if problem.sense == "min" else (proven >= known - 1e-9 * (1 + abs(known)))
    assert abs(result.upper - result.lower) <= 1e-4 * max(1.0, abs(known))
    assert result.max_violation <= 1e-6
    # no certificate contradicted by a feasible point: IPOPT from many starts
    for start in range(6):
        local = problem.model.minimize(problem.expr if problem.sense == "min" else -problem.expr, starts=4, seed=start)
        if local.max_violation <= 1e-9:
            value = local.value if problem.sense == "min" else -local.value
            assert (value >= result.lower - 1e-6 * (1 + abs(value))) if problem.sense == "min" else (value <= result.upper + 1e-6 * (1 + abs(value)))
    return result


@pytest.mark.parametrize("name", FAST)
def test_constrained_problem_bracketed(name):
    check_problem(name, timeout=60)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(CONSTRAINED) - set(FAST)))
def test_constrained_problem_bracketed_slow(name):
    check_problem(name, timeout=120)


# --- Lagrangian bounds ----------------------------------------------------------------------------------
from graphver.bab.bounding import bound_batch  # noqa: E402
from graphver.bounds.ibp import NodeSplits  # noqa: E402
from graphver.bounds.lagrangian import lagrangian_lower  # noqa: E402
from graphver.options import BoundOptions  # noqa: E402


def no_splits(batch):
    empty = torch.zeros(batch, 0, dtype=DT)
    return NodeSplits(torch.zeros(0, dtype=torch.long), empty, empty.clone())


def test_recorded_linear_bounds_hold_pointwise():
    """The Lagrangian rests on CROWN's linear lower bound of every output, row(x) >= a . x + o on the box:
    checked on random graphs and boxes at sampled points."""
    stats: Counter = Counter()
    symbols = [sympy.Symbol(f"x_{i}", real=True) for i in range(N_VARS)]

    @settings(max_examples=150, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(expr=expressions(symbols, 5), box=boxes())
    def check(expr, box):
        lower, upper, seed = box
        if expr.is_number:
            return
        tape = compile_expressions(symbols, [expr, -expr * 0.5 + 1])
        try:
            result = bound_batch(tape, lower, upper, no_splits(lower.shape[0]), "crown", BoundOptions())
        except gv.DomainError:
            return
        coef, offset = result.linear.input_coef[:, :2], result.linear.offset[:, :2]
        gen = torch.Generator().manual_seed(seed)
        t = torch.rand(lower.shape[0], 100, N_VARS, generator=gen, dtype=DT)
        points = lower[:, None] + (upper - lower)[:, None] * t
        values = evaluate(tape, points.reshape(-1, N_VARS)).reshape(lower.shape[0], 100, 2)
        linear = torch.einsum("bqn,bpn->bpq", coef, points) + offset[:, None, :]
        good = torch.isfinite(values) & torch.isfinite(linear) & ~result.domain_error[:, None, None]
        stats["checked"] += int(good.sum())
        bad = good & (values < linear)
        assert not bool(bad.any()), f"linear bound above {expr} at a sampled point"

    check()
    assert stats["checked"] >= 100_000


@pytest.mark.parametrize("seed", range(6))
def test_lagrangian_bound_below_every_feasible_point(seed):
    """Random quadratic objective and two random quadratic inequalities on a box: the optimised Lagrangian
    bound is below the objective at every sampled feasible point, and above the unconstrained bound."""
    gen = torch.Generator().manual_seed(seed)
    m = gv.Model("random")
    xs = m.vars("x", 3, -2, 2)
    def quadratic():
        q = torch.randn(3, 3, generator=gen, dtype=DT)
        b = torch.randn(3, generator=gen, dtype=DT)
        return sum(float(q[i, j]) * xs[i] * xs[j] for i in range(3) for j in range(3)) + sum(float(b[i]) * xs[i] for i in range(3))
    f, g1, g2 = quadratic(), quadratic(), quadratic()
    tape = compile_expressions(m.variables, [f, g1 - 0.5, g2 + 0.3])
    lower, upper = m.box()
    result = bound_batch(tape, lower, upper, no_splits(1), "crown", BoundOptions())
    q = tape.n_outputs
    bound, mu = lagrangian_lower(result.linear.input_coef[:, :q], result.linear.offset[:, :q], lower, upper, 1)
    assert float(bound[0, 0]) >= float(result.rows_lower[0, 0]) - 1e-9 * (1 + abs(float(result.rows_lower[0, 0])))
    assert bool((mu >= 0).all())
    points = lower + (upper - lower) * torch.rand(200_000, 3, generator=gen, dtype=DT)
    values = evaluate(tape, points)
    feasible = (values[:, 1] <= -1e-9) & (values[:, 2] <= -1e-9)
    if bool(feasible.any()):
        assert float(bound[0, 0]) <= float(values[feasible, 0].min())
