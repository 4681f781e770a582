"""Registry-driven soundness: every registered op, random intervals, dense sampling, zero violations.

Widths range from 1e-12 to 1e3 (log-uniform), centres across the op's domain (intervals that leave the
domain are rejected, which also exercises ``domain_violation``). Each interval is sampled densely, at its
endpoints, next to its endpoints and at the op's stationary points. The interval rule, the default
(CROWN) lines and lines for random parameters (also outside [0, 1]: they are clamped) must enclose every
sample, evaluated in float64 exactly as computed: no slack beyond the ops' own documented margins.
"""

from __future__ import annotations

import math

import pytest
import torch

from graphver.ops import REGISTRY, BinaryOp, UnaryOp

DT = torch.float64
CASES = [(name, p) for name, op in sorted(REGISTRY.items()) if isinstance(op, UnaryOp) for p in op.sample_params]


def random_intervals(op, param, count, generator, center_scale=30.0, max_log_width=3.0):
    """In-domain random intervals: log-uniform widths 1e-12..1e3, centres spread over +-center_scale*10^k."""
    lows, highs = [], []
    while sum(t.numel() for t in lows) < count:
        n = 4 * count
        width = 10.0 ** (torch.rand(n, generator=generator, dtype=DT) * (12.0 + max_log_width) - 12.0)
        scale = 10.0 ** (torch.rand(n, generator=generator, dtype=DT) * 4.0 - 2.0)
        centre = (torch.rand(n, generator=generator, dtype=DT) * 2 - 1) * center_scale * scale
        low, high = centre - width / 2, centre + width / 2
        ok = ~op.domain_violation(low, high, param)
        lows.append(low[ok])
        highs.append(high[ok])
    return torch.cat(lows)[:count], torch.cat(highs)[:count]


def sample_points(op, param, low, high, generator, per_interval=400):
    """Dense samples in each interval: uniform, endpoints, float neighbours of endpoints, stationary points."""
    t = torch.rand(low.numel(), per_interval, generator=generator, dtype=DT)
    pts = low[:, None] + (high - low)[:, None] * t
    near_low = torch.nextafter(low, high)
    near_high = torch.nextafter(high, low)
    stationary = op.critical_points(torch.zeros_like(low), low, high, param)
    extra = [low, high, near_low, near_high, low + (high - low) / 2] + list(stationary)
    extra = torch.stack([torch.broadcast_to(e, low.shape) for e in extra], -1)
    extra = torch.where(torch.isnan(extra), low[:, None], extra)
    extra = torch.minimum(torch.maximum(extra, low[:, None]), high[:, None])
    return torch.cat([pts, extra], -1)


def assert_enclosed(name, what, low_value, value, high_value, low, high):
    """No sample may fall outside; report the worst offender precisely."""
    finite = torch.isfinite(value)
    below = torch.where(finite, low_value - value, torch.zeros_like(value))
    above = torch.where(finite, value - high_value, torch.zeros_like(value))
    below = torch.nan_to_num(below, nan=0.0)
    above = torch.nan_to_num(above, nan=0.0)
    worst = torch.maximum(below, above)
    if bool((worst > 0).any()):
        flat = int(torch.argmax(worst))
        i = flat // worst.shape[1]
        pytest.fail(
            f"{name}: {what} violated by {float(worst.flatten()[flat]):.3e} on interval "
            f"[{float(low[i])!r}, {float(high[i])!r}], {int((worst > 0).sum())} violations"
        )


