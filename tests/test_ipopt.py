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


# --- the NLP built from the tape: derivatives against finite differences, for every op ------------------

import numpy as np  # noqa: E402

import sympy  # noqa: E402

from graphver.dsl.functions import round_half_even  # noqa: E402
from graphver.ops.registry import REGISTRY  # noqa: E402
from graphver.search.ipopt import TapeNLP, ValueSearch  # noqa: E402

# One expression per op (and per parameter of the powers), composed with linear maps and a product so that
# the chain rule is exercised. The box keeps every op inside its domain (x, y in [-2, 2]).
OP_CASES = {
    "floor": lambda x, y: sympy.floor(2 * x + y) * x + y,
    "ceil": lambda x, y: sympy.ceiling(x - 0.5 * y) * y + x,
    "round": lambda x, y: round_half_even(3 * x) * y + x * y,
    "tanh": lambda x, y: gv.tanh(x + 0.3 * y) * (1 + 0.5 * y),
    "sigmoid": lambda x, y: gv.sigmoid(2 * x - y) * y,
    "relu": lambda x, y: gv.relu(x - 0.2 * y) ** 2 + gv.relu(x - 0.2 * y) * y,
    "abs": lambda x, y: gv.Abs(x - y) * x,
    "exp": lambda x, y: gv.exp(0.5 * x * y),
    "log": lambda x, y: gv.log(x + 3) * y,
    "sqrt": lambda x, y: gv.sqrt(x + 3) * (y + 0.5),
    "pow_int 2": lambda x, y: (x + y) ** 2 * x,
    "pow_int 3": lambda x, y: (x - 0.3 * y) ** 3,
    "pow_int 4": lambda x, y: (x + 0.1 * y) ** 4,
    "pow_int 7": lambda x, y: (0.5 * x + 0.2 * y) ** 7,
    "pow_int -1": lambda x, y: y / (x + 3),
    "pow_int -2": lambda x, y: (x + 3) ** -2 * y,
    "pow_int -3": lambda x, y: (y + 3) ** -3 + x,
    "pow_real 1.5": lambda x, y: (x + 3) ** 1.5 * y,
    "pow_real 0.3": lambda x, y: (y + 3) ** 0.3 * x,
    "pow_real -0.5": lambda x, y: (x + 2.5) ** -0.5 * y,
    "mul": lambda x, y: x * y * (x - y),
    "quad_over_lin": lambda x, y: gv.quad_over_lin(x - 0.5 * y, y + 3) + y,
    "sin": lambda x, y: gv.sin(2 * x + y) * x,
    "cos": lambda x, y: gv.cos(x * y),
    "tan": lambda x, y: gv.tan(0.3 * x + 0.2 * y),
    "atan": lambda x, y: gv.atan(3 * x - y) * y,
    "erf": lambda x, y: gv.erf(0.7 * x - y) * x,
    # a sum of ReLU pieces of one argument: the tape builder fuses it into one piecewise_linear node
    "piecewise_linear": lambda x, y: (0.3 * gv.relu(2 * x - 0.5) - 0.2 * gv.relu(x + 0.5) + 0.1 * gv.relu(0.3 - x)) * y,
}


def op_nlp(case):
    m = gv.Model("ops")
    x, y = m.var("x", -2, 2), m.var("y", -2, 2)
    return TapeNLP(m.compile(OP_CASES[case](x, y)), 0)


def test_op_cases_cover_the_registry():
    covered = set()
    for case in OP_CASES:
        covered |= {i.op for i in op_nlp(case).tape.instructions if i.kind != "linear"}
    assert covered == set(REGISTRY)


