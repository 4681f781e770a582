"""ACOPF: IPOPT solutions of the bundled PGLib cases against BASELINE.md, feasibility checked by an
independent numpy evaluation, the formulation against that evaluation, and the command line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import acopf
from acopf.evaluate import balance_mismatch, cost, violations
from acopf.solve import flat_start
from graphver import cli

CASES = Path(__file__).resolve().parent.parent / "acopf" / "cases"

# PGLib-OPF v23.07 BASELINE.md, AC objective ($/h, 5 digits), and the same solved here to more digits
# (../shared/notes/acopf.md, cyipopt on this project's machines)
BASELINE = {
    "pglib_opf_case3_lmbd": 5.8126e03,
    "pglib_opf_case5_pjm": 1.7552e04,
    "pglib_opf_case14_ieee": 2.1781e03,
    "pglib_opf_case30_as": 8.0313e02,
    "pglib_opf_case30_ieee": 8.2085e03,
}
PRECISE = {"pglib_opf_case5_pjm": 17551.8908, "pglib_opf_case14_ieee": 2178.0804, "pglib_opf_case30_ieee": 8208.5154,
           "pglib_opf_case30_as": 803.1273}


@pytest.fixture(scope="module")
def solutions():
    return {name: acopf.solve(CASES / f"{name}.m") for name in BASELINE}


@pytest.mark.parametrize("name", sorted(BASELINE))
def test_solve_matches_the_baseline(solutions, name):
    result = solutions[name]
    assert result.success, result.status
    assert result.objective == pytest.approx(BASELINE[name], rel=1e-4)
    if name in PRECISE:
        assert result.objective == pytest.approx(PRECISE[name], abs=1e-3)
    assert result.max_violation <= 1e-6, result.violations


def test_formulation_agrees_with_the_independent_evaluation():
    """The tape's constraint rows and objective at random points equal the numpy evaluation's mismatches."""
    net = acopf.load(CASES / "pglib_opf_case14_ieee.m")
    built = acopf.build_model(net, "polar")
    m = built.model
    rng = np.random.default_rng(0)
    low, high = np.array(m.lower), np.array(m.upper)
    points = low + (high - low) * rng.random((5, len(low)))
    rows = m.constraint_rows
    values = m.evaluate([built.objective] + rows, torch.tensor(points)).numpy()
    for point, value in zip(points, values):
        named = dict(zip(m.names, point))
        vm, va, pg, qg = (np.array([named[s.name] for s in group]) for group in (built.vm, built.va, built.pg, built.qg))
        assert value[0] == pytest.approx(cost(net, pg), rel=1e-12)
        # the first 2 * n_bus constraints are the balances (each equality gives the rows h and -h)
        mismatch = balance_mismatch(net, vm, va, pg, qg)
        tape_p = value[1 : 1 + 4 * net.n_bus : 4]
        tape_q = value[3 : 1 + 4 * net.n_bus : 4]
        np.testing.assert_allclose(tape_p, mismatch.real, atol=1e-10)
        np.testing.assert_allclose(tape_q, mismatch.imag, atol=1e-10)


def test_violations_are_measured_not_assumed():
    net = acopf.load(CASES / "pglib_opf_case5_pjm.m")
    flat = violations(net, np.ones(net.n_bus), np.zeros(net.n_bus), net.pmin, net.qmin)
    assert flat["active balance"] > 1.0  # no generation against 10 pu of load
    assert flat["reference angle"] == 0.0 and flat["voltage magnitude"] == 0.0


def run(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


def test_cli_solve_end_to_end(tmp_path):
    json_path = tmp_path / "case5.json"
    result = run("acopf", "solve", CASES / "pglib_opf_case5_pjm.m", "--json", json_path)
    assert result.exit_code == 0, result.output
    assert "SOLVED" in result.output and "generator dispatch" in result.output and "bus voltages" in result.output
    data = json.loads(json_path.read_text())
    assert data["objective"] == pytest.approx(17551.8908, abs=1e-3) and data["max_violation"] <= 1e-6
    assert len(data["generators"]) == 5 and len(data["buses"]) == 5
    quiet = run("acopf", "solve", CASES / "pglib_opf_case3_lmbd.m", "--quiet")
    # one short line: status, objective in $/h, violation in pu
    assert quiet.exit_code == 0 and quiet.output.startswith("solved 5812.6") and "$/h" in quiet.output
    assert quiet.output.count("\n") == 1 and len(quiet.output) <= 60 and "pu" in quiet.output


def test_cli_broken_case_is_an_input_error(tmp_path):
    path = tmp_path / "broken.m"
    path.write_text("function mpc = broken\nmpc.version = '2';\nmpc.baseMVA = 100;\nmpc.bus = [\n1 3 0 0 0 0 1 1 0 1 1 1.1 0.9;\n")
    result = run("acopf", "solve", path)
    assert result.exit_code == 2 and "broken.m" in result.output


def test_bound_is_below_every_ipopt_objective(solutions):
    """Soundness: the certified lower bound never exceeds IPOPT's feasible objective (short runs)."""
    for name in ("pglib_opf_case3_lmbd", "pglib_opf_case5_pjm"):
        report = acopf.bound(CASES / f"{name}.m", timeout=10, progress=False)
        assert report.lower <= solutions[name].objective + 1e-6
        assert report.upper == pytest.approx(solutions[name].objective, rel=1e-6)
        assert report.max_violation <= 1e-6 and report.lower > -math.inf


