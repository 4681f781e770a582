"""The search side: IPOPT finds the narrow counterexamples of models/falsifiable.py that sampling misses,
and IPOPT incumbents let ``bound`` finish with fewer domains."""

from __future__ import annotations

import math

import pytest
import sympy
import torch

from graphver.bab.properties import normalise
from models.falsifiable import FALSIFIABLE
from models.optimization import OPT_PROBLEMS

SAMPLES = 100_000


def aggregated_margin(problem, points):
    prop = normalise(problem.prop)
    margins = problem.model.evaluate(list(prop.margins), points)
    return margins.amin(dim=1) if prop.combine == "all" else margins.amax(dim=1)


def test_the_falsifiable_set_is_large_enough_and_narrow():
    assert len(FALSIFIABLE) >= 10
    for name, build in FALSIFIABLE.items():
        problem = build()
        assert 3 <= len(problem.model.names) <= 6, name
        assert problem.share < 1e-7, name  # 100k samples hit it with probability < 1 %
        witness = torch.tensor([list(problem.witness.values())], dtype=torch.float64)
        assert float(aggregated_margin(problem, witness)[0]) < 0, name  # the property does fail there


@pytest.mark.parametrize("name", sorted(FALSIFIABLE))
def test_sampling_misses_the_narrow_violation(name):
    problem = FALSIFIABLE[name]()
    low, high = (t[0] for t in problem.model.box())
    generator = torch.Generator().manual_seed(2024)
    points = low + (high - low) * torch.rand(SAMPLES, low.numel(), generator=generator, dtype=torch.float64)
    assert float(aggregated_margin(problem, points).min()) > 0
    # the engine's own root search without IPOPT and projected gradient (samples only) finds nothing either
    result = problem.model.verify(problem.prop, timeout=30, ipopt="off", pgd_steps=0, samples=4096, max_explored=1)
    assert result.status == "unknown"


@pytest.mark.parametrize("name", sorted(FALSIFIABLE))
def test_ipopt_finds_every_counterexample(name):
    """Projected gradient off: the counterexample comes from IPOPT (root multi-start or the best domains'
    centres) and is confirmed in float64 and at 30 digits."""
    problem = FALSIFIABLE[name]()
    result = problem.model.verify(problem.prop, timeout=60, ipopt="on", pgd_steps=0, ipopt_every=1)
    assert result.status == "falsified"
    assert result.stats.incumbent_from == "ipopt"
    point = torch.tensor([list(result.counterexample.values())], dtype=torch.float64)
    assert float(aggregated_margin(problem, point)[0]) < 0
    exact = [sympy.Float(m, 30) for m in result.counterexample_check]
    assert (min(exact) if normalise(problem.prop).combine == "all" else max(exact)) < 0
    low, high = (t[0] for t in problem.model.box())
    assert bool(((point[0] >= low) & (point[0] <= high)).all())


@pytest.mark.parametrize("name", ["rosenbrock", "booth", "beale"])
def test_ipopt_incumbent_means_fewer_domains(name):
    """Certified minima: with IPOPT the incumbent is optimal to 1e-9 at once, so the root bound already
    closes the gap where it is tight enough; without it (and without projected gradient, which alone finds
    these smooth minima) branch-and-bound must also improve the incumbent."""
    runs = {}
    for ipopt in ("off", "on"):
        problem = OPT_PROBLEMS[name]()
        runs[ipopt] = problem.model.bound(problem.expr, timeout=60, ipopt=ipopt, pgd_steps=0)
        assert runs[ipopt].status == "solved"
        assert runs[ipopt].lower <= problem.known_value + 1e-12 <= runs[ipopt].upper + 2e-12
    assert runs["on"].stats.domains_explored < runs["off"].stats.domains_explored
    assert runs["on"].stats.incumbent_from == "ipopt" and runs["on"].stats.ipopt_improved >= 1


def test_ipopt_failures_are_recorded_not_raised():
    """An objective undefined on part of the box, which a constraint excludes: IPOPT calls that stop badly
    are counted in the stats, the run goes on, and the certified bound is still valid against samples.
    Without the constraint the objective is undefined at feasible points: a DomainError, at once."""
    import graphver as gv

    m = gv.Model("half_defined")
    x, y = m.var("x", -1, 2), m.var("y", -1, 1)
    f = gv.sqrt(x) * gv.sin(5 * y) + gv.log(x + 0.5) * y
    with pytest.raises(gv.DomainError, match="undefined at x=-1"):
        m.bound(f, timeout=20, ipopt="on")
    m.constrain(x >= 0)
    result = m.bound(f, timeout=20, ipopt="on", ipopt_max_iter=3, ipopt_every=1, max_explored=600)
    stats = result.stats
    assert stats.ipopt_calls >= 4 and stats.ipopt_failures >= 1
    assert sum(stats.ipopt_status.values()) == stats.ipopt_calls
    generator = torch.Generator().manual_seed(3)
    points = torch.stack([torch.rand(50_000, generator=generator, dtype=torch.float64) * 2,  # x in [0, 2]
                          torch.rand(50_000, generator=generator, dtype=torch.float64) * 2 - 1], 1)
    values = m.evaluate(f, points)
    assert result.lower <= float(values[torch.isfinite(values)].min())
    assert math.isfinite(result.upper)


def test_float_artefacts_are_not_reported_as_counterexamples():
    """(x + c)^2 - x^2 - 2 c x is exactly c^2 = 1e-34 > 0, but float64 rounds x + c to x and sees -2e-17.
    Every such candidate must fail the exact re-check (30 correct digits, not 30 working digits, which
    cancellation would spoil), be counted, and never end the run as falsified."""
    import graphver as gv

    m = gv.Model("cancellation")
    x = m.var("x", 0.25, 1)
    c = sympy.Rational(1, 10**17)
    result = m.verify((x + c) ** 2 - x**2 - 2 * c * x > 0, timeout=20, max_explored=2000)
    assert result.status == "unknown"
    assert result.stats.candidates_unconfirmed >= 1
    assert any("not confirmed" in message for message in result.stats.messages)
