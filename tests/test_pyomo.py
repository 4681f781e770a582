"""Pyomo: import (expressions agree with Pyomo's own evaluation, exact constants, errors with their text),
bound and verify through ``graphver.from_pyomo``, ``SolverFactory("graphver")``, the MINLPLib files."""

from __future__ import annotations

import csv
import math
import runpy
import warnings
from pathlib import Path

import pytest
import torch

pyo = pytest.importorskip("pyomo.environ")

import graphver as gv  # noqa: E402
from graphver.errors import DomainError, ModelError, OptionError, UnsupportedOpError  # noqa: E402
from graphver.io.pyomo import from_pyomo  # noqa: E402
from graphver.tape import evaluate  # noqa: E402

MINLPLIB = Path(__file__).resolve().parents[2] / "shared" / "data" / "minlplib"


def every_function_model():
    m = pyo.ConcreteModel()
    m.I = pyo.Set(initialize=[1, 2])
    m.x = pyo.Var(m.I, bounds=(0.5, 2))
    m.y = pyo.Var(bounds=(-1, 1))
    m.z = pyo.Var(bounds=(0.2, 3))
    m.fixed = pyo.Var(initialize=0.7)
    m.fixed.fix()
    m.p = pyo.Param(initialize=3, mutable=True)
    m.e = pyo.Expression(expr=m.x[1] * m.y)
    m.obj = pyo.Objective(expr=(
        2 * m.x[1] + 3 * m.x[2] + 1 + m.x[1] * m.x[2] + m.x[1] / m.x[2] + m.x[1] ** 2 + m.x[1] ** m.y - m.y
        + pyo.exp(m.y) + pyo.log10(m.x[1]) + abs(m.y) + m.p * m.y + m.e + m.p / 2 + m.y ** 3 + m.x[2] ** 0.5
        + 2 ** m.y + m.x[1] ** 1.5 + pyo.sinh(m.y) + pyo.cosh(m.y) + m.e ** 2 + pyo.sin(m.z) * pyo.cos(m.y)
        + pyo.tan(m.y / 2) + pyo.atan(m.z) + pyo.tanh(m.y) + pyo.log(m.z) + pyo.sqrt(m.z) + m.fixed * m.z
        - m.z / 4 + (m.x[1] + m.y) * (m.x[1] + m.y) + 1 / m.z), sense=pyo.maximize)
    m.c = pyo.Constraint(expr=pyo.inequality(0, m.y + m.x[1], 1))
    m.d = pyo.Constraint(expr=m.x[1] * m.x[2] == 1.5)
    m.g = pyo.Constraint(expr=m.z >= m.y ** 2)
    return m


def test_import_agrees_with_pyomo_evaluation():
    m = every_function_model()
    imported = from_pyomo(m)
    assert imported.names == ["x[1]", "x[2]", "y", "z"]  # fixed variables are constants
    assert imported.sense == "max" and imported.n_rows == 1
    assert [c.kind for c in imported.constraints][:2] == ["range", "eq"]
    assert imported.constraints[2].kind in ("le", "ge")  # as Pyomo normalised z >= y**2
    assert imported.tape.n_outputs == 1 + 2 + 2 + 1
    assert len(imported.tape.instructions) < 40  # grouped by depth, not one instruction per node
    generator = torch.Generator().manual_seed(0)
    low, high = torch.tensor(imported.lower), torch.tensor(imported.upper)
    points = low + (high - low) * torch.rand(50, 4, generator=generator, dtype=torch.float64)
    values = evaluate(imported.tape, points)
    for point, value in zip(points.tolist(), values):
        imported.load(point)
        assert value[0].item() == pytest.approx(-pyo.value(m.obj), rel=1e-12)
        body = pyo.value(m.c.body)
        assert value[1].item() == pytest.approx(body - 1, abs=1e-12)
        assert value[2].item() == pytest.approx(-body, abs=1e-12)
        assert value[3].item() == pytest.approx(pyo.value(m.d.body) - 1.5, abs=1e-12)
        assert value[5].item() == pytest.approx(pyo.value(m.y) ** 2 - pyo.value(m.z), abs=1e-12)  # y**2 - z <= 0


