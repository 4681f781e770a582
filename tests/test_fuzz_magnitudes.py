"""Soundness at every magnitude: subnormal to near-overflow values (1e-320 .. 1e308), checked in mpmath.

The other fuzz tests compare against float64 evaluation at moderate magnitudes. Here the reference is
the real value, computed by mpmath at 40 digits from the exact sample points and the model's exact
constants, so rounding, underflow and overflow of graphver's own arithmetic cannot hide:

- every registered op: interval rule and relaxation lines on intervals at magnitudes 1e-320 .. 1e308;
- random composite graphs with weights and boxes at those magnitudes: IBP, CROWN and alpha;
- FBBT's inverse functions at large magnitudes: the float neighbours of the exact root of ``g(x) = v``
  that satisfy the constraint exactly are never cut off;
- float32: FBBT and constrained bounds run in float32 and stay sound.

``GRAPHVER_FUZZ_SEED=random`` draws new cases; the ``slow`` variants run ten times more.
"""

from __future__ import annotations

import math
import os
import random

import mpmath
import pytest
import sympy
import torch

import graphver as gv
from graphver.bounds.fbbt import fbbt
from graphver.dsl.functions import quad_over_lin, relu, sigmoid
from graphver.ops import REGISTRY, BinaryOp, UnaryOp
from models.constrained import CONSTRAINED, FAST

DT = torch.float64
mp = mpmath.mp
DIGITS = 40
FIXED = os.environ.get("GRAPHVER_FUZZ_SEED", "fixed") == "fixed"


def seeded(name: str) -> random.Random:
    return random.Random(name if FIXED else None)


# --- the real values -----------------------------------------------------------------------------------
def mp_sigmoid(x):
    return 1 / (1 + mpmath.exp(-x))


UNARY_REFERENCE = {
    "floor": lambda x, p: mpmath.floor(x),
    "ceil": lambda x, p: mpmath.ceil(x),
    "round": lambda x, p: mpmath.nint(x),  # ties to even, as ONNX Round
    "sin": lambda x, p: mpmath.sin(x),
    "cos": lambda x, p: mpmath.cos(x),
    "tan": lambda x, p: mpmath.tan(x),
    "atan": lambda x, p: mpmath.atan(x),
    "exp": lambda x, p: mpmath.exp(x),
    "log": lambda x, p: mpmath.log(x),
    "sqrt": lambda x, p: mpmath.sqrt(x),
    "tanh": lambda x, p: mpmath.tanh(x),
    "erf": lambda x, p: mpmath.erf(x),
    "sigmoid": lambda x, p: mp_sigmoid(x),
    "relu": lambda x, p: max(x, mpmath.mpf(0)),
    "abs": lambda x, p: abs(x),
    "pow_int": lambda x, p: x ** int(p),
    "pow_real": lambda x, p: x ** mpmath.mpf(p),
    "piecewise_linear": lambda x, p: mpmath.mpf(p.offset) + mpmath.fsum(
        mpmath.mpf(c) * max(mpmath.mpf(0), mpmath.mpf(w) * x + mpmath.mpf(b))
        for w, b, c in zip(p.slopes, p.shifts, p.weights)),
}
BINARY_REFERENCE = {
    "mul": lambda x, y: x * y,
    "quad_over_lin": lambda x, y: x * x / y,
}


def test_every_op_has_a_reference():
    """A new op must say what its real value is, so that this file checks it too."""
    missing = [name for name in REGISTRY if name not in UNARY_REFERENCE and name not in BINARY_REFERENCE]
    assert not missing, f"add an mpmath reference for {missing} to UNARY_REFERENCE / BINARY_REFERENCE"


