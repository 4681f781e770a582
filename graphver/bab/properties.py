"""Properties for ``verify``: sympy relations, lists (all must hold), ``Any``/``All``.

Every relation becomes a *margin* row that is >= 0 exactly where the relation holds (``f <= c`` gives
``c - f``; ``f >= c`` gives ``f - c``). One sign convention for branch-and-bound, search and reports: a
property holds on a set when its aggregated margin (min over rows for All, max for Any) is >= 0 there
(> 0 for strict relations).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from graphver.bab.problem import VerifyGoal
from graphver.errors import ModelError


class All:
    """Every relation must hold (a plain list means the same)."""

    def __init__(self, relations):
        self.relations = list(relations)


class Any:
    """At least one relation must hold at every point (a disjunction, pointwise)."""

    def __init__(self, relations):
        self.relations = list(relations)


@dataclass(frozen=True)
class Property:
    """Normalised property: margin rows, how they aggregate, and whether they are strict."""

    margins: tuple  # sympy expressions, >= 0 where each relation holds
    texts: tuple  # the relations as the user wrote them
    combine: str  # "all" or "any"
    strict: tuple  # per row: True for < and >

    def holds(self, margins_values) -> bool:
        """Whether given float margins satisfy the property (used for counterexample checks)."""
        return VerifyGoal(self.combine, self.strict).holds(list(margins_values))

    def goal(self) -> VerifyGoal:
        return VerifyGoal(self.combine, self.strict)


def margin_of(relation) -> tuple[sympy.Expr, bool]:
    if isinstance(relation, (sympy.core.relational.LessThan, sympy.core.relational.StrictLessThan)):
        return relation.rhs - relation.lhs, isinstance(relation, sympy.core.relational.StrictLessThan)
    if isinstance(relation, (sympy.core.relational.GreaterThan, sympy.core.relational.StrictGreaterThan)):
        return relation.lhs - relation.rhs, isinstance(relation, sympy.core.relational.StrictGreaterThan)
    if relation is sympy.true or relation is True:
        raise ModelError("the property is trivially true (sympy already simplified it to True)")
    if relation is sympy.false or relation is False:
        raise ModelError("the property is trivially false (sympy already simplified it to False)")
    raise ModelError(
        f"cannot verify {relation!r}: use relations f <= c, f >= c, f < c or f > c (equalities are constraints, "
        f"not properties), a list of them, gv.All([...]) or gv.Any([...])"
    )


def normalise(prop) -> Property:
    """Turn what the user passed to ``verify`` into a ``Property``."""
    combine = "all"
    if isinstance(prop, Any):
        combine, relations = "any", prop.relations
    elif isinstance(prop, All):
        relations = prop.relations
    elif isinstance(prop, (list, tuple)):
        relations = list(prop)
    else:
        relations = [prop]
    if not relations:
        raise ModelError("verify needs at least one relation")
    for relation in relations:
        if isinstance(relation, (All, Any, list, tuple)):
            raise ModelError("nested All/Any properties are not supported yet: verify each part separately")
    rows = [margin_of(r) for r in relations]
    return Property(tuple(m for m, _ in rows), tuple(str(r) for r in relations), combine, tuple(s for _, s in rows))