@pytest.mark.parametrize("name,param", CASES)
def test_unary_interval_and_lines_enclose_samples(name, param):
    op = REGISTRY[name]
    gen = torch.Generator().manual_seed(hash((name, param)) % 2**31)
    low, high = random_intervals(op, param, 600, gen)
    x = sample_points(op, param, low, high, gen)
    fx = op.f(x, param)

    i_low, i_high = op.interval(low, high, param)
    assert bool((i_low <= i_high).all())
    assert_enclosed(name, "interval", i_low[:, None], fx, i_high[:, None], low, high)

    alphas = [(None, None)]
    for _ in range(3):
        a_l = torch.rand(low.shape, generator=gen, dtype=DT) * 1.6 - 0.3
        a_u = torch.rand(low.shape, generator=gen, dtype=DT) * 1.6 - 0.3
        alphas.append((a_l, a_u))
    alphas.append((op.default_alpha(low, high, param), op.default_alpha(low, high, param)))
    for a_l, a_u in alphas:
        lines = op.relax(low, high, param, a_l, a_u)
        lower_line = lines.lower_slope[:, None] * x + lines.lower_bias[:, None]
        upper_line = lines.upper_slope[:, None] * x + lines.upper_bias[:, None]
        assert_enclosed(name, "relaxation lines", lower_line, fx, upper_line, low, high)
        assert bool(torch.isfinite(lines.lower_slope).all() and torch.isfinite(lines.upper_slope).all())


@pytest.mark.parametrize("name,param", CASES)
def test_unary_interval_and_lines_in_float32(name, param):
    """The same construction computed in float32 (its eps, tiny and slope limits), checked against float64
    values at the float32 sample points: float32 runs are as sound as float64 ones."""
    op = REGISTRY[name]
    gen = torch.Generator().manual_seed(hash((name, param, "f32")) % 2**31)
    low, high = random_intervals(op, param, 400, gen)
    low32, high32 = low.float(), high.float()
    keep = (low32 <= high32) & ~op.domain_violation(low32, high32, param)
    low32, high32 = low32[keep], high32[keep]
    x32 = sample_points(op, param, low32.double(), high32.double(), gen, per_interval=100).float()
    x32 = torch.minimum(torch.maximum(x32, low32[:, None]), high32[:, None])
    x = x32.double()
    fx = op.f(x, param)
    wide_low, wide_high = low32.double(), high32.double()
    i_low, i_high = op.interval(low32, high32, param)
    assert i_low.dtype == torch.float32
    assert_enclosed(name, "float32 interval", i_low.double()[:, None], fx, i_high.double()[:, None], wide_low, wide_high)
    for a_l, a_u in [(None, None), (torch.rand(low32.shape, generator=gen) * 1.6 - 0.3, torch.rand(low32.shape, generator=gen) * 1.6 - 0.3)]:
        lines = op.relax(low32, high32, param, a_l, a_u)
        lower_line = lines.lower_slope.double()[:, None] * x + lines.lower_bias.double()[:, None]
        upper_line = lines.upper_slope.double()[:, None] * x + lines.upper_bias.double()[:, None]
        assert_enclosed(name, "float32 relaxation lines", lower_line, fx, upper_line, wide_low, wide_high)


@pytest.mark.parametrize("name,param", CASES)
def test_unary_branch_point_inside(name, param):
    op = REGISTRY[name]
    gen = torch.Generator().manual_seed(7)
    low, high = random_intervals(op, param, 300, gen)
    point = op.branch_point(low, high, param)
    wide = high > low
    assert bool(((point > low) & (point < high))[wide].all())


@pytest.mark.parametrize("name,param", CASES)
def test_unary_relaxation_is_tight_on_small_intervals(name, param):
    """Accuracy (not soundness): on width-1e-3 intervals the line gap is small relative to f's variation."""
    op = REGISTRY[name]
    if getattr(op, "discontinuous", False):
        pytest.skip("a step function's lines across a jump are 1 apart however small the interval (see test_step_ops_*)")
    gen = torch.Generator().manual_seed(11)
    low, high = random_intervals(op, param, 200, gen, center_scale=1.0, max_log_width=-3.0)
    mid = (low + high) / 2
    low, high = mid - 5e-4, mid + 5e-4
    keep = ~op.domain_violation(low, high, param)
    low, high = low[keep], high[keep]
    lines = op.relax(low, high, param)
    x = sample_points(op, param, low, high, gen, per_interval=50)
    gap = (lines.upper_slope[:, None] - lines.lower_slope[:, None]) * x + (lines.upper_bias - lines.lower_bias)[:, None]
    scale = 1.0 + op.f(x, param).abs().amax(-1) + op.df(mid, param).abs()
    relative = gap.amax(-1) / scale
    finite = torch.isfinite(relative)
    assert bool((relative[finite] < 1e-2).all()), f"{name}: relaxation gap {float(relative[finite].max()):.3g}"