def mp_eval(expr, point: dict):
    """The real value of a sympy expression at a point (floats, exact), or None where it is undefined."""
    if expr.is_Symbol:
        return mpmath.mpf(point[expr])
    if expr.is_Rational:
        return mpmath.mpf(int(expr.p)) / int(expr.q)
    if expr.is_Float:
        return mpmath.mpf(expr._mpf_)
    if expr.is_number:
        return mpmath.mpf(sympy.N(expr, DIGITS + 10))
    args = [mp_eval(a, point) for a in expr.args]
    if any(a is None for a in args):
        return None
    try:
        if expr.is_Add:
            return mpmath.fsum(args)
        if expr.is_Mul:
            out = mpmath.mpf(1)
            for a in args:
                out *= a
            return out
        if expr.is_Pow:
            base, exponent = args
            if base < 0 and not expr.args[1].is_Integer:
                return None
            if base == 0 and exponent < 0:
                return None
            return base**exponent
        table = {sympy.sin: mpmath.sin, sympy.cos: mpmath.cos, sympy.tan: mpmath.tan, sympy.atan: mpmath.atan,
                 sympy.exp: mpmath.exp, sympy.tanh: mpmath.tanh, sympy.Abs: abs, sigmoid: mp_sigmoid,
                 relu: lambda v: max(v, mpmath.mpf(0)), sympy.Max: max, sympy.Min: min}
        if expr.func in table:
            return table[expr.func](*args)
        if expr.func is sympy.log:
            return mpmath.log(args[0]) if args[0] > 0 else None
        if expr.func is quad_over_lin:
            return args[0] ** 2 / args[1] if args[1] > 0 else None
    except (ZeroDivisionError, ValueError, OverflowError):
        return None
    raise AssertionError(f"no mpmath rule for {expr.func}")


def contained(low: float, value, high: float) -> bool:
    return value is None or (mpmath.mpf(low) <= value <= mpmath.mpf(high))


# --- magnitudes ----------------------------------------------------------------------------------------
def magnitude(rng: random.Random, low_exp: int = -320, high_exp: int = 307) -> float:
    """A float of random sign, mantissa and decimal exponent in [low_exp, high_exp] (subnormals included)."""
    value = rng.uniform(1.0, 10.0) * 10.0 ** rng.randint(low_exp, high_exp) if rng.random() < 0.97 else 0.0
    return math.copysign(value, rng.choice((-1.0, 1.0)))


def random_interval(rng: random.Random) -> tuple[float, float]:
    """Point intervals, narrow intervals around a value, and intervals spanning many orders of magnitude."""
    kind = rng.randrange(4)
    a = magnitude(rng)
    if kind == 0:
        return a, a
    if kind == 1:
        width = abs(a) * 10.0 ** -rng.randint(0, 16) + 10.0 ** rng.randint(-323, -300)
        return a, min(a + width, 1.7e308)
    b = magnitude(rng)
    if kind == 2:
        b = abs(b) if a < 0 else b
    return min(a, b), max(a, b)


def interval_points(low: float, high: float, rng: random.Random, count: int = 6) -> list[float]:
    points = [low, high, math.nextafter(low, high), math.nextafter(high, low), low / 2 + high / 2]
    points += [low * (1 - t) + high * t for t in (rng.random() for _ in range(count))]
    # halving a subnormal rounds: keep every point inside the interval
    return [min(max(p, low), high) for p in points if math.isfinite(p)]


# --- every op at every magnitude -------------------------------------------------------------------------
def op_intervals(op, param, rng: random.Random, count: int):
    lows, highs = [], []
    while len(lows) < count:
        low, high = random_interval(rng)
        if isinstance(op, UnaryOp) and bool(op.domain_violation(torch.tensor([low], dtype=DT), torch.tensor([high], dtype=DT), param)):
            continue
        lows.append(low)
        highs.append(high)
    return torch.tensor(lows, dtype=DT), torch.tensor(highs, dtype=DT)


UNARY_CASES = [(name, p) for name, op in sorted(REGISTRY.items()) if isinstance(op, UnaryOp) for p in op.sample_params]


