"""Direct tests of the soundness-critical internals: constant rounding, outward boxes, exactness flags,
backward plans, curvature terms, and regressions found by the soundness audit."""

from __future__ import annotations

import decimal
import math
from fractions import Fraction

import mpmath
import pytest
import sympy
import torch

import graphver as gv
from graphver.bounds.plan import plan_for
from graphver.dsl.model import round_outward, to_float_directed
from graphver.ops import REGISTRY, UnaryOp
from graphver.tape.compile import round_exact
from graphver.rounding import convert_constants

DT = torch.float64


@pytest.mark.parametrize("value", [sympy.Rational(1, 3), sympy.Rational(1, 10), sympy.sqrt(2), sympy.pi,
                                   sympy.Rational(2**80 + 1), sympy.Integer(3), sympy.Rational(0.5)])
def test_round_exact_error_bound_contains_the_true_value(value):
    nearest, error = round_exact(value)
    with mpmath.workdps(60):
        true = mpmath.mpf(sympy.N(value, 60))
        assert abs(true - mpmath.mpf(nearest)) <= mpmath.mpf(error)
    if value.is_Rational and Fraction(nearest) == Fraction(int(value.p), int(value.q)):
        assert error == 0.0


def test_convert_constants_grows_the_error_for_float32():
    values = torch.tensor([0.1, 1.0 / 3.0, 2.0], dtype=DT)
    error = torch.tensor([0.0, 1e-20, 0.0], dtype=DT)
    converted, new_error = convert_constants(values, error, torch.float32)
    assert converted.dtype == torch.float32
    gap = (values - converted.double()).abs() + error
    assert bool((new_error.double() >= gap).all())
    assert float(new_error[2]) == 0.0  # 2.0 is exact in float32


@pytest.mark.parametrize("value, exact", [
    (sympy.Rational(1, 10), sympy.Rational(1, 10)),
    (sympy.pi, None),
    (2**53 + 1, sympy.Integer(2**53 + 1)),
    (sympy.Float("0.1", 30), sympy.Rational(sympy.Float("0.1", 30))),
    (decimal.Decimal("0.1"), sympy.Rational(1, 10)),
    (Fraction(1, 3), sympy.Rational(1, 3)),
    (0.1, sympy.Rational(0.1)),
])
def test_bounds_are_rounded_outward_and_tight(value, exact):
    low, high = to_float_directed(value, -math.inf), to_float_directed(value, math.inf)
    if exact is None:  # irrational: compare at 50 digits
        exact_value = sympy.N(value, 50)
        assert sympy.Float(low, 50) <= exact_value <= sympy.Float(high, 50)
    else:
        assert sympy.Rational(low) <= exact <= sympy.Rational(high)
    assert high == low or math.nextafter(low, math.inf) == high  # at most one ulp apart


def test_batched_boxes_given_as_integers_are_rounded_outward():
    m = gv.Model("ints")
    z = m.var("z", 0, 2**60)
    iv = m.interval(z, lower=[0], upper=[2**53 + 1], method="ibp")
    assert iv.upper >= 2**53 + 1


def test_round_outward_to_float32_contains_the_box():
    low = torch.tensor([[0.1, -0.3]], dtype=DT)
    high = torch.tensor([[0.2, 1e-40]], dtype=DT)
    new_low, new_high = round_outward(low, high, torch.float32)
    assert bool((new_low.double() <= low).all() and (new_high.double() >= high).all())


def test_exactness_flags_decide_refinement():
    m = gv.Model("exact")
    x, y = m.var("x", -1, 1), m.var("y", -1, 1)
    tape = m.compile(gv.exp(gv.sin(x) + y) + gv.exp(x - x**2))
    refined = {str(tape.labels[i.start + int(j)]) for i in tape.instructions for j in i.refine}
    # sin(x) + y: exact (disjoint supports); x - x**2: shares x, so CROWN refines it
    assert refined == {"-x**2 + x"}


def test_backward_plan_reaches_only_ancestors():
    m = gv.Model("plan")
    x = m.vars("x", 6, -1, 1)
    exprs = [gv.sin(x[0] * x[1]), gv.exp(x[4]) * x[5]]
    tape = m.compile(exprs)
    upto = max(tape.instruction_of(int(t)) for t in tape.outputs)
    plan = plan_for(tape, tape.outputs, upto)
    rows_of_inputs = {(int(q), int(n)) for q, n in zip(plan.input_query, plan.input_node)}
    # row 0/2 (+-sin(x0 x1)) reach x0, x1 only; row 1/3 (+-exp(x4) x5) reach x4, x5 only
    assert rows_of_inputs == {(0, 0), (0, 1), (2, 0), (2, 1), (1, 4), (1, 5), (3, 4), (3, 5)}
    assert plan_for(tape, tape.outputs, upto) is plan  # cached


@pytest.mark.parametrize("name", sorted(n for n, op in REGISTRY.items() if isinstance(op, UnaryOp)))
def test_every_unary_op_defines_its_margin_pieces(name):
    op = REGISTRY[name]
    x = torch.linspace(0.1, 3.0, 7, dtype=DT)
    for param in op.sample_params:
        curvature = op.curvature_scaled(x, param)
        assert curvature.shape == x.shape and bool((curvature >= 0).all())
        safe = torch.tensor([op.safe_point(param)], dtype=DT)
        assert not bool(op.domain_violation(safe, safe, param).any())


