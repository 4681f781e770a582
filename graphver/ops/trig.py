"""sin, cos (any interval width), tan (one branch, away from the poles) and atan.

sin and cos: the critical points of ``f(x) - a*x`` form families ``r + 2*pi*k``. Since
``g(x + 2*pi) = g(x) - 2*pi*a``, the extrema of g over [l, u] lie in the first or the last period of the
interval, so per family it suffices to offer the first root >= l and the last root <= u. This holds for
any width, which is exactly where the reference implementation's table lookups go wrong (widths over ~1.5).
"""

from __future__ import annotations

import math

import torch

from graphver.ops.base import UnaryOp
from graphver.rounding import eps_of
from graphver.ops.registry import register

TWO_PI = 2.0 * math.pi


def periodic_candidates(roots, l, u, period=TWO_PI):
    """For each root family ``r + period*k``: the first member >= l and the last member <= u."""
    out = []
    for r in roots:
        out.append(r + torch.ceil((l - r) / period) * period)
        out.append(r + torch.floor((u - r) / period) * period)
    return out


@register
class Sin(UnaryOp):
    name = "sin"
    ulps = 8.0
    location_floor = 4.0  # roots acos(a) + 2*pi*k carry an absolute error of a few ulps of pi


    def value_range(self, param=None):
        return -1.0, 1.0

    def f(self, x, param=None):
        return torch.sin(x)

    def df(self, x, param=None):
        return torch.cos(x)

    def curvature_scaled(self, x, param=None):
        return (x.abs() + self.location_floor) ** 2  # |sin''| <= 1

    def critical_points(self, a, l, u, param=None):
        root = torch.acos(a)  # cos(x) = a; NaN when |a| > 1
        return periodic_candidates([root, -root], l, u)

    def slope_range(self, l, u, param=None):
        return COS.interval(l, u)


@register
class Cos(UnaryOp):
    name = "cos"
    ulps = 8.0
    location_floor = 4.0


    def value_range(self, param=None):
        return -1.0, 1.0

    def f(self, x, param=None):
        return torch.cos(x)

    def df(self, x, param=None):
        return -torch.sin(x)

    def curvature_scaled(self, x, param=None):
        return (x.abs() + self.location_floor) ** 2  # |cos''| <= 1

    def critical_points(self, a, l, u, param=None):
        root = torch.asin(-a)  # -sin(x) = a
        return periodic_candidates([root, math.pi - root], l, u)

    def slope_range(self, l, u, param=None):
        low, high = SIN.interval(l, u)
        return -high, -low


SIN = Sin()
COS = Cos()


def tan_branch(x):
    """Index k of the branch (k*pi - pi/2, k*pi + pi/2) containing x."""
    return torch.floor((x + math.pi / 2) / math.pi)


@register
class Tan(UnaryOp):
    name = "tan"
    ulps = 8.0
    location_floor = 4.0
    domain = "one branch of tan, away from the poles pi/2 + k*pi"

    def f(self, x, param=None):
        return torch.tan(x)

    def df(self, x, param=None):
        c = torch.cos(x)
        return 1.0 / (c * c)

    def curvature_scaled(self, x, param=None):
        t = torch.tan(x)
        return 2.0 * t.abs() * (1.0 + t * t) * (x.abs() + self.location_floor) ** 2

    def critical_points(self, a, l, u, param=None):
        # sec^2(x) = a  ->  tan(x)^2 = a - 1  ->  x = k*pi +- atan(sqrt(a - 1)) for a >= 1, in the branch
        # of l (a - 1 is exact near a = 1, where acos(1/sqrt(a)) would lose the root entirely)
        center = tan_branch(l) * math.pi
        r = torch.atan(torch.sqrt(a - 1.0))
        return [center + r, center - r]

    def slope_range(self, l, u, param=None):
        center = tan_branch(l) * math.pi
        dl, du = self.df(l), self.df(u)
        inside = (l <= center) & (center <= u)
        low = torch.where(inside, torch.ones_like(l), torch.minimum(dl, du))
        return low, torch.maximum(dl, du)

    def safe_point(self, param=None):
        return 0.0

    def domain_violation(self, l, u, param=None):
        k = tan_branch(l)
        pole_below = k * math.pi - math.pi / 2
        pole_above = k * math.pi + math.pi / 2
        # Keep a safety distance: pi/2 + k*pi is not exact in floating point (nor in float32 arithmetic).
        guard = max(1e-12, 64 * eps_of(l)) * (1.0 + torch.maximum(l.abs(), u.abs()))
        return (tan_branch(u) != k) | (l - pole_below <= guard) | (pole_above - u <= guard)


@register
class Atan(UnaryOp):
    name = "atan"
    ulps = 8.0


    def value_range(self, param=None):
        return -1.5708, 1.5708  # |atan| < pi/2 = 1.57079632..., and 1.5708 stays above it in float32 too

    def f(self, x, param=None):
        return torch.atan(x)

    def curvature_scaled(self, x, param=None):
        s = x.abs() / (1.0 + x * x)
        return 2.0 * s * s * x.abs()  # |2x/(1+x^2)^2| * x^2

    def df(self, x, param=None):
        return 1.0 / (1.0 + x * x)

    def critical_points(self, a, l, u, param=None):
        # 1/(1+x^2) = a  ->  x = +-sqrt((1-a)/a) for 0 < a <= 1 (1-a is exact near a = 1)
        r = torch.sqrt((1.0 - a) / a)
        return [r, -r]

    def slope_range(self, l, u, param=None):
        dl, du = self.df(l), self.df(u)
        inside = (l <= 0) & (u >= 0)
        return torch.minimum(dl, du), torch.where(inside, torch.ones_like(l), torch.maximum(dl, du))
