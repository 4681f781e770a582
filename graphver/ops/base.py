"""What an op is: evaluation, derivative, sound interval, sound linear relaxation, branching point.

Unary ops share one generic relaxation, the *support-line* construction. For a slope ``a`` the
tightest lower line ``a*x + b`` valid on [l, u] has ``b = min_{x in [l,u]} f(x) - a*x`` and the
tightest upper line has ``b = max_{x in [l,u]} f(x) - a*x``. The extremum of ``g(x) = f(x) - a*x`` lies
at an endpoint or at a critical point ``f'(x) = a``, so an op only has to enumerate the solutions of
``f'(x) = a`` inside [l, u] (``critical_points``); extra candidates are harmless, missing ones are not.
The interval rule is the same construction with ``a = 0``. The slope itself is only a choice (any slope
gives a sound line), so it is the tunable parameter of the alpha method: ``a = s_min + alpha*(s_max -
s_min)`` with ``alpha`` clamped to [0, 1] and [s_min, s_max] the range of f' on [l, u].

Floating point: every concretised value ``b`` is moved outward by ``support_margin`` which covers
(i) the error of torch's implementation of f, ``ulps`` units in the last place of |f| (documented per op;
``eval_error`` can widen it, e.g. for a rounded exponent), (ii) the rounding of ``a*x`` and of the
subtraction, (iii) the second-order error ``|f''|*delta**2/2`` of a critical point whose computed location
is off by ``delta``: endpoints are evaluated exactly where they are, so only critical points carry a
location error, and there g'(x*) = 0 makes the error second order. We take
``delta = 16*eps*(|x| + location_floor)`` (relative for most ops; periodic ops add an absolute floor for
their root offsets) and ops provide ``curvature_scaled(x) = |f''(x)|*(|x| + location_floor)**2`` in a
form that does not overflow; the term is doubled to cover the variation of f'' between x and x*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from graphver.rounding import eps_of, flush_slope, max_slope, sanitize_lower, sanitize_upper, snap_to_zero, tiny_of  # noqa: F401


@dataclass(frozen=True)
class Lines:
    """Lower and upper relaxation lines ``lower_slope*x + lower_bias <= f(x) <= upper_slope*x + upper_bias``."""

    lower_slope: Tensor
    lower_bias: Tensor
    upper_slope: Tensor
    upper_bias: Tensor


@dataclass(frozen=True)
class PlaneRelaxation:
    """Relaxation of a binary op: ``lx*x + ly*y + lb <= f(x, y) <= ux*x + uy*y + ub``."""

    lower_x: Tensor
    lower_y: Tensor
    lower_bias: Tensor
    upper_x: Tensor
    upper_y: Tensor
    upper_bias: Tensor


class UnaryOp:
    """A scalar function of one argument. Subclasses define ``f``, ``df`` and ``critical_points``.

    Attributes:
        name: registry key, used in error messages and in the tape.
        ulps: documented bound, in ulps of |f|, on the error of torch's implementation of f.
        domain: human text of the domain, shown in DomainError messages.
    """

    name: str = ""
    ulps: float = 4.0
    domain: str = "all reals"
    has_param: bool = False
    sample_params: tuple = (None,)  # parameter values the registry-driven tests exercise
    location_floor: float = 0.0  # absolute part of a critical point's location error (periodic ops)
    tabulate_branch_points: bool = True  # False for piecewise-linear ops: their kink is the best point

    # --- what subclasses define -------------------------------------------------------------
    def f(self, x: Tensor, param: float | None = None) -> Tensor:
        raise NotImplementedError

    def df(self, x: Tensor, param: float | None = None) -> Tensor:
        raise NotImplementedError

    def critical_points(self, a: Tensor, l: Tensor, u: Tensor, param: float | None = None) -> list[Tensor]:
        """Candidates for the solutions of f'(x) = a in [l, u]; NaN or out-of-range entries are allowed."""
        raise NotImplementedError

    def slope_range(self, l: Tensor, u: Tensor, param: float | None = None) -> tuple[Tensor, Tensor]:
        """Range of f' on [l, u] (a choice for the tunable slope; soundness does not depend on it)."""
        dl, du = self.df(l, param), self.df(u, param)
        return torch.minimum(dl, du), torch.maximum(dl, du)

    def domain_violation(self, l: Tensor, u: Tensor, param: float | None = None) -> Tensor:
        """Boolean mask of intervals that leave the op's domain."""
        return torch.zeros_like(l, dtype=torch.bool)

    def safe_point(self, param: float | None = None) -> float:
        """A point inside the domain, substituted for violating intervals when violations are only recorded."""
        return 1.0

    def snap_to_domain(self, l: Tensor, u: Tensor, param: float | None = None) -> Tensor:
        """Lower end moved onto a closed domain edge when it lies below it only by rounding slack.

        sqrt(x + 1) on x >= -1 sees an argument interval like [-4e-15, 3]: the slack comes from the rounding
        margin of x + 1, not from the model. Ops with a closed lower edge (sqrt, x**p for p > 0) snap such
        ends to the edge (at most ``EDGE_ULPS`` ulps of 1 + |u| below it); the bounds then hold wherever the
        expression is defined. Anything further out remains a DomainError.
        """
        return l

    def branch_point(self, l: Tensor, u: Tensor, param: float | None = None) -> Tensor:
        """Default branching point: the midpoint (any point strictly inside [l, u] is sound)."""
        return l + (u - l) / 2

    def describe(self, param: float | None = None) -> str:
        return self.name if param is None else f"{self.name}[{param:g}]"

    # --- generic machinery --------------------------------------------------------------------
    def support(self, a: Tensor, l: Tensor, u: Tensor, param: float | None = None) -> tuple[Tensor, Tensor]:
        """Sound ``(min, max)`` over x in [l, u] of ``f(x) - a*x`` (broadcast over a, l, u).

        ``a`` must be 0 or of magnitude in [slope_floor, max_slope] (``flush_slope``): the ops' critical
        point formulas (1/a^2, (a/p)^(1/(p-1)), ...) are only accurate to a few ulps there."""
        a, l, u = torch.broadcast_tensors(a, l, u)
        candidates = [l, u] + list(self.critical_points(a, l, u, param))
        points = torch.stack([c.expand_as(l) for c in candidates], dim=-1)
        lo, hi = l.unsqueeze(-1), u.unsqueeze(-1)
        points = torch.where(torch.isnan(points), lo, points)
        points = torch.minimum(torch.maximum(points, lo), hi)
        fx = self.f(points, param)
        g = fx - a.unsqueeze(-1) * points
        error = self.point_error(a, l, u, points, fx, param)
        extra = self.second_order_error(l, u, points, param)
        gmin = sanitize_lower((g - error).amin(dim=-1) - extra)
        gmax = sanitize_upper((g + error).amax(dim=-1) + extra)
        return gmin, gmax

    def point_error(self, a: Tensor, l: Tensor, u: Tensor, points: Tensor, fx: Tensor, param) -> Tensor:
        """Bound on the rounding error of each computed ``g(p) = f(p) - a*p`` (terms (i) and (ii))."""
        evaluation = torch.nan_to_num(self.eval_error(points, fx, param), nan=0.0)
        return eps_of(l) * (evaluation + 4.0 * (fx.abs() + (a.unsqueeze(-1) * points).abs()))

    def second_order_error(self, l: Tensor, u: Tensor, points: Tensor, param) -> Tensor:
        """Term (iii) over the critical candidates (not the endpoints), plus ``tiny`` for underflow."""
        critical = points[..., 2:]
        if critical.shape[-1] == 0:
            return torch.full_like(l, tiny_of(l))
        curvature = torch.nan_to_num(self.curvature_scaled(critical, param).abs(), nan=math.inf).amax(dim=-1)
        return curvature * (16.0 * eps_of(l)) ** 2 + tiny_of(l)

    def curvature_scaled(self, x: Tensor, param: float | None) -> Tensor:
        """``|f''(x)| * (|x| + location_floor)**2``, computed without overflow (0 for piecewise-linear ops)."""
        raise NotImplementedError

    def eval_error(self, points: Tensor, fx: Tensor, param: float | None) -> Tensor:
        """Bound on |computed f - true f| at each point, in units of eps (default: ``ulps*|f|``)."""
        return self.ulps * fx.abs()

    def value_range(self, param: float | None = None) -> tuple[float, float]:
        """Bounds on every value of f (a trait: sin in [-1, 1], exp >= 0), in floats that contain the true
        range; the interval rule is intersected with it. The support construction alone can be far wider on
        huge arguments (its second-order margin grows with x**2)."""
        return -math.inf, math.inf

    def interval(self, l: Tensor, u: Tensor, param: float | None = None) -> tuple[Tensor, Tensor]:
        """Sound enclosure of f over [l, u], intersected with the op's ``value_range``."""
        low, high = self.support(torch.zeros_like(l), l, u, param)
        bottom, top = self.value_range(param)
        return low.clamp(min=bottom), high.clamp(max=top)

    def chord_slope(self, l: Tensor, u: Tensor, param: float | None = None) -> Tensor:
        """Slope of the chord, falling back to f' at the midpoint on (near-)degenerate intervals."""
        width = u - l
        chord = (self.f(u, param) - self.f(l, param)) / width
        mid = self.df(l + width / 2, param)
        slope = torch.where((width > 0) & torch.isfinite(chord), chord, mid)
        cap = max_slope(l)
        return torch.nan_to_num(slope, nan=0.0, posinf=cap, neginf=-cap).clamp(-cap, cap)

    def clamped_slope_range(self, l: Tensor, u: Tensor, param: float | None) -> tuple[Tensor, Tensor]:
        smin, smax = self.slope_range(l, u, param)
        cap = max_slope(l)
        smin = torch.nan_to_num(smin, nan=0.0, posinf=cap, neginf=-cap).clamp(-cap, cap)
        smax = torch.nan_to_num(smax, nan=0.0, posinf=cap, neginf=-cap).clamp(-cap, cap)
        return smin, torch.maximum(smin, smax)

    def default_alpha(self, l: Tensor, u: Tensor, param: float | None = None) -> Tensor:
        """Parameter value giving the chord slope on both lines (the CROWN default), shape ``l.shape``."""
        smin, smax = self.clamped_slope_range(l, u, param)
        k = self.chord_slope(l, u, param)
        span = smax - smin
        alpha = torch.where(span > 0, (k - smin) / torch.where(span > 0, span, torch.ones_like(span)), 0.5)
        return torch.nan_to_num(alpha, nan=0.5).clamp(0.0, 1.0)

    def tight_alpha(self, l: Tensor, u: Tensor, x: Tensor, param: float | None = None) -> tuple[Tensor, Tensor]:
        """Parameters (lower line, upper line) whose lines have the slope f'(x): tangent at x where f is
        convex (lower) or concave (upper) there; clamped into [0, 1] like every parameter."""
        smin, smax = self.clamped_slope_range(l, u, param)
        span = smax - smin
        slope = self.df(torch.minimum(torch.maximum(x, l), u), param)
        alpha = torch.where(span > 0, (slope - smin) / torch.where(span > 0, span, torch.ones_like(span)), 0.5)
        alpha = torch.nan_to_num(alpha, nan=0.5).clamp(0.0, 1.0)
        return alpha, alpha

    def relax(
        self,
        l: Tensor,
        u: Tensor,
        param: float | None = None,
        alpha_lower: Tensor | None = None,
        alpha_upper: Tensor | None = None,
    ) -> Lines:
        """Sound lines on [l, u]. Without alphas both slopes are the chord slope (CROWN default).

        With alphas (any real values; clamped to [0, 1]) the slopes are ``s_min + alpha*(s_max - s_min)``.
        """
        if alpha_lower is None and alpha_upper is None:
            slope_lower = slope_upper = flush_slope(self.chord_slope(l, u, param))
        else:
            smin, smax = self.clamped_slope_range(l, u, param)
            slope_lower = flush_slope(smin + alpha_lower.clamp(0.0, 1.0) * (smax - smin))
            slope_upper = flush_slope(smin + alpha_upper.clamp(0.0, 1.0) * (smax - smin))
        if slope_lower is slope_upper:
            bias_lower, bias_upper = self.support(slope_lower, l, u, param)
        else:
            bias_lower, _ = self.support(slope_lower, l, u, param)
            _, bias_upper = self.support(slope_upper, l, u, param)
        slope_lower, bias_lower = torch.broadcast_tensors(slope_lower, bias_lower)
        slope_upper, bias_upper = torch.broadcast_tensors(slope_upper, bias_upper)
        return Lines(slope_lower, bias_lower, slope_upper, bias_upper)


