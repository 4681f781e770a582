"""The polar AC optimal power flow of PGLib's MODEL.tex, written in graphver's modeling language.

Variables (per unit, radians): voltage magnitude ``vm_<bus>`` in [vmin, vmax] and angle ``va_<bus>``
(0 at the reference bus; elsewhere bounded by the angle-difference limits along the shortest path to
the reference, so no feasible point is cut off), and each in-service generator's ``pg_<k>`` in
[pmin, pmax] and ``qg_<k>`` in [qmin, qmax]. Branch flows are expressions, not variables: the pi model
of ``common.pi_flows`` with w_i = vm_i^2 and the products wr = vm_i vm_j cos(va_i - va_j),
wi = vm_i vm_j sin(va_i - va_j). Constraints: active and reactive power balance at every
bus (generation - demand - shunt vm^2 = sum of the flows leaving the bus), apparent-power limits at both
ends in squared form (p^2 + q^2 <= rate_a^2, where rated), angle-difference limits, and one valid
redundant constraint, "series losses are not negative" (``losses_cut``). Objective: the
generators' polynomial costs in $/h. The products vm_i vm_j cos(va_i - va_j) are kept whole, as one
product of the magnitudes and one trigonometric term of the angle difference.

Limits are never tightened by rounding. Angle limits are the exact numbers degrees * pi / 180 of the
case's degrees (and tan of them in the rectangular forms), squared limits are exact squares, boxes
derived from them are exact sympy numbers: graphver keeps such constants exact until it compiles a tape,
where it rounds them with a recorded error bound, and ``Model.var`` rounds box ends outward.
"""

from __future__ import annotations

import graphver as gv
from acopf.data import branch_degrees
from acopf.formulations.common import (AcopfModel, angle_bounds, at_least, at_most, balances, constrain, exact_radians,
                                       generator_variables, losses_cut, pi_flows, thermal_limits, total_cost)


def branch_flows(net, vm, va, k):
    """(p_fr, q_fr, p_to, q_to) of branch k as sympy expressions of the magnitudes and angles."""
    i, j = int(net.f_bus[k]), int(net.t_bus[k])
    product = vm[i] * vm[j]
    wr, wi = product * gv.cos(va[i] - va[j]), product * gv.sin(va[i] - va[j])
    return pi_flows(net, k, vm[i] ** 2, vm[j] ** 2, wr, wi)


def build_polar(net) -> AcopfModel:
    m = gv.Model(f"acopf_{net.name}")
    va_limit = angle_bounds(net)
    vm, va = [], []
    for i, bus in enumerate(net.bus_ids):
        vm.append(m.var(f"vm_{bus}", float(net.vmin[i]), float(net.vmax[i])))
        limit = exact_radians(va_limit[i])  # 0 at the reference bus (and at an island's own reference)
        va.append(m.var(f"va_{bus}", -limit, limit))  # exact ends, rounded outward by Model.var
    pg, qg = generator_variables(m, net)
    flows = [branch_flows(net, vm, va, k) for k in range(net.n_branch)]
    limits = []
    for k, (flow, (low, high)) in enumerate(zip(flows, branch_degrees(net))):
        i, j = int(net.f_bus[k]), int(net.t_bus[k])
        limits += thermal_limits(net, k, flow)
        limits += [at_most(va[i] - va[j], exact_radians(high)), at_least(va[i] - va[j], exact_radians(low))]
    squared = [v**2 for v in vm]
    constrain(m, balances(net, pg, qg, squared, flows) + limits + losses_cut(net, pg, squared))
    return AcopfModel(m, total_cost(net, pg), vm, va, pg, qg, "polar")
