"""A univariate piecewise-linear function given as a sum of ReLU pieces:

    f(x) = offset + sum_k weight_k * max(0, slope_k * x + shift_k)

Networks approximate smooth activations this way (the "linear" ML4ACOPF networks replace sigmoid, sin and
cos by 54-55 pieces each). The importer sees one wide ReLU layer per activation; the tape builder
(``graphver.tape.builder``) recognises the pattern and emits this op instead, so a bound pass handles one
node per activation rather than one per piece, and its lines are the tightest for the whole function
(the sum of the pieces' own relaxations is looser wherever several pieces are unstable).

The parameter is the table (``PiecewiseTable``: slopes, shifts, weights, offset, as float64 tuples;
instructions group by it, so every node of an instruction has the same function).

Bounds: f is linear between its breakpoints ``t_k = -shift_k / slope_k``, so for a slope ``a`` the
extrema of ``g(x) = f(x) - a*x`` over [l, u] lie at l, u or a breakpoint inside. ``support`` evaluates
g at l and u and reads g at the breakpoints inside [l, u] from the table's precomputed values
``F_k = f(t_k)`` (one sum per breakpoint, computed once per dtype and device). Floating point:

- evaluating f at a point p (products, K + 1 additions, the conversion of the table's constants to the
  working dtype) errs by at most ``gamma(K + 8) * M(p)`` with ``M(p) = |offset| + sum |weight_k| *
  (|slope_k * p| + |shift_k|)``, plus ``K * tiny`` for underflow;
- ``g = f - a*p`` adds ``4 * eps * (|f| + |a*p|)``;
- a computed breakpoint is off from the true one by at most ``delta = 2 * eps * |t| + tiny`` (one
  division, its operands converted); g is Lipschitz with constant ``L = sum |weight_k * slope_k| + |a|``,
  so a true breakpoint inside [l, u] whose computed value lies outside, or whose value was read a little
  off, costs at most ``L * delta``: added for every breakpoint within ``delta`` of the interval.

The interval rule is the same construction with a = 0. The tunable slope ranges over the slopes of the
segments that meet [l, u]; every slope is sound. Branching: the midpoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from graphver.ops.base import UnaryOp
from graphver.ops.registry import register
from graphver.rounding import eps_of, gamma, sanitize_lower, sanitize_upper, tiny_of


@dataclass(frozen=True)
class PiecewiseTable:
    """``f(x) = offset + sum_k weights[k] * max(0, slopes[k] * x + shifts[k])`` (float64 values)."""

    slopes: tuple[float, ...]
    shifts: tuple[float, ...]
    weights: tuple[float, ...]
    offset: float = 0.0
    _cache: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        n = len(self.slopes)
        if not (n == len(self.shifts) == len(self.weights)) or n == 0:
            raise ValueError("a piecewise-linear table needs as many slopes, shifts and weights, at least one")
        values = (*self.slopes, *self.shifts, *self.weights, self.offset)
        if not all(math.isfinite(v) for v in values):
            raise ValueError("a piecewise-linear table holds finite numbers only")

    @property
    def pieces(self) -> int:
        return len(self.slopes)

    def tensors(self, dtype, device) -> "TableTensors":
        key = (dtype, str(device))
        if key not in self._cache:
            self._cache[key] = TableTensors.of(self, dtype, device)
        return self._cache[key]


@dataclass
class TableTensors:
    """A table in one dtype and device, with what ``support`` reads: breakpoints, f there and its error."""

    slope: Tensor  # [K]
    shift: Tensor
    weight: Tensor
    offset: Tensor  # scalar
    gamma: float  # gamma(K + 8) of the dtype
    lipschitz: float  # sum |weight * slope| (rounded up)
    points: Tensor  # [P] computed breakpoints (pieces with slope 0 have none)
    point_values: Tensor  # [P] f at them
    point_errors: Tensor  # [P] bound on |computed - true| of those values
    slope_after: Tensor  # [P] f' just right of each breakpoint
    slope_before: Tensor  # scalar: f' left of the first breakpoint

    @staticmethod
    def of(table: PiecewiseTable, dtype, device) -> "TableTensors":
        as_tensor = lambda v: torch.tensor(v, dtype=dtype, device=device)  # noqa: E731
        slope, shift, weight = as_tensor(table.slopes), as_tensor(table.shifts), as_tensor(table.weights)
        offset = as_tensor(table.offset)
        g = gamma(table.pieces + 8, eps_of(dtype))
        lipschitz = float((weight.double().abs() * slope.double().abs()).sum()) * (1 + g) + tiny_of(dtype)
        has = slope != 0
        points, _ = torch.sort(-shift[has] / slope[has])
        values = evaluate(slope, shift, weight, offset, points)
        errors = g * magnitude(slope, shift, weight, offset, points) + table.pieces * tiny_of(dtype)
        slope_after = derivative(slope, shift, weight, points, right=True)
        left = points[:1] - torch.clamp(points[:1].abs(), min=1.0) if points.numel() else offset[None]
        slope_before = derivative(slope, shift, weight, left)[0]
        return TableTensors(slope, shift, weight, offset, g, lipschitz, points, values, errors, slope_after,
                            slope_before)

    def value(self, x: Tensor) -> Tensor:
        """f(x) from the breakpoint table: the value at the breakpoint to the left plus the segment's slope
        times the distance (log K per point; the ReLU sum ``evaluate`` is what the bounds use)."""
        if self.points.numel() == 0:
            return evaluate(self.slope, self.shift, self.weight, self.offset, x)
        at = torch.searchsorted(self.points, x.detach().contiguous(), right=True) - 1
        before = at < 0
        at = at.clamp(min=0)
        slope = torch.where(before, self.slope_before, self.slope_after[at])
        return self.point_values[at] + slope * (x - self.points[at])


def evaluate(slope: Tensor, shift: Tensor, weight: Tensor, offset: Tensor, x: Tensor) -> Tensor:
    return offset + (weight * torch.clamp(x.unsqueeze(-1) * slope + shift, min=0.0)).sum(dim=-1)


def magnitude(slope: Tensor, shift: Tensor, weight: Tensor, offset: Tensor, x: Tensor) -> Tensor:
    """``M(x) = |offset| + sum |weight| * (|slope * x| + |shift|)``, the scale of f's rounding error at x."""
    terms = weight.abs() * ((x.unsqueeze(-1) * slope).abs() + shift.abs())
    return offset.abs() + terms.sum(dim=-1)


