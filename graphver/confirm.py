"""Certified confirmation of a candidate counterexample of a sympy property.

Branch-and-bound finds candidates in floating point; a model's property is confirmed violated at a point
only when certified enclosures of its margins prove it. The point's coordinates enter as exact rationals
(a float64 is a dyadic rational) and every margin is enclosed by ``graphver.exact.enclosure`` (interval
arithmetic, 256 then 1024 bits): a margin like ``(x + 1e-17)**2 - x**2 - 2e-17 x``, exactly 1e-34, keeps
its sign; a margin that is exactly 0 but not provably so is never confirmed as negative. Every constraint
must hold within ``feasibility_tol``, certainly. The verdict uses the goal's own definition of "holds",
applied to the margins' upper ends (``VerifyGoal.certainly_violated``).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Callable, Sequence

import sympy
from torch import Tensor

from graphver.bab.problem import Confirmation, VerifyGoal
from graphver.errors import ModelError
from graphver.exact import enclosure


def sympy_confirmation(variables: Sequence[sympy.Symbol], margins: Sequence[sympy.Expr],
                       constraint_rows: Sequence[sympy.Expr], goal: VerifyGoal,
                       feasibility_tol: float) -> Callable[[Tensor], Confirmation]:
    """A ``Problem.confirm`` callable for margin rows written in sympy (``Model.verify``)."""
    tol = Fraction(feasibility_tol)

    def confirm(point: Tensor) -> Confirmation:
        subs = {s: sympy.Rational(float(v)) for s, v in zip(variables, point.tolist())}
        try:  # certified enclosures (sympy.N cannot tell an exact 0 from noise such as -1e-160)
            ends = [enclosure(r.subs(subs)) for r in margins]
            for row in constraint_rows:  # the point must be feasible within the tolerance, certainly
                if enclosure(row.subs(subs))[1] > tol:
                    return Confirmation(False)
        except ModelError:  # a margin or constraint that is undefined or cannot be certified at the point
            return Confirmation(False)
        if not goal.certainly_violated([hi for _, hi in ends]):
            return Confirmation(False)
        middle = [sympy.Rational(lo.numerator, lo.denominator) / 2 + sympy.Rational(hi.numerator, hi.denominator) / 2
                  for lo, hi in ends]
        return Confirmation(True, tuple(str(sympy.N(m, 30)) for m in middle))

    return confirm
