"""Branch-and-bound on the zoo: published global optima are bracketed, known verdicts are reproduced.

For every problem of ``models.optimization.OPT_PROBLEMS``, ``Model.bound`` must return a proven lower bound
at or below the published optimum and at or below every sampled value (zero slack: these are soundness
checks), a witness value at or above the optimum (up to float64 evaluation error), and "solved" with the
default tolerances within 60 s. For every property of ``models.properties.PROPERTIES``, ``Model.verify``
must return the known verdict, and a counterexample must really violate the property.

Cases that take more than ~3 s on a 2-core machine are marked slow (run them with ``pytest -m slow``).
Problems that branch-and-bound cannot solve within 60 s are kept and marked xfail with the measured
numbers; the xfail covers only the "not solved" outcome (``NotSolved``), never a soundness failure.
"""

from __future__ import annotations

import pytest
import torch

from graphver.bab import normalise
from models import PROBLEMS as RANGE_PROBLEMS
from models.optimization import OPT_PROBLEMS
from models.properties import PROPERTIES

TIMEOUT = 60.0
REL_TOL, ABS_TOL = 1e-4, 1e-6  # the defaults of Model.bound, restated: the tests check against them


def eval_slack(value: float) -> float:
    """float64 evaluation error allowed on the witness side: the objectives sum terms up to ~1e3 times
    their minimum (Goldstein-Price, Schwefel) and lose ~1e-13 to cancellation near the optimum."""
    return 1e-10 * (1.0 + abs(value))


class NotSolved(Exception):
    """Branch-and-bound stopped without closing the gap (or without a verdict): the only failure an xfail
    mark below accepts."""


# Measured on the 2-core development machine (wall seconds of one bound or verify call); above ~3 s: slow.
# Every case now takes at most 2.3 s alone (hartmann_6 43k domains, bukin_6 155k); these two are the
# heaviest and are kept in the slow run. cross_in_tray, holder_table and schwefel_2d used to stall (an
# input with a tiny coefficient was never split) until InputWidthScore gained its width term.
SLOW_OPT = {"bukin_6", "hartmann_6"}
UNSOLVED_OPT: dict[str, str] = {}
SLOW_PROPS: set[str] = set()
UNDECIDED_PROPS: dict[str, str] = {}


def cases(names, slow: set[str], unsolved: dict[str, str]):
    """One pytest param per problem: slow ones marked slow, unsolved ones xfail (only on NotSolved)."""
    for name in names:
        marks = []
        if name in slow or name in unsolved:
            marks.append(pytest.mark.slow)
        if name in unsolved:
            marks.append(pytest.mark.xfail(reason=unsolved[name], raises=NotSolved, strict=False))
        yield pytest.param(name, marks=marks, id=name)


def opt_cases():
    return cases(OPT_PROBLEMS, SLOW_OPT, UNSOLVED_OPT)


def property_cases():
    return cases(PROPERTIES, SLOW_PROPS, UNDECIDED_PROPS)


def sample_points(model, count: int = 200_000, grid_side: int = 401, seed: int = 0) -> torch.Tensor:
    """Uniform random points of the model's box, plus a regular grid in 1-D and 2-D (its corners included)."""
    low, high = model.box()
    gen = torch.Generator().manual_seed(seed)
    points = [low + (high - low) * torch.rand(count, low.shape[1], generator=gen, dtype=torch.float64)]
    if low.shape[1] <= 2:
        axes = [torch.linspace(float(lo), float(hi), grid_side, dtype=torch.float64)
                for lo, hi in zip(low[0], high[0])]
        points.append(torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, low.shape[1]))
    return torch.cat(points)


def point_of(model, values: dict[str, float]) -> torch.Tensor:
    return torch.tensor([[values[n] for n in model.names]], dtype=torch.float64)


def inside(model, point: torch.Tensor) -> bool:
    low, high = model.box()
    return bool((point >= low).all() and (point <= high).all())


# --- optimisation problems ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(OPT_PROBLEMS))
def test_known_optimum_is_attained_and_not_undercut_by_sampling(name):
    """The published data: the optimum is the value at the stated minimiser, and no sample is lower."""
    problem = OPT_PROBLEMS[name]()
    m = problem.model
    assert problem.sense == "min"
    argopt = point_of(m, problem.known_argopt)
    assert inside(m, argopt)
    slack = eval_slack(problem.known_value)
    assert float(m.evaluate(problem.expr, argopt)[0]) == pytest.approx(problem.known_value, rel=0, abs=slack)
    assert float(m.evaluate(problem.expr, sample_points(m)).min()) >= problem.known_value - slack


