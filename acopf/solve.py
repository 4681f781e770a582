"""Local ACOPF solutions with IPOPT, checked by an independent evaluation (``acopf.evaluate``)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import sympy

from acopf.data import Network, load
from acopf.evaluate import cost, violations
from acopf.formulations import AcopfModel, build
from graphver.report.results import json_text


@dataclass
class SolveResult:
    """IPOPT's local solution: ``objective`` ($/h, evaluated independently from the point), IPOPT's
    ``status``, ``iterations`` and ``seconds``, the worst constraint violation (``max_violation``, per unit,
    with the worst per family in ``violations``), and the dispatch and voltages, one dict per generator
    and per bus (MW, MVAr, per-unit magnitude, degrees)."""

    case: str
    formulation: str
    objective: float
    status: str
    success: bool
    iterations: int
    seconds: float
    max_violation: float
    violations: dict = field(default_factory=dict)
    generators: list = field(default_factory=list)
    buses: list = field(default_factory=list)

    def to_json(self) -> str:
        return json_text(asdict(self))

    def __str__(self) -> str:
        return (f"acopf solve {self.case}: objective {self.objective:.6f} $/h ({self.status}, {self.iterations} "
                f"iterations, {self.seconds:.2f} s), max violation {self.max_violation:.2e} pu")


def as_network(case) -> Network:
    return case if isinstance(case, Network) else load(case)


def flat_start(acopf: AcopfModel, net: Network) -> dict[str, float]:
    """Magnitudes 1 (clipped into their limits), angles 0, generation in the middle of its limits; in
    rectangular coordinates e = 1 (clipped into its box), f = 0; lifted variables from their links."""
    start = {}
    low = dict(zip(acopf.model.names, acopf.model.lower))
    high = dict(zip(acopf.model.names, acopf.model.upper))
    for i, (first, second) in enumerate(zip(acopf.vm, acopf.va)):
        one = float(np.clip(1.0, net.vmin[i], net.vmax[i]))
        start[first.name] = float(np.clip(one, low[first.name], high[first.name]))
        start[second.name] = float(np.clip(0.0, low[second.name], high[second.name]))
    for k, (p, q) in enumerate(zip(acopf.pg, acopf.qg)):
        start[p.name] = float((net.pmin[k] + net.pmax[k]) / 2)
        start[q.name] = float((net.qmin[k] + net.qmax[k]) / 2)
    values = {sympy.Symbol(name, real=True): value for name, value in start.items()}
    for variable, expression in acopf.links:  # lifted variables: their values at these voltages
        start[variable.name] = float(np.clip(float(expression.subs(values)), low[variable.name], high[variable.name]))
    return start


def point_arrays(acopf: AcopfModel, point: dict) -> tuple[np.ndarray, ...]:
    """(vm, va, pg, qg) at a point of the model (rectangular coordinates converted to polar)."""
    first, second, pg, qg = (np.array([point[s.name] for s in group]) for group in (acopf.vm, acopf.va, acopf.pg, acopf.qg))
    if acopf.formulation in ("rectangular", "lifted"):
        return np.hypot(first, second), np.arctan2(second, first), pg, qg
    return first, second, pg, qg


def solve(case, formulation: str = "rectangular", max_iter: int = 500, max_wall_time: float = 120.0,
          verbose: bool = False) -> SolveResult:
    """Solve the ACOPF of ``case`` (a path or a ``Network``) locally with IPOPT from a flat start."""
    net = as_network(case)
    acopf = build(net, formulation)
    start = time.perf_counter()
    local = acopf.model.minimize(acopf.objective, start=flat_start(acopf, net), max_iter=max_iter,
                                 max_wall_time=max_wall_time, verbose=verbose, tol=1e-8)
    seconds = time.perf_counter() - start
    vm, va, pg, qg = point_arrays(acopf, local.point)
    found = violations(net, vm, va, pg, qg)
    base = net.base_mva
    generators = [{"gen": k + 1, "bus": int(net.bus_ids[net.gen_bus[k]]), "pg_mw": pg[k] * base,
                   "qg_mvar": qg[k] * base, "pmin_mw": net.pmin[k] * base, "pmax_mw": net.pmax[k] * base,
                   "qmin_mvar": net.qmin[k] * base, "qmax_mvar": net.qmax[k] * base}
                  for k in range(net.n_gen)]
    buses = [{"bus": int(net.bus_ids[i]), "vm_pu": vm[i], "va_deg": float(np.degrees(va[i])), "vmin_pu": net.vmin[i],
              "vmax_pu": net.vmax[i]} for i in range(net.n_bus)]
    return SolveResult(net.name, formulation, cost(net, pg), local.status, local.success, local.iterations, seconds,
                       max(found.values()), found, plain(generators), plain(buses))


def plain(rows: list[dict]) -> list[dict]:
    return [{k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in row.items()} for row in rows]


def write_json(result, path: Path) -> None:
    Path(path).write_text(result.to_json() + "\n", encoding="utf-8")