def test_shared_subexpressions_and_affine_forms_stay_compact():
    m = pyo.ConcreteModel()
    m.x = pyo.Var(range(200), bounds=(-1, 1))
    m.s = pyo.Expression(expr=sum(m.x[i] * m.x[i + 1] for i in range(199)))
    m.obj = pyo.Objective(expr=m.s + 3 * m.s - sum(2 * m.x[i] for i in range(200)))
    imported = from_pyomo(m)
    counts = {}
    for instr in imported.tape.instructions:
        counts[instr.op or instr.kind] = counts.get(instr.op or instr.kind, 0) + instr.size
    assert counts["mul"] == 199  # the named expression is lowered once, though used twice
    assert counts["linear"] <= 2


def test_constants_are_exact():
    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(0, 1))
    m.p = pyo.Param(initialize=3, mutable=True)
    m.obj = pyo.Objective(expr=m.x / m.p + pyo.log10(m.x + 1))  # 1/3 and 1/log(10) are not floats
    tape = from_pyomo(m).tape
    errors = [e for instr in tape.instructions if instr.kind == "linear" for e in instr.weight_error.tolist()]
    assert any(0 < e < 1e-16 for e in errors)  # the rounding error of 1/3 (and 1/log(10)) is recorded


def test_bound_and_witness_keyed_by_names():
    m = pyo.ConcreteModel()
    m.x = pyo.Var([1, 2], bounds=(-2, 2))
    m.obj = pyo.Objective(expr=(m.x[1] - 1) ** 2 + (m.x[2] + 0.5) ** 2 + m.x[1] * m.x[2])
    result = gv.from_pyomo(m).bound(timeout=30, load=True)
    exact = -13 / 12  # stationary point of the convex quadratic: x1 = 5/3, x2 = -4/3
    assert result.status == "solved"
    assert result.lower <= exact + 1e-9 and result.upper >= exact - 1e-9
    assert set(result.witness) == {"x[1]", "x[2]"}
    assert pyo.value(m.x[1]) == pytest.approx(5 / 3, abs=1e-3)  # the witness was loaded


def test_solver_factory_equality_range_indexed_max():
    m = pyo.ConcreteModel()
    m.I = pyo.RangeSet(3)
    m.x = pyo.Var(m.I, bounds=(0, 4))
    m.sum = pyo.Constraint(expr=sum(m.x[i] for i in m.I) == 3)
    m.band = pyo.Constraint(expr=pyo.inequality(0.5, m.x[1] - m.x[2], 2))
    m.obj = pyo.Objective(expr=m.x[1] * m.x[2] + m.x[3] - m.x[3] ** 2, sense=pyo.maximize)
    solver = pyo.SolverFactory("graphver")
    assert solver is not None and solver.available()
    results = solver.solve(m, timeout=60, rel_tol=1e-5)
    # optimum: x3 = 1/2 - (x1 x2 trade-off); verified against a fine grid below
    grid = best_on_grid(lambda a, b: a * b + (3 - a - b) - (3 - a - b) ** 2,
                        lambda a, b: 0.5 <= a - b <= 2 and 0 <= 3 - a - b <= 4, 4.0, 600)
    assert results.solver.termination_condition == pyo.TerminationCondition.optimal
    assert results.problem.upper_bound >= grid - 1e-9  # certified: at least every feasible value
    assert results.problem.lower_bound <= results.problem.upper_bound
    assert results.problem.upper_bound - results.problem.lower_bound <= 1e-5 * abs(results.problem.upper_bound) + 1e-6
    value = pyo.value(m.obj)  # the witness is loaded
    assert value == pytest.approx(results.problem.lower_bound, abs=1e-6)
    assert abs(sum(pyo.value(m.x[i]) for i in m.I) - 3) <= 1e-5
    assert results.graphver.status == "solved"


def best_on_grid(f, feasible, top: float, steps: int) -> float:
    best = -math.inf
    for i in range(steps + 1):
        for j in range(steps + 1):
            a, b = top * i / steps, top * j / steps
            if feasible(a, b):
                best = max(best, f(a, b))
    return best


def test_solver_options_pass_through_with_did_you_mean():
    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(-1, 1))
    m.obj = pyo.Objective(expr=m.x ** 2)
    with pytest.raises(OptionError, match="branching"):
        pyo.SolverFactory("graphver").solve(m, timeout=5, options={"branchng": "input"})
    results = pyo.SolverFactory("graphver").solve(m, timeout=5, options={"branching": "input"})
    assert results.graphver.options["branching"] == "input"


