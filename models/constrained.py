"""Constrained global-optimisation problems with known optima, and infeasible ones.

Each entry of ``CONSTRAINED`` builds a fresh model with constraints and returns an ``OptProblem`` whose
``known_value`` is the global optimum over the feasible set (``None`` for an infeasible problem). Values
are published (Haverly's pooling problem, Rosen-Suzuki) or derived in the builder's comment.
``FAST`` lists the problems the default test run brackets; the others run with ``pytest -m slow``.

    from models.constrained import CONSTRAINED
    problem = CONSTRAINED["circle_linear"]()
    problem.model.bound(problem.expr)        # lower <= -sqrt(2) <= upper, gap <= 1e-4
"""

from __future__ import annotations

import math
from typing import Callable

import mpmath

import graphver as gv
from models.optimization import OptProblem

CONSTRAINED: dict[str, Callable[[], OptProblem]] = {}

HS71_VALUE = 17.014017289156302  # KKT point solved at 40 digits (mpmath), x1 = 1 at its bound
MISHRA_VALUE = -106.76453674926468  # stationary point solved at 40 digits (mpmath); the disk is inactive there


def register(builder: Callable[[], OptProblem]) -> Callable[[], OptProblem]:
    CONSTRAINED[builder.__name__] = builder
    return builder


@register
def circle_linear() -> OptProblem:
    # min x + y on the unit circle: at -(1, 1)/sqrt 2, value -sqrt 2 (Lagrange: 1 = 2 lambda x = 2 lambda y).
    m = gv.Model("circle_linear")
    x, y = m.var("x", -2, 2), m.var("y", -2, 2)
    m.constrain(gv.Eq(x**2 + y**2, 1))
    r = -1 / math.sqrt(2)
    return OptProblem("circle_linear", m, x + y, "min", -math.sqrt(2), {"x": r, "y": r},
                      "min x + y subject to x^2 + y^2 = 1", "analytic")


@register
def hyperbola_distance() -> OptProblem:
    # min (x-3)^2 + (y-3)^2 on x y = 1: with y = 1/x and u = x + 1/x >= 2 the objective is u^2 - 6u + 16,
    # smallest at u = 3 (x = (3 +- sqrt 5)/2): value 7. The symmetric point (1, 1) is a local minimum (8).
    m = gv.Model("hyperbola_distance")
    x, y = m.var("x", 0.1, 5), m.var("y", 0.1, 5)
    m.constrain(gv.Eq(x * y, 1))
    t = (3 + math.sqrt(5)) / 2
    return OptProblem("hyperbola_distance", m, (x - 3) ** 2 + (y - 3) ** 2, "min", 7.0, {"x": t, "y": 1 / t},
                      "closest point of the hyperbola x y = 1 to (3, 3)", "analytic")


@register
def bilinear_budget() -> OptProblem:
    # max x + y with x y <= 4 on [0, 6] x [0, 4]: on the curve y = 4/x, x + 4/x is largest at the box's edge
    # x = 6 (20/3) versus x = 1 (5); so min -(x + y) = -20/3.
    m = gv.Model("bilinear_budget")
    x, y = m.var("x", 0, 6), m.var("y", 0, 4)
    m.constrain(x * y <= 4)
    return OptProblem("bilinear_budget", m, -x - y, "min", -20 / 3, {"x": 6.0, "y": 2 / 3},
                      "min -(x + y) subject to x y <= 4", "analytic")


def trig_root() -> float:
    mpmath.mp.dps = 40
    return float(mpmath.findroot(lambda x: x - 2 + mpmath.sin(2 * x) / 2, 1.5))


@register
def trig_equality() -> OptProblem:
    # min (x - 2)^2 + y^2 with sin x + y = 0: y = -sin x, objective (x - 2)^2 + sin^2 x, convex in x
    # (second derivative 2 + 2 cos 2x >= 0) with its minimum where x - 2 + sin(2x)/2 = 0 (solved at 40 digits).
    m = gv.Model("trig_equality")
    x, y = m.var("x", -1, 4), m.var("y", -2, 2)
    m.constrain(gv.Eq(gv.sin(x) + y, 0))
    root = trig_root()
    mpmath.mp.dps = 40
    value = float((mpmath.mpf(root) - 2) ** 2 + mpmath.sin(mpmath.mpf(root)) ** 2)
    return OptProblem("trig_equality", m, (x - 2) ** 2 + y**2, "min", value, {"x": root, "y": -math.sin(root)},
                      "min (x-2)^2 + y^2 subject to sin x + y = 0", "analytic (40-digit root)")


