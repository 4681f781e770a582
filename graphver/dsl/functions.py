"""The functions a model may use: sympy's own, plus ``sigmoid`` and ``relu`` as sympy functions."""

from __future__ import annotations

import sympy
from sympy import Abs, Max, Min, atan, cos, erf, exp, log, sin, sqrt, tan, tanh


class sigmoid(sympy.Function):  # noqa: N801  (sympy function names are lower case)
    """The logistic function 1/(1 + exp(-x))."""

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return 1 / (1 + sympy.exp(-x))
        return None

    def fdiff(self, argindex=1):
        s = sigmoid(self.args[0])
        return s * (1 - s)

    def _eval_is_real(self):
        return self.args[0].is_real

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / (1 + sympy.exp(-x))


class relu(sympy.Function):  # noqa: N801
    """max(x, 0)."""

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return sympy.Max(x, 0)
        if x.is_nonnegative:
            return x
        if x.is_nonpositive:
            return sympy.S.Zero
        return None

    def fdiff(self, argindex=1):
        return sympy.Heaviside(self.args[0])

    def _eval_is_real(self):
        return self.args[0].is_real


class quad_over_lin(sympy.Function):  # noqa: N801
    """x**2 / y, defined for y > 0: jointly convex, with tangent-plane relaxations (the rotated cone
    x**2 <= y*z is ``quad_over_lin(x, y) <= z``). Undefined (nan) where y <= 0."""

    nargs = 2

    @classmethod
    def eval(cls, x, y):
        if y.is_number and x.is_number:
            return x**2 / y if y.is_positive else sympy.nan
        return None

    def fdiff(self, argindex=1):
        x, y = self.args
        return 2 * x / y if argindex == 1 else -(x**2) / y**2

    def _eval_is_real(self):
        return (self.args[0].is_real and self.args[1].is_positive) or None

    def _eval_rewrite_as_Pow(self, x, y, **kwargs):
        return x**2 / y


abs_ = Abs  # sympy's Abs; ``abs(x)`` (Python's builtin) also works on sympy expressions
minimum = Min
maximum = Max

SUPPORTED_FUNCTIONS = {
    "sin": sin,
    "cos": cos,
    "tan": tan,
    "atan": atan,
    "exp": exp,
    "log": log,
    "sqrt": sqrt,
    "tanh": tanh,
    "erf": erf,
    "sigmoid": sigmoid,
    "relu": relu,
    "quad_over_lin": quad_over_lin,
    "Abs": Abs,
    "Min": Min,
    "Max": Max,
}