@pytest.mark.parametrize("width", [1.5, 2.0, 3.0, 3.14, 4.0, 5.0, 6.0, 6.28, 6.3, 7.0, 12.0, 100.0])
@pytest.mark.parametrize("name", ["sin", "cos"])
def test_sin_cos_wide_intervals(name, width):
    """The reference implementation's lines are violated for widths over ~1.5 rad; ours must not be."""
    op = REGISTRY[name]
    gen = torch.Generator().manual_seed(3)
    low = (torch.rand(2000, generator=gen, dtype=DT) * 2 - 1) * 10.0
    high = low + width
    x = sample_points(op, None, low, high, gen, per_interval=3000)
    fx = op.f(x)
    for a in (None, torch.rand(low.shape, generator=gen, dtype=DT)):
        lines = op.relax(low, high, None, a, a)
        assert_enclosed(name, "wide-interval lines", lines.lower_slope[:, None] * x + lines.lower_bias[:, None], fx,
                        lines.upper_slope[:, None] * x + lines.upper_bias[:, None], low, high)
    i_low, i_high = op.interval(low, high)
    if width >= 2 * math.pi:
        assert bool((i_low <= -1).all() and (i_high >= 1).all())
        assert bool((i_low > -1 - 1e-12).all() and (i_high < 1 + 1e-12).all())


def test_huge_and_tiny_magnitudes():
    """Huge arguments (1e15), tiny widths at huge centres, and exp near overflow stay sound."""
    gen = torch.Generator().manual_seed(5)
    for name, centre in [("sin", 1e15), ("cos", 1e12), ("atan", 1e200), ("tanh", 1e10), ("exp", 700.0),
                         ("exp", -745.0), ("sigmoid", -700.0), ("log", 1e-300), ("sqrt", 1e-300), ("sqrt", 1e300)]:
        op = REGISTRY[name]
        widths = 10.0 ** torch.linspace(-12, 1, 40, dtype=DT) * abs(centre)
        low = torch.full_like(widths, centre)
        high = centre + widths
        keep = ~op.domain_violation(low, high)
        low, high = low[keep], high[keep]
        x = sample_points(op, None, low, high, gen, per_interval=200)
        fx = op.f(x)
        i_low, i_high = op.interval(low, high)
        assert_enclosed(name, f"interval near {centre}", i_low[:, None], fx, i_high[:, None], low, high)
        lines = op.relax(low, high)
        assert_enclosed(name, f"lines near {centre}", lines.lower_slope[:, None] * x + lines.lower_bias[:, None], fx,
                        lines.upper_slope[:, None] * x + lines.upper_bias[:, None], low, high)