@register
def haverly_pooling() -> OptProblem:
    # Haverly's pooling problem 1 (Haverly 1978; Floudas et al. 1999, section 5.2): crudes A (3 % sulphur,
    # cost 6) and B (1 %, cost 16) go through a pool of quality p; crude C (2 %, cost 10) is blended
    # directly. Products x (price 9, at most 2.5 %, demand <= 100) and y (price 15, at most 1.5 %, <= 200).
    # Published optimum: profit 400 (pool used for y only, p = 1), i.e. min -profit = -400.
    m = gv.Model("haverly_pooling")
    a, b = m.var("A", 0, 300), m.var("B", 0, 300)
    px, py = m.var("Px", 0, 100), m.var("Py", 0, 200)
    cx, cy = m.var("Cx", 0, 100), m.var("Cy", 0, 200)
    p = m.var("p", 1, 3)
    m.constrain([
        gv.Eq(a + b - px - py, 0),  # pool balance
        gv.Eq(p * (px + py) - 3 * a - b, 0),  # pool quality
        p * px + 2 * cx <= 2.5 * (px + cx),  # quality of x
        p * py + 2 * cy <= 1.5 * (py + cy),  # quality of y
        px + cx <= 100,
        py + cy <= 200,
    ])
    profit = 9 * (px + cx) + 15 * (py + cy) - 6 * a - 16 * b - 10 * (cx + cy)
    return OptProblem("haverly_pooling", m, -profit, "min", -400.0,
                      {"A": 0.0, "B": 100.0, "Px": 0.0, "Py": 100.0, "Cx": 0.0, "Cy": 100.0, "p": 1.0},
                      "Haverly's pooling problem 1 (bilinear, two equalities)", "Haverly (1978)")


@register
def rosen_suzuki() -> OptProblem:
    # Rosen & Suzuki (1965), Hock & Schittkowski problem 43: optimum -44 at (0, 1, 2, -1).
    m = gv.Model("rosen_suzuki")
    x1, x2, x3, x4 = m.vars("x", 4, -3, 3)
    m.constrain([
        x1**2 + x2**2 + x3**2 + x4**2 + x1 - x2 + x3 - x4 <= 8,
        x1**2 + 2 * x2**2 + x3**2 + 2 * x4**2 - x1 - x4 <= 10,
        2 * x1**2 + x2**2 + x3**2 + 2 * x1 - x2 - x4 <= 5,
    ])
    f = x1**2 + x2**2 + 2 * x3**2 + x4**2 - 5 * x1 - 5 * x2 - 21 * x3 + 7 * x4
    return OptProblem("rosen_suzuki", m, f, "min", -44.0, {"x_0": 0.0, "x_1": 1.0, "x_2": 2.0, "x_3": -1.0},
                      "Rosen-Suzuki (HS43): quadratic objective, three quadratic inequalities",
                      "Hock & Schittkowski (1981), problem 43")


@register
def floudas_concave_knapsack() -> OptProblem:
    # Floudas et al. (1999), test problem 2.1 (GLOBALLib ex2_1_1): concave quadratic over a knapsack
    # constraint; published optimum -17 at (1, 1, 0, 1, 0).
    m = gv.Model("floudas_concave_knapsack")
    xs = m.vars("x", 5, 0, 1)
    c = (42, 44, 45, 47, 47.5)
    m.constrain(20 * xs[0] + 12 * xs[1] + 11 * xs[2] + 7 * xs[3] + 4 * xs[4] <= 40)
    f = sum(ci * x for ci, x in zip(c, xs)) - 50 * sum(x**2 for x in xs)
    return OptProblem("floudas_concave_knapsack", m, f, "min", -17.0,
                      {"x_0": 1.0, "x_1": 1.0, "x_2": 0.0, "x_3": 1.0, "x_4": 0.0},
                      "concave quadratic, one linear inequality", "Floudas et al. (1999), problem 2.1")


