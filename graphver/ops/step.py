"""Integer steps: floor, ceil and round (half to even, as ONNX's Round and torch.round).

Each is nondecreasing and integer valued, with unit jumps at the points ``t = j + shift`` (j an integer;
``shift`` 0 for floor and ceil, 1/2 for round). Just left of a jump the value is ``t + offset``, just right
of it ``t + offset + 1`` (floor: offset -1, ceil: 0, round: -1/2), so every real x satisfies
``x + offset <= f(x) <= x + offset + 1``.

Interval: ``[f(l), f(u)]``, exactly. f is monotone and f of a float is a float (an integer), computed
without rounding, so no margin is needed; the argument interval [l, u] already encloses the real argument,
and the bound covers f of every real number in it.

Lines: f is discontinuous, so the support construction of ops/base.py (critical points of f(x) - a*x)
does not apply; ``StepOp.support`` replaces it. On one step, ``g(x) = f(x) - a*x`` is linear, so the
infimum and supremum of g over [l, u] are taken at l, at u, or at one-sided limits at jump points: the left
limit ``(t, t + offset)`` for jumps t in (l, u] and the right limit ``(t, t + offset + 1)`` for jumps t in
[l, u). Along each family g is linear in t, so the first and last jump of each range suffice. The
candidates are therefore

    f(l) - a*l,   f(u) - a*u,   (t + offset) - a*t  (t: first and last jump in (l, u]),
                                (t + offset + 1) - a*t  (t: first and last jump in [l, u)),

and ``min`` / ``max`` over them is the exact infimum / supremum (the tightest bias for the slope a). These
are the lines through the step corners: for slopes in [0, 1] the lower line touches the left corner of the
first or last jump, the upper line its right corner. Each candidate is widened by
``4 * eps * (|c| + |a*t|)`` (the rounding of ``a*t``, of ``t + offset`` and of the subtraction, each at
most ``eps/2`` of its magnitude) and the result by ``tiny`` (an underflowed ``a*t``).

Jump points are located exactly in floating point while ``|x| < BIG = 1/(2 eps)`` (2**51 in float64, 2**22
in float32: half-integers and their neighbours are representable there); the first guess ``floor(l - shift)``
may be off by one from the rounding of ``l - shift`` and is corrected by exact comparisons. Beyond BIG the
range of jump points is replaced by the superset [l, u] (the candidates then lie on the lines
``x + offset`` and ``x + offset + 1``, which bound f everywhere): looser, never unsound.

Default slopes: 0 where f is constant on [l, u] (the lines are then exactly ``f(l)``); the chord
``1/(u - l)`` across a single jump (both lines pivot on that jump's corners, gap 1); slope 1 across two jumps
or more (``x + offset <= f(x) <= x + offset + 1`` up to the end corners, gap at most 1). The tunable slope
ranges over [0, max(1, chord)]; every slope is sound.

Branching: a jump point strictly inside (l, u), the one nearest the midpoint (a split there leaves the
right-hand child of floor, and the left-hand child of ceil, constant on one step); with only a jump at an
end of the interval, a point at 1/8 of the width from that end; otherwise the midpoint.
"""

from __future__ import annotations

import torch
from torch import Tensor

from graphver.ops.base import Lines, UnaryOp
from graphver.ops.registry import register
from graphver.rounding import eps_of, sanitize_lower, sanitize_upper, tiny_of