def test_domain_edges():
    """log and sqrt touching their domain edge: sqrt at exactly 0 is fine, log at 0 is a violation."""
    sqrt, log = REGISTRY["sqrt"], REGISTRY["log"]
    low = torch.zeros(5, dtype=DT)
    high = torch.tensor([1e-300, 1e-12, 1.0, 4.0, 1e6], dtype=DT)
    assert not bool(sqrt.domain_violation(low, high).any())
    i_low, i_high = sqrt.interval(low, high)
    assert bool((i_low <= 0).all() and (i_high >= torch.sqrt(high)).all())
    assert bool(log.domain_violation(low, high).all())
    assert not bool(log.domain_violation(high, high + 1).any())
    assert bool(REGISTRY["pow_int"].domain_violation(torch.tensor([-1.0], dtype=DT), torch.tensor([1.0], dtype=DT), -1.0).all())
    assert bool(REGISTRY["tan"].domain_violation(torch.tensor([1.0], dtype=DT), torch.tensor([2.0], dtype=DT)).all())
    assert not bool(REGISTRY["tan"].domain_violation(torch.tensor([-1.5], dtype=DT), torch.tensor([1.5], dtype=DT)).any())


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_derivatives_match_autograd(name):
    """Every op's derivative agrees with autograd on its evaluation (points inside the op's domain)."""
    op = REGISTRY[name]
    gen = torch.Generator().manual_seed(17)
    for param in op.sample_params:
        if isinstance(op, UnaryOp):
            low, high = random_intervals(op, param, 50, gen, center_scale=2.0, max_log_width=0.0)
            x = ((low + high) / 2).requires_grad_(True)
            (grad,) = torch.autograd.grad(op.f(x, param).sum(), x)
            torch.testing.assert_close(op.df(x.detach(), param), grad, rtol=1e-9, atol=1e-12)
        else:
            x = torch.randn(50, generator=gen, dtype=DT)
            y = torch.randn(50, generator=gen, dtype=DT)
            inside = ~op.domain_violation(x, x, y, y, param)  # points in the op's domain only
            assert int(inside.sum()) >= 10
            x, y = x[inside].requires_grad_(True), y[inside].requires_grad_(True)
            gx, gy = torch.autograd.grad(op.f(x, y, param).sum(), (x, y))
            dx, dy = op.df(x.detach(), y.detach(), param)
            torch.testing.assert_close(dx, gx)
            torch.testing.assert_close(dy, gy)


@pytest.mark.parametrize("name", sorted(n for n, op in REGISTRY.items() if isinstance(op, BinaryOp)))
def test_binary_planes_enclose_samples(name):
    op = REGISTRY[name]
    gen = torch.Generator().manual_seed(13)
    n = 1500

    def box():
        width = 10.0 ** (torch.rand(n, generator=gen, dtype=DT) * 15 - 12)
        centre = (torch.rand(n, generator=gen, dtype=DT) * 2 - 1) * 10.0 ** (torch.rand(n, generator=gen, dtype=DT) * 6 - 3)
        return centre - width / 2, centre + width / 2

    lx, ux = box()
    ly, uy = box()
    s = 300
    tx = torch.rand(n, s, generator=gen, dtype=DT)
    ty = torch.rand(n, s, generator=gen, dtype=DT)
    corners_x = torch.stack([lx, lx, ux, ux], -1)
    corners_y = torch.stack([ly, uy, ly, uy], -1)
    x = torch.cat([lx[:, None] + (ux - lx)[:, None] * tx, corners_x], -1)
    y = torch.cat([ly[:, None] + (uy - ly)[:, None] * ty, corners_y], -1)
    fxy = op.f(x, y)
    i_low, i_high = op.interval(lx, ux, ly, uy)
    assert_enclosed(name, "interval", i_low[:, None], fxy, i_high[:, None], lx, ux)
    for r in (None, torch.rand(n, generator=gen, dtype=DT) * 1.6 - 0.3, torch.zeros(n, dtype=DT), torch.ones(n, dtype=DT)):
        p = op.relax(lx, ux, ly, uy, None, r, r)
        lower = p.lower_x[:, None] * x + p.lower_y[:, None] * y + p.lower_bias[:, None]
        upper = p.upper_x[:, None] * x + p.upper_y[:, None] * y + p.upper_bias[:, None]
        assert_enclosed(name, "McCormick planes", lower, fxy, upper, lx, ux)


# --- step functions (floor, ceil, round): jumps at the integers or half-integers ---------------------------
STEPS = ["floor", "ceil", "round"]