def derivative(slope: Tensor, shift: Tensor, weight: Tensor, x: Tensor, right: bool = False) -> Tensor:
    """f'(x) (at a breakpoint: the slope on its right when ``right``)."""
    s = x.unsqueeze(-1) * slope + shift
    active = (s > 0) | ((s == 0) & (slope > 0)) if right else s > 0
    return (weight * slope * active.to(x.dtype)).sum(dim=-1)


@register
class PiecewiseLinear(UnaryOp):
    name = "piecewise_linear"
    has_param = True
    ulps = 0.0  # eval_error is the op's own bound (see the module)
    tabulate_branch_points = False
    sample_params = (
        # a sigmoid-like S: increasing pieces, the curvature changing sign at 0
        PiecewiseTable(slopes=(1.0,) * 6, shifts=(4.0, 2.5, 1.0, -1.0, -2.5, -4.0),
                       weights=(0.02, 0.05, 0.2, -0.2, -0.05, -0.02), offset=0.1),
        # mixed signs, a reflected piece, a constant piece (slope 0) and a scaled argument
        PiecewiseTable(slopes=(-2.0, 1.0, 0.0, 3.0, 1.0), shifts=(1.0, -0.5, 2.0, -3.0, 1.0),
                       weights=(0.7, -1.3, 0.25, 0.4, 2.0), offset=-0.75),
    )

    def describe(self, param=None):
        return f"{self.name}[{param.pieces} pieces]" if param is not None else self.name

    def f(self, x, param=None):
        return param.tensors(x.dtype, x.device).value(x)

    def df(self, x, param=None):
        t = param.tensors(x.dtype, x.device)
        return derivative(t.slope, t.shift, t.weight, x)

    def curvature_scaled(self, x, param=None):
        return torch.zeros_like(x)  # piecewise linear (support is the op's own)

    def critical_points(self, a, l, u, param=None):
        t = param.tensors(l.dtype, l.device)
        return [t.points[k].expand_as(l) for k in range(t.points.numel())]

    def eval_error(self, points, fx, param=None):
        t = param.tensors(points.dtype, points.device)
        return (t.gamma / eps_of(points)) * magnitude(t.slope, t.shift, t.weight, t.offset, points)

    def slope_range(self, l, u, param=None):
        t = param.tensors(l.dtype, l.device)
        dl, du = self.df(l, param), self.df(u, param)
        low, high = torch.minimum(dl, du), torch.maximum(dl, du)
        if t.points.numel():
            inside = (t.points >= l.unsqueeze(-1)) & (t.points < u.unsqueeze(-1))
            after = t.slope_after.expand(inside.shape)
            low = torch.minimum(low, torch.where(inside, after, torch.full_like(after, math.inf)).amin(dim=-1))
            high = torch.maximum(high, torch.where(inside, after, torch.full_like(after, -math.inf)).amax(dim=-1))
        return low, high

    def support(self, a, l, u, param=None):
        a, l, u = torch.broadcast_tensors(a, l, u)
        t = param.tensors(l.dtype, l.device)
        eps, tiny = eps_of(l), tiny_of(l)
        ends = torch.stack([l, u], dim=-1)
        f_ends = evaluate(t.slope, t.shift, t.weight, t.offset, ends)
        a_ends = a.unsqueeze(-1) * ends
        g_ends = f_ends - a_ends
        err_ends = (t.gamma * magnitude(t.slope, t.shift, t.weight, t.offset, ends) + t.slope.numel() * tiny
                    + 4.0 * eps * (f_ends.abs() + a_ends.abs()))
        low = (g_ends - err_ends).amin(dim=-1)
        high = (g_ends + err_ends).amax(dim=-1)
        if t.points.numel():
            p = t.points
            lo_, hi_ = l.unsqueeze(-1), u.unsqueeze(-1)
            inside = (p >= lo_) & (p <= hi_)
            a_p = a.unsqueeze(-1) * p
            g_p = t.point_values - a_p
            err_p = t.point_errors + 4.0 * eps * (t.point_values.abs() + a_p.abs())
            low = torch.minimum(low, torch.where(inside, g_p - err_p, torch.full_like(g_p, math.inf)).amin(dim=-1))
            high = torch.maximum(high, torch.where(inside, g_p + err_p, torch.full_like(g_p, -math.inf)).amax(dim=-1))
            delta = 2.0 * eps * p.abs() + tiny
            near = (p >= lo_ - delta) & (p <= hi_ + delta)
            location = torch.where(near, delta.expand(near.shape), torch.zeros_like(g_p)).amax(dim=-1)
            shift = (t.lipschitz + a.abs()) * location * (1 + 4 * eps)
            low, high = low - shift, high + shift
        return sanitize_lower(low - tiny), sanitize_upper(high + tiny)
