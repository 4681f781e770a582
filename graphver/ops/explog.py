"""exp and log. exp is convex and increasing; log is concave and increasing on (0, inf)."""

from __future__ import annotations

import math

import torch

from graphver.ops.base import UnaryOp
from graphver.ops.registry import register


@register
class Exp(UnaryOp):
    name = "exp"
    ulps = 8.0  # torch uses SLEEF/libm exp, within 1 ulp; 8 leaves room for other back ends


    def value_range(self, param=None):
        return 0.0, math.inf

    def f(self, x, param=None):
        return torch.exp(x)

    def curvature_scaled(self, x, param=None):
        return torch.exp(x) * x * x

    def df(self, x, param=None):
        return torch.exp(x)

    def critical_points(self, a, l, u, param=None):
        # exp(x) = a  ->  x = log(a) for a > 0
        return [torch.log(a)]


@register
class Log(UnaryOp):
    name = "log"
    ulps = 8.0
    domain = "x > 0"

    def f(self, x, param=None):
        return torch.log(x)

    def curvature_scaled(self, x, param=None):
        return torch.ones_like(x)  # |-1/x^2| * x^2

    def df(self, x, param=None):
        return 1.0 / x

    def critical_points(self, a, l, u, param=None):
        # 1/x = a  ->  x = 1/a for a > 0
        return [torch.where(a > 0, 1.0 / a, torch.nan)]

    def domain_violation(self, l, u, param=None):
        return ~(l > 0)