def check_unary(name, param, count):
    op = REGISTRY[name]
    reference = UNARY_REFERENCE[name]
    rng = seeded(f"unary-{name}-{param}")
    low, high = op_intervals(op, param, rng, count)
    lines = [op.relax(low, high, param)]
    for _ in range(2):
        alpha = torch.tensor([rng.uniform(-0.5, 1.5) for _ in range(count)], dtype=DT)
        lines.append(op.relax(low, high, param, alpha, torch.tensor([rng.uniform(-0.5, 1.5) for _ in range(count)], dtype=DT)))
    i_low, i_high = op.interval(low, high, param)
    checked = 0
    for i in range(count):
        l, u = float(low[i]), float(high[i])
        for x in interval_points(l, u, rng):
            value = reference(mpmath.mpf(x), param)
            if not isinstance(value, mpmath.mpf) or not mpmath.isfinite(value):
                continue
            assert contained(float(i_low[i]), value, float(i_high[i])), (
                f"{name}[{param}] interval [{float(i_low[i])!r}, {float(i_high[i])!r}] on [{l!r}, {u!r}] "
                f"misses f({x!r}) = {mpmath.nstr(value, 20)}")
            for k, line in enumerate(lines):
                below = mpmath.mpf(float(line.lower_slope[i])) * x + mpmath.mpf(float(line.lower_bias[i]))
                above = mpmath.mpf(float(line.upper_slope[i])) * x + mpmath.mpf(float(line.upper_bias[i]))
                assert below <= value <= above, (
                    f"{name}[{param}] lines #{k} on [{l!r}, {u!r}] miss f({x!r}) = {mpmath.nstr(value, 20)}: "
                    f"[{mpmath.nstr(below, 20)}, {mpmath.nstr(above, 20)}]")
            checked += 1
    return checked


@pytest.mark.parametrize("name,param", UNARY_CASES)
def test_unary_ops_at_every_magnitude(name, param):
    with mpmath.workdps(DIGITS):
        assert check_unary(name, param, 120) >= 500


def check_binary(name, count):
    op = REGISTRY[name]
    reference = BINARY_REFERENCE[name]
    rng = seeded(f"binary-{name}")
    boxes = []
    while len(boxes) < count:
        (lx, ux), (ly, uy) = random_interval(rng), random_interval(rng)
        t = [torch.tensor([v], dtype=DT) for v in (lx, ux, ly, uy)]
        if not bool(op.domain_violation(*t)):
            boxes.append((lx, ux, ly, uy))
    lx, ux, ly, uy = (torch.tensor(col, dtype=DT) for col in zip(*boxes))
    relaxations = [op.relax(lx, ux, ly, uy)]
    for _ in range(2):
        a = torch.tensor([rng.uniform(-0.5, 1.5) for _ in range(count)], dtype=DT)
        b = torch.tensor([rng.uniform(-0.5, 1.5) for _ in range(count)], dtype=DT)
        relaxations.append(op.relax(lx, ux, ly, uy, None, a, b))
    i_low, i_high = op.interval(lx, ux, ly, uy)
    checked = 0
    for i, (bx0, bx1, by0, by1) in enumerate(boxes):
        for x in interval_points(bx0, bx1, rng, 3):
            for y in interval_points(by0, by1, rng, 3):
                value = reference(mpmath.mpf(x), mpmath.mpf(y))
                assert contained(float(i_low[i]), value, float(i_high[i])), (
                    f"{name} interval [{float(i_low[i])!r}, {float(i_high[i])!r}] on x in [{bx0!r}, {bx1!r}], "
                    f"y in [{by0!r}, {by1!r}] misses f({x!r}, {y!r}) = {mpmath.nstr(value, 20)}")
                for k, r in enumerate(relaxations):
                    below = (mpmath.mpf(float(r.lower_x[i])) * x + mpmath.mpf(float(r.lower_y[i])) * y
                             + mpmath.mpf(float(r.lower_bias[i])))
                    above = (mpmath.mpf(float(r.upper_x[i])) * x + mpmath.mpf(float(r.upper_y[i])) * y
                             + mpmath.mpf(float(r.upper_bias[i])))
                    if not (below <= value <= above):
                        # NaN coefficients or infinite biases are weak, not wrong: the passes turn them
                        # into infinite bounds; only a finite plane on the wrong side is a violation
                        finite = all(math.isfinite(float(t[i])) for t in (r.lower_x, r.lower_y, r.lower_bias)) \
                            if not below <= value else all(math.isfinite(float(t[i])) for t in (r.upper_x, r.upper_y, r.upper_bias))
                        assert not finite, (
                            f"{name} planes #{k} on x in [{bx0!r}, {bx1!r}], y in [{by0!r}, {by1!r}] miss "
                            f"f({x!r}, {y!r}) = {mpmath.nstr(value, 20)}: [{mpmath.nstr(below, 20)}, {mpmath.nstr(above, 20)}]")
                checked += 1
    return checked


