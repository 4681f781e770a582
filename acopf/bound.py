"""Certified optimality gaps: IPOPT's feasible point as the upper bound, graphver's branch-and-bound over
the exact ACOPF feasible set as the lower bound.

The upper bound is the cost at IPOPT's local solution, accepted only when the independent numpy
evaluation (``acopf.evaluate``) finds every constraint satisfied within ``feasibility_tol``; it is also
handed to the engine as its first incumbent. The lower bound is rigorous: every domain's bound is a
certified bound of the cost over that domain's feasible part (see graphver's docs/bab.md, Constraints).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

from acopf.evaluate import cost, violations
from acopf.formulations import build
from acopf.solve import as_network, flat_start, point_arrays


@dataclass
class BoundReport:
    """``lower`` (certified) and ``upper`` (the cost at a point feasible within ``max_violation``), the
    relative ``gap`` = (upper - lower) / |upper|, the status ("solved": gap within the target, "unknown":
    stopped first), seconds, domains explored and the engine's history (seconds since the call began, lower,
    upper)."""

    case: str
    formulation: str
    lower: float
    upper: float
    gap: float
    status: str
    seconds: float
    domains: int
    max_violation: float
    ipopt_objective: float
    history: list = field(default_factory=list)
    stop_reason: str = ""

    def to_json(self) -> str:
        """Strict JSON, graphver's convention: non-finite numbers (an upper bound of inf when no feasible
        point was found, a NaN violation) as the strings "inf", "-inf", "nan"."""
        from graphver.report.results import json_text

        return json_text(asdict(self))

    def __str__(self) -> str:
        return (f"acopf bound {self.case} ({self.formulation}): {self.status.upper()}  lower {self.lower:.6f}  "
                f"upper {self.upper:.6f}  gap {100 * self.gap:.4f} %  ({self.domains} domains, {self.seconds:.1f} s; "
                f"{self.stop_reason})")


def lifted_point(built, point: dict) -> dict:
    """A rectangular point extended by the values of ``built``'s lifted variables (if any): the link
    expressions (sums of products of e and f) evaluated in float (``subs`` took seconds on a 60-bus case,
    ``lambdify`` two on a 500-bus one)."""
    extended = dict(point)
    for variable, expression in built.links:
        extended[variable.name] = float_value(expression, point)
    return extended


def float_value(expression, point: dict) -> float:
    """A polynomial sympy expression (sums, products, integer powers of symbols and numbers) in float at
    ``point`` (values keyed by the symbols' names)."""
    if expression.is_Symbol:
        return float(point[expression.name])
    if expression.is_Number:
        return float(expression)
    values = [float_value(arg, point) for arg in expression.args]
    if expression.is_Add:
        return math.fsum(values)
    if expression.is_Mul:
        return math.prod(values)
    if expression.is_Pow and expression.exp.is_Integer:
        return values[0] ** int(expression.exp)
    raise TypeError(f"not a polynomial: {expression}")


def bound(case, formulation: str = "lifted", timeout: float = 600.0, gap: float = 1e-3,
          feasibility_tol: float = 1e-6, progress: bool | None = None, **options) -> BoundReport:
    """Certified lower bound on the ACOPF cost of ``case`` and a feasible upper bound, to relative ``gap``."""
    start = time.perf_counter()
    net = as_network(case)
    built = build(net, formulation)
    # the local solve uses the rectangular model (IPOPT converges badly with the redundant lifted rows)
    local_model = built if formulation != "lifted" else build(net, "rectangular")
    local = local_model.model.minimize(local_model.objective, start=flat_start(local_model, net), max_iter=500,
                                       tol=1e-8, max_wall_time=min(60.0, timeout / 4))
    vm, va, pg, qg = point_arrays(local_model, local.point)
    incumbent = lifted_point(built, local.point)
    ipopt_violation = max(violations(net, vm, va, pg, qg).values())
    ipopt_cost = cost(net, pg)
    remaining = max(0.01, timeout - (time.perf_counter() - start))
    if ipopt_violation <= feasibility_tol:
        # the engine starts from IPOPT's local optimum; its own IPOPT starts (seconds each on the lifted
        # model) would find the same point again: the time goes to the lower bound instead
        options.setdefault("ipopt", "off")
    result = built.model.bound(built.objective, timeout=remaining, rel_tol=gap, abs_tol=0.0, progress=progress,
                               feasibility_tol=feasibility_tol, start=incumbent, **options)
    seconds = time.perf_counter() - start
    # the engine's history counts from the engine's start: shift it to this call's (building and IPOPT
    # count), so that "first bound at" and the plot say what the user waited
    offset = max(0.0, seconds - result.stats.time_total)
    history = [(at + offset, lower, upper) for at, lower, upper in result.stats.history]
    # the upper bound: the better of the engine's witness and IPOPT's point, each checked independently
    candidates = []
    if ipopt_violation <= feasibility_tol:
        candidates.append((ipopt_cost, ipopt_violation))
    if result.witness is not None:
        vm, va, pg, qg = point_arrays(built, result.witness)
        found = max(violations(net, vm, va, pg, qg).values())
        if found <= feasibility_tol:
            candidates.append((cost(net, pg), found))
    upper, violation = min(candidates) if candidates else (math.inf, math.nan)
    lower = result.lower
    relative = (upper - lower) / abs(upper) if math.isfinite(upper) and upper != 0 else math.inf
    status = "infeasible" if result.status == "infeasible" else ("solved" if relative <= gap else "unknown")
    return BoundReport(net.name, formulation, lower, upper, relative, status, seconds, result.stats.domains_explored,
                       violation, ipopt_cost, history, result.stats.stop_reason)