def test_certified_infeasible_and_time_limit():
    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(-1, 1))
    m.y = pyo.Var(bounds=(-1, 1))
    m.c = pyo.Constraint(expr=m.x ** 2 + m.y ** 2 >= 3)
    m.obj = pyo.Objective(expr=m.x + m.y)
    results = pyo.SolverFactory("graphver").solve(m, timeout=20)
    assert results.solver.termination_condition == pyo.TerminationCondition.infeasible


def test_verify_pyomo_relations_and_confirmed_counterexample():
    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(-2, 2))
    m.y = pyo.Var(bounds=(-2, 2))
    m.disk = pyo.Constraint(expr=m.x ** 2 + m.y ** 2 <= 1)
    model = gv.from_pyomo(m)
    holds = model.verify(m.x + m.y <= 1.5, timeout=30)  # max of x + y on the disk is sqrt(2)
    assert holds.status == "verified"
    fails = model.verify([m.x + m.y <= 1.3, m.x >= -2], timeout=30)
    assert fails.status == "falsified"
    point = fails.counterexample
    assert point["x"] + point["y"] > 1.3 and point["x"] ** 2 + point["y"] ** 2 <= 1 + 1e-6
    assert fails.counterexample_check is not None  # confirmed by certified evaluation


def test_import_errors_name_the_component():
    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(0, 1))
    m.free = pyo.Var()
    m.obj = pyo.Objective(expr=m.x + m.free)
    with pytest.raises(ModelError, match=r"free \(no finite lower bound\).*setlb"):
        from_pyomo(m)

    m = pyo.ConcreteModel()
    m.n = pyo.Var(within=pyo.Integers, bounds=(0, 3))
    m.obj = pyo.Objective(expr=m.n ** 2)
    with pytest.raises(ModelError, match="variable n is Integers: graphver handles continuous variables only"):
        from_pyomo(m)

    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(0, 0.5))
    m.obj = pyo.Objective(expr=pyo.asin(m.x))
    with pytest.raises(UnsupportedOpError, match="unsupported function 'asin' in objective obj"):
        from_pyomo(m)

    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(0, 1))
    m.obj = pyo.Objective(expr=pyo.Expr_if(m.x >= 0.5, m.x, 1 - m.x))
    with pytest.raises(UnsupportedOpError, match="Expr_if"):
        from_pyomo(m)

    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(0, 1))
    m.zero = pyo.Param(initialize=0, mutable=True)
    m.obj = pyo.Objective(expr=m.x / m.zero)
    with pytest.raises(DomainError, match="division by the constant 0"):
        from_pyomo(m)

    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(0, 1))
    with pytest.raises(ModelError, match="no active Objective"):
        from_pyomo(m)
    with pytest.raises(ModelError, match="ConcreteModel or block"):
        from_pyomo("not a model")


def test_bounds_derived_from_constraints():
    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(0, 2))
    m.y = pyo.Var()  # unbounded, but y = 3 x - 1 fixes its range
    m.link = pyo.Constraint(expr=m.y == 3 * m.x - 1)
    m.obj = pyo.Objective(expr=m.y ** 2 + m.x)
    model = gv.from_pyomo(m)
    low, high = model.derived_bounds["y"]
    assert low <= -1 and high >= 5 and math.isfinite(low) and math.isfinite(high)
    result = model.bound(timeout=30)
    assert result.status == "solved" and result.lower <= 1 / 3 - 1 / 36 + 1e-9  # min at x = 1/3 - 1/18
    m.link.deactivate()  # y is then bounded by the objective only: y^2 + x <= its value at a feasible point
    low, high = gv.from_pyomo(m).derived_bounds["y"]
    assert -1 <= low <= 0 <= high <= 1
    m.obj.deactivate()
    m.open = pyo.Objective(expr=m.x - m.y)  # unbounded below: nothing bounds y from above
    with pytest.raises(ModelError, match=r"y \(no finite upper bound\); neither the constraints nor the objective"):
        from_pyomo(m)