@pytest.mark.parametrize("name", sorted(n for n, op in REGISTRY.items() if isinstance(op, BinaryOp)))
def test_binary_ops_at_every_magnitude(name):
    with mpmath.workdps(DIGITS):
        assert check_binary(name, 300) >= 5000


def test_audit_subnormal_products():
    """Issue 12, item 5: w*relu(w*relu(x)) at x = 1e300, w = 4.7e-162 forms the subnormal coefficient w*w;
    CROWN's upper bound was 10.5 % below the real value 2.209e-23. quad_over_lin at subnormal squares."""
    with mpmath.workdps(DIGITS):
        m = gv.Model("subnormal")
        x = m.var("x", 1e300, 1e300)
        w = sympy.Rational(4.7e-162)
        f = w * gv.relu(w * gv.relu(x))
        exact = mp_eval(f, {x: 1e300})
        for method in ("ibp", "crown", "alpha"):
            iv = m.interval(f, method=method)
            assert contained(iv.lower, exact, iv.upper), (method, iv, exact)
        op = REGISTRY["quad_over_lin"]
        for xv, yv in ((9.562e139 / 2**996, 9.562e139 / 2**996), (7.77e-161, 1.0), (1e-170, 1e-300)):
            t = [torch.tensor([v], dtype=DT) for v in (xv, xv, yv, yv)]
            low, high = op.interval(*t)
            assert contained(float(low), mpmath.mpf(xv) ** 2 / yv, float(high)), (xv, yv, low, high)


# --- random graphs at every magnitude ----------------------------------------------------------------------
def weight(rng: random.Random) -> sympy.Float:
    """A float weight (a sympy Float is exact for graphver and for mp_eval; Rationals of such magnitudes
    make sympy's own simplification build huge integer powers)."""
    return sympy.Float(magnitude(rng, -200, 200) or 1.0)


def random_graph(rng: random.Random, symbols, depth: int):
    if depth == 0 or rng.random() < 0.2:
        return rng.choice(symbols) if rng.random() < 0.85 else weight(rng)
    a = random_graph(rng, symbols, depth - 1)
    if a.is_number:  # sympy evaluates functions of constants eagerly (exp(700*c)**3 as a huge integer power)
        a = rng.choice(symbols)
    kind = rng.randrange(12)
    if kind == 0:
        return weight(rng) * a + random_graph(rng, symbols, depth - 1)
    if kind == 1:
        return a * random_graph(rng, symbols, depth - 1)
    if kind == 2:
        return gv.relu(weight(rng) * a)
    if kind == 3:
        return gv.Abs(a) ** rng.choice((sympy.Rational(1, 2), sympy.Rational(3, 2)))
    if kind == 4:
        return a ** rng.choice((2, 3))
    if kind == 5:
        return gv.quad_over_lin(a, gv.Abs(random_graph(rng, symbols, depth - 1)) + abs(weight(rng)))
    if kind == 6:
        return gv.log(gv.Abs(a) + abs(weight(rng)))
    if kind == 7:
        return gv.exp(gv.tanh(a) * rng.choice((1, 50, 700)))
    if kind == 8:
        return gv.atan(weight(rng) * a) if rng.random() < 0.5 else gv.sin(a)
    if kind == 9:
        return 1 / (gv.Abs(a) + abs(weight(rng)))
    if kind == 10:
        return gv.Max(a, weight(rng) * random_graph(rng, symbols, depth - 1))
    return gv.sigmoid(weight(rng) * a)


