"""Global-optimisation test functions with published global minima on their standard boxes.

Each entry of ``OPT_PROBLEMS`` builds a fresh ``graphver.Model`` and returns an ``OptProblem``: the model
(its box is the function's standard search domain), the objective, the sense ("min" for all of them), the
published optimal value and one point where it is attained. The tests (``tests/test_zoo_bab.py``) check
that ``Model.bound`` brackets the known value and that its proven side is never above a sampled value.

    from models.optimization import OPT_PROBLEMS
    problem = OPT_PROBLEMS["branin"]()
    problem.model.bound(problem.expr, sense=problem.sense)   # lower <= 5/(4 pi) <= upper

Known values are the published ones, recomputed to full double precision: closed forms are evaluated
with mpmath at 40 digits, and values without a closed form (six-hump camel, Styblinski-Tang, Shubert,
Hartmann, Shekel, Cross-in-tray, Holder table, Eggholder, Michalewicz, Schwefel) come from solving the
stationarity conditions at 40 digits from the published minimiser, then rounding once to the nearest
double. Every value was also checked against a dense grid (4001^2 points in 2-D, 201^3 in 3-D, 4e6 random
points in 4-D and 6-D) with the best 60 points polished by scipy.optimize: nothing lower was found beyond
float64 evaluation error (<= 2.5e-13). Each builder's comment gives the derivation and the published
figure it reproduces. Sources:

    SB  Surjanovic, S. & Bingham, D., Virtual Library of Simulation Experiments: Test Functions and
        Datasets, https://www.sfu.ca/~ssurjano/optimization.html
    JY  Jamil, M. & Yang, X.-S. (2013), A literature survey of benchmark functions for global
        optimisation problems, Int. J. Math. Model. Numer. Optim. 4(2), 150-194.
    DS  Dixon, L. C. W. & Szego, G. P. (1978), The global optimization problem: an introduction,
        in Towards Global Optimisation 2, North-Holland, 1-15.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import mpmath
import sympy

import graphver as gv

EXACT_DIGITS = 40
SB = "Surjanovic & Bingham, Virtual Library of Simulation Experiments (sfu.ca/~ssurjano)"
JY = "Jamil & Yang (2013), A literature survey of benchmark functions for global optimisation problems"
DS = "Dixon & Szego (1978), Towards Global Optimisation 2"


@dataclass
class OptProblem:
    """One objective over one model's box with its published optimum ``known_value`` at ``known_argopt``."""

    name: str
    model: gv.Model
    expr: sympy.Expr
    sense: str
    known_value: float
    known_argopt: dict[str, float]
    description: str
    source: str


OPT_PROBLEMS: dict[str, Callable[[], OptProblem]] = {}


def register(builder: Callable[[], OptProblem]) -> Callable[[], OptProblem]:
    """Add a builder to ``OPT_PROBLEMS`` under its function name; it runs with mpmath at ``EXACT_DIGITS``."""

    @functools.wraps(builder)
    def build() -> OptProblem:
        with mpmath.workdps(EXACT_DIGITS):
            return builder()

    OPT_PROBLEMS[builder.__name__] = build
    return build


def exact(value) -> float:
    """An mpmath value rounded once to the nearest double."""
    return float(mpmath.mpf(value))


def square_box(name: str, names: str, lb: float, ub: float) -> tuple[gv.Model, list[sympy.Symbol]]:
    """A model with one variable per letter of ``names``, each on [lb, ub]."""
    m = gv.Model(name)
    return m, [m.var(v, lb, ub) for v in names]


# --- smooth polynomials ------------------------------------------------------------------------------


@register
def six_hump_camel() -> OptProblem:
    # f = (4 - 2.1 x^2 + x^4/3) x^2 + x y + (-4 + 4 y^2) y^2, x in [-3, 3], y in [-2, 2] (SB; DS).
    # Published: f* = -1.0316 at (0.0898, -0.7126) and (-0.0898, 0.7126) (f is even under (x, y) -> -(x, y)).
    # grad f = (8x - 8.4x^3 + 2x^5 + y, x - 8y + 16y^3) = 0 solved at 40 digits from the published point:
    # x* = 0.0898420131003180..., y* = -0.712656403020739..., f* = -1.03162845348987...
    m = gv.Model("six_hump_camel")
    x, y = m.var("x", -3, 3), m.var("y", -2, 2)
    expr = (4 - sympy.Rational(21, 10) * x**2 + x**4 / 3) * x**2 + x * y + (-4 + 4 * y**2) * y**2

    def f(a, b):
        return (4 - mpmath.mpf(21) / 10 * a**2 + a**4 / 3) * a**2 + a * b + (-4 + 4 * b**2) * b**2

    xs, ys = mpmath.findroot(
        [lambda a, b: 8 * a - mpmath.mpf(84) / 10 * a**3 + 2 * a**5 + b, lambda a, b: a - 8 * b + 16 * b**3],
        (mpmath.mpf("0.0898"), mpmath.mpf("-0.7126")),
    )
    return OptProblem("six_hump_camel", m, expr, "min", exact(f(xs, ys)), {"x": exact(xs), "y": exact(ys)},
                      "six-hump camel on [-3, 3] x [-2, 2]; two global minima", f"{SB}; {DS}")


