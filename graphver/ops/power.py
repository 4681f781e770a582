"""Powers: integer powers (negative ones excluding the pole at 0), real powers on x >= 0, sqrt."""

from __future__ import annotations

import math

import torch

from graphver.ops.base import UnaryOp
from graphver.ops.registry import register
from graphver.rounding import snap_to_zero

MAX_INT_EXPONENT = 2**31 - 1  # |n| beyond: x**n is 0 or inf in floating point except within 1e-9 of |x| = 1


def near_zero_term(op, l, param) -> torch.Tensor:
    """For x**p with 0 < p < 1 near 0: a critical point below twice the smallest normal number cannot be
    located (it underflows), so bound g(x) = f(x) - a*x <= f(x) <= f(t) on [0, t], t = 2*tiny, directly."""
    p = 0.5 if param is None else float(param)
    if not 0.0 < p < 1.0:
        return torch.zeros_like(l)
    t = 2.0 * torch.finfo(l.dtype).tiny
    return torch.where(l <= t, torch.full_like(l, t**p * 1.0001), torch.zeros_like(l))


@register
class Sqrt(UnaryOp):
    name = "sqrt"
    ulps = 2.0  # IEEE sqrt is correctly rounded
    domain = "x >= 0"


    def value_range(self, param=None):
        return 0.0, math.inf

    def f(self, x, param=None):
        return torch.sqrt(x)

    def curvature_scaled(self, x, param=None):
        return 0.25 * torch.sqrt(x)  # x^(-3/2)/4 * x^2

    def df(self, x, param=None):
        return 0.5 / torch.sqrt(x)

    def critical_points(self, a, l, u, param=None):
        # 1/(2 sqrt(x)) = a  ->  x = 1/(4 a^2) for a > 0 (computed as (0.5/a)^2 to avoid overflow of a^2)
        half = 0.5 / a
        return [torch.where(a > 0, half * half, torch.nan)]

    def second_order_error(self, l, u, points, param):
        return super().second_order_error(l, u, points, param) + near_zero_term(self, l, param)

    def domain_violation(self, l, u, param=None):
        return ~(l >= 0)

    def snap_to_domain(self, l, u, param=None):
        return snap_to_zero(l, u)


@register
class PowInt(UnaryOp):
    """x**n for an integer n >= 2 or n <= -1 (param = n). Negative n needs an interval excluding 0."""

    name = "pow_int"
    has_param = True
    sample_params = (2.0, 3.0, 4.0, 7.0, -1.0, -2.0, -3.0)  # exercised by the registry-driven tests


    def value_range(self, param=None):
        return (0.0, math.inf) if int(param) % 2 == 0 else (-math.inf, math.inf)

    def describe(self, param=None):
        return f"x**{int(param)}"

    @property
    def domain(self):  # shown in DomainError messages (negative exponents only can fail)
        return "x != 0 (negative exponent: the interval must not contain 0)"

    def f(self, x, param=None):
        return torch.pow(x, int(param))

    def curvature_scaled(self, x, param=None):
        n = int(param)
        return abs(float(n) * float(n - 1)) * torch.pow(x, n).abs()  # |n(n-1) x^(n-2)| * x^2, in floats

    def df(self, x, param=None):
        n = int(param)
        return n * torch.pow(x, n - 1)

    def eval_error(self, points, fx, param):
        return (4.0 + abs(int(param))) * fx.abs()  # repeated multiplication or libm pow

    def critical_points(self, a, l, u, param=None):
        # n x^(n-1) = a  ->  |x| = |a/n|^(1/(n-1)); both signs are offered (extras are harmless)
        n = int(param)
        if n == 1:  # x**1 is linear: no interior critical point (lowering turns x**1 into x anyway)
            return []
        r = torch.pow((a / n).abs(), 1.0 / (n - 1))
        return [r, -r]

    def slope_range(self, l, u, param=None):
        zero = torch.minimum(torch.maximum(torch.zeros_like(l), l), u)
        d = torch.stack([self.df(l, param), self.df(u, param), self.df(zero, param)], -1)
        return d.amin(-1), d.amax(-1)

    def domain_violation(self, l, u, param=None):
        if int(param) >= 0:
            return torch.zeros_like(l, dtype=torch.bool)
        return ~((l > 0) | (u < 0))


@register
class PowReal(UnaryOp):
    """x**p for a real constant p (param = p) on x >= 0 (x > 0 when p < 0)."""

    name = "pow_real"
    has_param = True
    ulps = 4.0
    sample_params = (0.5, 1.5, 2.5, 1.0 / 3.0, 0.25, 3.7, -0.5, -1.5)


    def value_range(self, param=None):
        return 0.0, math.inf

    def describe(self, param=None):
        return f"x**{param:g}"

    @property
    def domain(self):
        return "x >= 0 (x > 0 for a negative exponent)"

    def f(self, x, param=None):
        return torch.pow(x, float(param))

    def curvature_scaled(self, x, param=None):
        p = float(param)
        return abs(p * (p - 1.0)) * torch.pow(x, p)

    def df(self, x, param=None):
        p = float(param)
        return p * torch.pow(x, p - 1.0)

    def eval_error(self, points, fx, param):
        # param is within |p| * 2**-52 of the model's exact exponent p (lowering certifies it, also for a
        # high-precision Float or an irrational exponent): |x^p - x^param| = x^param |e^t - 1| with
        # |t| <= |log x| |p| 2**-52 <= |log x| |p| eps, and |t| < 1e-12 wherever x^param is a normal float,
        # so the term |p| |log x| (in eps) covers it; ulps covers libm's error and the second-order rest.
        p = float(param)
        return fx.abs() * (self.ulps + abs(p) * torch.log(points).abs())

    def critical_points(self, a, l, u, param=None):
        # p x^(p-1) = a  ->  x = (a/p)^(1/(p-1)), through logarithms so that no power overflows midway
        p = float(param)
        ratio = a / p
        return [torch.where(ratio > 0, torch.exp(torch.log(ratio) / (p - 1.0)), torch.nan)]

    def second_order_error(self, l, u, points, param):
        return super().second_order_error(l, u, points, param) + near_zero_term(self, l, param)

    def domain_violation(self, l, u, param=None):
        return ~(l > 0) if float(param) < 0 else ~(l >= 0)

    def snap_to_domain(self, l, u, param=None):
        return l if float(param) < 0 else snap_to_zero(l, u)
