"""The ACOPF in rectangular voltage coordinates: an exact reformulation of the polar model.

With V_i = e_i + j f_i, the polar terms become polynomials:

    vm_i^2 = e_i^2 + f_i^2,   vm_i vm_j cos(va_i - va_j) = e_i e_j + f_i f_j = wr_ij,
    vm_i vm_j sin(va_i - va_j) = f_i e_j - e_i f_j = wi_ij,

so every flow, balance and thermal limit is quadratic or quartic, and its relaxation is a product
relaxation instead of a product of trigonometric envelopes (the reason SCIP's root gap drops from 28 %
to 7.7 % on case5_pjm, see shared/notes/acopf.md). Voltage limits become vmin^2 <= e^2 + f^2 <= vmax^2;
the reference angle is f_ref = 0, e_ref >= 0; the angle-difference limits (within +-90 degrees) become
tan(angmin) wr_ij <= wi_ij <= tan(angmax) wr_ij with wr_ij >= 0, which is equivalent; tan of the
exact limit (degrees * pi / 180) is an exact sympy number, so the constraint is exactly the case's (a
float tan could round inward). Variable boxes come from the polar ones: with |va_i| <= d_i (the path
bound of ``common.angle_bounds``), e_i in [vmin cos d_i, vmax] when d_i < 90 degrees and
f_i in [-vmax sin d_i, vmax sin d_i], exact numbers rounded outward by ``Model.var``, so nothing
feasible is cut off.
"""

from __future__ import annotations

import sympy

import graphver as gv
from acopf.data import RIGHT_ANGLE, branch_degrees, check_angle_limits
from acopf.formulations.common import (AcopfModel, angle_bounds, at_least, at_most, balances, constrain, exact,
                                       exact_radians,
                                       generator_variables, losses_cut, pi_flows, tan_limits, thermal_limits,
                                       total_cost)


def branch_flows(net, e, f, k):
    """(p_fr, q_fr, p_to, q_to) of branch k in rectangular coordinates, and (wr, wi)."""
    i, j = int(net.f_bus[k]), int(net.t_bus[k])
    wr = e[i] * e[j] + f[i] * f[j]
    wi = f[i] * e[j] - e[i] * f[j]
    return pi_flows(net, k, e[i] ** 2 + f[i] ** 2, e[j] ** 2 + f[j] ** 2, wr, wi), (wr, wi)


def voltage_variables(m: gv.Model, net) -> tuple[list, list]:
    """e_i in [vmin cos d_i, vmax] and f_i in [-vmax sin d_i, vmax sin d_i], with d_i the path bound of
    |va_i| (``common.angle_bounds``); e_ref >= 0 and f_ref = 0 at the reference bus (and wherever d_i = 0:
    an island's own reference). The ends are exact sympy numbers, which ``Model.var`` rounds outward."""
    reach = angle_bounds(net)
    e, f = [], []
    for i, bus in enumerate(net.bus_ids):
        vmax, vmin = exact(net.vmax[i]), exact(net.vmin[i])
        if reach[i] == 0:
            e.append(m.var(f"e_{bus}", max(vmin, sympy.Integer(0)), vmax))
            f.append(m.var(f"f_{bus}", 0.0, 0.0))
            continue
        d = reach[i]
        low = vmin * sympy.cos(exact_radians(d)) if d < RIGHT_ANGLE else -vmax
        spread = vmax * sympy.sin(exact_radians(d)) if d < RIGHT_ANGLE else vmax
        e.append(m.var(f"e_{bus}", low, vmax))
        f.append(m.var(f"f_{bus}", -spread, spread))
    return e, f


def build_rectangular(net) -> AcopfModel:
    check_angle_limits(net)
    m = gv.Model(f"acopf_{net.name}_rect")
    e, f = voltage_variables(m, net)
    pg, qg = generator_variables(m, net)
    squared = [e[i] ** 2 + f[i] ** 2 for i in range(net.n_bus)]
    rows = []
    for i in range(net.n_bus):  # exact squares: a float square may round inward
        rows += [at_most(squared[i], exact(net.vmax[i]) ** 2), at_least(squared[i], exact(net.vmin[i]) ** 2)]
    flows = []
    for k, (low, high) in enumerate(branch_degrees(net)):
        flow, (wr, wi) = branch_flows(net, e, f, k)
        flows.append(flow)
        rows += thermal_limits(net, k, flow)
        tan_low, tan_high = tan_limits(low, high)
        rows += [at_least(wr, 0), at_most(wi - tan_high * wr, 0), at_least(wi - tan_low * wr, 0)]
    constrain(m, rows + balances(net, pg, qg, squared, flows) + losses_cut(net, pg, squared))
    return AcopfModel(m, total_cost(net, pg), e, f, pg, qg, "rectangular")