@pytest.mark.parametrize("name", opt_cases())
def test_bound_brackets_published_optimum(name):
    problem = OPT_PROBLEMS[name]()
    m, expr, known = problem.model, problem.expr, problem.known_value
    result = m.bound(expr, sense=problem.sense, rel_tol=REL_TOL, abs_tol=ABS_TOL, timeout=TIMEOUT, progress=False)
    # soundness, zero slack: the proven lower bound is at or below the optimum and every sampled value
    assert result.lower <= known, f"proven lower {result.lower!r} above the published optimum {known!r}"
    sampled = float(m.evaluate(expr, sample_points(m)).min())
    assert result.lower <= sampled, f"proven lower {result.lower!r} above a sampled value {sampled!r}"
    # the witness is a point of the box whose value is the reported upper bound
    witness = point_of(m, result.witness)
    assert inside(m, witness)
    assert float(m.evaluate(expr, witness)[0]) == pytest.approx(result.upper, rel=1e-12, abs=1e-12)
    assert known <= result.upper + eval_slack(known)
    if result.status != "solved":
        raise NotSolved(f"{name}: {result.status} after {result.stats.time_total:.1f} s, lower {result.lower!r}, "
                        f"upper {result.upper!r}, known {known!r}, {result.stats.domains_explored} domains")
    assert result.gap <= max(ABS_TOL, REL_TOL * abs(result.upper)) + 1e-15


# --- properties -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [name for name, build in PROPERTIES.items() if build().holds])
def test_true_property_is_not_proven_by_one_bound_pass(name):
    """The true properties need branching: one alpha-CROWN pass leaves a negative margin bound, while no
    sampled point violates them."""
    problem = PROPERTIES[name]()
    m, prop = problem.model, normalise(problem.prop)
    margins = m.evaluate(list(prop.margins), sample_points(m))
    assert all(prop.holds(row) for row in margins.tolist())
    lowers = [interval.lower for interval in m.interval(list(prop.margins), method="alpha")]
    assert (min(lowers) if prop.combine == "all" else max(lowers)) < 0


@pytest.mark.parametrize("name", property_cases())
def test_verify_reproduces_known_verdict(name):
    problem = PROPERTIES[name]()
    m, prop = problem.model, normalise(problem.prop)
    result = m.verify(problem.prop, timeout=TIMEOUT, progress=False)
    if result.status == "unknown":
        raise NotSolved(f"{name}: unknown after {result.stats.time_total:.1f} s, margin lower "
                        f"{result.margin_lower!r}, {result.stats.domains_explored} domains")
    if problem.holds:
        assert result.status == "verified", str(result)
        assert result.margin_lower >= 0 and result.counterexample is None
    else:
        assert result.status == "falsified", str(result)
        point = point_of(m, result.counterexample)
        assert inside(m, point)
        margins = m.evaluate(list(prop.margins), point)[0].tolist()
        assert not prop.holds(margins), f"counterexample {result.counterexample} satisfies the property"
        assert margins == pytest.approx(result.counterexample_margins, rel=0, abs=1e-15)
        assert result.margin_lower <= (min(margins) if prop.combine == "all" else max(margins))


@pytest.mark.parametrize("sense", ["min", "max"])
@pytest.mark.parametrize("name", sorted(RANGE_PROBLEMS))
def test_range_zoo_bound_brackets_exact_extremes(name, sense):
    """The interval zoo of models/__init__.py: bound brackets each exact extreme and closes the gap."""
    problem = RANGE_PROBLEMS[name]()
    known = problem.exact_lower if sense == "min" else problem.exact_upper
    result = problem.model.bound(problem.expr, sense=sense, timeout=60)
    proven = result.lower if sense == "min" else result.upper
    assert (proven <= known) if sense == "min" else (proven >= known), (name, sense, proven, known)
    slack = 1e-10 * (1 + abs(known))  # the witness side is a float64 evaluation
    assert result.lower <= known + slack and known <= result.upper + slack
    assert result.status == "solved"