def jump_samples(op, low, high):
    """Each interval's jump points at its ends and their float neighbours, plus the endpoints' neighbours."""
    points = [low, high, torch.nextafter(low, high), torch.nextafter(high, low)]
    for t in op.critical_points(torch.zeros_like(low), low, high):
        points += [t, torch.nextafter(t, torch.full_like(t, -math.inf)), torch.nextafter(t, torch.full_like(t, math.inf))]
    points = torch.stack([torch.broadcast_to(p, low.shape) for p in points], -1)
    return torch.minimum(torch.maximum(points, low[:, None]), high[:, None])


def step_intervals(dtype=DT):
    """Ends at and next to integers and half-integers (both sides), short and long, small and huge."""
    base = torch.tensor([-3.0, -2.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 7.0, 1e6 + 0.5], dtype=dtype)
    ends = torch.cat([base, torch.nextafter(base, base - 1), torch.nextafter(base, base + 1), base + 0.3, base - 0.3])
    widths = torch.tensor([0.0, 1e-9, 0.2, 0.5, 1.0, 1.5, 2.0, 3.7], dtype=dtype)
    low = (ends[:, None] + 0 * widths[None, :]).reshape(-1)
    high = (ends[:, None] + widths[None, :]).reshape(-1)
    more_high = (ends[:, None] - widths[None, :]).reshape(-1)  # intervals ending at the special points
    return torch.cat([low, torch.minimum(more_high, low)]), torch.cat([high, low])