def test_objective_cutoff_bounds_a_minimax_problem():
    """min t s.t. t >= g_i(x): the constraints bound t from below only; the objective's value at a
    certified feasible point bounds it from above. The start (t = 0) is infeasible: IPOPT, with the
    inequalities tightened, gives a point strictly inside them. A cutoff keeps every minimiser."""
    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(-2, 2), initialize=0.0)
    m.t = pyo.Var(initialize=0.0)
    m.a = pyo.Constraint(expr=m.t >= (m.x - 1) ** 2)
    m.b = pyo.Constraint(expr=m.t >= (m.x + 1) ** 2 - 0.5)
    m.obj = pyo.Objective(expr=m.t)
    model = gv.from_pyomo(m)
    low, high = model.derived_bounds["t"]
    optimum = (1 - 0.125) ** 2  # the two parabolas cross at x = 1/8
    assert low <= optimum <= high < 10
    result = model.bound(timeout=20)
    assert result.status == "solved" and result.lower <= optimum + 1e-9 <= result.upper + 2e-9
    assert result.upper == pytest.approx(optimum, rel=1e-4)


def test_fbbt_through_exact_weights_on_unbounded_inputs():
    """(a - x)^2 + (b - y)^2 <= r^2 bounds x and y once r is bounded, though x and y start unbounded: an
    exact weight times an infinite end is no error term (not 0 * inf = NaN, which lost every bound)."""
    m = pyo.ConcreteModel()
    m.x, m.y = pyo.Var(initialize=0.0), pyo.Var(initialize=0.0)
    m.r = pyo.Var(bounds=(0, 2))
    m.disk = pyo.Constraint(expr=(1.5 - m.x) ** 2 + (-0.5 - m.y) ** 2 <= m.r ** 2)
    m.obj = pyo.Objective(expr=m.r, sense=pyo.maximize)  # its cutoff, r >= r0, leaves r <= 2
    bounds = gv.from_pyomo(m).derived_bounds
    assert -0.5 - 1e-9 <= bounds["x"][0] <= -0.5 + 1e-6 and 3.5 - 1e-6 <= bounds["x"][1] <= 3.5 + 1e-9
    assert -2.5 - 1e-9 <= bounds["y"][0] <= -2.5 + 1e-6 and 1.5 - 1e-6 <= bounds["y"][1] <= 1.5 + 1e-9


def minlplib_rows(folder: Path = MINLPLIB):
    path = folder / "solutions.csv"
    if not path.is_file():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))


@pytest.mark.skipif(not MINLPLIB.is_dir(), reason="../shared/data/minlplib is not present")
def test_every_minlplib_file_loads():
    for row in minlplib_rows():
        m = runpy.run_path(str(MINLPLIB / f"{row['name']}.py"))["m"]
        imported = from_pyomo(m)
        assert imported.tape.n_inputs == int(row["n_vars"]), row["name"]
        assert imported.sense == row["sense"], row["name"]
        assert all(math.isfinite(v) for v in imported.lower + imported.upper)


@pytest.mark.skipif(not MINLPLIB.is_dir(), reason="../shared/data/minlplib is not present")
@pytest.mark.parametrize("name", ["ex2_1_1", "ex14_1_1", "alkylation"])
def test_minlplib_bounds_bracket_the_optimum(name):
    row = next(r for r in minlplib_rows() if r["name"] == name)
    m = runpy.run_path(str(MINLPLIB / f"{name}.py"))["m"]
    result = gv.from_pyomo(m).bound(timeout=10)
    optimum = float(row["optimal_value"])
    slack = 1e-6 * max(1.0, abs(optimum))  # the file's optimum is printed to 7-10 digits
    assert result.lower <= optimum + slack and result.upper >= optimum - slack


PYOMO_FILE = '''
from pyomo.environ import ConcreteModel, Constraint, Objective, Var, maximize
m = ConcreteModel()
m.x = Var(bounds=(-2, 2))
m.y = Var(bounds=(-2, 2))
m.disk = Constraint(expr=m.x ** 2 + m.y ** 2 <= 1)
m.obj = Objective(expr=m.x + m.y, sense=maximize)
prop = m.x + m.y <= 1.5
'''


