"""A zoo of small problems whose exact range over the box is known analytically.

Each entry of ``PROBLEMS`` builds a fresh ``graphver.Model`` and returns a ``Problem``: the model, one
expression, and the exact minimum and maximum of that expression over the model's box. The tests use
them to check that every certified interval contains the exact range (soundness) and the benchmarks use
them to measure how tight each bounding method is (``bench/tightness.py``).

    from models import PROBLEMS
    problem = PROBLEMS["rosenbrock"]()
    problem.model.interval(problem.expr, method="crown")   # contains [exact_lower, exact_upper]

Every builder carries its derivation in a comment. Transcendental constants are evaluated with mpmath at
40 digits and rounded once to the nearest double, so ``exact_lower`` and ``exact_upper`` are the true
extremes to within half an ulp. ``argmin`` and ``argmax`` are points of the box where the extremes are
attained (the tests evaluate them to check that the stated range is tight, not only valid).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable

import mpmath
import sympy

import graphver as gv

EXACT_DIGITS = 40


@dataclass
class Problem:
    """One expression over one model's box, with its exact range [exact_lower, exact_upper]."""

    name: str
    model: gv.Model
    expr: sympy.Expr
    exact_lower: float
    exact_upper: float
    description: str
    argmin: dict[str, float] = field(default_factory=dict)
    argmax: dict[str, float] = field(default_factory=dict)

    @property
    def exact_width(self) -> float:
        return self.exact_upper - self.exact_lower


PROBLEMS: dict[str, Callable[[], Problem]] = {}


def register(builder: Callable[[], Problem]) -> Callable[[], Problem]:
    """Add a builder to ``PROBLEMS`` under its function name; it runs with mpmath at ``EXACT_DIGITS`` digits."""

    @functools.wraps(builder)
    def build() -> Problem:
        with mpmath.workdps(EXACT_DIGITS):  # local precision: mpmath's global setting is left alone
            return builder()

    PROBLEMS[builder.__name__] = build
    return build


def exact(value) -> float:
    """An mpmath (or sympy) value rounded once to the nearest double."""
    return float(mpmath.mpf(value))


# --- polynomials ------------------------------------------------------------------------------------


@register
def quadratic() -> Problem:
    # f(x) = x^2 - x on [-1, 2]. f'(x) = 2x - 1 = 0 at x = 1/2, f(1/2) = -1/4 (convex: the minimum).
    # The maximum of a convex function is at an end: f(-1) = 2, f(2) = 2.
    m = gv.Model("quadratic")
    x = m.var("x", -1, 2)
    return Problem("quadratic", m, x**2 - x, -0.25, 2.0, "x^2 - x, x in [-1, 2]", {"x": 0.5}, {"x": 2.0})


@register
def rosenbrock() -> Problem:
    # f = (1 - x)^2 + 100 (y - x^2)^2 on [-1.5, 1.5]^2. Both squares are >= 0 and vanish at (1, 1): min 0.
    # Max: (1 - x)^2 <= 2.5^2 = 6.25 (at x = -1.5); y - x^2 lies in [-1.5 - 2.25, 1.5 - 0] = [-3.75, 1.5],
    # so (y - x^2)^2 <= 14.0625 (at y = -1.5, x = +-1.5). Both maxima hold at (-1.5, -1.5):
    # 6.25 + 1406.25 = 1412.5.
    m = gv.Model("rosenbrock")
    x = m.var("x", -1.5, 1.5)
    y = m.var("y", -1.5, 1.5)
    expr = (1 - x) ** 2 + 100 * (y - x**2) ** 2
    return Problem(
        "rosenbrock", m, expr, 0.0, 1412.5, "Rosenbrock (1-x)^2 + 100(y-x^2)^2 on [-1.5, 1.5]^2",
        {"x": 1.0, "y": 1.0}, {"x": -1.5, "y": -1.5},
    )


