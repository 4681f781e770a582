"""Audit regressions (issue 12): honest results when a run stops early, and undefined regions.

Item 9: Ctrl-C (simulated by a KeyboardInterrupt raised from a function the engine calls in that phase),
a timeout or a domain cap before the proof is complete report only what was proven: the status "unknown",
the command's exit code 3, and the lower bound proven so far: -inf before any bound, else the first
bound (one CROWN pass over the box before the search, ``Engine.first_bound``) or better. Item 14: an op undefined
at a point of the box that satisfies every constraint is a DomainError naming the node (branch-and-bound
used to split that region forever); a region that the constraints exclude still solves.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import graphver as gv
import graphver.bab.bounder as bounder_module
import graphver.bab.engine as engine_module
from graphver import cli
from graphver.bab.domains import DomainStore
from graphver.bab.engine import Engine
from graphver.report.results import BabStats, BoundResult, VerifyResult
from graphver.search.ipopt import ValueSearch, ipopt_available

ROOT = Path(__file__).resolve().parent.parent
CASE3 = ROOT / "acopf" / "cases" / "pglib_opf_case3_lmbd.m"
FAST = dict(samples=16, ipopt_starts=1)  # keep the search before the root short


def interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def interrupt_from_call(owner, name, call: int):
    """``owner.name`` that raises KeyboardInterrupt from its ``call``-th call on (earlier calls run)."""
    original = getattr(owner, name)
    calls = {"n": 0}

    def wrapped(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] >= call:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    return wrapped


def plain_model():
    """min x**2 - x + y**2 over [-1, 2] x [-1, 1]: -0.25 at (0.5, 0); no constraints."""
    m = gv.Model("plain")
    x, y = m.var("x", -1, 2), m.var("y", -1, 1)
    return m, x**2 - x + y**2


def wavy_model():
    """sin(3x) y + x**2 over [-1, 2] x [-1, 1]: minimum -0.775974 (|y| = 1, x = +-0.43), beyond CROWN at the root."""
    m = gv.Model("wavy")
    x, y = m.var("x", -1, 2), m.var("y", -1, 1)
    return m, gv.sin(3 * x) * y + x**2


def constrained_model():
    """min x + y subject to x**2 + y**2 <= 1 over [-2, 2]^2: -sqrt(2)."""
    m = gv.Model("disk")
    x, y = m.var("x", -2, 2), m.var("y", -2, 2)
    m.constrain(x**2 + y**2 <= 1)
    return m, x + y


MINUS_INF = "-inf"  # JSON convention for non-finite numbers (graphver.report.results.json_text)


# --- item 9: Ctrl-C in every phase -----------------------------------------------------------------
PHASES = {
    # phase: (object, attribute) raising KeyboardInterrupt, and whether the model needs constraints
    "root bounding": ((bounder_module, "bound_batch"), False),
    "ipopt search": ((ValueSearch, "run"), False),
    "obbt": ((engine_module, "obbt"), True),
}


def test_ctrl_c_in_the_first_bound_is_unknown_with_nothing():
    """The first bound comes before the search: Ctrl-C in it leaves no bound and no point."""
    m, expr = plain_model()
    for sense, e in (("min", expr), ("max", -expr)):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(bounder_module, "bound_batch", interrupt)
            result = m.bound(e, sense=sense, timeout=60, **FAST)
        assert result.status == "unknown" and result.stats.stop_reason.startswith("interrupted")
        assert result.lower == -math.inf and result.upper == math.inf and result.gap == math.inf
        data = json.loads(result.to_json())
        assert data["status"] == "unknown" and data["lower"] == MINUS_INF


@pytest.mark.parametrize("phase", list(PHASES))
def test_ctrl_c_before_the_root_bound_reports_the_first_bound(monkeypatch, phase):
    """Ctrl-C in the search, in OBBT or in the root's own bounding (the second bound of the run): unknown,
    with the last bound proven before it (OBBT: the root's bound before OBBT), and the search's best point."""
    (owner, name), constrained = PHASES[phase]
    if owner is ValueSearch and not ipopt_available():
        pytest.skip("cyipopt is not installed")
    m, expr = constrained_model() if constrained else wavy_model()
    true_min = -math.sqrt(2) if constrained else -0.775974
    monkeypatch.setattr(owner, name, interrupt_from_call(owner, name, 2 if phase == "root bounding" else 1))
    # a few root cut rounds, so that the root's LP does not close the disc before OBBT starts
    result = m.bound(expr, timeout=60, **FAST, **({"root_cut_rounds": 2} if constrained else {}))
    assert result.status == "unknown" and result.stats.stop_reason.startswith("interrupted")
    assert -math.inf < result.lower <= true_min and true_min - 1e-9 <= result.upper < math.inf
    history = result.stats.history
    assert len(history) >= 1 and history[-1][1] == result.lower and result.lower >= history[0][1]
    if phase == "obbt":  # the root's full bound came before OBBT and is not lost
        assert len(history) >= 2
    data = json.loads(result.to_json())
    assert data["status"] == "unknown" and data["lower"] == result.lower


def test_ctrl_c_before_the_root_bound_max_sense(monkeypatch):
    m, expr = wavy_model()
    monkeypatch.setattr(bounder_module, "bound_batch", interrupt_from_call(bounder_module, "bound_batch", 2))
    result = m.bound(-expr, sense="max", timeout=60, **FAST)
    assert result.status == "unknown" and 0.775974 <= result.upper < math.inf
    assert -math.inf < result.lower <= 0.775974 + 1e-9


@pytest.mark.parametrize("phase", list(PHASES))
def test_ctrl_c_verify_before_the_root_bound(monkeypatch, phase):
    (owner, name), constrained = PHASES[phase]
    if owner is ValueSearch and not ipopt_available():
        pytest.skip("cyipopt is not installed")
    m, expr = constrained_model() if constrained else wavy_model()
    monkeypatch.setattr(owner, name, interrupt)
    # true: min x + y = -sqrt 2 >= -1.5; min sin(3x) y + x**2 = -0.776 >= -0.8 (beyond the root's bound)
    result = m.verify(expr >= (-1.5 if constrained else -0.8), timeout=60, **FAST)
    assert result.status == "unknown" and result.stats.stop_reason.startswith("interrupted")
    if phase == "root bounding":  # the first bound of the run is interrupted: nothing is proven
        assert result.margin_lower == -math.inf
    else:  # the first bound (or, without constraints, quick_proof's CROWN pass) came before: it is proven
        true_margin = 1.5 - math.sqrt(2) if constrained else 0.8 - 0.775974
        assert -math.inf < result.margin_lower <= true_margin


def test_ctrl_c_in_the_loop_reports_the_root_bound(monkeypatch):
    m, expr = wavy_model()
    monkeypatch.setattr(Engine, "split", interrupt)
    result = m.bound(expr, timeout=60, **FAST)
    assert result.status == "unknown" and -math.inf < result.lower <= -0.7759 and result.upper >= -0.77598


def test_ctrl_c_right_after_the_pop_keeps_every_domain(monkeypatch):
    """Ctrl-C once the store has given the round's domains away (here: all of them, the root) and before
    anything else: their bounds still count (the store is restored), so the bound is the root's."""
    m, expr = wavy_model()
    original = DomainStore.pop

    def pop_then_interrupt(self, count):
        original(self, count)
        raise KeyboardInterrupt

    monkeypatch.setattr(DomainStore, "pop", pop_then_interrupt)
    result = m.bound(expr, timeout=60, **FAST)
    assert result.status == "unknown" and -math.inf < result.lower <= -0.7759 and result.upper >= -0.77598


def test_timeout_and_domain_cap_are_unknown_with_a_proven_bound():
    m, expr = plain_model()
    hard = gv.sin(5 * expr) + expr
    for options in (dict(timeout=1e-9), dict(timeout=60, max_explored=1)):
        result = m.bound(hard, **options, **FAST)
        assert result.status == "unknown" and -math.inf < result.lower <= result.upper
        assert result.stats.stop_reason.startswith(("timeout", "domain cap"))


def test_nan_bounds_are_never_proofs(monkeypatch):
    """A bound pass returning NaN proves nothing: -inf, never 'solved' or 'verified'."""
    original = bounder_module.bound_batch

    def nan_bounds(*args, **kwargs):
        result = original(*args, **kwargs)
        result.rows_lower = torch.full_like(result.rows_lower, math.nan)
        return result

    monkeypatch.setattr(bounder_module, "bound_batch", nan_bounds)
    m, expr = plain_model()
    result = m.bound(expr, timeout=60, max_explored=20, **FAST)
    assert result.status == "unknown" and result.lower == -math.inf
    verified = m.verify(expr >= -1, timeout=60, max_explored=20, **FAST)
    assert verified.status == "unknown" and verified.margin_lower == -math.inf


def test_all_domains_infeasible_is_a_real_proof():
    m = gv.Model("empty")
    x, y = m.var("x", -1, 1), m.var("y", -1, 1)
    m.constrain(x + y >= 3)
    result = m.bound(x * y, timeout=60, **FAST)
    assert result.status == "infeasible" and result.lower == math.inf
    assert m.verify(x * y >= 5, timeout=60, **FAST).status == "infeasible"


def test_results_never_claim_more_than_their_numbers_prove():
    """The invariant of the result objects: 'solved' needs finite bounds within the tolerance, 'verified' a
    finite margin bound >= 0; anything else is demoted to 'unknown' with a message."""
    options = {"abs_tol": 1e-6, "rel_tol": 1e-4}
    bad = BoundResult("min", math.inf, 1.0, -math.inf, "solved", None, "x", BabStats(), options)
    assert bad.status == "unknown" and "demoted" in bad.stats.messages[-1]
    assert BoundResult("min", -math.inf, 1.0, math.inf, "solved", None, "x", BabStats(), options).status == "unknown"
    assert BoundResult("min", 0.0, 1.0, 1.0, "solved", None, "x", BabStats(), options).status == "unknown"
    good = BoundResult("min", 1.0 - 1e-7, 1.0, 1e-7, "solved", None, "x", BabStats(), options)
    assert good.status == "solved" and not good.stats.messages
    verified = VerifyResult("verified", math.inf, None, None, ["x >= 0"], "all", BabStats(), {})
    assert verified.status == "unknown"
    assert VerifyResult("verified", -1e-3, None, None, ["x >= 0"], "all", BabStats(), {}).status == "unknown"
    assert VerifyResult("verified", 0.0, None, None, ["x >= 0"], "all", BabStats(), {}).status == "verified"


# --- item 9 through the command line ---------------------------------------------------------------
def run(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


MODEL_FILE = ("import graphver as gv\nmodel = gv.Model('t')\nx = model.var('x', -1, 2)\ny = model.var('y', -1, 1)\n"
              "objective = x**2 - x + y**2\nprop = objective >= -1\noptions = {'samples': 16, 'ipopt_starts': 1}\n")


@pytest.mark.parametrize("command", ["bound", "verify"])
def test_cli_ctrl_c_before_the_root_exits_3_with_lower_minus_inf(tmp_path, monkeypatch, command):
    path = tmp_path / "model.py"
    path.write_text(MODEL_FILE, encoding="utf-8")
    monkeypatch.setattr(bounder_module, "bound_batch", interrupt)
    out = tmp_path / "out.json"
    result = run(command, path, "--json", out)
    assert result.exit_code == cli.EXIT_UNKNOWN, result.output
    assert "UNKNOWN" in result.output and "SOLVED" not in result.output and "VERIFIED" not in result.output
    data = json.loads(out.read_text())
    assert data["status"] == "unknown"
    assert data["lower" if command == "bound" else "margin_lower"] == MINUS_INF


# --- item 9 through acopf.bound ----------------------------------------------------------------------
ACOPF_PHASES = {
    "obbt": ((engine_module, "obbt"), dict(ipopt="off")),
    "root bounding": ((bounder_module, "bound_batch"), dict(ipopt="off", obbt_rounds=0)),
    "ipopt search": ((ValueSearch, "run"), dict(ipopt="on", ipopt_starts=1)),  # acopf.bound: off by default
}


@pytest.mark.parametrize("phase", list(ACOPF_PHASES))
def test_acopf_bound_ctrl_c_before_the_root_is_unknown(monkeypatch, phase):
    import acopf

    (owner, name), options = ACOPF_PHASES[phase]
    if owner is ValueSearch and not ipopt_available():
        pytest.skip("cyipopt is not installed")
    monkeypatch.setattr(owner, name, interrupt)
    report = acopf.bound(CASE3, timeout=60, progress=False, **options)
    assert report.status == "unknown" and math.isfinite(report.upper)
    assert report.stop_reason.startswith("interrupted")
    data = json.loads(report.to_json())
    assert data["status"] == "unknown"
    if phase == "root bounding":  # the run's first bound is interrupted: nothing is proven
        assert report.lower == -math.inf and report.gap == math.inf and data["lower"] == MINUS_INF
    else:  # the first bound, before the search and OBBT, is proven
        assert -math.inf < report.lower <= report.ipopt_objective + 1e-6 and data["lower"] == report.lower


# --- item 14: undefined regions ----------------------------------------------------------------------
@pytest.fixture
def bounded_boxes(monkeypatch):
    """Counts the boxes the engine bounds (its calls of bound_batch)."""
    original = bounder_module.bound_batch
    count = {"boxes": 0}

    def counting(tape, lower, *args, **kwargs):
        count["boxes"] += lower.shape[0]
        return original(tape, lower, *args, **kwargs)

    monkeypatch.setattr(bounder_module, "bound_batch", counting)
    return count


def undefined_model():
    m = gv.Model("undefined")
    x = m.var("x", -1, 2)
    return m, x


@pytest.mark.parametrize("command", ["bound", "verify"])
def test_undefined_region_is_a_domain_error_at_once(bounded_boxes, command):
    m, x = undefined_model()
    expr = gv.log(x + 0.5)  # undefined for x <= -0.5, no constraint excludes it
    with pytest.raises(gv.DomainError, match=r"node 'log\(x \+ 0\.5\)'.*leaves the domain of log \(x > 0\)") as error:
        if command == "bound":
            m.bound(expr, timeout=60, **FAST)
        else:
            m.verify(expr <= 5, timeout=60, **FAST)
    assert "x=-1" in str(error.value)  # the point where it is undefined
    assert bounded_boxes["boxes"] <= 10  # it used to split the region into millions of domains


def test_undefined_region_inside_the_box_is_found_by_splitting(bounded_boxes):
    """The box's centre and corners are defined; the region |x - 0.3| < 0.01 is found by the splits."""
    m = gv.Model("inner")
    x = m.var("x", -1, 1)
    with pytest.raises(gv.DomainError, match=r"leaves the domain of sqrt"):
        m.bound(gv.sqrt((x - 0.3) ** 2 - 1e-4) + x, timeout=60, **FAST)
    assert bounded_boxes["boxes"] <= 1000


def test_undefined_at_a_feasible_point_with_constraints():
    m, x = undefined_model()
    m.constrain(x <= 1)  # does not exclude x <= -0.5
    with pytest.raises(gv.DomainError, match=r"satisfies every constraint.*log"):
        m.bound(gv.log(x + 0.5), timeout=60, **FAST)


def test_constraints_that_exclude_the_undefined_region_still_solve():
    m, x = undefined_model()
    m.constrain(x >= 0.5)  # log(x) is undefined on [-1, 0], which the constraint excludes
    result = m.bound(gv.log(x), timeout=60, **FAST)
    assert result.status == "solved"
    # the witness is feasible within feasibility_tol (1e-6), so it may lie a hair below log(0.5)
    assert result.lower <= math.log(0.5) and result.upper == pytest.approx(math.log(0.5), abs=1e-5)
    assert result.stats.domain_errors > 0  # such boxes were bounded, and pruned by the constraint's bound
    assert m.verify(gv.log(x) >= -0.7, timeout=60, **FAST).status == "verified"
    assert m.verify(gv.log(x) >= -0.69, timeout=60, **FAST).status == "falsified"


def test_sqrt_on_the_disk_never_raises_and_stays_sound():
    """sqrt(1 - x^2 - y^2) is undefined only outside the disk, which the constraint excludes: no DomainError.
    Boxes across the circle keep a sound -inf bound for the objective (see docs/bab.md)."""
    m = gv.Model("hemisphere")
    x, y = m.var("x", -1, 1), m.var("y", -1, 1)
    m.constrain(x**2 + y**2 <= 1)
    expr = gv.sqrt(1 - x**2 - y**2)
    low = m.bound(expr, timeout=3, **FAST)
    assert low.lower <= 0.0 <= low.upper + 1e-6 and low.status in ("solved", "unknown")
    high = m.bound(expr, sense="max", timeout=3, **FAST)
    assert high.lower <= 1.0 <= high.upper and high.status in ("solved", "unknown")


def test_ibp_overestimates_are_still_split_not_raised():
    """log(x^2 - x + 1) is defined everywhere (its argument is >= 3/4), though IBP says it may not be."""
    m, x = undefined_model()
    result = m.bound(gv.log(x**2 - x + 1), timeout=60, method="ibp", root_method="ibp", **FAST)
    assert result.status == "solved" and result.lower <= math.log(0.75) <= result.upper


def test_cli_bound_on_an_undefined_region_exits_2(tmp_path):
    path = tmp_path / "undefined.py"
    path.write_text("import graphver as gv\nmodel = gv.Model('t')\nx = model.var('x', -1, 2)\n"
                    "objective = gv.log(x + 0.5)\n", encoding="utf-8")
    for command in ("bound", "verify"):
        if command == "verify":
            path.write_text(path.read_text() + "prop = objective <= 5\n", encoding="utf-8")
        result = run(command, path)
        assert result.exit_code == cli.EXIT_INPUT, result.output
        assert "DomainError" in result.stderr and "leaves the domain of log" in result.stderr
        assert "x=-1" in result.stderr and "Traceback" not in result.output
