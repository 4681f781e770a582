"""Audit issue 12, items 1 and 2: symbolic constants and exponents must be rounded with a certified error.

Item 1: a constant that is exactly 0 (or cancels to a small value) cannot be evaluated to 50 correct
digits by ``sympy.N``; its noise must never be trusted. Every rounded constant (``round_exact``), every
box bound (``to_float_directed``) and every bound computed from them must contain the exact value.
Item 2: only an exactly integer exponent becomes ``pow_int``; a high-precision Float exponent near an
integer is a real power whose rounding to a float is covered by ``PowReal.eval_error``.
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphver as gv
from graphver.dsl.model import to_float_directed
from graphver.errors import ModelError, UnsupportedOpError
from graphver.exact import certified_float, enclosure
from graphver.tape.compile import round_exact

ZERO_SIN_COS = sympy.sin(1) ** 2 + sympy.cos(1) ** 2 - 1
ZERO_SQRT = (1 + sympy.sqrt(2)) ** 2 - 3 - 2 * sympy.sqrt(2)


def mp_value(expr, dps: int = 400):
    """The value of an exact sympy constant with mpmath at ``dps`` digits (far beyond any float error)."""
    with mpmath.workdps(dps):
        return mpmath.mpf(sympy.N(expr, dps, maxn=100000)) if expr != 0 else mpmath.mpf(0)


def covers(nearest: float, error: float, exact) -> bool:
    with mpmath.workdps(400):
        return abs(mpmath.mpf(nearest) - exact) <= mpmath.mpf(error)


# --- the reproductions of the audit ------------------------------------------------------------------


def test_zero_constant_in_a_bias_is_not_noise():
    nearest, error = round_exact(ZERO_SIN_COS)
    assert abs(nearest) <= error  # the claimed interval contains the exact value 0
    m = gv.Model("c")
    x = m.var("x", 0, 0)
    for method in ("ibp", "crown"):
        interval = m.interval(x + ZERO_SIN_COS, method=method)
        assert interval.lower <= 0.0 <= interval.upper
    assert m.verify(x + ZERO_SIN_COS < 0).status != "verified"
    assert m.verify(x + ZERO_SIN_COS > 0).status != "verified"


def test_zero_box_bound_is_rounded_outward():
    assert to_float_directed(ZERO_SQRT, -math.inf) <= 0.0 <= to_float_directed(ZERO_SQRT, math.inf)
    m = gv.Model("b")
    x = m.var("x", ZERO_SQRT, 1)
    assert m.lower[0] <= 0.0
    assert m.verify(x > 0).status != "verified"
    m2 = gv.Model("b2")
    y = m2.var("y", -1, ZERO_SIN_COS)
    assert m2.upper[0] >= 0.0
    assert m2.verify(y < 0).status != "verified"


def test_high_precision_float_exponent_near_an_integer_is_a_real_power():
    p = sympy.Float("2.0000000000000002", 30)
    m = gv.Model("p")
    y = m.var("y", 1e10, 1e100)
    with mpmath.workdps(60):
        exact = mpmath.power(mpmath.mpf(1e100), mpmath.mpf(sympy.Rational(p).p) / sympy.Rational(p).q)
        assert exact > mpmath.mpf(1.00000000000001e200)
        for method in ("ibp", "crown", "alpha"):
            assert mpmath.mpf(m.interval(y**p, method=method).upper) >= exact
    assert m.verify(y**p <= 1.00000000000001e200, timeout=1).status != "verified"
    tape = m.compile([y**p])
    assert [i.op for i in tape.instructions if i.kind == "unary"] == ["pow_real"]


def test_float_exponent_with_an_integer_value_is_an_integer_power():
    m = gv.Model("f")
    x = m.var("x", -2, 1)
    tape = m.compile([x**2.0, x ** sympy.Float(3, 40)])
    assert sorted(i.op for i in tape.instructions if i.kind == "unary") == ["pow_int", "pow_int"]
    interval = m.interval(x**2.0, method="crown")  # negative x is fine: the exponent is exactly 2
    assert interval.lower <= 0.0 and interval.upper >= 4.0
    cube = m.interval(x ** sympy.Float(3, 40), method="crown")
    assert cube.lower <= -8.0 and cube.upper >= 1.0
    assert m.interval(x**1.0 + 0 * x, method="crown").lower <= -2.0  # x**1.0 is x (no pow_int[1])


@pytest.mark.parametrize("n", [10**20, -(10**20), 4 * 10**9, 2**31 + 1])
def test_huge_integer_exponent_is_rejected_clearly(n):
    m = gv.Model("h")
    x = m.var("x", 0.5, 1.5)
    with pytest.raises(UnsupportedOpError, match="exp"):
        m.interval(x**n, method="crown")


def test_large_integer_exponent_below_the_limit_is_sound():
    n = 2**31 - 1
    m = gv.Model("l")
    x = m.var("x", -1, -1)
    interval = m.interval(x**n, method="crown")
    assert interval.lower <= -1.0 <= interval.upper


def test_uncertifiable_exponent_is_rejected():
    m = gv.Model("e")
    x = m.var("x", 1, 2)
    with pytest.raises(ModelError, match="exponent"):
        m.interval(x**ZERO_SIN_COS, method="ibp")  # exactly 0, but not provably: no float exponent is certified


def test_enclosure_of_common_constants():
    for value in (sympy.pi, sympy.sqrt(2), sympy.sin(1), sympy.E, sympy.atan(sympy.Rational(1, 3)),
                  sympy.tanh(2), sympy.erf(sympy.Rational(1, 2)), sympy.gamma(sympy.Rational(1, 3)),
                  sympy.log(3) * sympy.pi, sympy.Abs(sympy.sin(4))):
        lo, hi = enclosure(value)
        exact = mp_value(value)
        with mpmath.workdps(400):
            assert mpmath.mpf(lo.numerator) / lo.denominator <= exact <= mpmath.mpf(hi.numerator) / hi.denominator
        assert hi - lo <= abs(hi) * Fraction(1, 2**64)
        nearest, error = certified_float(value)
        assert nearest == float(sympy.N(value, 50)) and error <= abs(nearest) * 2**-52
    assert certified_float(sympy.Rational(1, 3)) == round_exact(sympy.Rational(1, 3))
    assert round_exact(sympy.Rational(1, 4)) == (0.25, 0.0)


def test_non_real_or_infinite_constants_are_rejected():
    with pytest.raises(ModelError):
        certified_float(sympy.sqrt(-2) + sympy.pi)
    with pytest.raises(ModelError):
        certified_float(sympy.oo)


def test_folding_a_constant_argument_that_is_exactly_zero():
    m = gv.Model("z")
    x = m.var("x", 0, 1)
    interval = m.interval(x + sympy.sqrt(ZERO_SIN_COS), method="crown")  # sqrt(0) = 0: a valid constant
    assert interval.lower <= 0.0 and interval.upper >= 1.0
    with pytest.raises(ModelError, match="certified"):  # log(0): not a finite real, and not provably anything
        m.interval(x + sympy.log(ZERO_SIN_COS), method="ibp")


# --- fuzz: exactly known constants built to cancel ---------------------------------------------------

SMALL = st.fractions(min_value=Fraction(1, 7), max_value=Fraction(7, 2), max_denominator=12)


@st.composite
def cancelling(draw):
    """(expression, exact value as (rational, pi_multiple)): the expression is r + z*s + d*pi with z an
    expression that is exactly 0 by construction and d = +-10**-k or 0."""
    a = sympy.Rational(draw(SMALL))
    b = sympy.Rational(draw(SMALL))
    k = draw(st.integers(2, 30))
    zeros = [
        sympy.sin(a) ** 2 + sympy.cos(a) ** 2 - 1,
        (1 + sympy.sqrt(k)) ** 2 - 1 - k - 2 * sympy.sqrt(k),
        sympy.exp(sympy.log(a) + b) * sympy.exp(-b) - a,
        a * sympy.pi - sympy.pi * a,
        sympy.sin(2 * a) - 2 * sympy.sin(a) * sympy.cos(a),
        sympy.cos(2 * a) - (sympy.cos(a) ** 2 - sympy.sin(a) ** 2),
        4 * sympy.atan(sympy.Rational(1, 5)) - sympy.atan(sympy.Rational(1, 239)) - sympy.pi / 4,
        sympy.atan(sympy.Rational(1, 2)) + sympy.atan(sympy.Rational(1, 3)) - sympy.pi / 4,
        sympy.log(6) - sympy.log(2) - sympy.log(3),
        (sympy.sqrt(a) + sympy.sqrt(b)) * (sympy.sqrt(a) - sympy.sqrt(b)) - (a - b),
        sympy.tanh(a) - (sympy.exp(2 * a) - 1) / (sympy.exp(2 * a) + 1),
        gv.sigmoid(a) + gv.sigmoid(-a) - 1,
        sympy.tan(a) - sympy.sin(a) / sympy.cos(a),
    ]
    z = draw(st.sampled_from(zeros))
    scale = sympy.Rational(draw(st.sampled_from([1, -1, 3, sympy.Rational(1, 7), 10**20, sympy.Rational(1, 10**20)])))
    r = sympy.Rational(draw(st.sampled_from([0, 0, 1, -1, sympy.Rational(1, 3), 10**-30, -(10**-300)])))
    d = draw(st.sampled_from([0, 0, 1, -1])) * sympy.Rational(1, 10) ** draw(st.integers(1, 200))
    expr = sympy.Add(r, sympy.Mul(scale, z, evaluate=False), d * sympy.pi, evaluate=False)
    return expr, (r, d)


def exact_value(known):
    r, d = known
    with mpmath.workdps(400):
        return mpmath.mpf(r.p) / r.q + mpmath.mpf(d.p) / d.q * mpmath.pi


@settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(cancelling())
def test_fuzz_cancelling_constants_are_certified(case):
    expr, known = case
    exact = exact_value(known)
    nearest, error = round_exact(expr)
    assert covers(nearest, error, exact), (expr, nearest, error)
    low, high = to_float_directed(expr, -math.inf), to_float_directed(expr, math.inf)
    with mpmath.workdps(400):
        assert mpmath.mpf(low) <= exact <= mpmath.mpf(high), (expr, low, high)


@settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(cancelling(), st.sampled_from(["ibp", "crown"]))
def test_fuzz_models_with_cancelling_constants_contain_the_exact_value(case, method):
    expr, known = case
    exact = exact_value(known)
    m = gv.Model("fz")
    x = m.var("x", 0, 0)
    interval = m.interval(2 * x + expr, method=method)
    with mpmath.workdps(400):
        assert mpmath.mpf(interval.lower) <= exact <= mpmath.mpf(interval.upper), (expr, interval)
    m2 = gv.Model("fz2")
    y = m2.var("y", expr, expr + 1)  # the box [value, value + 1] must contain its exact lower end
    with mpmath.workdps(400):
        assert mpmath.mpf(m2.lower[0]) <= exact
    if exact >= 0:
        assert m.verify(x + expr < 0, timeout=2).status != "verified"
        assert m2.verify(y - expr > 0, timeout=2).status != "verified"  # false at y = expr
    if exact <= 0:
        assert m.verify(x + expr > 0, timeout=2).status != "verified"


# --- fuzz: high-precision Float exponents near integers --------------------------------------------


@st.composite
def near_integer_powers(draw):
    n = draw(st.sampled_from([2, 2, 2, 3, 1, -1, -2]))
    k = draw(st.integers(10, 40))
    sign = draw(st.sampled_from([1, -1]))
    dps = draw(st.integers(15, 60))
    p = sympy.Float(sympy.Integer(n) + sign * sympy.Rational(1, 10**k), dps)
    e1 = draw(st.integers(-300, 300))
    e2 = draw(st.integers(e1, min(300, e1 + draw(st.sampled_from([0, 1, 5, 40, 600])))))
    lo = draw(st.floats(1.0, 9.99)) * 10.0**e1 if e1 > -300 else 10.0**e1
    hi = max(lo, draw(st.floats(1.0, 9.99)) * 10.0**e2) if e2 < 300 else 1e300
    return p, lo, hi


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(near_integer_powers(), st.sampled_from(["ibp", "crown", "alpha"]))
def test_fuzz_near_integer_float_exponents_are_sound(case, method):
    p, lo, hi = case
    m = gv.Model("pw")
    y = m.var("y", lo, hi)
    interval = m.interval(y**p, method=method)
    exponent = sympy.Rational(p)
    with mpmath.workdps(60):
        q = mpmath.mpf(exponent.p) / exponent.q
        lo_m, hi_m = mpmath.mpf(lo), mpmath.mpf(hi)
        points = [lo_m, hi_m, (lo_m + hi_m) / 2, mpmath.sqrt(lo_m * hi_m), lo_m + (hi_m - lo_m) / 7]
        for point in points:
            value = mpmath.power(point, q)
            assert mpmath.mpf(interval.lower) <= value <= mpmath.mpf(interval.upper), (p, lo, hi, point, interval)


def test_counterexamples_are_confirmed_by_certified_enclosures():
    """A margin that is exactly 0 at the candidate (but not provably so for sympy.N, which returns -0.e-165)
    is no counterexample of `margin >= 0`; the old 30-digit re-check confirmed it, a false "falsified"."""
    import torch

    from graphver.bab import VerifyGoal
    from graphver.confirm import sympy_confirmation

    class Engine:  # the certified re-check branch-and-bound uses for models (graphver.confirm)
        def __init__(self, model, rows, combine, mode, options, strict=None):
            goal = VerifyGoal(combine, strict or [False] * len(rows))
            self.check = sympy_confirmation(model.variables, rows, model.constraint_rows, goal, 1e-6)

        def confirmed(self, point):
            return self.check(point).violated

    BabOptions = dict

    zero = sympy.sin(1) ** 2 + sympy.cos(1) ** 2 - 1
    other_zero = (1 + sympy.sqrt(2)) ** 2 - 3 - 2 * sympy.sqrt(2)
    m = gv.Model("confirm")
    x = m.var("x", 0, 1)
    origin = torch.tensor([0.0], dtype=torch.float64)
    for row in (x + zero, x - zero, x + other_zero):
        assert not Engine(m, [row], "all", "verify", BabOptions()).confirmed(origin)
    # a strict row (margin > 0) is violated by an exact 0, and a real violation is confirmed
    assert Engine(m, [x + sympy.Rational(0)], "all", "verify", BabOptions(), strict=[True]).confirmed(origin)
    assert Engine(m, [x - sympy.Rational(1, 3)], "all", "verify", BabOptions()).confirmed(origin)
    assert not Engine(m, [x + zero, x - 1], "any", "verify", BabOptions()).confirmed(origin)
    assert Engine(m, [x - 1, x - sympy.Rational(1, 2)], "any", "verify", BabOptions()).confirmed(origin)


def test_rational_constants_round_as_the_exact_enclosure_says():
    """certified_float's integer path for Rationals (every float constant of a model) gives the nearest float
    and the smallest float >= the exact error, as the enclosure path does, at every magnitude: tiny
    (subnormal, underflow to 0), huge (overflow to inf) and ordinary."""
    import math
    import random
    from fractions import Fraction

    from graphver.exact import float_up, rational_float

    rng = random.Random(7)
    for i in range(4000):
        sign = rng.choice([-1, 1])
        p = sign * rng.randint(1, 10**rng.randint(1, 40)) * 10 ** rng.choice([0, 0, 300, 310])
        q = rng.randint(1, 10**rng.randint(1, 40)) * 10 ** rng.choice([0, 0, 300, 330])
        exact = Fraction(p, q)
        nearest, error = rational_float(p, q)
        try:
            expected = float(exact)
        except OverflowError:
            assert nearest == sign * math.inf and error == math.inf
            continue
        assert nearest == expected
        residual = abs(exact - Fraction(nearest))
        assert error == (0.0 if residual == 0 else float_up(residual))
    assert rational_float(3, 4) == (0.75, 0.0) and rational_float(0, 1) == (0.0, 0.0)
