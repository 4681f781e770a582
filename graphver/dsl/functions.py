"""The functions a model may use: sympy's own, plus ``sigmoid`` and ``relu`` as sympy functions."""

from __future__ import annotations

import sympy
from sympy import Abs, Max, Min, atan, cos, exp, log, sin, sqrt, tan, tanh


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
    "sigmoid": sigmoid,
    "relu": relu,
    "Abs": Abs,
    "Min": Min,
    "Max": Max,
}