class StepOp(UnaryOp):
    """A nondecreasing integer-valued step function with unit jumps at ``j + shift`` (see the module)."""

    ulps = 0.0  # exact
    tabulate_branch_points = False
    discontinuous = True  # the accuracy test of small-interval gaps does not apply across a jump
    shift: float = 0.0
    offset: float = -1.0

    def df(self, x, param=None):
        return torch.zeros_like(x)  # zero away from the jumps

    def curvature_scaled(self, x, param=None):
        return torch.zeros_like(x)

    # --- jump points ---------------------------------------------------------------------------------
    def jumps(self, l: Tensor, u: Tensor):
        """(first, last) jump in (l, u] and (first, last) jump in [l, u), with a mask saying whether each
        range is non-empty. Exact where |l|, |u| < BIG; supersets (l or u themselves) beyond."""
        s = self.shift
        big = 0.5 / eps_of(l)
        first_above = torch.floor(l - s) + (1.0 + s)
        first_above = torch.where(first_above <= l, first_above + 1.0, first_above)
        first_above = torch.where(first_above - 1.0 > l, first_above - 1.0, first_above)
        last_at_most = torch.floor(u - s) + s
        last_at_most = torch.where(last_at_most > u, last_at_most - 1.0, last_at_most)
        last_at_most = torch.where(last_at_most + 1.0 <= u, last_at_most + 1.0, last_at_most)
        first_at_least = torch.ceil(l - s) + s
        first_at_least = torch.where(first_at_least < l, first_at_least + 1.0, first_at_least)
        first_at_least = torch.where(first_at_least - 1.0 >= l, first_at_least - 1.0, first_at_least)
        last_below = torch.ceil(u - s) - (1.0 - s)
        last_below = torch.where(last_below >= u, last_below - 1.0, last_below)
        last_below = torch.where(last_below + 1.0 < u, last_below + 1.0, last_below)
        huge_l, huge_u = ~(l.abs() < big), ~(u.abs() < big)
        first_above = torch.where(huge_l, l, first_above)
        first_at_least = torch.where(huge_l, l, first_at_least)
        last_at_most = torch.where(huge_u, u, last_at_most)
        last_below = torch.where(huge_u, u, last_below)
        huge = huge_l | huge_u
        left = huge | (first_above <= last_at_most)
        right = huge | (first_at_least <= last_below)
        return (first_above, last_at_most, left), (first_at_least, last_below, right)

    def critical_points(self, a, l, u, param=None):
        """The jump points at the ends of each range (where the one-sided limits are taken)."""
        (la, lb, _), (ra, rb, _) = self.jumps(l, u)
        return [la, lb, ra, rb]

    # --- interval and lines --------------------------------------------------------------------------
    def interval(self, l, u, param=None):
        return sanitize_lower(self.f(l, param)), sanitize_upper(self.f(u, param))

    def support(self, a, l, u, param=None):
        """Exact ``(inf, sup)`` of ``f(x) - a*x`` over [l, u], widened for rounding (see the module)."""
        a, l, u = torch.broadcast_tensors(a, l, u)
        (la, lb, left), (ra, rb, right) = self.jumps(l, u)
        fl, fu = self.f(l, param), self.f(u, param)
        values, points = [fl, fu], [l, u]
        for t, present, lift in ((la, left, 0.0), (lb, left, 0.0), (ra, right, 1.0), (rb, right, 1.0)):
            values.append(torch.where(present, t + (self.offset + lift), fl))
            points.append(torch.where(present, t, l))
        g = torch.stack([v - a * p for v, p in zip(values, points)], dim=-1)
        size = torch.stack([v.abs() + (a * p).abs() for v, p in zip(values, points)], dim=-1)
        error = 4.0 * eps_of(l) * size
        tiny = tiny_of(l)
        low = sanitize_lower((g - error).amin(dim=-1) - tiny)
        high = sanitize_upper((g + error).amax(dim=-1) + tiny)
        return low, high

    def slope_range(self, l, u, param=None):
        fl, fu = self.f(l, param), self.f(u, param)
        constant = fl == fu
        chord = (fu - fl) / (u - l)
        top = torch.where(constant, torch.zeros_like(l), torch.maximum(torch.ones_like(l), chord))
        return torch.zeros_like(l), top

    def chord_slope(self, l, u, param=None):
        """The default slope (CROWN's): 0 on one step, the chord across one jump, 1 across more."""
        fl, fu = self.f(l, param), self.f(u, param)
        jumps = fu - fl
        chord = torch.nan_to_num(jumps / (u - l), nan=1.0, posinf=1.0)
        slope = torch.where(jumps == 1, chord, torch.ones_like(l))
        return torch.where(jumps == 0, torch.zeros_like(l), slope)

    def relax(self, l, u, param=None, alpha_lower=None, alpha_upper=None):
        """``UnaryOp.relax`` with this support; on one step the lines are exactly the constant f(l)."""
        lines = super().relax(l, u, param, alpha_lower, alpha_upper)
        fl, fu = self.f(l, param), self.f(u, param)
        constant = (fl == fu) & torch.isfinite(fl)
        zero = torch.zeros_like(lines.lower_slope)
        return Lines(torch.where(constant, zero, lines.lower_slope), torch.where(constant, fl, lines.lower_bias),
                     torch.where(constant, zero, lines.upper_slope), torch.where(constant, fl, lines.upper_bias))

    def branch_point(self, l, u, param=None):
        """A jump strictly inside (l, u) nearest the midpoint; else near a jump at an end; else the midpoint."""
        mid = l + (u - l) / 2
        s = self.shift
        nearest = torch.floor(mid - s + 0.5) + s
        best = mid
        found = torch.zeros_like(l, dtype=torch.bool)
        for t in (nearest, nearest - 1.0, nearest + 1.0):
            inside = (t > l) & (t < u)
            closer = ~found | ((t - mid).abs() < (best - mid).abs())
            take = inside & closer
            best = torch.where(take, t, best)
            found = found | inside
        (_, last_at_most, _), (first_at_least, _, _) = self.jumps(l, u)
        near_upper = u - (u - l) / 8
        near_lower = l + (u - l) / 8
        # a jump at an end: u is a jump point and f(u) is its right value, or l one and f(l) its left value
        at_upper = (last_at_most == u) & (self.f(u, param) == u + (self.offset + 1.0)) & (near_upper > l) & (near_upper < u)
        at_lower = (first_at_least == l) & (self.f(l, param) == l + self.offset) & (near_lower > l) & (near_lower < u)
        end = torch.where(at_upper, near_upper, torch.where(at_lower, near_lower, mid))
        return torch.where(found, best, end)


@register
class Floor(StepOp):
    """floor(x): the largest integer <= x; jumps at the integers, right-continuous."""

    name = "floor"
    shift = 0.0
    offset = -1.0

    def f(self, x, param=None):
        return torch.floor(x)


@register
class Ceil(StepOp):
    """ceil(x): the smallest integer >= x; jumps at the integers, left-continuous."""

    name = "ceil"
    shift = 0.0
    offset = 0.0

    def f(self, x, param=None):
        return torch.ceil(x)


@register
class Round(StepOp):
    """round(x), ties to even (ONNX Round, torch.round); jumps at the half-integers."""

    name = "round"
    shift = 0.5
    offset = -0.5

    def f(self, x, param=None):
        return torch.round(x)