@pytest.mark.parametrize("case", sorted(OP_CASES))
def test_tape_derivatives_match_finite_differences(case):
    """Gradient (batched autograd) and Hessian (batched double backward) of the NLP against central
    differences of the tape's own values, at random points away from kinks."""
    nlp = op_nlp(case)
    rng = np.random.default_rng(11)
    h = 1e-6
    checked = 0
    for x in rng.uniform(-1.8, 1.8, size=(12, 2)):
        if case in ("relu", "abs") and min(abs(x[0] - 0.2 * x[1]), abs(x[0] - x[1])) < 1e-2:
            continue  # the kink: no derivative to compare
        f = lambda p: nlp.objective(np.asarray(p, dtype=np.float64))
        grad = nlp.gradient(x)
        fd = np.array([(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(2)])
        np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-6 * (1 + abs(f(x))))
        lower = nlp.hessian(x, np.zeros(0), 1.0)
        hess = np.zeros((2, 2))
        hess[nlp.hess_rows, nlp.hess_cols] = lower
        hess = hess + np.tril(hess, -1).T
        fd_hess = np.array([(nlp.gradient(x + h * e) - nlp.gradient(x - h * e)) / (2 * h) for e in np.eye(2)])
        np.testing.assert_allclose(hess, fd_hess, rtol=1e-4, atol=1e-5 * (1 + np.abs(fd_hess).max()))
        checked += 1
    assert checked >= 8


def test_constraint_jacobian_is_sparse_and_correct():
    """Constraints of the NLP: the Jacobian structure follows the tape's dependencies, its values match
    finite differences, and a solve lands on the constrained optimum (the circle's nearest point)."""
    m = gv.Model("circle")
    x, y, z = m.vars("x", 3, -2, 2)
    tape = m.compile([(x - 1) ** 2 + (y - 1) ** 2 + z**2, x**2 + y**2, gv.sin(z) + y])
    nlp = TapeNLP(tape, 0, rows=[1, 2], row_lower=[1.0, -IPOPT_INF], row_upper=[1.0, 5.0])
    rows, cols = nlp.jacobianstructure()
    assert sorted(zip(rows.tolist(), cols.tolist())) == [(0, 0), (0, 1), (1, 1), (1, 2)]
    point = np.array([0.3, -0.7, 0.4])
    h = 1e-6
    fd = np.array([(nlp.constraints(point + h * e) - nlp.constraints(point - h * e)) / (2 * h) for e in np.eye(3)]).T
    np.testing.assert_allclose(nlp.jacobian(point), fd[rows, cols], rtol=1e-7)
    run = nlp.solve(np.zeros(3), -2 * np.ones(3), 2 * np.ones(3))
    assert run.success
    np.testing.assert_allclose(run.x, [math.sqrt(0.5), math.sqrt(0.5), 0.0], atol=1e-7)


def test_epigraph_minimises_the_maximum_of_rows():
    m = gv.Model("maxrows")
    x, y = m.var("x", -3, 3), m.var("y", -3, 3)
    tape = m.compile([(x - 1) ** 2 + y**2, (x + 1) ** 2 + y**2])
    run = TapeNLP(tape, None, epigraph_rows=[0, 1]).solve(np.array([2.0, 2.0]), -3 * np.ones(2), 3 * np.ones(2))
    assert run.success
    np.testing.assert_allclose(run.x, [0.0, 0.0], atol=1e-6)  # max of the two is smallest (1) midway


IPOPT_INF = 1e20


def test_infeasible_constraints_and_infeasible_starts_do_not_crash():
    m = gv.Model("infeasible")
    x, y = m.var("x", -2, 2), m.var("y", -2, 2)
    tape = m.compile([x + y, x**2 + y**2])
    impossible = TapeNLP(tape, 0, rows=[1], row_lower=[-IPOPT_INF], row_upper=[-1.0])  # x^2 + y^2 <= -1
    run = impossible.solve(np.array([1.0, 1.0]), -2 * np.ones(2), 2 * np.ones(2), max_iter=100)
    assert not run.success and "infeasib" in run.status.lower()
    circle = TapeNLP(tape, 0, rows=[1], row_lower=[1.0], row_upper=[1.0])  # start (0, 0) is infeasible
    run = circle.solve(np.zeros(2), -2 * np.ones(2), 2 * np.ones(2))
    assert run.success and run.x.sum() == pytest.approx(-math.sqrt(2), abs=1e-7)


