"""Constraints of a model: ``h(x) == c`` (``sympy.Eq`` / ``gv.Eq``), ``g(x) <= c`` and ``g(x) >= c``.

Each constraint becomes one or two *rows* ``c_k(x) <= 0``: ``g <= c`` gives ``g - c``, ``g >= c`` gives
``c - g``, and ``h == c`` gives both ``h - c`` and ``c - h``. A box domain is infeasible as soon as the
certified lower bound of one row is positive; a point is feasible within ``tol`` when every row is
``<= tol``. Strict relations are treated as their closures (``<`` as ``<=``): over the reals the optimum
of a continuous function on ``{g < c}`` is approached but perhaps not attained, and the certified lower
bound over the closure is still a lower bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import sympy
from sympy.core import relational

from graphver.errors import ModelError


@dataclass(frozen=True)
class Constraint:
    """One user constraint: ``kind`` "eq" (expr == 0) or "le" (expr <= 0), and the relation the user wrote,
    whose ``text`` is printed when first asked for (printing the rows of a 60-bus ACOPF took 4 s of
    building a model that is then only solved, never reported)."""

    expr: sympy.Expr
    kind: str
    relation: object = field(repr=False, compare=False)

    @property
    def text(self) -> str:
        cached = self.__dict__.get("_text")
        if cached is None:
            cached = str(self.relation)
            object.__setattr__(self, "_text", cached)
        return cached

    @property
    def rows(self) -> list[sympy.Expr]:
        """The rows ``<= 0`` this constraint contributes; an equality's second row is ``-1 * expr`` left
        unevaluated (sympy's negation distributes over a sum: seconds on the balance rows of an 89-bus
        ACOPF), built once."""
        cached = self.__dict__.get("_rows")
        if cached is None:
            cached = [self.expr, sympy.Mul(-1, self.expr, evaluate=False)] if self.kind == "eq" else [self.expr]
            object.__setattr__(self, "_rows", cached)
        return list(cached)


class ConstraintTexts(Sequence):
    """The constraints' texts, each printed when first read (results keep them; printing all 1,700 rows
    of an 89-bus ACOPF takes seconds that a run reporting one line does not need). ``tolist`` gives
    them all, as JSON writers ask."""

    def __init__(self, constraints: list[Constraint]):
        self.constraints = list(constraints)

    def __len__(self) -> int:
        return len(self.constraints)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [c.text for c in self.constraints[index]]
        return self.constraints[index].text

    def __eq__(self, other) -> bool:
        return list(self) == list(other) if isinstance(other, (Sequence, list)) else NotImplemented

    def __repr__(self) -> str:
        return f"ConstraintTexts({len(self)} constraints)"

    def tolist(self) -> list[str]:
        return list(self)


def as_constraints(relations) -> list[Constraint]:
    """Parse what the user passed to ``Model.constrain`` (a relation or a list of them)."""
    items = list(relations) if isinstance(relations, (list, tuple)) else [relations]
    if not items:
        raise ModelError("constrain needs at least one relation")
    return [one(item) for item in items]


def one(relation) -> Constraint:
    if isinstance(relation, bool) or relation is sympy.true or relation is sympy.false:
        raise ModelError(
            f"constrain got {relation!r}, not a relation. In Python, `expr == c` compares sympy expressions "
            "structurally and gives a bool: write gv.Eq(expr, c) for an equality (<= and >= work as written). "
            "If sympy simplified the relation to True or False, the constraint is trivial."
        )
    if isinstance(relation, relational.Equality):
        expr, kind = relation.lhs - relation.rhs, "eq"
    elif isinstance(relation, (relational.LessThan, relational.StrictLessThan)):
        expr, kind = relation.lhs - relation.rhs, "le"
    elif isinstance(relation, (relational.GreaterThan, relational.StrictGreaterThan)):
        expr, kind = relation.rhs - relation.lhs, "le"
    elif isinstance(relation, relational.Unequality):
        raise ModelError(f"cannot constrain {relation}: != constraints are not supported (the set is not closed)")
    else:
        raise ModelError(f"cannot constrain {relation!r}: use gv.Eq(f, c), f <= c or f >= c, or a list of them")
    return Constraint(sympy.sympify(expr), kind, relation)