def check_graphs(count: int, backward: str = "auto") -> int:
    rng = seeded("graphs")
    checked = 0
    for case in range(count):
        m = gv.Model("magnitudes")
        symbols = list(m.vars("x", 2, -1, 1))
        expr = random_graph(rng, symbols, 4)
        if expr.is_number:
            continue
        boxes = [[random_interval(rng) for _ in symbols] for _ in range(4)]
        lower = torch.tensor([[b[0] for b in box] for box in boxes], dtype=DT)
        upper = torch.tensor([[b[1] for b in box] for box in boxes], dtype=DT)
        for method in ("ibp", "crown", "alpha"):
            try:
                iv = m.interval(expr, method=method, lower=lower, upper=upper, alpha_iterations=3, backward=backward)
            except (gv.DomainError, gv.ModelError):  # an undefined region, or a constant beyond the float range
                break
            for b, box in enumerate(boxes):
                for _ in range(4):
                    point = {s: rng.choice(interval_points(lo, hi, rng, 2)) for s, (lo, hi) in zip(symbols, box)}
                    value = mp_eval(expr, point)
                    if value is not None and not mpmath.isfinite(value):
                        continue
                    assert contained(float(iv.lower[b]), value, float(iv.upper[b])), (
                        f"{method} [{float(iv.lower[b])!r}, {float(iv.upper[b])!r}] misses {mpmath.nstr(value, 20)} "
                        f"at {point} for {expr} on box {box} (case {case})")
                    checked += 1
    return checked


def test_random_graphs_at_every_magnitude():
    with mpmath.workdps(DIGITS):
        assert check_graphs(150) >= 3000


def test_random_graphs_at_every_magnitude_dense_storage():
    """The same with the backward passes on dense coefficients (fewer graphs)."""
    with mpmath.workdps(DIGITS):
        assert check_graphs(80, backward="dense") >= 1500


@pytest.mark.slow
def test_random_graphs_at_every_magnitude_many_more():
    with mpmath.workdps(DIGITS):
        assert check_graphs(1500) >= 30000


# --- FBBT's inverse functions at large magnitudes -----------------------------------------------------------
def inverse_cases(rng: random.Random):
    """(name, g(x) as a function of a symbol, exact inverse, domain of x, range of g) for FBBT's rules."""
    p_int = rng.choice((2, 3, 4, 5, 7, 9, 11))
    p_real = rng.choice((sympy.Rational(13, 10), sympy.Rational(1, 3), sympy.Rational(5, 2), sympy.Rational(7, 4)))
    return [
        (f"x**{p_int}", lambda x: x**p_int, lambda v: mpmath.root(v, p_int) if v >= 0 else -mpmath.root(-v, p_int)),
        (f"x**{p_real}", lambda x: x**p_real, lambda v: v ** (1 / mpmath.mpf(p_real.p) * p_real.q)),
        ("exp", gv.exp, mpmath.log),
        ("log", gv.log, mpmath.exp),
        ("sqrt", gv.sqrt, lambda v: v * v),
        ("tanh", gv.tanh, mpmath.atanh),
        ("sigmoid", gv.sigmoid, lambda v: mpmath.log(v) - mpmath.log(1 - v)),
        ("atan", gv.atan, mpmath.tan),
    ]