class BinaryOp:
    """A scalar function of two arguments (the product, and x^2/y)."""

    name: str = ""
    ulps: float = 1.0
    domain: str = "all reals"
    has_param: bool = False
    sample_params: tuple = (None,)

    def f(self, x: Tensor, y: Tensor, param: float | None = None) -> Tensor:
        raise NotImplementedError

    def df(self, x: Tensor, y: Tensor, param: float | None = None) -> tuple[Tensor, Tensor]:
        """Partial derivatives with respect to both arguments."""
        raise NotImplementedError

    def interval(self, lx: Tensor, ux: Tensor, ly: Tensor, uy: Tensor, param=None) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def relax(self, lx, ux, ly, uy, param=None, alpha_lower=None, alpha_upper=None) -> PlaneRelaxation:
        raise NotImplementedError

    def default_alpha(self, lx: Tensor, ux: Tensor, ly: Tensor, uy: Tensor, param=None) -> Tensor:
        return torch.full_like(lx, 0.5)

    def tight_alpha(self, lx, ux, ly, uy, x, y, param=None) -> tuple[Tensor, Tensor]:
        """Parameters (lower, upper plane) whose planes are tightest at the point (x, y)."""
        raise NotImplementedError

    def domain_violation(self, lx, ux, ly, uy, param=None) -> Tensor:
        return torch.zeros_like(lx, dtype=torch.bool)

    def describe(self, param: float | None = None) -> str:
        return self.name
