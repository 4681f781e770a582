"""The polar AC optimal power flow of PGLib's MODEL.tex, written in graphver's modeling language.

Variables (per unit, radians): voltage magnitude ``vm_<bus>`` in [vmin, vmax] and angle ``va_<bus>``
(0 at the reference bus; elsewhere bounded by the angle-difference limits along the shortest path to
the reference, so no feasible point is cut off), and each in-service generator's ``pg_<k>`` in
[pmin, pmax] and ``qg_<k>`` in [qmin, qmax]. Branch flows are expressions, not variables: the pi model
with series admittance g + jb = 1/(r + jx), line charging b/2 at each end and a complex tap
t = tap * e^(j shift) at the from end,

    p_fr = g/tap^2 vm_i^2 + (-g tr + b ti)/tap^2 vm_i vm_j cos(va_i - va_j) + (-b tr - g ti)/tap^2 vm_i vm_j sin(va_i - va_j)
    q_fr = -(b + bc/2)/tap^2 vm_i^2 - (-b tr - g ti)/tap^2 vm_i vm_j cos(..) + (-g tr + b ti)/tap^2 vm_i vm_j sin(..)
    p_to = g vm_j^2 + (-g tr - b ti)/tap^2 vm_i vm_j cos(va_j - va_i) + (-b tr + g ti)/tap^2 vm_i vm_j sin(va_j - va_i)
    q_to = -(b + bc/2) vm_j^2 - (-b tr + g ti)/tap^2 vm_i vm_j cos(..) + (-g tr - b ti)/tap^2 vm_i vm_j sin(..)

with tr = tap cos(shift), ti = tap sin(shift). Constraints: active and reactive power balance at every
bus (generation - demand - shunt vm^2 = sum of the flows leaving the bus), apparent-power limits at both
ends in squared form (p^2 + q^2 <= rate_a^2, where rated), angle-difference limits, and one valid
redundant constraint, "series losses are not negative" (``losses_cut``). Objective: the
generators' polynomial costs in $/h. The products vm_i vm_j cos(va_i - va_j) are kept whole, as one
product of the magnitudes and one trigonometric term of the angle difference.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import numpy as np
import sympy

import graphver as gv


@dataclass
class AcopfModel:
    """A built ACOPF: the graphver ``model`` (variables, box, constraints), the cost ``objective``, and the
    symbols by role: the two voltage coordinates per bus index (``vm``, ``va`` in the polar formulation;
    the real and imaginary parts e, f in the rectangular and lifted ones), ``pg``, ``qg`` per generator
    index, and in the lifted formulation the ``links`` (variable, expression of the voltages) that define
    its lifted variables."""

    model: gv.Model
    objective: sympy.Expr
    vm: list = field(default_factory=list)
    va: list = field(default_factory=list)
    pg: list = field(default_factory=list)
    qg: list = field(default_factory=list)
    formulation: str = "polar"
    links: list = field(default_factory=list)  # (lifted variable, its expression in the voltages)


def angle_bounds(net) -> np.ndarray:
    """|va_i| <= the smallest sum of |angle-difference limits| along a path to the reference bus."""
    limit = np.maximum(np.abs(net.angmin), np.abs(net.angmax))
    neighbours: dict[int, list[tuple[int, float]]] = {i: [] for i in range(net.n_bus)}
    for f, t, w in zip(net.f_bus, net.t_bus, limit):
        neighbours[int(f)].append((int(t), float(w)))
        neighbours[int(t)].append((int(f), float(w)))
    distance = np.full(net.n_bus, math.inf)
    distance[net.ref] = 0.0
    queue = [(0.0, int(net.ref))]
    while queue:
        d, i = heapq.heappop(queue)
        if d > distance[i]:
            continue
        for j, w in neighbours[i]:
            if d + w < distance[j]:
                distance[j] = d + w
                heapq.heappush(queue, (d + w, j))
    # an unreachable bus (an island without a reference) keeps the widest meaningful range
    return np.where(np.isfinite(distance), np.minimum(distance, 2 * math.pi), 2 * math.pi)


def branch_parameters(net, k) -> tuple[float, ...]:
    """Series conductance g and susceptance b (g + jb = 1/(r + jx)), charging bc, and the tap's real and
    imaginary parts tr, ti and squared magnitude tm2 of branch k."""
    r, x, bc = float(net.r[k]), float(net.x[k]), float(net.b[k])
    tap, shift = float(net.tap[k]), float(net.shift[k])
    return r / (r * r + x * x), -x / (r * r + x * x), bc, tap * math.cos(shift), tap * math.sin(shift), tap * tap


def branch_flows(net, vm, va, k):
    """(p_fr, q_fr, p_to, q_to) of branch k as sympy expressions."""
    g, b, bc, tr, ti, tm2 = branch_parameters(net, k)
    i, j = int(net.f_bus[k]), int(net.t_bus[k])
    product = vm[i] * vm[j]
    cos_ij, sin_ij = gv.cos(va[i] - va[j]), gv.sin(va[i] - va[j])
    p_fr = g / tm2 * vm[i] ** 2 + (-g * tr + b * ti) / tm2 * product * cos_ij + (-b * tr - g * ti) / tm2 * product * sin_ij
    q_fr = (-(b + bc / 2) / tm2 * vm[i] ** 2 - (-b * tr - g * ti) / tm2 * product * cos_ij
            + (-g * tr + b * ti) / tm2 * product * sin_ij)
    # the to end uses the angle difference va_j - va_i: cos is even, sin is odd
    p_to = g * vm[j] ** 2 + (-g * tr - b * ti) / tm2 * product * cos_ij - (-b * tr + g * ti) / tm2 * product * sin_ij
    q_to = (-(b + bc / 2) * vm[j] ** 2 - (-b * tr + g * ti) / tm2 * product * cos_ij
            - (-g * tr - b * ti) / tm2 * product * sin_ij)
    return p_fr, q_fr, p_to, q_to


def polynomial(coefficients, value) -> sympy.Expr:
    """sum c_k value^k with coefficients highest degree first."""
    degree = len(coefficients) - 1
    return sum(float(c) * value ** (degree - k) for k, c in enumerate(coefficients) if c != 0) or sympy.Integer(0)


def build_polar(net) -> AcopfModel:
    m = gv.Model(f"acopf_{net.name}")
    va_limit = angle_bounds(net)
    vm, va = [], []
    for i, bus in enumerate(net.bus_ids):
        vm.append(m.var(f"vm_{bus}", float(net.vmin[i]), float(net.vmax[i])))
        limit = 0.0 if i == net.ref else float(va_limit[i])
        va.append(m.var(f"va_{bus}", -limit, limit))
    pg, qg = generator_variables(m, net)
    flows = [branch_flows(net, vm, va, k) for k in range(net.n_branch)]
    limits = []
    for k, flow in enumerate(flows):
        i, j = int(net.f_bus[k]), int(net.t_bus[k])
        limits += thermal_limits(net, k, flow)
        limits += [va[i] - va[j] <= float(net.angmax[k]), va[i] - va[j] >= float(net.angmin[k])]
    squared = [v**2 for v in vm]
    m.constrain(balances(net, pg, qg, squared, flows) + limits + losses_cut(net, pg, squared))
    return AcopfModel(m, total_cost(net, pg), vm, va, pg, qg, "polar")


def generator_variables(m: gv.Model, net) -> tuple[list, list]:
    """``pg_<k>`` in [pmin, pmax] and ``qg_<k>`` in [qmin, qmax] for every in-service generator."""
    pg = [m.var(f"pg_{k}", float(net.pmin[k]), float(net.pmax[k])) for k in range(net.n_gen)]
    qg = [m.var(f"qg_{k}", float(net.qmin[k]), float(net.qmax[k])) for k in range(net.n_gen)]
    return pg, qg


def thermal_limits(net, k, flow) -> list:
    """p^2 + q^2 <= rate_a^2 at both ends of branch k (nothing where the branch is unrated)."""
    if not math.isfinite(net.rate_a[k]):
        return []
    p_fr, q_fr, p_to, q_to = flow
    rate = float(net.rate_a[k]) ** 2
    return [p_fr**2 + q_fr**2 <= rate, p_to**2 + q_to**2 <= rate]


def balances(net, pg, qg, squared_magnitudes, flows) -> list:
    """Active and reactive power balance at every bus (two equalities per bus, in bus order):
    generation - demand - shunt |V|^2 = the flows leaving the bus."""
    p_out = [sympy.Integer(0)] * net.n_bus
    q_out = [sympy.Integer(0)] * net.n_bus
    for k, (p_fr, q_fr, p_to, q_to) in enumerate(flows):
        i, j = int(net.f_bus[k]), int(net.t_bus[k])
        p_out[i] += p_fr
        q_out[i] += q_fr
        p_out[j] += p_to
        q_out[j] += q_to
    rows = []
    for i in range(net.n_bus):
        gens = net.gens_at(i)
        p_gen = sum((pg[k] for k in gens), sympy.Integer(0))
        q_gen = sum((qg[k] for k in gens), sympy.Integer(0))
        w = squared_magnitudes[i]
        rows.append(gv.Eq(p_gen - float(net.pd[i]) - float(net.gs[i]) * w - p_out[i], 0))
        rows.append(gv.Eq(q_gen - float(net.qd[i]) + float(net.bs[i]) * w - q_out[i], 0))
    return rows


def total_cost(net, pg) -> sympy.Expr:
    """The generators' polynomial costs in $/h."""
    return sum((polynomial(net.cost[k], pg[k]) for k in range(net.n_gen)), sympy.Integer(0))


def losses_cut(net, pg, squared_magnitudes) -> list:
    """The valid redundant constraint "series losses are not negative": summing the active balances of
    all buses leaves sum_k pg_k - sum_i pd_i - sum_i gs_i vm_i^2 = sum over branches of (p_fr + p_to), and
    p_fr + p_to = g |V_i / t - V_j|^2 >= 0 when the series conductance g is (r >= 0). It restates what
    the balances imply together, which their separate relaxations lose. Left out if some r < 0."""
    if bool((net.r < 0).any()):
        return []
    total = sum(pg, sympy.Integer(0)) - float(net.pd.sum())
    total -= sum((float(net.gs[i]) * squared_magnitudes[i] for i in range(net.n_bus) if net.gs[i] != 0), sympy.Integer(0))
    return [total >= 0]
