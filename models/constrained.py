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


FAST = ["circle_linear", "hyperbola_distance", "bilinear_budget", "trig_equality", "disk_and_line_infeasible",
        "sphere_in_small_box_infeasible"]
