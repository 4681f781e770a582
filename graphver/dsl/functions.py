"""The functions a model may use: sympy's own (``floor`` and ``ceiling`` among them), plus ``sigmoid``,
``relu``, ``quad_over_lin`` and ``round_half_even`` as sympy functions."""

from __future__ import annotations

import sympy
from sympy import Abs, Max, Min, atan, ceiling, cos, erf, exp, floor, log, sin, sqrt, tan, tanh


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


class round_half_even(sympy.Function):  # noqa: N801
    """x rounded to the nearest integer, ties to the even one (ONNX's Round, numpy's rint, Python's round)."""

    @classmethod
    def eval(cls, x):
        if x.is_integer:
            return x
        if x.is_Float:
            x = sympy.Rational(x)  # the exact binary value
        if x.is_Rational:
            nearest = sympy.floor(x + sympy.Rational(1, 2))
            tie = x + sympy.Rational(1, 2) == nearest
            return nearest - 1 if tie and nearest % 2 == 1 else nearest
        if x.is_number and x.is_real and x.is_rational is False:  # an irrational number is never a tie
            return sympy.floor(x + sympy.Rational(1, 2))
        return None

    def fdiff(self, argindex=1):
        return sympy.S.Zero  # zero away from the jumps at the half-integers

    def _eval_is_integer(self):
        return self.args[0].is_real

    def _eval_is_real(self):
        return self.args[0].is_real


abs_ = Abs  # sympy's Abs; ``abs(x)`` (Python's builtin) also works on sympy expressions
ceil = ceiling  # sympy's floor and ceiling: exact on constants (floor(Rational(7, 2)) is 3, floor(pi) is 3)
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
    "floor": floor,
    "ceil": ceiling,
    "round_half_even": round_half_even,
    "Min": Min,
    "Max": Max,
}