@register
def himmelblau() -> Problem:
    # f = (x^2 + y - 11)^2 + (x + y^2 - 7)^2 on [-5, 5]^2. Min 0 at (3, 2) (both terms vanish).
    # Max: x^2 + y - 11 lies in [0 - 5 - 11, 25 + 5 - 11] = [-16, 19] and x + y^2 - 7 in [-12, 23], so
    # f <= 19^2 + 23^2 = 890, attained at (5, 5) where both terms take their largest magnitude.
    m = gv.Model("himmelblau")
    x = m.var("x", -5, 5)
    y = m.var("y", -5, 5)
    expr = (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2
    return Problem(
        "himmelblau", m, expr, 0.0, 890.0, "Himmelblau's function on [-5, 5]^2",
        {"x": 3.0, "y": 2.0}, {"x": 5.0, "y": 5.0},
    )


@register
def rational() -> Problem:
    # f(x) = x / (1 + x^2) on [-2, 3]. f'(x) = (1 - x^2) / (1 + x^2)^2 = 0 at x = +-1, f(+-1) = +-1/2.
    # Ends: f(-2) = -0.4, f(3) = 0.3, both inside [-1/2, 1/2]. Range [-1/2, 1/2].
    m = gv.Model("rational")
    x = m.var("x", -2, 3)
    return Problem("rational", m, x / (1 + x**2), -0.5, 0.5, "x / (1 + x^2), x in [-2, 3]", {"x": -1.0}, {"x": 1.0})


# --- trigonometric and exponential -------------------------------------------------------------------


@register
def x_sin_x() -> Problem:
    # f(x) = x sin x on [1, 3]. g = f' = sin x + x cos x, g' = 2 cos x - x sin x, g'' = -3 sin x - x cos x.
    # On [1, 1.1] g is concave (g'' < 0) with g(1) ~ 1.38 and g(1.1) ~ 1.39, so g > 0. On [1.1, pi/2]
    # g' is decreasing (cos falls, x sin x rises) from g'(1.1) ~ -0.07, and on [pi/2, 3] cos <= 0 <= x sin x:
    # g' < 0 on [1.1, 3], and g(3) ~ -2.83 < 0. So f' has exactly one root x* in [1, 3]: tan x* = -x*,
    # x* ~ 2.0288, the maximum. The minimum is at an end: f(1) = sin 1 ~ 0.841 > f(3) = 3 sin 3 ~ 0.423.
    m = gv.Model("x_sin_x")
    x = m.var("x", 1, 3)
    x_star = mpmath.findroot(lambda t: mpmath.sin(t) + t * mpmath.cos(t), 2.0)
    return Problem(
        "x_sin_x", m, x * gv.sin(x), exact(3 * mpmath.sin(3)), exact(x_star * mpmath.sin(x_star)),
        "x sin x, x in [1, 3] (input interval 2 rad wide)", {"x": 3.0}, {"x": exact(x_star)},
    )


@register
def trig_sum() -> Problem:
    # f(x) = sin x + sin 2x on [-pi, pi] (a full period: the input interval is 2 pi wide).
    # f'(x) = cos x + 2 cos 2x = 4c^2 + c - 2 with c = cos x, zero at c = (-1 +- sqrt 33) / 8.
    # f = sin x (1 + 2c); with s = sin x = +-sqrt(1 - c^2), |f| = sqrt(1 - c^2) |1 + 2c| is largest at
    # c = (sqrt 33 - 1) / 8 ~ 0.593 (2.19 * 0.805 = 1.760, vs 0.95 * 0.186 at the other root).
    # f is odd, so the range is [-M, M] with M = sqrt(1 - c^2)(1 + 2c), attained at x = +-acos c.
    m = gv.Model("trig_sum")
    x = m.var("x", -float(mpmath.pi), float(mpmath.pi))
    c = (mpmath.sqrt(33) - 1) / 8
    peak = mpmath.sqrt(1 - c**2) * (1 + 2 * c)
    return Problem(
        "trig_sum", m, gv.sin(x) + gv.sin(2 * x), exact(-peak), exact(peak),
        "sin x + sin 2x, x in [-pi, pi]", {"x": -exact(mpmath.acos(c))}, {"x": exact(mpmath.acos(c))},
    )


@register
def gaussian_wave() -> Problem:
    # f = exp(-x^2) cos(3y) on [-1, 1]^2. exp(-x^2) lies in [e^-1, 1] (1 at x = 0) and is positive;
    # cos(3y) with 3y in [-3, 3] lies in [cos 3, 1] (cos 3 ~ -0.990 at y = +-1, 1 at y = 0).
    # Max 1 * 1 = 1 at (0, 0); min 1 * cos 3 at (0, +-1) (the negative factor times the largest weight).
    m = gv.Model("gaussian_wave")
    x = m.var("x", -1, 1)
    y = m.var("y", -1, 1)
    return Problem(
        "gaussian_wave", m, gv.exp(-(x**2)) * gv.cos(3 * y), exact(mpmath.cos(3)), 1.0,
        "exp(-x^2) cos(3y) on [-1, 1]^2 (cos input 6 rad wide)", {"x": 0.0, "y": 1.0}, {"x": 0.0, "y": 0.0},
    )


@register
def pendulum_energy() -> Problem:
    # E = w^2 / 2 + (1 - cos theta): kinetic plus potential energy of a unit pendulum.
    # w in [-1, 0.5]: w^2 / 2 in [0, 0.5] (max at w = -1). theta in [-1, 2]: 1 - cos theta is even and
    # increasing in |theta| on [0, pi], so it lies in [0, 1 - cos 2] (min at theta = 0, max at |theta| = 2).
    # Separable: range [0, 1.5 - cos 2].
    m = gv.Model("pendulum_energy")
    w = m.var("w", -1, 0.5)
    theta = m.var("theta", -1, 2)
    return Problem(
        "pendulum_energy", m, w**2 / 2 + (1 - gv.cos(theta)), 0.0, exact(mpmath.mpf(1.5) - mpmath.cos(2)),
        "pendulum energy w^2/2 + 1 - cos(theta)", {"w": 0.0, "theta": 0.0}, {"w": -1.0, "theta": 2.0},
    )


@register
def line_flow() -> Problem:
    # Active power on a lossless line between two buses: p12 = b vm1 vm2 sin(va1 - va2), b = 10 p.u.
    # vm in [0.9, 1.1]: vm1 vm2 in [0.81, 1.21], positive. va in [-0.15, 0.15]: va1 - va2 in [-0.3, 0.3],
    # inside (-pi/2, pi/2) where sin is increasing and odd, so sin(va1 - va2) in [-sin 0.3, sin 0.3].
    # The extremes take the largest voltage product: range +-10 * 1.21 * sin 0.3.
    m = gv.Model("line_flow")
    vm1 = m.var("vm1", 0.9, 1.1)
    vm2 = m.var("vm2", 0.9, 1.1)
    va1 = m.var("va1", -0.15, 0.15)
    va2 = m.var("va2", -0.15, 0.15)
    peak = 10 * mpmath.mpf("1.21") * mpmath.sin(mpmath.mpf("0.3"))
    return Problem(
        "line_flow", m, 10 * vm1 * vm2 * gv.sin(va1 - va2), exact(-peak), exact(peak),
        "lossless line flow 10 vm1 vm2 sin(va1 - va2)",
        {"vm1": 1.1, "vm2": 1.1, "va1": -0.15, "va2": 0.15}, {"vm1": 1.1, "vm2": 1.1, "va1": 0.15, "va2": -0.15},
    )


@register
def log_sqrt() -> Problem:
    # f = log(1 + x^2) + sqrt(y), x in [-1, 2], y in [0.25, 4]. Separable:
    # log(1 + x^2) is increasing in |x|: [log 1, log 5] = [0, log 5]; sqrt(y) in [0.5, 2].
    # Range [0.5, log 5 + 2].
    m = gv.Model("log_sqrt")
    x = m.var("x", -1, 2)
    y = m.var("y", 0.25, 4)
    return Problem(
        "log_sqrt", m, gv.log(1 + x**2) + gv.sqrt(y), 0.5, exact(mpmath.log(5) + 2),
        "log(1 + x^2) + sqrt(y)", {"x": 0.0, "y": 0.25}, {"x": 2.0, "y": 4.0},
    )


@register
def tanh_sum() -> Problem:
    # f = tanh(x + y), x in [-1, 0.5], y in [-0.5, 2]: x + y in [-1.5, 2.5] and tanh is increasing.
    m = gv.Model("tanh_sum")
    x = m.var("x", -1, 0.5)
    y = m.var("y", -0.5, 2)
    return Problem(
        "tanh_sum", m, gv.tanh(x + y), exact(mpmath.tanh(-1.5)), exact(mpmath.tanh(2.5)),
        "tanh(x + y)", {"x": -1.0, "y": -0.5}, {"x": 0.5, "y": 2.0},
    )


# --- small networks ----------------------------------------------------------------------------------


@register
def relu_abs() -> Problem:
    # relu(x - y) + relu(y - x) = |x - y|. x in [-1, 1], y in [-0.5, 2]: x - y in [-3, 1.5], so |x - y|
    # lies in [0, 3] (0 where x = y, 3 at x = -1, y = 2).
    m = gv.Model("relu_abs")
    x = m.var("x", -1, 1)
    y = m.var("y", -0.5, 2)
    return Problem(
        "relu_abs", m, gv.relu(x - y) + gv.relu(y - x), 0.0, 3.0, "relu(x - y) + relu(y - x) = |x - y|",
        {"x": 0.5, "y": 0.5}, {"x": -1.0, "y": 2.0},
    )


@register
def relu_chebyshev() -> Problem:
    # relu(a) = (a + |a|) / 2, so relu(x + y) + relu(x - y) - x = (|x + y| + |x - y|) / 2 = max(|x|, |y|).
    # x in [-1, 2], y in [-0.5, 1]: min 0 at the origin, max 2 at x = 2.
    m = gv.Model("relu_chebyshev")
    x = m.var("x", -1, 2)
    y = m.var("y", -0.5, 1)
    return Problem(
        "relu_chebyshev", m, gv.relu(x + y) + gv.relu(x - y) - x, 0.0, 2.0,
        "relu(x + y) + relu(x - y) - x = max(|x|, |y|)", {"x": 0.0, "y": 0.0}, {"x": 2.0, "y": 0.0},
    )


@register
def sigmoid_bowl() -> Problem:
    # sigmoid(x^2 - 1), x in [-2, 1]: x^2 - 1 in [-1, 3] and sigmoid is increasing: [s(-1), s(3)].
    m = gv.Model("sigmoid_bowl")
    x = m.var("x", -2, 1)

    def s(t):
        return 1 / (1 + mpmath.exp(-t))

    return Problem(
        "sigmoid_bowl", m, gv.sigmoid(x**2 - 1), exact(s(-1)), exact(s(3)),
        "sigmoid(x^2 - 1), x in [-2, 1]", {"x": 0.0}, {"x": -2.0},
    )


@register
def sigmoid_net() -> Problem:
    # f = s(x + y) - s(x - y) on [-1, 1]^2, s the logistic sigmoid. With a = x + y, b = x - y the box is
    # |a + b| <= 2, |a - b| <= 2. f is increasing in a and decreasing in b, so the max lies on the face
    # a - b = 2y = 2: a = t, b = t - 2, t in [0, 2], f = s(t) + s(2 - t) - 1. Its derivative
    # s'(t) - s'(2 - t) is > 0 for t < 1 and < 0 for t > 1 (s' is even and decreasing in |t|): max at t = 1,
    # f = 2 s(1) - 1 = tanh(1/2), at (x, y) = (0, 1). f is odd in y: range [-tanh(1/2), tanh(1/2)].
    m = gv.Model("sigmoid_net")
    x = m.var("x", -1, 1)
    y = m.var("y", -1, 1)
    half = mpmath.tanh(mpmath.mpf(1) / 2)
    return Problem(
        "sigmoid_net", m, gv.sigmoid(x + y) - gv.sigmoid(x - y), exact(-half), exact(half),
        "sigmoid(x + y) - sigmoid(x - y) on [-1, 1]^2", {"x": 0.0, "y": -1.0}, {"x": 0.0, "y": 1.0},
    )


__all__ = ["PROBLEMS", "Problem", "register"]