@register
def three_hump_camel() -> OptProblem:
    # f = 2x^2 - 1.05 x^4 + x^6/6 + x y + y^2 on [-5, 5]^2 (SB). Published f* = 0 at (0, 0).
    # With y^2 + x y = (y + x/2)^2 - x^2/4: f = (y + x/2)^2 + x^2 (7/4 - 1.05 x^2 + x^4/6). The quadratic
    # in t = x^2, t^2/6 - 1.05 t + 7/4, has discriminant 1.05^2 - 4 (1/6)(7/4) = -0.064 < 0, so it is
    # positive: f >= 0 with equality only at the origin.
    m, (x, y) = square_box("three_hump_camel", "xy", -5, 5)
    expr = 2 * x**2 - sympy.Rational(105, 100) * x**4 + x**6 / 6 + x * y + y**2
    return OptProblem("three_hump_camel", m, expr, "min", 0.0, {"x": 0.0, "y": 0.0},
                      "three-hump camel on [-5, 5]^2", SB)


@register
def goldstein_price() -> OptProblem:
    # f = [1 + (x + y + 1)^2 (19 - 14x + 3x^2 - 14y + 6xy + 3y^2)]
    #   * [30 + (2x - 3y)^2 (18 - 32x + 12x^2 + 48y - 36xy + 27y^2)] on [-2, 2]^2 (SB; DS).
    # Published f* = 3 at (0, -1): x + y + 1 = 0 makes the first factor 1, and at (0, -1) the second is
    # 30 + 9 (18 - 48 + 27) = 30 - 27 = 3. Values span [3, ~1e6] on the box: a badly scaled problem.
    m, (x, y) = square_box("goldstein_price", "xy", -2, 2)
    first = 1 + (x + y + 1) ** 2 * (19 - 14 * x + 3 * x**2 - 14 * y + 6 * x * y + 3 * y**2)
    second = 30 + (2 * x - 3 * y) ** 2 * (18 - 32 * x + 12 * x**2 + 48 * y - 36 * x * y + 27 * y**2)
    return OptProblem("goldstein_price", m, first * second, "min", 3.0, {"x": 0.0, "y": -1.0},
                      "Goldstein-Price on [-2, 2]^2 (range [3, ~1e6])", f"{SB}; {DS}")


@register
def rosenbrock() -> OptProblem:
    # f = 100 (y - x^2)^2 + (x - 1)^2 on [-5, 10]^2 (SB's box). Both squares vanish at (1, 1): f* = 0.
    # The minimum lies in a long curved valley y = x^2: a classic hard case for local methods.
    m, (x, y) = square_box("rosenbrock", "xy", -5, 10)
    expr = 100 * (y - x**2) ** 2 + (x - 1) ** 2
    return OptProblem("rosenbrock", m, expr, "min", 0.0, {"x": 1.0, "y": 1.0},
                      "Rosenbrock 2-D on [-5, 10]^2", SB)


@register
def booth() -> OptProblem:
    # f = (x + 2y - 7)^2 + (2x + y - 5)^2 on [-10, 10]^2 (SB). Both vanish at (1, 3): f* = 0.
    m, (x, y) = square_box("booth", "xy", -10, 10)
    expr = (x + 2 * y - 7) ** 2 + (2 * x + y - 5) ** 2
    return OptProblem("booth", m, expr, "min", 0.0, {"x": 1.0, "y": 3.0}, "Booth on [-10, 10]^2", SB)


@register
def matyas() -> OptProblem:
    # f = 0.26 (x^2 + y^2) - 0.48 x y on [-10, 10]^2 (SB). A positive definite quadratic form
    # (eigenvalues 0.26 +- 0.24 = 0.5, 0.02 > 0): f* = 0 at (0, 0). Flat along x = y (eigenvalue 0.02).
    m, (x, y) = square_box("matyas", "xy", -10, 10)
    expr = sympy.Rational(26, 100) * (x**2 + y**2) - sympy.Rational(48, 100) * x * y
    return OptProblem("matyas", m, expr, "min", 0.0, {"x": 0.0, "y": 0.0}, "Matyas on [-10, 10]^2", SB)