@pytest.mark.parametrize("name", STEPS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_step_ops_at_and_around_jumps(name, dtype):
    """Intervals whose ends lie on, just below and just above the jumps: interval exact (f of the ends), lines
    sound for the default and random slopes, exact constants on one step, gap 1 across one jump."""
    op = REGISTRY[name]
    low, high = step_intervals(dtype)
    gen = torch.Generator().manual_seed(23)
    x = torch.cat([jump_samples(op, low, high), sample_points(op, None, low.double(), high.double(), gen, 200).to(dtype)], -1)
    x = torch.minimum(torch.maximum(x, low[:, None]), high[:, None]).double()
    fx = op.f(x)
    i_low, i_high = op.interval(low, high)
    assert torch.equal(i_low, op.f(low)) and torch.equal(i_high, op.f(high))
    assert_enclosed(name, "interval", i_low.double()[:, None], fx, i_high.double()[:, None], low, high)
    for a in (None, torch.rand(low.shape, generator=gen, dtype=DT).to(dtype) * 1.6 - 0.3, torch.ones_like(low)):
        lines = op.relax(low, high, None, a, a)
        lower = lines.lower_slope.double()[:, None] * x + lines.lower_bias.double()[:, None]
        upper = lines.upper_slope.double()[:, None] * x + lines.upper_bias.double()[:, None]
        assert_enclosed(name, "lines", lower, fx, upper, low, high)
    lines = op.relax(low, high)
    constant = op.f(low) == op.f(high)
    assert bool((lines.lower_slope[constant] == 0).all() and (lines.upper_slope[constant] == 0).all())
    assert torch.equal(lines.lower_bias[constant], op.f(low)[constant])
    assert torch.equal(lines.upper_bias[constant], op.f(low)[constant])
    one = (op.f(high) - op.f(low) == 1) & (high - low < 1)
    gap = (lines.upper_bias - lines.lower_bias)[one]
    size = 1 + lines.lower_slope.abs() * torch.maximum(low.abs(), high.abs()) + op.f(high).abs()  # rounding margins
    allowed = 1 + 16 * torch.finfo(dtype).eps * size[one]
    assert bool((gap <= allowed).all()), f"{name}: gap {float((gap - allowed).max())} beyond 1 across one jump"


def test_floor_lines_are_the_corner_lines():
    """Hand-derived: on [0.5, 10.5] slope 1 and x - 1 <= floor(x) <= x; on [2.9, 3.1] the chord slope 5 through
    the corners (3, 2) and (3, 3); on [3, 3.7] the constant 3."""
    floor = REGISTRY["floor"]
    low = torch.tensor([0.5, 2.9, 3.0], dtype=DT)
    high = torch.tensor([10.5, 3.1, 3.7], dtype=DT)
    lines = floor.relax(low, high)
    torch.testing.assert_close(lines.lower_slope, torch.tensor([1.0, 5.0, 0.0], dtype=DT))
    torch.testing.assert_close(lines.lower_bias, torch.tensor([-1.0, 2.0 - 15.0, 3.0], dtype=DT), rtol=0, atol=1e-13)
    torch.testing.assert_close(lines.upper_bias, torch.tensor([0.0, 3.0 - 15.0, 3.0], dtype=DT), rtol=0, atol=1e-13)
    assert bool((lines.lower_bias[:2] <= torch.tensor([-1.0, -13.0], dtype=DT)).all())
    assert bool((lines.upper_bias[:2] >= torch.tensor([0.0, -12.0], dtype=DT)).all())


@pytest.mark.parametrize("name", STEPS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_step_ops_at_huge_magnitudes(name, dtype):
    """Where every float is an integer (|x| >= 2**52, 2**23 in float32) f(x) == x on floats, but the interval
    still holds real numbers with other values: the lines must contain x + offset .. x + offset + 1."""
    op = REGISTRY[name]
    big = 2.0**53 if dtype == torch.float64 else 2.0**24
    centres = torch.tensor([big / 4, big / 2, big, 3 * big, 1e20, 1e300 if dtype == torch.float64 else 1e30], dtype=dtype)
    centres = torch.cat([centres, -centres])
    widths = torch.tensor([0.0, 1.0, 2.0, 7.0, 1e3], dtype=dtype)
    low = (centres[:, None] + 0 * widths).reshape(-1)
    high = (centres[:, None] + widths * torch.maximum(torch.ones_like(centres), centres.abs() * 1e-10)[:, None]).reshape(-1)
    gen = torch.Generator().manual_seed(29)
    x = torch.cat([jump_samples(op, low, high), sample_points(op, None, low.double(), high.double(), gen, 50).to(dtype)], -1)
    x = torch.minimum(torch.maximum(x, low[:, None]), high[:, None]).double()
    fx = op.f(x)
    i_low, i_high = op.interval(low, high)
    assert_enclosed(name, "interval", i_low.double()[:, None], fx, i_high.double()[:, None], low, high)
    for a in (None, torch.rand(low.shape, generator=gen, dtype=DT).to(dtype)):
        lines = op.relax(low, high, None, a, a)
        lower = lines.lower_slope.double()[:, None] * x + lines.lower_bias.double()[:, None]
        upper = lines.upper_slope.double()[:, None] * x + lines.upper_bias.double()[:, None]
        assert_enclosed(name, "lines", lower, fx, upper, low, high)
    # the real values between the floats: the lines must hold at the end corners x + offset and x + offset + 1
    lines = op.relax(low.double(), high.double())
    for end in (low.double(), high.double()):
        assert bool((lines.lower_slope * end + lines.lower_bias <= end + op.offset + 1e-6 * end.abs()).all())
        assert bool((lines.upper_slope * end + lines.upper_bias >= end + op.offset + 1 - 1e-6 * end.abs()).all())


@pytest.mark.parametrize("name", STEPS)
def test_step_branch_point_is_a_jump(name):
    """BaB splits at a jump inside the interval (an integer, or a half-integer for round)."""
    op = REGISTRY[name]
    low = torch.tensor([0.3, -2.7, 5.2, 0.1], dtype=DT)
    high = torch.tensor([2.6, 1.9, 5.9, 0.2], dtype=DT)
    point = op.branch_point(low, high)
    expected = [1.0, 0.0] if name != "round" else [1.5, -0.5]  # nearest the midpoints 1.45 and -0.4
    torch.testing.assert_close(point[:2], torch.tensor(expected, dtype=DT))
    assert bool(((point > low) & (point < high)).all())
