"""Local solves with IPOPT on the tape: optima, Hessian modes, failure paths (never a crash)."""

from __future__ import annotations

import math

import pytest

import graphver as gv

CAMEL_MIN = -1.0316284534898774


def camel_model():
    m = gv.Model("camel")
    x, y = m.var("x", -3, 3), m.var("y", -2, 2)
    return m, (4 - 2.1 * x**2 + x**4 / 3) * x**2 + x * y + (-4 + 4 * y**2) * y**2


@pytest.mark.parametrize("hessian", ["exact", "limited-memory"])
def test_minimize_reaches_the_local_minimum(hessian):
    m, camel = camel_model()
    solution = m.minimize(camel, start={"x": 0.5, "y": -0.5}, hessian=hessian)
    assert solution.success and solution.iterations > 0
    assert solution.value == pytest.approx(CAMEL_MIN, abs=1e-9)
    assert -3 <= solution.point["x"] <= 3 and -2 <= solution.point["y"] <= 2


def test_maximize_and_bounds_are_respected():
    m = gv.Model("peak")
    x = m.var("x", 0, 5)
    top = m.maximize(x * gv.exp(-x))
    assert top.success and top.point["x"] == pytest.approx(1.0, abs=1e-6)
    assert top.value == pytest.approx(1 / math.e, rel=1e-12)
    edge = m.minimize(x * gv.exp(-x), start={"x": 0.5})  # the minimum sits on the bound x = 0
    assert edge.point["x"] == pytest.approx(0.0, abs=1e-7) and edge.value <= 1e-7


def test_local_solve_agrees_with_the_certified_bound():
    m, camel = camel_model()
    solution = m.minimize(camel, start=[0.5, -0.5])
    certified = m.bound(camel, timeout=30)
    assert certified.lower <= solution.value + 1e-12


def test_failure_paths_are_reported_not_raised():
    m = gv.Model("undefined")
    x, y = m.var("x", -3, 3), m.var("y", -2, 2)
    # log(x + 3) is -inf at the start point x = -3: IPOPT must not crash the caller
    solution = m.minimize(gv.log(x + 3) + y, start={"x": -3, "y": 0}, max_iter=50)
    assert isinstance(solution.status, str) and solution.seconds >= 0
    assert -3 <= solution.point["x"] <= 3
    limited = m.minimize(gv.sin(5 * x) * gv.cos(3 * y) + 0.1 * x**2, max_iter=2)
    assert not limited.success and "maximum number of iterations" in limited.status.lower()