@register
def beale() -> OptProblem:
    # f = (1.5 - x + x y)^2 + (2.25 - x + x y^2)^2 + (2.625 - x + x y^3)^2 on [-4.5, 4.5]^2 (SB).
    # At (3, 1/2): 1.5 - 3 + 1.5 = 0, 2.25 - 3 + 0.75 = 0, 2.625 - 3 + 0.375 = 0: f* = 0.
    m, (x, y) = square_box("beale", "xy", -4.5, 4.5)
    expr = ((sympy.Rational(3, 2) - x + x * y) ** 2 + (sympy.Rational(9, 4) - x + x * y**2) ** 2
            + (sympy.Rational(21, 8) - x + x * y**3) ** 2)
    return OptProblem("beale", m, expr, "min", 0.0, {"x": 3.0, "y": 0.5}, "Beale on [-4.5, 4.5]^2", SB)


@register
def himmelblau() -> OptProblem:
    # f = (x^2 + y - 11)^2 + (x + y^2 - 7)^2 on [-5, 5]^2 (JY). Four global minima with f* = 0; at (3, 2)
    # both terms vanish: 9 + 2 - 11 = 0, 3 + 4 - 7 = 0.
    m, (x, y) = square_box("himmelblau", "xy", -5, 5)
    expr = (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2
    return OptProblem("himmelblau", m, expr, "min", 0.0, {"x": 3.0, "y": 2.0},
                      "Himmelblau on [-5, 5]^2; four global minima", JY)


def styblinski_tang(d: int) -> OptProblem:
    # f = 1/2 sum_i (x_i^4 - 16 x_i^2 + 5 x_i) on [-5, 5]^d (SB). Separable: each term h(t) = (t^4 - 16t^2
    # + 5t)/2 has h'(t) = (4t^3 - 32t + 5)/2 with roots ~ -2.9035, 0.1567, 2.7468; h(-2.9035) < h(2.7468),
    # so x_i* = -2.90353402777117... and f* = d h(x_i*) = -39.1661657037714... d.
    # Published: f* = -39.16599 d (SB's rounded figure; the exact per-coordinate value is -39.166165703...).
    name = f"styblinski_tang_{d}d"
    m, xs = square_box(name, "xyz"[:d], -5, 5)
    expr = sum((t**4 - 16 * t**2 + 5 * t) for t in xs) / 2
    t_star = mpmath.findroot(lambda t: 4 * t**3 - 32 * t + 5, mpmath.mpf("-2.9035"))
    h_star = (t_star**4 - 16 * t_star**2 + 5 * t_star) / 2
    return OptProblem(name, m, expr, "min", exact(d * h_star), {str(v): exact(t_star) for v in xs},
                      f"Styblinski-Tang {d}-D on [-5, 5]^{d}", SB)


@register
def styblinski_tang_2d() -> OptProblem:
    return styblinski_tang(2)


@register
def styblinski_tang_3d() -> OptProblem:
    return styblinski_tang(3)


# --- trigonometric and exponential ---------------------------------------------------------------------


@register
def branin() -> OptProblem:
    # f = a (y - b x^2 + c x - r)^2 + s (1 - t) cos x + s, a = 1, b = 5.1/(4 pi^2), c = 5/pi, r = 6, s = 10,
    # t = 1/(8 pi), x in [-5, 10], y in [0, 15] (SB; DS). Three global minima, at (-pi, 12.275),
    # (pi, 2.275), (3 pi, 2.475). At x = pi: cos x = -1, so f = (square) + s t; the square vanishes at
    # y = b pi^2 - c pi + r = 5.1/4 - 5 + 6 = 2.275. f* = s t = 10 / (8 pi) = 5 / (4 pi) = 0.397887...
    # (published 0.397887). f >= s t everywhere since the square >= 0 and s (1 - t)(cos x + 1) >= 0.
    m = gv.Model("branin")
    x, y = m.var("x", -5, 10), m.var("y", 0, 15)
    b, c = 5.1 / (4 * math.pi**2), 5 / math.pi
    expr = (y - b * x**2 + c * x - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * gv.cos(x) + 10
    return OptProblem("branin", m, expr, "min", exact(5 / (4 * mpmath.pi)), {"x": math.pi, "y": 2.275},
                      "Branin on [-5, 10] x [0, 15]; three global minima", f"{SB}; {DS}")


@register
def mccormick() -> OptProblem:
    # f = sin(x + y) + (x - y)^2 - 1.5 x + 2.5 y + 1, x in [-1.5, 4], y in [-3, 4] (SB).
    # grad f = 0: cos(x + y) + 2(x - y) - 1.5 = 0 and cos(x + y) - 2(x - y) + 2.5 = 0. Adding them:
    # cos(x + y) = -1/2; subtracting: x - y = 1. With x + y = -2 pi/3: x* = 1/2 - pi/3, y* = -1/2 - pi/3
    # (-0.54720, -1.54720), and f* = sin(-2 pi/3) + 1 - 1.5 x* + 2.5 y* + 1 = -sqrt(3)/2 - pi/3
    # = -1.913222954981037... (published -1.9133).
    m = gv.Model("mccormick")
    x, y = m.var("x", -1.5, 4), m.var("y", -3, 4)
    expr = gv.sin(x + y) + (x - y) ** 2 - sympy.Rational(3, 2) * x + sympy.Rational(5, 2) * y + 1
    third = mpmath.pi / 3
    return OptProblem("mccormick", m, expr, "min", exact(-mpmath.sqrt(3) / 2 - third),
                      {"x": exact(mpmath.mpf(1) / 2 - third), "y": exact(-mpmath.mpf(1) / 2 - third)},
                      "McCormick on [-1.5, 4] x [-3, 4]", SB)


@register
def easom() -> OptProblem:
    # f = -cos x cos y exp(-((x - pi)^2 + (y - pi)^2)) on [-100, 100]^2 (SB). |f| <= exp(-r^2) with r the
    # distance to (pi, pi), and f(pi, pi) = -cos(pi)^2 = -1: f* = -1. The basin has radius ~ 1 in a box
    # 200 wide: f is ~ 0 on almost all of it.
    m, (x, y) = square_box("easom", "xy", -100, 100)
    expr = -gv.cos(x) * gv.cos(y) * gv.exp(-((x - math.pi) ** 2 + (y - math.pi) ** 2))
    return OptProblem("easom", m, expr, "min", -1.0, {"x": math.pi, "y": math.pi},
                      "Easom on [-100, 100]^2 (a narrow basin in a flat plain)", SB)


@register
def shubert() -> OptProblem:
    # f = g(x) g(y), g(t) = sum_{i=1..5} i cos((i + 1) t + i), on [-10, 10]^2 (SB). 760 local minima,
    # 18 global ones. g takes both signs, so min f = min g * max g (one factor at its most negative, the
    # other at its most positive). g is 2 pi periodic; g' = 0 solved at 40 digits from the grid optimum:
    # min g at t = -7.08350640765155..., max g at t = -1.42512842831976...;
    # f* = -186.730908831023... (published -186.7309).
    m, (x, y) = square_box("shubert", "xy", -10, 10)

    def g_sym(t):
        return sum(i * gv.cos((i + 1) * t + i) for i in range(1, 6))

    def g(t):
        return sum(i * mpmath.cos((i + 1) * t + i) for i in range(1, 6))

    def g_prime(t):
        return -sum(i * (i + 1) * mpmath.sin((i + 1) * t + i) for i in range(1, 6))

    t_min = mpmath.findroot(g_prime, mpmath.mpf("-7.0835"))
    t_max = mpmath.findroot(g_prime, mpmath.mpf("-1.4251"))
    return OptProblem("shubert", m, g_sym(x) * g_sym(y), "min", exact(g(t_min) * g(t_max)),
                      {"x": exact(t_min), "y": exact(t_max)},
                      "Shubert 2-D on [-10, 10]^2; 18 global minima among 760 local ones", SB)


@register
def levy() -> OptProblem:
    # Levy 2-D on [-10, 10]^2 (SB): w_i = 1 + (x_i - 1)/4,
    # f = sin^2(pi w_1) + (w_1 - 1)^2 (1 + 10 sin^2(pi w_1 + 1)) + (w_2 - 1)^2 (1 + sin^2(2 pi w_2)).
    # Every term is >= 0 and all vanish at x = (1, 1) (w = (1, 1), sin(pi) = 0): f* = 0.
    m, (x, y) = square_box("levy", "xy", -10, 10)
    w1, w2 = 1 + (x - 1) / 4, 1 + (y - 1) / 4
    expr = (gv.sin(math.pi * w1) ** 2 + (w1 - 1) ** 2 * (1 + 10 * gv.sin(math.pi * w1 + 1) ** 2)
            + (w2 - 1) ** 2 * (1 + gv.sin(2 * math.pi * w2) ** 2))
    return OptProblem("levy", m, expr, "min", 0.0, {"x": 1.0, "y": 1.0}, "Levy 2-D on [-10, 10]^2", SB)


@register
def rastrigin() -> OptProblem:
    # f = 20 + sum_i (x_i^2 - 10 cos(2 pi x_i)) on [-5.12, 5.12]^2 (SB). Each term x^2 + 10 (1 - cos 2 pi x)
    # is >= 0 and vanishes only at 0: f* = 0 at the origin, among ~100 local minima near the integer points.
    m, (x, y) = square_box("rastrigin", "xy", -5.12, 5.12)
    expr = 20 + sum(t**2 - 10 * gv.cos(2 * math.pi * t) for t in (x, y))
    return OptProblem("rastrigin", m, expr, "min", 0.0, {"x": 0.0, "y": 0.0},
                      "Rastrigin 2-D on [-5.12, 5.12]^2", SB)


@register
def hartmann_3() -> OptProblem:
    # f = -sum_{i=1..4} alpha_i E_i, E_i = exp(-sum_j A_ij (x_j - P_ij)^2), on [0, 1]^3 (SB; DS), with the
    # tables below. Published: f* = -3.86278 at (0.114614, 0.555649, 0.852547). The gradient
    # df/dx_k = sum_i alpha_i E_i 2 A_ik (x_k - P_ik) = 0 solved at 40 digits from that point:
    # x* = (0.114614338589..., 0.555648849971..., 0.852546953520...), f* = -3.86278214782075...
    # P_41 is 0.03815 as in Dixon & Szego's table; SB's table rounds it to 0.0381, which moves the minimum
    # to (0.114589, 0.555649, 0.852547) with f* = -3.86277978733266..., while SB still quotes the point above.
    m, xs = square_box("hartmann_3", "xyz", 0, 1)
    alpha = ["1.0", "1.2", "3.0", "3.2"]
    a = [["3.0", "10", "30"], ["0.1", "10", "35"], ["3.0", "10", "30"], ["0.1", "10", "35"]]
    p = [["0.3689", "0.1170", "0.2673"], ["0.4699", "0.4387", "0.7470"],
         ["0.1091", "0.8732", "0.5547"], ["0.03815", "0.5743", "0.8828"]]

    def terms(z, number, exp):
        return [number(alpha[i]) * exp(-sum(number(a[i][j]) * (z[j] - number(p[i][j])) ** 2 for j in range(3)))
                for i in range(4)]

    def gradient(*z):
        weights = terms(z, mpmath.mpf, mpmath.exp)
        return [sum(weights[i] * 2 * mpmath.mpf(a[i][k]) * (z[k] - mpmath.mpf(p[i][k])) for i in range(4))
                for k in range(3)]

    expr = -sum(terms(xs, sympy.Rational, gv.exp))
    z_star = mpmath.findroot(gradient, [mpmath.mpf(v) for v in ("0.114614", "0.555649", "0.852547")])
    z_star = [z_star[k] for k in range(3)]
    return OptProblem("hartmann_3", m, expr, "min", exact(-sum(terms(z_star, mpmath.mpf, mpmath.exp))),
                      {str(v): exact(z) for v, z in zip(xs, z_star)},
                      "Hartmann 3-D on [0, 1]^3 (four Gaussian wells)", f"{SB}; {DS}")


# --- harder landscapes: needle basins, ridges, many wells, more dimensions ---------------------------


@register
def ackley() -> OptProblem:
    # f = -20 exp(-0.2 sqrt((x^2 + y^2)/2)) - exp((cos 2 pi x + cos 2 pi y)/2) + 20 + e on [-32.768, 32.768]^2
    # (SB). Both exponentials are at their largest (exp(0) = 1 and exp(1) = e) only at the origin: f* = 0.
    # sqrt has an infinite slope at 0, right at the minimiser.
    m, (x, y) = square_box("ackley", "xy", -32.768, 32.768)
    expr = (-20 * gv.exp(-sympy.Rational(1, 5) * gv.sqrt((x**2 + y**2) / 2))
            - gv.exp((gv.cos(2 * math.pi * x) + gv.cos(2 * math.pi * y)) / 2) + 20 + math.e)
    return OptProblem("ackley", m, expr, "min", 0.0, {"x": 0.0, "y": 0.0}, "Ackley 2-D on [-32.768, 32.768]^2", SB)


@register
def drop_wave() -> OptProblem:
    # f = -(1 + cos(12 sqrt(x^2 + y^2))) / (0.5 (x^2 + y^2) + 2) on [-5.12, 5.12]^2 (SB). The numerator is
    # at most 2 and the denominator at least 2, both attained at the origin: f* = -1.
    m, (x, y) = square_box("drop_wave", "xy", -5.12, 5.12)
    r2 = x**2 + y**2
    expr = -(1 + gv.cos(12 * gv.sqrt(r2))) / (r2 / 2 + 2)
    return OptProblem("drop_wave", m, expr, "min", -1.0, {"x": 0.0, "y": 0.0}, "Drop-Wave on [-5.12, 5.12]^2", SB)


@register
def cross_in_tray() -> OptProblem:
    # f = -0.0001 (|sin x sin y exp(|100 - sqrt(x^2 + y^2)/pi|)| + 1)^0.1 on [-10, 10]^2 (SB). Four global
    # minima (+-1.3491, +-1.3491) by symmetry. On the box r/pi < 100, so the inner exponent is 100 - r/pi;
    # maximising log|sin x| + log|sin y| - r/pi on the diagonal x = y = t: 2 cot t = sqrt(2)/pi, solved at
    # 40 digits: t* = 1.34940661715391..., f* = -2.06261187082273... (published -2.06261).
    m, (x, y) = square_box("cross_in_tray", "xy", -10, 10)
    inner = gv.Abs(gv.sin(x) * gv.sin(y) * gv.exp(gv.Abs(100 - gv.sqrt(x**2 + y**2) / math.pi)))
    expr = -sympy.Rational(1, 10_000) * (inner + 1) ** sympy.Rational(1, 10)
    t_star = mpmath.findroot(lambda t: 2 * mpmath.cot(t) - mpmath.sqrt(2) / mpmath.pi, mpmath.mpf("1.349"))
    peak = mpmath.sin(t_star) ** 2 * mpmath.exp(100 - mpmath.sqrt(2) * t_star / mpmath.pi)
    return OptProblem("cross_in_tray", m, expr, "min", exact(-(peak + 1) ** (mpmath.mpf(1) / 10) / 10_000),
                      {"x": exact(t_star), "y": exact(t_star)}, "Cross-in-tray on [-10, 10]^2", SB)


@register
def holder_table() -> OptProblem:
    # f = -|sin x cos y exp(|1 - sqrt(x^2 + y^2)/pi|)| on [-10, 10]^2 (SB). Four global minima
    # (+-8.05502, +-9.66459) (published f* = -19.2085). Near them r/pi > 1, so -f = |sin x cos y| e^(r/pi - 1);
    # its log-gradient cot x + x/(pi r) = 0, -tan y + y/(pi r) = 0 solved at 40 digits:
    # (8.05502347573656..., 9.66459001924127...), f* = -19.2085025678867...
    m, (x, y) = square_box("holder_table", "xy", -10, 10)
    expr = -gv.Abs(gv.sin(x) * gv.cos(y) * gv.exp(gv.Abs(1 - gv.sqrt(x**2 + y**2) / math.pi)))

    def log_gradient(a, b):
        r = mpmath.sqrt(a**2 + b**2)
        return [mpmath.cot(a) + a / (mpmath.pi * r), -mpmath.tan(b) + b / (mpmath.pi * r)]

    a, b = mpmath.findroot(log_gradient, (mpmath.mpf("8.05502"), mpmath.mpf("9.66459")))
    value = -abs(mpmath.sin(a) * mpmath.cos(b)) * mpmath.exp(mpmath.sqrt(a**2 + b**2) / mpmath.pi - 1)
    return OptProblem("holder_table", m, expr, "min", exact(value), {"x": exact(a), "y": exact(b)},
                      "Holder table on [-10, 10]^2", SB)


@register
def eggholder() -> OptProblem:
    # f = -(y + 47) sin(sqrt|y + x/2 + 47|) - x sin(sqrt|x - (y + 47)|) on [-512, 512]^2 (SB).
    # Published f* = -959.6407 at (512, 404.2319): on the edge x = 512. With x fixed at 512, df/dy = 0
    # solved at 40 digits from y = 404.2319: y* = 404.231805113757..., f* = -959.640662720850...
    m, (x, y) = square_box("eggholder", "xy", -512, 512)
    expr = -(y + 47) * gv.sin(gv.sqrt(gv.Abs(y + x / 2 + 47))) - x * gv.sin(gv.sqrt(gv.Abs(x - (y + 47))))

    def f(a, b):
        return (-(b + 47) * mpmath.sin(mpmath.sqrt(abs(b + a / 2 + 47)))
                - a * mpmath.sin(mpmath.sqrt(abs(a - (b + 47)))))

    y_star = mpmath.findroot(lambda b: mpmath.diff(lambda t: f(mpmath.mpf(512), t), b), mpmath.mpf("404.2319"))
    return OptProblem("eggholder", m, expr, "min", exact(f(mpmath.mpf(512), y_star)), {"x": 512.0, "y": exact(y_star)},
                      "Eggholder on [-512, 512]^2 (minimum on the boundary)", SB)


@register
def bukin_6() -> OptProblem:
    # f = 100 sqrt(|y - 0.01 x^2|) + 0.01 |x + 10|, x in [-15, -5], y in [-3, 3] (SB). Both terms are >= 0
    # and vanish at (-10, 1): f* = 0. The minimum lies on the non-smooth ridge y = x^2/100, along which f
    # grows only like |x + 10|/100: a notoriously hard, flat, non-differentiable valley.
    m = gv.Model("bukin_6")
    x, y = m.var("x", -15, -5), m.var("y", -3, 3)
    expr = 100 * gv.sqrt(gv.Abs(y - x**2 / 100)) + gv.Abs(x + 10) / 100
    return OptProblem("bukin_6", m, expr, "min", 0.0, {"x": -10.0, "y": 1.0},
                      "Bukin N.6 on [-15, -5] x [-3, 3] (non-smooth ridge)", SB)


@register
def michalewicz_2d() -> OptProblem:
    # f = -sum_{i=1,2} sin(x_i) sin(i x_i^2 / pi)^20 on [0, pi]^2 (SB; m = 10). Separable. For i = 2 the
    # term is -1 at x_2 = pi/2 (sin(pi/2) = 1 and sin(2 (pi/2)^2 / pi) = 1), its least possible value. For
    # i = 1, d/dx [sin x sin(x^2/pi)^20] = 0 solved at 40 digits from 2.20: x_1* = 2.20290552017260... with
    # term -0.801303410098552..., so f* = -1.80130341009855... (published -1.8013).
    m, (x, y) = square_box("michalewicz_2d", "xy", 0, math.pi)
    expr = -sum(gv.sin(t) * gv.sin(i * t**2 / math.pi) ** 20 for i, t in ((1, x), (2, y)))

    def term(t):
        return mpmath.sin(t) * mpmath.sin(t**2 / mpmath.pi) ** 20

    x_star = mpmath.findroot(lambda t: mpmath.diff(term, t), mpmath.mpf("2.2029"))
    return OptProblem("michalewicz_2d", m, expr, "min", exact(-1 - term(x_star)),
                      {"x": exact(x_star), "y": exact(mpmath.pi / 2)},
                      "Michalewicz 2-D (m = 10) on [0, pi]^2 (steep ridges)", SB)


@register
def schwefel_2d() -> OptProblem:
    # f = 418.9829 d - sum_i x_i sin(sqrt|x_i|) on [-500, 500]^d, d = 2 (SB). Separable: each
    # x sin(sqrt|x|) is largest at x* = 420.968746359982... (d/dx = 0 solved at 40 digits) with value
    # 418.982887272433..., so f* = 2 (418.9829 - 418.982887272433...) = 2.54551325874...e-5 (published ~ 0,
    # i.e. f* = 0 up to the rounded constant 418.9829). The second-best basin is ~ 119 higher.
    m, (x, y) = square_box("schwefel_2d", "xy", -500, 500)
    constant = sympy.Rational("418.9829")
    expr = 2 * constant - sum(t * gv.sin(gv.sqrt(gv.Abs(t))) for t in (x, y))

    def term(t):
        return t * mpmath.sin(mpmath.sqrt(t))

    x_star = mpmath.findroot(lambda t: mpmath.diff(term, t), mpmath.mpf("420.9687"))
    value = 2 * (mpmath.mpf("418.9829") - term(x_star))
    return OptProblem("schwefel_2d", m, expr, "min", exact(value), {"x": exact(x_star), "y": exact(x_star)},
                      "Schwefel 2-D on [-500, 500]^2 (deceptive: best basin far from the second best)", SB)


@register
def griewank_2d() -> OptProblem:
    # f = 1 + (x^2 + y^2)/4000 - cos(x) cos(y / sqrt 2) on [-600, 600]^2 (SB). The quadratic is >= 0 and
    # the product of cosines <= 1, both tight only at the origin: f* = 0. Hundreds of shallow local minima.
    m, (x, y) = square_box("griewank_2d", "xy", -600, 600)
    expr = 1 + (x**2 + y**2) / 4000 - gv.cos(x) * gv.cos(y / math.sqrt(2))
    return OptProblem("griewank_2d", m, expr, "min", 0.0, {"x": 0.0, "y": 0.0}, "Griewank 2-D on [-600, 600]^2", SB)


@register
def schaffer_2() -> OptProblem:
    # f = 0.5 + (sin^2(x^2 - y^2) - 0.5) / (1 + 0.001 (x^2 + y^2))^2 on [-100, 100]^2 (SB). At the origin
    # f = 0.5 - 0.5 = 0, and f >= 0.5 - 0.5 / (1 + 0.001 r^2)^2 >= 0 (sin^2 >= 0): f* = 0.
    m, (x, y) = square_box("schaffer_2", "xy", -100, 100)
    expr = sympy.Rational(1, 2) + (gv.sin(x**2 - y**2) ** 2 - sympy.Rational(1, 2)) / (
        1 + (x**2 + y**2) / 1000) ** 2
    return OptProblem("schaffer_2", m, expr, "min", 0.0, {"x": 0.0, "y": 0.0},
                      "Schaffer N.2 on [-100, 100]^2 (oscillation period shrinking like 1/r)", SB)


@register
def hartmann_6() -> OptProblem:
    # f = -sum_{i=1..4} alpha_i exp(-sum_j A_ij (x_j - P_ij)^2) on [0, 1]^6 (SB; DS). Published f* = -3.32237
    # at (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573); grad f = 0 solved at 40 digits from
    # there: f* = -3.32236801141551...
    m, xs = square_box("hartmann_6", "uvwxyz", 0, 1)
    alpha = ["1.0", "1.2", "3.0", "3.2"]
    a = [["10", "3", "17", "3.5", "1.7", "8"], ["0.05", "10", "17", "0.1", "8", "14"],
         ["3", "3.5", "1.7", "10", "17", "8"], ["17", "8", "0.05", "10", "0.1", "14"]]
    p = [["0.1312", "0.1696", "0.5569", "0.0124", "0.8283", "0.5886"],
         ["0.2329", "0.4135", "0.8307", "0.3736", "0.1004", "0.9991"],
         ["0.2348", "0.1451", "0.3522", "0.2883", "0.3047", "0.6650"],
         ["0.4047", "0.8828", "0.8732", "0.5743", "0.1091", "0.0381"]]

    def terms(z, number, exp):
        return [number(alpha[i]) * exp(-sum(number(a[i][j]) * (z[j] - number(p[i][j])) ** 2 for j in range(6)))
                for i in range(4)]

    def gradient(*z):
        weights = terms(z, mpmath.mpf, mpmath.exp)
        return [sum(weights[i] * 2 * mpmath.mpf(a[i][k]) * (z[k] - mpmath.mpf(p[i][k])) for i in range(4))
                for k in range(6)]

    expr = -sum(terms(xs, sympy.Rational, gv.exp))
    start = [mpmath.mpf(v) for v in ("0.20169", "0.150011", "0.476874", "0.275332", "0.311652", "0.6573")]
    z_star = mpmath.findroot(gradient, start)
    z_star = [z_star[k] for k in range(6)]
    return OptProblem("hartmann_6", m, expr, "min", exact(-sum(terms(z_star, mpmath.mpf, mpmath.exp))),
                      {str(v): exact(z) for v, z in zip(xs, z_star)},
                      "Hartmann 6-D on [0, 1]^6 (four Gaussian wells)", f"{SB}; {DS}")


@register
def shekel_10() -> OptProblem:
    # f = -sum_{i=1..10} 1 / (sum_j (x_j - C_ji)^2 + beta_i) on [0, 10]^4 (SB; DS), beta = (1, 2, 2, 4, 4,
    # 6, 3, 7, 5, 5)/10. Published f* = -10.5364 at (4, 4, 4, 4); grad f = 0 solved at 40 digits from there:
    # x* = (4.0007469, 3.9995095, 4.0007469, 3.9995095), f* = -10.5364431534835... (published -10.5364).
    m, xs = square_box("shekel_10", "wxyz", 0, 10)
    beta = [sympy.Rational(v, 10) for v in (1, 2, 2, 4, 4, 6, 3, 7, 5, 5)]
    centres = [[4, 1, 8, 6, 3, 2, 5, 8, 6, 7], [4, 1, 8, 6, 7, 9, 3, 1, 2, 3.6],
               [4, 1, 8, 6, 3, 2, 5, 8, 6, 7], [4, 1, 8, 6, 7, 9, 3, 1, 2, 3.6]]
    centres = [[sympy.Rational(str(v)) for v in row] for row in centres]

    def distances(z, number):
        return [sum((z[j] - number(centres[j][i])) ** 2 for j in range(4)) + number(beta[i]) for i in range(10)]

    def gradient(*z):
        d = distances(z, lambda q: mpmath.mpf(q.p) / q.q)
        return [sum(2 * (z[k] - mpmath.mpf(centres[k][i].p) / centres[k][i].q) / d[i] ** 2 for i in range(10))
                for k in range(4)]

    expr = -sum(1 / d for d in distances(xs, lambda q: q))
    z_star = mpmath.findroot(gradient, [mpmath.mpf(4)] * 4)
    z_star = [z_star[k] for k in range(4)]
    value = -sum(1 / d for d in distances(z_star, lambda q: mpmath.mpf(q.p) / q.q))
    return OptProblem("shekel_10", m, expr, "min", exact(value), {str(v): exact(z) for v, z in zip(xs, z_star)},
                      "Shekel m = 10 on [0, 10]^4 (ten narrow wells)", f"{SB}; {DS}")


__all__ = ["OPT_PROBLEMS", "OptProblem", "register"]
