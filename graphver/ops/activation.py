"""Activations: tanh and sigmoid (S-shaped, inflection at 0), relu and abs (piecewise linear, kink at 0)."""

from __future__ import annotations

import math

import torch

from graphver.ops.base import UnaryOp
from graphver.ops.registry import register


def s_shaped_slope_range(op, l, u, peak):
    """Range of f' for S-shaped f whose derivative peaks at x = 0 with value ``peak``."""
    dl, du = op.df(l), op.df(u)
    inside = (l <= 0) & (u >= 0)
    return torch.minimum(dl, du), torch.where(inside, torch.full_like(l, peak), torch.maximum(dl, du))


@register
class Tanh(UnaryOp):
    name = "tanh"
    ulps = 8.0


    def value_range(self, param=None):
        return -1.0, 1.0

    def f(self, x, param=None):
        return torch.tanh(x)

    def curvature_scaled(self, x, param=None):
        t = torch.tanh(x)
        return 2.0 * t.abs() * (1.0 - t * t) * x * x

    def df(self, x, param=None):
        t = torch.tanh(x)
        return 1.0 - t * t

    def critical_points(self, a, l, u, param=None):
        # sech^2(x) = a  ->  x = +-acosh(1/sqrt(a)) (well conditioned for small a) = +-atanh(sqrt(1 - a))
        # (well conditioned near a = 1); both are offered, extra candidates are harmless
        r = torch.acosh(torch.rsqrt(a))
        s = torch.atanh(torch.sqrt(1.0 - a))
        return [r, -r, s, -s]

    def slope_range(self, l, u, param=None):
        return s_shaped_slope_range(self, l, u, 1.0)


TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


@register
class Erf(UnaryOp):
    """The error function (GELU networks: x * (1 + erf(x / sqrt 2)) / 2); S-shaped, f'(x) = 2/sqrt(pi) e^(-x^2)."""

    name = "erf"
    ulps = 16.0


    def value_range(self, param=None):
        return -1.0, 1.0

    def f(self, x, param=None):
        return torch.erf(x)

    def curvature_scaled(self, x, param=None):
        # |f''(x)| = 2|x| f'(x)
        return 2.0 * x.abs() ** 3 * TWO_OVER_SQRT_PI * torch.exp(-x * x)

    def df(self, x, param=None):
        return TWO_OVER_SQRT_PI * torch.exp(-x * x)

    def critical_points(self, a, l, u, param=None):
        # 2/sqrt(pi) e^(-x^2) = a  ->  x = +-sqrt(-log(a sqrt(pi)/2)); near the peak (a -> 2/sqrt(pi)) the
        # log1p form keeps its precision; both are offered, extra candidates are harmless
        ratio = a / TWO_OVER_SQRT_PI
        r = torch.sqrt((-torch.log(ratio)).clamp(min=0))
        s = torch.sqrt((-torch.log1p(ratio - 1.0)).clamp(min=0))
        return [r, -r, s, -s]

    def slope_range(self, l, u, param=None):
        return s_shaped_slope_range(self, l, u, TWO_OVER_SQRT_PI)


@register
class Sigmoid(UnaryOp):
    name = "sigmoid"
    ulps = 8.0


    def value_range(self, param=None):
        return 0.0, 1.0

    def f(self, x, param=None):
        return torch.sigmoid(x)

    def curvature_scaled(self, x, param=None):
        s = torch.sigmoid(x)
        return (s * (1.0 - s) * (1.0 - 2.0 * s)).abs() * x * x

    def df(self, x, param=None):
        s = torch.sigmoid(x)
        return s * (1.0 - s)

    def critical_points(self, a, l, u, param=None):
        # sigmoid'(x) = 1/(4 cosh^2(x/2)) = a  ->  x = +-2 acosh(1/(2 sqrt(a))) = +-2 atanh(sqrt(1 - 4a))
        # (the first form is well conditioned for small a, the second near a = 1/4)
        r = 2.0 * torch.acosh(0.5 * torch.rsqrt(a))
        s = 2.0 * torch.atanh(torch.sqrt(1.0 - 4.0 * a))
        return [r, -r, s, -s]

    def slope_range(self, l, u, param=None):
        return s_shaped_slope_range(self, l, u, 0.25)


@register
class Relu(UnaryOp):
    name = "relu"
    ulps = 0.0  # exact
    tabulate_branch_points = False


    def value_range(self, param=None):
        return 0.0, math.inf

    def f(self, x, param=None):
        return torch.clamp(x, min=0.0)

    def curvature_scaled(self, x, param=None):
        return torch.zeros_like(x)  # piecewise linear; the kink 0 is located exactly

    def df(self, x, param=None):
        return (x > 0).to(x.dtype)

    def critical_points(self, a, l, u, param=None):
        return [torch.zeros_like(l)]

    def branch_point(self, l, u, param=None):
        inside = (l < 0) & (u > 0)
        return torch.where(inside, torch.zeros_like(l), l + (u - l) / 2)


@register
class Abs(UnaryOp):
    name = "abs"
    ulps = 0.0
    tabulate_branch_points = False


    def value_range(self, param=None):
        return 0.0, math.inf

    def f(self, x, param=None):
        return torch.abs(x)

    def curvature_scaled(self, x, param=None):
        return torch.zeros_like(x)

    def df(self, x, param=None):
        return torch.sign(x)

    def critical_points(self, a, l, u, param=None):
        return [torch.zeros_like(l)]

    def slope_range(self, l, u, param=None):
        return torch.where(l < 0, -1.0, 1.0).to(l.dtype), torch.where(u > 0, 1.0, -1.0).to(l.dtype)

    def branch_point(self, l, u, param=None):
        inside = (l < 0) & (u > 0)
        return torch.where(inside, torch.zeros_like(l), l + (u - l) / 2)
