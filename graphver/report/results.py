"""Results of ``verify`` and ``bound``: status, certified numbers, witness, statistics, options, versions."""

from __future__ import annotations

import json
import math
import platform
from dataclasses import asdict, dataclass, field
from typing import Any


def versions() -> dict[str, str]:
    import sympy
    import torch

    from graphver import __version__

    return {"graphver": __version__, "torch": torch.__version__, "sympy": sympy.__version__,
            "python": platform.python_version()}


def joined(texts, limit: int) -> str:
    """'; '-joined ``texts`` cut at ``limit`` characters, reading only as many as needed."""
    parts, length = [], 0
    for text in texts:
        parts.append(text)
        length += len(text) + 2
        if length >= limit:
            break
    return "; ".join(parts)[:limit]


def plain(value):
    """JSON-safe value: infinities become strings, tensors lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):
        return plain(value.tolist())
    return value


def json_text(value, indent: int | None = 2) -> str:
    """``value`` as strict JSON, the one convention of every JSON file graphver and acopf write: ``plain``
    data, non-finite numbers as the strings "inf", "-inf" and "nan", never bare Infinity or NaN
    (``allow_nan=False`` fails loudly on anything ``plain`` missed)."""
    return json.dumps(plain(value), indent=indent, allow_nan=False)


@dataclass
class BabStats:
    """What the run did: domains, depth, rounds, time per phase, and what was pruned why."""

    domains_explored: int = 0
    domains_left: int = 0
    max_depth: int = 0
    rounds: int = 0
    input_splits: int = 0
    node_splits: int = 0
    pruned_bound: int = 0
    pruned_infeasible: int = 0
    domain_errors: int = 0
    candidates_evaluated: int = 0
    candidates_unconfirmed: int = 0
    fbbt_infeasible: int = 0  # domains proven empty by bound tightening on the constraints
    fbbt_shrink: float = 0.0  # total width (summed over variables and domains) that tightening removed
    obbt_kept: list = field(default_factory=list)  # per root OBBT round: sum of widths after / before
    lagrangian_improved: int = 0  # domains whose bound the Lagrangian (multipliers on constraints) raised
    time_lagrangian: float = 0.0  # part of time_bound
    lp_solved: int = 0  # LPs of domain relaxations solved (graphver.bounds.lp)
    lp_improved: int = 0  # domains whose bound the LP raised above CROWN's and the Lagrangian's
    time_lp: float = 0.0  # part of time_bound
    constraint_infeasible: int = 0  # domains pruned as infeasible (tightening or a constraint's certified bound)
    incumbent_from: str = ""  # which search found the best point: sampling, projected gradient, ipopt, domain centre
    ipopt: str = ""  # "used", "off", or why it is unavailable
    ipopt_calls: int = 0
    ipopt_failures: int = 0  # calls that did not report convergence (their points are still evaluated)
    ipopt_improved: int = 0  # calls whose point became the incumbent
    ipopt_status: dict = field(default_factory=dict)  # IPOPT status text -> count
    workers: int = 0  # processes that bounded domains on Ray (0: this process only)
    workers_lost: int = 0  # workers that died during the run (their domains went back to the store)
    time_bound: float = 0.0
    time_branch: float = 0.0
    time_search: float = 0.0
    time_ipopt: float = 0.0  # part of time_search
    time_total: float = 0.0
    proved_by: str = ""
    stop_reason: str = ""
    history: list = field(default_factory=list)  # (seconds, lower, upper) after each round
    messages: list = field(default_factory=list)


def format_point(point: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.10g}" for k, v in point.items())


def stats_line(s: "BabStats") -> str:
    """The summary line shared by both results: work done, time per phase, why it stopped."""
    ipopt = ""
    if s.ipopt_calls:
        failed = f", {s.ipopt_failures} not converged" if s.ipopt_failures else ""
        ipopt = f" (ipopt {s.ipopt_calls} calls{failed}, {s.time_ipopt:.2f} s)"
    elif s.ipopt and s.ipopt not in ("used", "off"):
        ipopt = f" ({s.ipopt})"
    return (f"  {s.domains_explored} domains explored, max depth {s.max_depth}, {s.time_total:.2f} s "
            f"(bound {s.time_bound:.2f} s, branch {s.time_branch:.2f} s, search {s.time_search:.2f} s{ipopt}); "
            f"{s.stop_reason}")


def demoted(stats, what: str) -> str:
    """The status of a result whose numbers do not prove what its status claims: "unknown", with a message
    (and the stop reason) saying why. Only a bug upstream gets here; a result must never claim more than it
    proves."""
    note = f"status demoted to unknown: {what} does not prove it"
    if isinstance(stats, BabStats):
        stats.messages.append(note)
        stats.stop_reason = f"{stats.stop_reason}; {note}" if stats.stop_reason else note
    return "unknown"


class JsonResult:
    """Serialisation shared by the result dataclasses: plain data, infinities as strings."""

    def to_dict(self) -> dict:
        return plain(asdict(self))

    def to_json(self, indent: int | None = 2) -> str:
        return json_text(self.to_dict(), indent=indent)


@dataclass
class VerifyResult(JsonResult):
    """``status``: "verified", "falsified", "unknown" or "infeasible" (no point of the box satisfies the
    constraints, so the property holds vacuously). ``margin_lower``: proven lower bound on the worst
    margin over the domain (>= 0 proves the property). ``counterexample``: variable -> value, re-checked in
    float64 (``counterexample_margins``) and at 30 digits (``counterexample_check``, decimal strings), when
    falsified."""

    status: str
    margin_lower: float
    counterexample: dict[str, float] | None
    counterexample_margins: list[float] | None
    property: list[str]
    combine: str
    stats: BabStats
    options: dict[str, Any]
    counterexample_check: list[str] | None = None
    constraints: list[str] = field(default_factory=list)
    max_violation: float | None = None  # of the counterexample's constraints (feasible within feasibility_tol)
    versions: dict[str, str] = field(default_factory=versions)

    def __post_init__(self):
        # invariant: "verified" needs a finite proven margin bound >= 0 (a defence: the engine never gives less)
        if self.status == "verified" and not (math.isfinite(self.margin_lower) and self.margin_lower >= 0):
            self.status = demoted(self.stats, f"proven margin bound {self.margin_lower!r}")

    def __str__(self) -> str:
        joiner = " and " if self.combine == "all" else " or "
        lines = [f"verify: {self.status.upper()}  ({joiner.join(self.property)})"]
        lines.append(f"  proven lower bound on the worst margin: {self.margin_lower:.10g}")
        if self.counterexample is not None:
            violation = f", max constraint violation {self.max_violation:.3g}" if self.constraints else ""
            lines.append(f"  counterexample: {format_point(self.counterexample)}  (margins {self.counterexample_margins}"
                         f"{violation})")
        lines.append(stats_line(self.stats))
        return "\n".join(lines)


@dataclass
class BoundResult(JsonResult):
    """Certified ``lower`` <= min (or max) of the expression <= ``upper``; ``upper`` is the value at
    ``witness``, a point of the box (for sense="max" the roles mirror: ``upper`` is proven, ``lower`` is
    attained at the witness). ``status``: "solved" when the gap is within tolerance, "infeasible" when no
    point of the box satisfies the constraints (certified; lower = upper = +inf for min), else "unknown".
    With constraints the proven bound is over the exact feasible set, and the witness satisfies every
    constraint within ``feasibility_tol`` (``max_violation``)."""

    sense: str
    lower: float
    upper: float
    gap: float
    status: str
    witness: dict[str, float] | None
    expression: str
    stats: BabStats
    options: dict[str, Any]
    constraints: list[str] = field(default_factory=list)
    max_violation: float | None = None  # of the witness's constraints (<= feasibility_tol)
    versions: dict[str, str] = field(default_factory=versions)

    def __post_init__(self):
        # invariant: "solved" needs finite bounds whose gap is within the tolerance (a defence, see demoted)
        if self.status == "solved":
            tolerance = math.inf
            if "abs_tol" in self.options and "rel_tol" in self.options:
                value = self.upper if self.sense == "min" else self.lower
                tolerance = max(self.options["abs_tol"], self.options["rel_tol"] * abs(value))
            if not (math.isfinite(self.lower) and math.isfinite(self.upper) and self.gap <= tolerance):
                self.status = demoted(self.stats, f"bounds [{self.lower!r}, {self.upper!r}], gap {self.gap!r}")

    def __str__(self) -> str:
        proven = "lower" if self.sense == "min" else "upper"
        lines = [f"bound ({self.sense} of {self.expression}): {self.status.upper()}",
                 f"  [{self.lower:.10g}, {self.upper:.10g}]  gap {self.gap:.3g}  ({proven} is proven, the other "
                 f"attained at the witness)"]
        if self.constraints:
            lines.append(f"  subject to {len(self.constraints)} constraints: {joined(self.constraints, 300)}")
        if self.witness is not None:
            violation = f"  (max constraint violation {self.max_violation:.3g})" if self.constraints else ""
            lines.append(f"  witness: {format_point(self.witness)}{violation}")
        lines.append(stats_line(self.stats))
        return "\n".join(lines)