def test_tan_slope_just_above_one_keeps_its_critical_point():
    """Audit regression: acos(1/sqrt(1 + 2**-52)) rounds to 0 and lost the root x* = 1.49e-8."""
    tan = REGISTRY["tan"]
    low, high = torch.tensor([0.0], dtype=DT), torch.tensor([1.0], dtype=DT)
    smin, smax = tan.clamped_slope_range(low, high, None)
    alpha = 2**-52 / (smax - smin)
    lines = tan.relax(low, high, None, alpha, alpha)
    assert float(lines.lower_slope) == 1.0 + 2**-52
    with mpmath.workdps(50):
        a, b = mpmath.mpf(float(lines.lower_slope)), mpmath.mpf(float(lines.lower_bias))
        x_star = mpmath.atan(mpmath.sqrt(a - 1))
        assert mpmath.tan(x_star) - (a * x_star + b) >= 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name, param", [("pow_real", 0.5), ("pow_real", 0.9), ("sqrt", None)])
def test_concave_powers_with_huge_slopes_near_zero(dtype, name, param):
    """Audit regression: the critical point 1/(4a^2) (or its pow_real analogue) underflowed for huge
    slopes; max(f - a x) = (1-p)/p * ... must still be enclosed."""
    op = REGISTRY[name]
    low, high = torch.tensor([0.0], dtype=dtype), torch.tensor([1.0], dtype=dtype)
    lines = op.relax(low, high, param, torch.tensor([1.0], dtype=dtype), torch.tensor([1.0], dtype=dtype))
    p = 0.5 if param is None else param
    with mpmath.workdps(50):
        a = mpmath.mpf(float(lines.upper_slope))
        x_star = (a / p) ** (1 / (p - 1))
        true_max = x_star**p - a * x_star
        assert mpmath.mpf(float(lines.upper_bias)) >= true_max


def test_float_exponent_with_integer_value_is_an_integer_power():
    m = gv.Model("pow")
    x = m.var("x", -1, 2)
    iv = m.interval(x**2.0)
    assert iv.lower <= 0 and iv.upper >= 4


def test_adam_matches_torch_adam():
    """graphver's Adam (no torch._dynamo import) takes torch.optim.Adam's steps exactly."""
    import torch

    from graphver.bounds.adam import Adam

    torch.manual_seed(0)
    target = torch.randn(5, 3, dtype=torch.float64)
    ours = torch.zeros(5, 3, dtype=torch.float64, requires_grad=True)
    theirs = ours.detach().clone().requires_grad_(True)
    mine, reference = Adam([ours], lr=0.1), torch.optim.Adam([theirs], lr=0.1)
    for _ in range(25):
        for p, opt in ((ours, mine), (theirs, reference)):
            opt.zero_grad()
            ((p - target) ** 4).sum().backward()
            opt.step()
    assert torch.allclose(ours, theirs, rtol=1e-12, atol=1e-14)
    assert float((ours - target).abs().max()) < float(target.abs().max())  # it moved towards the target


def test_topological_order_is_networkx_lexicographic_order_with_or_without_rewiring():
    """IRGraph.topological_order: the sorted ids when every edge goes from a smaller id to a larger one,
    networkx's lexicographical topological sort once a pass rewired a node to a later one; the same order."""
    import networkx as nx

    from graphver.ir.graph import IRGraph

    ir = IRGraph()
    x = ir.add("input", "x", index=0)
    a = ir.add("unary", "exp(x)", op="exp", param=None, args=(x,))
    c = ir.add("unary", "sin(exp(x))", op="sin", param=None, args=(a,))
    late = ir.add("unary", "exp(x)", op="exp", param=None, args=(x,))  # a duplicate, as CSE meets them
    ir.outputs = [c]
    assert ir.topological_order() == sorted(ir.graph.nodes) == list(nx.lexicographical_topological_sort(ir.graph))
    ir.replace_uses(a, late)  # c now reads a later node: the sorted ids are no longer an order
    order = ir.topological_order()
    assert order == list(nx.lexicographical_topological_sort(ir.graph)) and order.index(late) < order.index(c)


def test_validation_rechecks_constants_a_pass_replaced():
    """validate certifies each node's constants once (by identity) and again when a pass stores new ones: an
    infinite coefficient introduced after a first validation is still caught, where it happens."""
    import sympy

    from graphver.errors import InternalError
    from graphver.ir.graph import IRGraph
    from graphver.ir.validate import validate

    ir = IRGraph()
    x = ir.add("input", "x", index=0)
    row = ir.add("linear", "2*x + 1", terms=((x, sympy.Integer(2)),), bias=sympy.Integer(1))
    c = ir.add("const", "3", value=sympy.Integer(3))
    ir.inputs, ir.outputs = [x], [row, c]
    validate(ir, after="lower_sympy")
    assert set(ir.finite_checked) == {row, c}
    ir.set_terms(row, ((x, sympy.oo),), sympy.Integer(1))
    with pytest.raises(InternalError, match="after pass 'broken'.*non-finite coefficient"):
        validate(ir, after="broken")
    ir.set_terms(row, ((x, sympy.Integer(2)),), sympy.Integer(1))
    ir.graph.nodes[c]["value"] = sympy.nan
    with pytest.raises(InternalError, match="constant node .* is not finite"):
        validate(ir, after="broken")