def test_cli_bound_end_to_end(tmp_path):
    json_path, png_path = tmp_path / "b.json", tmp_path / "b.png"
    result = run("acopf", "bound", CASES / "pglib_opf_case5_pjm.m", "--timeout", 10, "--json", json_path,
                 "--plot", png_path)
    assert result.exit_code in (0, 3), result.output
    assert "lower (certified)" in result.output and "gap" in result.output
    data = json.loads(json_path.read_text())
    assert data["lower"] <= 17551.8908 + 1e-6 and data["upper"] == pytest.approx(17551.8908, abs=1e-3)
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", ["pglib_opf_case5_pjm", "pglib_opf_case14_ieee"])
def test_rectangular_formulation_has_the_same_optimum(solutions, name):
    result = acopf.solve(CASES / f"{name}.m", "rectangular")
    assert result.success and result.max_violation <= 1e-6
    assert result.objective == pytest.approx(solutions[name].objective, rel=1e-7)


def test_rectangular_rows_vanish_at_the_polar_solution(solutions):
    """The rectangular constraints at the polar optimum (e = vm cos va, f = vm sin va) are satisfied to the
    solver's accuracy: the two formulations describe the same set."""
    net = acopf.load(CASES / "pglib_opf_case14_ieee.m")
    polar = acopf.build_model(net, "polar")
    local = polar.model.minimize(polar.objective, start=flat_start(polar, net), tol=1e-10)
    rect = acopf.build_model(net, "rectangular")
    point = {}
    for i in range(net.n_bus):
        vm, va = local.point[polar.vm[i].name], local.point[polar.va[i].name]
        point[rect.vm[i].name], point[rect.va[i].name] = vm * math.cos(va), vm * math.sin(va)
    for k in range(net.n_gen):
        point[rect.pg[k].name], point[rect.qg[k].name] = local.point[polar.pg[k].name], local.point[polar.qg[k].name]
    assert rect.model.max_violation(point) <= 1e-7
    inside = [rect.model.lower[i] <= point[n] <= rect.model.upper[i] for i, n in enumerate(rect.model.names)]
    assert all(inside)  # the derived boxes of e and f keep the solution


def test_losses_cut_is_valid_and_tightens_the_root():
    """sum pg - sum pd - sum gs vm^2 >= 0 (series losses are not negative) holds at the IPOPT optimum of
    every case, and it lifts the certified root bound of case5_pjm far above zero."""
    for name in ("pglib_opf_case5_pjm", "pglib_opf_case14_ieee"):
        net = acopf.load(CASES / f"{name}.m")
        solution = acopf.solve(net)
        pg = np.array([g["pg_mw"] for g in solution.generators]) / net.base_mva
        vm = np.array([b["vm_pu"] for b in solution.buses])
        assert pg.sum() - net.pd.sum() - (net.gs * vm**2).sum() >= -1e-8
    report = acopf.bound(CASES / "pglib_opf_case5_pjm.m", timeout=20, progress=False)
    assert 10_000 < report.lower <= 17551.8908 + 1e-6
    # the history counts from the call's start: building and IPOPT come before the first bound
    times = [at for at, _, _ in report.history]
    assert times and times == sorted(times) and 0 < times[0] and times[-1] <= report.seconds + 1e-9