def test_callback_exceptions_and_nan_regions_are_reported():
    m = gv.Model("nan")
    x, y = m.var("x", -2, 2), m.var("y", -2, 2)
    # sqrt(x) is undefined on half of the box: IPOPT sees huge values there and backs off, or reports failure
    nlp = TapeNLP(m.compile(gv.sqrt(x) + (y - 1) ** 2), 0)
    run = nlp.solve(np.array([-1.0, 0.0]), -2 * np.ones(2), 2 * np.ones(2), max_iter=50)
    assert isinstance(run.status, str) and np.all(np.abs(run.x) <= 2)

    class Broken(TapeNLP):
        def gradient(self, x):
            raise RuntimeError("boom")

    broken = Broken(m.compile(x**2 + y**2), 0)
    run = broken.solve(np.array([1.0, 1.0]), -2 * np.ones(2), 2 * np.ones(2))
    assert not run.success and run.x.tolist() == [1.0, 1.0]


def test_value_search_rotates_over_all_rows():
    m = gv.Model("rows")
    x, y = m.var("x", -1, 1), m.var("y", -1, 1)
    search = ValueSearch(m.compile([x + 5, y + 3, x * y + 4]), "all", 100, 5.0)
    starts = np.zeros((2, 2))
    first = [row for _, row in search.assignments(starts)]
    second = [row for _, row in search.assignments(starts)]
    assert first == [1, 2] and second == [0, 1]  # smallest row first, then the next ones in turn


def test_multi_start_finds_the_global_minimum_of_a_double_well():
    m = gv.Model("wells")
    x = m.var("x", -2, 2)
    f = (x**2 - 1) ** 2 + 0.3 * x  # the deeper well is at x ~ -1.04; the centre start falls into either
    single = m.minimize(f, start={"x": 0.6})
    assert single.point["x"] > 0  # one start from the right lands in the shallow well
    multi = m.minimize(f, starts=6)
    assert multi.starts == 6 and multi.point["x"] < 0 and multi.value < single.value
    assert "best of 6 starts" in str(multi)


def test_solver_unavailable_only_when_required(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "cyipopt", None)  # import cyipopt now fails
    m, camel = camel_model()
    with pytest.raises(gv.SolverUnavailableError, match="cyipopt-wheels"):
        m.minimize(camel)
    with pytest.raises(gv.SolverUnavailableError):
        m.bound(camel, timeout=5, ipopt="on")
    result = m.bound(camel, timeout=30, ipopt="auto")
    assert result.status == "solved" and result.stats.ipopt.startswith("IPOPT unavailable")
    assert result.stats.ipopt_calls == 0 and "unavailable" in str(result)


def test_ipopt_time_limit_is_respected():
    m = gv.Model("slow")
    xs = m.vars("x", 40, -2, 2)
    f = sum(gv.sin(3 * a * b) + (a - b) ** 2 for a, b in zip(xs, xs[1:]))
    solution = m.minimize(f, max_wall_time=0.05, max_iter=100_000, tol=1e-14)
    assert solution.seconds < 1.0
    result = m.bound(f, timeout=3, ipopt_time=0.05, ipopt_max_iter=100_000, max_explored=1)
    assert result.stats.ipopt_calls >= 1 and result.stats.time_ipopt < 1.0 + 0.2 * result.stats.ipopt_calls


def test_value_search_caps_the_iterations_of_later_starts(monkeypatch):
    """Once a call converged in k iterations, later calls of the same search get at most
    max(MIN_CAPPED_ITERATIONS, CONVERGED_FACTOR * k) iterations (a wandering start stops early)."""
    from graphver.search import ipopt as module

    m, camel = camel_model()
    search = ValueSearch(m.compile([camel]), "all", 500, 5.0)
    caps = []
    solve = module.TapeNLP.solve

    def recording(self, x0, lower, upper, max_iter=200, *args, **kwargs):
        caps.append(max_iter)
        return solve(self, x0, lower, upper, max_iter, *args, **kwargs)

    monkeypatch.setattr(module.TapeNLP, "solve", recording)
    starts = np.array([[0.1, -0.7], [2.5, 1.5], [-2.0, 1.0]])
    runs = search.run(starts, np.array([[-3.0, -2.0]] * 3), np.array([[3.0, 2.0]] * 3), math.inf)
    assert len(runs) == 3 and runs[0].success and caps[0] == 500
    first = runs[0].iterations
    expected = min(500, max(module.MIN_CAPPED_ITERATIONS, module.CONVERGED_FACTOR * first))
    assert caps[1] == expected < 500
    assert search.converged_iterations == max(r.iterations for r in runs if r.success)