def check_fbbt_roots(count: int) -> int:
    """g(x) <= v (and >= v) with x in a box around the exact root of g(x) = v: every float near the root
    that satisfies the constraint in exact arithmetic stays in FBBT's box."""
    rng = seeded("fbbt-roots")
    checked = 0
    for case in range(count):
        name, g, inverse = rng.choice(inverse_cases(rng))
        m = gv.Model("roots")
        x = m.var("x", -1, 1)
        if name == "sigmoid":
            level = mpmath.mpf(rng.choice((rng.uniform(1e-300, 1.0), 0.5 + rng.uniform(-1e-9, 1e-9), 1 - 10.0 ** -rng.randint(1, 15))))
        elif name == "tanh":
            level = mpmath.mpf(rng.uniform(-1, 1) if rng.random() < 0.5 else 1 - 10.0 ** -rng.randint(1, 15))
        elif name == "atan":
            level = mpmath.mpf(rng.uniform(-1.5707, 1.5707))
        elif name == "log":
            level = mpmath.mpf(rng.uniform(-700, 700))
        elif name == "exp":
            level = mpmath.mpf(abs(magnitude(rng, -300, 307)) or 1.0)
        elif name.startswith("x**") and "/" not in name and int(name[3:]) % 2 == 1:
            level = mpmath.mpf(magnitude(rng, -300, 307))
        else:
            level = mpmath.mpf(abs(magnitude(rng, -300, 307)))
        level = mpmath.mpf(float(level))  # a float level: the constraint's constant is then exact
        root = inverse(level)
        if not mpmath.isfinite(root) or abs(root) > 1e307:
            continue
        centre = float(root)
        neighbours = [centre]
        for direction in (math.inf, -math.inf):
            step = centre
            for _ in range(3):
                step = math.nextafter(step, direction)
                neighbours.append(step)
        span = abs(centre) * 10.0 ** -rng.randint(0, 6) + 1e-300
        low, high = centre - span, centre + span
        if name in ("log", "sqrt") or (name.startswith("x**") and "/" in name):
            low = max(low, 0.0) if name != "log" else max(low, 5e-324)
        expr = g(x)
        for sense in ("le", "ge"):
            row = expr - sympy.Float(float(level)) if sense == "le" else sympy.Float(float(level)) - expr
            tape = m.compile(row)
            new_low, new_high, infeasible = fbbt(tape, torch.tensor([[low]], dtype=DT), torch.tensor([[high]], dtype=DT),
                                                 torch.arange(1))
            for point in neighbours:
                if not low <= point <= high:
                    continue
                value = mp_eval(expr, {x: point})
                if value is None:
                    continue
                if (value <= level) if sense == "le" else (value >= level):
                    assert not bool(infeasible[0]) and float(new_low[0, 0]) <= point <= float(new_high[0, 0]), (
                        f"FBBT cut off x = {point!r} with {name}(x) {'<=' if sense == 'le' else '>='} {float(level)!r} "
                        f"(exact {mpmath.nstr(value, 20)}): box [{low!r}, {high!r}] -> "
                        f"[{float(new_low[0, 0])!r}, {float(new_high[0, 0])!r}] (case {case})")
                    checked += 1
    return checked


def test_fbbt_roots_at_large_magnitudes():
    with mpmath.workdps(DIGITS):
        assert check_fbbt_roots(300) >= 1000


@pytest.mark.slow
def test_fbbt_roots_at_large_magnitudes_many_more():
    with mpmath.workdps(DIGITS):
        assert check_fbbt_roots(3000) >= 10000


def test_audit_fbbt_power_roots():
    """Issue 12, item 3: the cube root of 1.7e308 and x**(13/10) <= 1e300 were cut 1e-14 relative too low."""
    with mpmath.workdps(DIGITS):
        m = gv.Model("cube")
        x = m.var("x", 0, 1.2e103)
        tape = m.compile(x**3 - sympy.Float(1.7e308))
        _, high, _ = fbbt(tape, torch.tensor([[0.0]], dtype=DT), torch.tensor([[1.2e103]], dtype=DT), torch.arange(1))
        assert float(high) >= 5.539658256754461e102  # feasible: its cube is below 1.7e308
        assert mpmath.mpf(5.539658256754461e102) ** 3 <= mpmath.mpf(1.7e308)
        m = gv.Model("power")
        y = m.var("y", 1, 1.2e231)
        tape = m.compile(y ** sympy.Rational(13, 10) - sympy.Float(1e300))
        _, high, _ = fbbt(tape, torch.tensor([[1.0]], dtype=DT), torch.tensor([[1.2e231]], dtype=DT), torch.arange(1))
        assert mpmath.mpf(float(high)) >= mpmath.mpf(1e300) ** (mpmath.mpf(10) / 13)
        result = m.bound(y, sense="max", timeout=20)
        assert mpmath.mpf(result.upper) >= mpmath.mpf(1e300) ** (mpmath.mpf(10) / 13)