def test_cli_bound_and_verify_a_pyomo_file(tmp_path):
    from click.testing import CliRunner

    from graphver import cli

    path = tmp_path / "disk.py"
    path.write_text(PYOMO_FILE)
    run = CliRunner().invoke(cli.main, ["bound", str(path), "--timeout", "30", "--quiet"])
    assert run.exit_code == 0, run.output
    assert "solved: max in [1.41421" in run.output  # sqrt(2), certified from above
    run = CliRunner().invoke(cli.main, ["verify", str(path), "--timeout", "30", "--quiet"])
    assert run.exit_code == 0 and run.output.startswith("verified"), run.output
    run = CliRunner().invoke(cli.main, ["bound", str(path), "--sense", "min", "--quiet"])
    assert run.exit_code == 2 and "maximisation; --sense min contradicts it" in run.output
    path.write_text(PYOMO_FILE + "other = ConcreteModel()\n")
    run = CliRunner().invoke(cli.main, ["bound", str(path), "--quiet"])
    assert run.exit_code == 2 and "defines 2 Pyomo models (m, other): pick one with --object NAME" in run.output
    run = CliRunner().invoke(cli.main, ["bound", str(path), "--object", "m", "--timeout", "30", "--quiet"])
    assert run.exit_code == 0, run.output
    run = CliRunner().invoke(cli.main, ["bound", str(path), "--object", "other", "--quiet"])
    assert run.exit_code == 2 and "has no active Objective" in run.output


def test_egret_polar_acopf_brackets_acopf_ipopt_objective():
    """Two independent formulations of one case: Egret's polar AC OPF (Pyomo, through the import) and
    ``acopf``'s own model solved by IPOPT. graphver's certified lower bound on Egret's model must lie at or
    below acopf's feasible objective, and its feasible value must agree with it (both local optima)."""
    pytest.importorskip("egret")
    import acopf
    from egret.models.acopf import create_psv_acopf_model
    from egret.parsers.matpower_parser import create_ModelData

    case = Path(acopf.__file__).parent / "cases" / "pglib_opf_case5_pjm.m"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipping unknown section")  # Egret on the file's mpc.areas
        model, _ = create_psv_acopf_model(create_ModelData(str(case)))
    objective = acopf.solve(case).objective
    result = gv.from_pyomo(model).bound(timeout=10)
    assert math.isfinite(result.lower) and result.lower <= objective * (1 + 1e-9)
    assert result.upper == pytest.approx(objective, rel=1e-4)


NEEDS_BOUNDS = MINLPLIB / "needs_bounds"


@pytest.mark.skipif(not NEEDS_BOUNDS.is_dir(), reason="../shared/data/minlplib/needs_bounds is not present")
@pytest.mark.parametrize("name", ["circle", "ex14_1_3"])
def test_needs_bounds_derived_boxes_keep_the_optimum(name):
    """circle: the constraints bound x1, x2 once the objective's cutoff bounds the radius x3; ex14_1_3: the
    start is infeasible and IPOPT's tightened point gives the cutoff. The bound brackets the optimum."""
    row = next(r for r in minlplib_rows(NEEDS_BOUNDS) if r["name"] == name)
    model = gv.from_pyomo(runpy.run_path(str(NEEDS_BOUNDS / f"{name}.py"))["m"])
    assert model.derived_bounds and all(math.isfinite(v) for b in model.derived_bounds.values() for v in b)
    result = model.bound(timeout=20)
    optimum = float(row["optimal_value"])
    slack = 1e-6 * max(1.0, abs(optimum))
    assert result.lower <= optimum + slack and result.upper >= optimum - slack


@pytest.mark.slow
@pytest.mark.skipif(not NEEDS_BOUNDS.is_dir(), reason="../shared/data/minlplib/needs_bounds is not present")
def test_every_needs_bounds_file_gets_a_box_or_names_its_unbounded_variables():
    derived = 0
    for row in minlplib_rows(NEEDS_BOUNDS):
        m = runpy.run_path(str(NEEDS_BOUNDS / f"{row['name']}.py"))["m"]
        try:
            bounds = gv.from_pyomo(m).derived_bounds
        except ModelError as error:
            assert "without finite bounds" in str(error) and "(no finite" in str(error), row["name"]
            continue
        derived += 1
        assert bounds and all(math.isfinite(v) for b in bounds.values() for v in b), row["name"]
    assert derived > 0
