"""The problem zoo in ``models/``: every bounding method must contain each exact range, and the ranges
themselves must be right.

Soundness checks allow zero slack: a certified interval must contain [exact_lower, exact_upper], where
those are the true extremes rounded once to the nearest double. Accuracy checks state their tolerance.
"""

from __future__ import annotations

import functools

import pytest
import torch

from models import PROBLEMS, Problem

METHODS = ("ibp", "crown", "alpha")
NAMES = sorted(PROBLEMS)

# Float64 evaluation of an expression may land a few ulps past its true extreme; 1e-12 * scale covers it.
EVALUATION_TOLERANCE = 1e-12
# 20000 uniform samples plus the box corners come within this fraction of the exact width of each extreme
# (measured worst case without corners: 2.6e-2 on line_flow; with corners: 7.3e-3 on relu_chebyshev).
SAMPLING_TOLERANCE = 1e-2
# alpha starts from the CROWN relaxation and may only improve it; this allows for rounding.
ALPHA_TOLERANCE = 1e-9


@functools.cache
def problem(name: str) -> Problem:
    return PROBLEMS[name]()


@functools.cache
def certified(name: str, method: str):
    p = problem(name)
    return p.model.interval(p.expr, method=method)


def scale(p: Problem) -> float:
    return max(1.0, abs(p.exact_lower), abs(p.exact_upper))


def test_registry_is_a_zoo_of_fresh_models():
    assert len(PROBLEMS) >= 7
    for name, build in PROBLEMS.items():
        first, second = build(), build()
        assert first.name == name
        assert first.model is not second.model
        assert first.exact_lower <= first.exact_upper
        assert first.description
        assert set(first.argmin) == set(first.argmax) == set(first.model.names)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", NAMES)
def test_certified_interval_contains_exact_range(name, method):
    p = problem(name)
    interval = certified(name, method)
    assert interval.lower <= p.exact_lower, f"{method} lower {interval.lower!r} > exact {p.exact_lower!r}"
    assert interval.upper >= p.exact_upper, f"{method} upper {interval.upper!r} < exact {p.exact_upper!r}"


@pytest.mark.parametrize("name", NAMES)
def test_crown_is_no_looser_than_ibp(name):
    # The CROWN output bound is intersected with IBP, so this holds with zero slack, side by side.
    ibp, crown = certified(name, "ibp"), certified(name, "crown")
    assert crown.lower >= ibp.lower
    assert crown.upper <= ibp.upper
    assert crown.width <= ibp.width


@pytest.mark.parametrize("name", NAMES)
def test_alpha_is_no_looser_than_crown(name):
    crown, alpha = certified(name, "crown"), certified(name, "alpha")
    tolerance = ALPHA_TOLERANCE * scale(problem(name))
    assert alpha.lower >= crown.lower - tolerance
    assert alpha.upper <= crown.upper + tolerance
    assert alpha.width <= crown.width + tolerance


@pytest.mark.parametrize("name", NAMES)
def test_exact_range_is_attained_at_its_witnesses(name):
    p = problem(name)
    m = p.model
    for witness in (p.argmin, p.argmax):
        for var, low, high in zip(m.names, m.lower, m.upper):
            assert low <= witness[var] <= high, f"witness {witness} leaves the box"
    values = m.evaluate(p.expr, {var: [p.argmin[var], p.argmax[var]] for var in m.names})
    tolerance = EVALUATION_TOLERANCE * scale(p)
    assert float(values[0]) == pytest.approx(p.exact_lower, abs=tolerance)
    assert float(values[1]) == pytest.approx(p.exact_upper, abs=tolerance)


def sample_points(p: Problem, count: int = 20000, seed: int = 0) -> torch.Tensor:
    """``count`` uniform points of the model's box, followed by its 2^n corners."""
    low, high = p.model.box()
    n = low.shape[1]
    generator = torch.Generator().manual_seed(seed)
    uniform = low + (high - low) * torch.rand(count, n, generator=generator, dtype=torch.float64)
    corner_bits = torch.tensor([[(k >> i) & 1 for i in range(n)] for k in range(2**n)], dtype=torch.float64)
    corners = low + (high - low) * corner_bits
    return torch.cat([uniform, corners])


@pytest.mark.parametrize("name", NAMES)
def test_exact_range_matches_dense_sampling(name):
    p = problem(name)
    values = p.model.evaluate(p.expr, sample_points(p))
    sampled_min, sampled_max = float(values.min()), float(values.max())
    tiny = EVALUATION_TOLERANCE * scale(p)
    assert sampled_min >= p.exact_lower - tiny, "a sample lies below the stated minimum"
    assert sampled_max <= p.exact_upper + tiny, "a sample lies above the stated maximum"
    assert sampled_min - p.exact_lower <= SAMPLING_TOLERANCE * p.exact_width
    assert p.exact_upper - sampled_max <= SAMPLING_TOLERANCE * p.exact_width


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", NAMES)
def test_certified_intervals_of_random_sub_boxes_contain_samples(name, method):
    """Soundness on 48 sub-boxes of each problem, widths from 1e-9 of the box to the full box."""
    p = problem(name)
    m = p.model
    low, high = m.box()
    n = low.shape[1]
    boxes, per_box = 48, 128
    generator = torch.Generator().manual_seed(1)
    fraction = 10 ** (-9 * torch.rand(boxes, n, generator=generator, dtype=torch.float64))
    fraction[:6] = 1.0
    width = (high - low) * fraction
    sub_low = low + (high - low - width) * torch.rand(boxes, n, generator=generator, dtype=torch.float64)
    sub_high = torch.minimum(sub_low + width, high)
    unit = torch.rand(boxes, per_box, n, generator=generator, dtype=torch.float64)
    points = sub_low[:, None] + (sub_high - sub_low)[:, None] * unit
    points[:, 0], points[:, 1] = sub_low, sub_high
    values = m.evaluate(p.expr, points.reshape(-1, n)).reshape(boxes, per_box)
    interval = m.interval(p.expr, method=method, lower=sub_low, upper=sub_high)
    outside = (values < interval.lower[:, None]) | (values > interval.upper[:, None])
    if bool(outside.any()):
        b, s = (int(i) for i in torch.nonzero(outside)[0])
        pytest.fail(
            f"{method}: sub-box [{sub_low[b].tolist()}, {sub_high[b].tolist()}] has value {float(values[b, s])!r} at "
            f"{points[b, s].tolist()} outside [{float(interval.lower[b])!r}, {float(interval.upper[b])!r}]"
        )