def test_audit_lagrangian_non_finite_objective_row():
    """Issue 12, item 4: an objective row whose linear bound has offset -inf carries no information. It was
    replaced by -1e300, so y - 1e-300*exp(exp(x)) >= 0 was "verified" with margin 1e300 (real margin -4e994)."""
    from graphver.bounds.lagrangian import lagrangian_lower

    m = gv.Model("lagrangian")
    x, y = m.var("x", 0, 8), m.var("y", 2e300, 3e300)
    m.constrain(x <= 100)
    result = m.verify(y - sympy.Float(1e-300) * gv.exp(gv.exp(x)) >= 0, timeout=10)
    assert result.status != "verified"
    assert not result.margin_lower > 0
    for dtype in (torch.float64, torch.float32):
        coef = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]], dtype=dtype)  # row 0 (objective), row 1 (constraint)
        lower, upper = torch.tensor([[0.0, 0.0]], dtype=dtype), torch.tensor([[1.0, 1.0]], dtype=dtype)
        for offset in ([-math.inf, -1.0], [math.nan, -1.0]):
            best, _ = lagrangian_lower(coef, torch.tensor([offset], dtype=dtype), lower, upper, 1, iterations=5)
            assert float(best) == -math.inf
        best, _ = lagrangian_lower(coef, torch.tensor([[-2.0, -math.inf]], dtype=dtype), lower, upper, 1, iterations=5)
        assert float(best) <= -2.0 and math.isfinite(float(best))  # the unusable constraint takes no part
        infinite = torch.tensor([[[math.inf, 0.0], [0.0, 1.0]]], dtype=dtype)
        best, _ = lagrangian_lower(infinite, torch.tensor([[0.0, -1.0]], dtype=dtype), lower, upper, 1, iterations=0)
        assert float(best) == -math.inf


# --- float32 ------------------------------------------------------------------------------------------------
def test_audit_float32_fbbt_and_lagrangian():
    """Issue 12, item 8: FBBT kept float64 constants in float32 runs (x <= 0.699999988 from 10x - 7 <= 0) and
    the Lagrangian bound crashed on its -1e300 sentinel."""
    m = gv.Model("f32")
    a = m.var("a", 0, 1)
    tape = m.compile(10 * a - 7).to(dtype=torch.float32)
    _, high, infeasible = fbbt(tape, torch.zeros(1, 1), torch.ones(1, 1), torch.arange(1))
    assert high.dtype == torch.float32 and not bool(infeasible[0])
    assert float(high) >= 0.7
    m.constrain(10 * a - 7 <= 0)
    result = m.bound(a, sense="max", dtype="float32", timeout=20)
    assert result.upper >= 0.7  # proven
    assert result.lower <= 0.7 + 1e-8  # the witness, feasible within the constraint tolerance


def test_float32_fbbt_fuzz():
    """The FBBT fuzz of test_constraints, run on float32 boxes."""
    from test_constraints import run_fbbt_fuzz

    stats = run_fbbt_fuzz(60, FIXED, dtype=torch.float32)
    assert stats["boxes"] >= 300


@pytest.mark.parametrize("name", FAST)
def test_float32_constrained_bounds_bracket_the_optimum(name):
    problem = CONSTRAINED[name]()
    result = problem.model.bound(problem.expr, dtype="float32", timeout=3)
    if problem.known_value is None:
        assert result.status in ("infeasible", "unknown")
    else:
        assert result.lower <= problem.known_value, (result.lower, problem.known_value)
        assert result.status in ("solved", "unknown")