@pytest.mark.parametrize("name", sorted(BASELINE))
def test_lifted_rows_hold_at_the_rectangular_solution(solutions, name):
    """The lifted model at IPOPT's rectangular optimum, its lifted variables set from their links: every
    row (linking equalities, SOC cuts, balances, limits) holds to the solver's accuracy and every
    variable lies in its derived box, so the lifted set contains the ACOPF set; same cost."""
    from acopf.bound import lifted_point

    net = acopf.load(CASES / f"{name}.m")
    rect = acopf.build_model(net, "rectangular")
    local = rect.model.minimize(rect.objective, start=flat_start(rect, net), tol=1e-10)
    lifted = acopf.build_model(net, "lifted")
    point = lifted_point(lifted, local.point)
    assert set(point) == set(lifted.model.names)
    assert lifted.model.max_violation(point) <= 1e-7
    # (IPOPT's point may sit 1e-9 outside a voltage limit: within its tolerance, as is the box of w)
    inside = [lifted.model.lower[i] - 1e-8 <= point[n] <= lifted.model.upper[i] + 1e-8
              for i, n in enumerate(lifted.model.names)]
    assert all(inside)
    assert float(lifted.objective.subs({s: point[s.name] for s in lifted.objective.free_symbols})) == pytest.approx(
        local.value, rel=1e-12)


def test_lifted_bound_closes_case3_by_domains_not_time():
    """With the lifted formulation and LP cuts, case3_lmbd's gap falls below 1 % within 300 bounded domains
    (a domain cap, so the test does not depend on the machine's speed)."""
    report = acopf.bound(CASES / "pglib_opf_case3_lmbd.m", timeout=600, gap=1e-2, progress=False, max_explored=300)
    assert report.formulation == "lifted"
    assert report.lower <= 5812.6430 + 1e-6 and report.gap <= 1e-2, str(report)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["pglib_opf_case5_pjm", "pglib_opf_case14_ieee"])
def test_lifted_bound_closes_case5_and_case14(name):
    report = acopf.bound(CASES / f"{name}.m", timeout=600, gap=1e-2, progress=False, max_explored=20000)
    assert report.lower <= PRECISE[name] + 1e-6 and report.gap <= 1e-2, str(report)


def test_bound_keeps_to_its_timeout_on_a_larger_case():
    """LP bounds and OBBT check the deadline between LPs, so a short run stops close to its limit even
    where one round of branch-and-bound would take minutes (case30_ieee), with a valid partial result."""
    report = acopf.bound(CASES / "pglib_opf_case30_ieee.m", timeout=12, progress=False)
    assert report.seconds <= 12 + 8, report.seconds
    assert report.lower <= 8208.5155 + 1e-6 and report.status == "unknown"


def test_lifted_point_evaluates_every_link_expression():
    """acopf.bound.lifted_point: each lifted variable (w, wr, wi) gets its link expression's value at the
    rectangular point (float arithmetic on the sympy tree; compared with sympy's own evaluation)."""
    from acopf.bound import as_network, lifted_point
    from acopf.formulations import build

    net = as_network("case5_pjm")
    lifted = build(net, "lifted")
    rng = np.random.default_rng(2)
    point = {v.name: float(rng.uniform(-1.1, 1.1)) for v in lifted.vm + lifted.va}  # e, f in the lifted model
    extended = lifted_point(lifted, point)
    assert len(lifted.links) > 0 and set(point) <= set(extended)
    for variable, expression in lifted.links:
        expected = float(expression.subs({s: point[s.name] for s in expression.free_symbols}))
        assert extended[variable.name] == pytest.approx(expected, rel=1e-14, abs=1e-15)