@register
def hs71() -> OptProblem:
    # Hock & Schittkowski problem 71: min x1 x4 (x1 + x2 + x3) + x3 subject to x1 x2 x3 x4 >= 25 and
    # x1^2 + x2^2 + x3^2 + x4^2 = 40 on [1, 5]^4. Published optimum 17.0140173 at (1, 4.743, 3.821, 1.379);
    # the value below is the KKT point's, solved to 1e-13 (it rounds to the published digits).
    m = gv.Model("hs71")
    x1, x2, x3, x4 = m.vars("x", 4, 1, 5)
    m.constrain([x1 * x2 * x3 * x4 >= 25, gv.Eq(x1**2 + x2**2 + x3**2 + x4**2, 40)])
    return OptProblem("hs71", m, x1 * x4 * (x1 + x2 + x3) + x3, "min", HS71_VALUE,
                      {"x_0": 1.0, "x_1": 4.742999637, "x_2": 3.821149984, "x_3": 1.379408291},
                      "HS71: cubic objective, a quartic inequality and a sphere equality",
                      "Hock & Schittkowski (1981), problem 71")


@register
def mishra_bird() -> OptProblem:
    # Mishra's bird function restricted to the disk (x + 5)^2 + (y + 5)^2 <= 25; published minimum
    # -106.7645367 at (-3.1302468, -1.5821422) (Mishra 2006; the list of test functions for constrained
    # optimisation). The value below is the KKT point's, solved to 1e-13 (it rounds to the published digits).
    m = gv.Model("mishra_bird")
    x, y = m.var("x", -10, 0), m.var("y", -6.5, 0)
    m.constrain((x + 5) ** 2 + (y + 5) ** 2 <= 25)
    f = gv.sin(y) * gv.exp((1 - gv.cos(x)) ** 2) + gv.cos(x) * gv.exp((1 - gv.sin(y)) ** 2) + (x - y) ** 2
    return OptProblem("mishra_bird", m, f, "min", MISHRA_VALUE, {"x": -3.1302468, "y": -1.5821422},
                      "Mishra's bird on a disk (trigonometric and exponential)", "Mishra (2006)")


@register
def rosenbrock_cubic_line() -> OptProblem:
    # Rosenbrock's function with a cubic and a line: (x-1)^3 - y + 1 <= 0, x + y - 2 <= 0 on
    # [-1.5, 1.5] x [-0.5, 2.5]; minimum 0 at (1, 1), where both constraints are active.
    m = gv.Model("rosenbrock_cubic_line")
    x, y = m.var("x", -1.5, 1.5), m.var("y", -0.5, 2.5)
    m.constrain([(x - 1) ** 3 - y + 1 <= 0, x + y - 2 <= 0])
    return OptProblem("rosenbrock_cubic_line", m, (1 - x) ** 2 + 100 * (y - x**2) ** 2, "min", 0.0,
                      {"x": 1.0, "y": 1.0}, "Rosenbrock subject to a cubic and a line",
                      "test functions for constrained optimisation (Simionescu's list)")


@register
def rosenbrock_disk() -> OptProblem:
    # Rosenbrock's function on the disk x^2 + y^2 <= 2: minimum 0 at (1, 1), on the disk's edge.
    m = gv.Model("rosenbrock_disk")
    x, y = m.var("x", -1.5, 1.5), m.var("y", -1.5, 1.5)
    m.constrain(x**2 + y**2 <= 2)
    return OptProblem("rosenbrock_disk", m, (1 - x) ** 2 + 100 * (y - x**2) ** 2, "min", 0.0, {"x": 1.0, "y": 1.0},
                      "Rosenbrock on a disk", "test functions for constrained optimisation")


@register
def disk_and_line_infeasible() -> OptProblem:
    # The unit disk and the half-plane x + y >= 2 are disjoint (the line is sqrt 2 from the origin).
    m = gv.Model("disk_and_line_infeasible")
    x, y = m.var("x", -2, 2), m.var("y", -2, 2)
    m.constrain([x**2 + y**2 <= 1, x + y >= 2])
    return OptProblem("disk_and_line_infeasible", m, x * y, "min", None, {}, "infeasible: disk and half-plane",
                      "analytic")


@register
def sphere_in_small_box_infeasible() -> OptProblem:
    # x^2 + y^2 + z^2 = 4 has no solution with every |coordinate| <= 1 (the box's corners are at radius sqrt 3).
    m = gv.Model("sphere_in_small_box_infeasible")
    xs = m.vars("x", 3, -1, 1)
    m.constrain(gv.Eq(sum(x**2 for x in xs), 4))
    return OptProblem("sphere_in_small_box_infeasible", m, xs[0], "min", None, {}, "infeasible: sphere outside box",
                      "analytic")


SLOW = ["haverly_pooling"]  # each of the others takes a few seconds
FAST = [name for name in CONSTRAINED if name not in SLOW]
