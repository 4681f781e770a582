"""The ACOPF with lifted voltage products: an exact reformulation of the rectangular model, and the default.

Besides the rectangular voltages e_i, f_i (``rectangular.py``) it has one variable per product that the
flows use, linked to the voltages by equalities:

    w_i = e_i^2 + f_i^2 (= vm_i^2),   wr_ij = e_i e_j + f_i f_j,   wi_ij = f_i e_j - e_i f_j

(one pair wr, wi per connected bus pair, shared by parallel branches). Every flow, balance,
angle-difference limit and the losses cut is then linear in (w, wr, wi, pg, qg), so its relaxation is
exact, and all the nonlinearity sits in the linking equalities, each relaxed once for all the rows that
use the product: the relaxation lives in the lifted space of the SOC and QC relaxations, instead of
giving each balance row its own relaxation of the same products. The valid redundant inequality

    wr_ij^2 + wi_ij^2 <= w_i w_j      (|V_i V_j*|^2 = |V_i|^2 |V_j|^2)

adds the second-order-cone constraint of the SOC relaxation, written in its convex form
wr^2/w_j + wi^2/w_j <= w_i (``gv.quad_over_lin``, w_j > 0), whose tangent planes the LP bounds use
as outer approximation cuts (a product w_i w_j would be relaxed by McCormick planes, as loose as the
curvature the cone has to capture). Voltage limits are the boxes of w_i, [vmin^2, vmax^2];
the lifted variables' boxes follow from the magnitude and angle-difference limits (wr = vm_i vm_j
cos(va_i - va_j), wi = vm_i vm_j sin(va_i - va_j)). Every box end is an exact sympy number (exact
squares, cos and sin of the exact angles), which ``Model.var`` rounds outward, so no feasible point is
cut off; the angle rows use tan of the exact limits, as in ``rectangular.py``.
"""

from __future__ import annotations

from fractions import Fraction

import sympy

import graphver as gv
from acopf.data import check_angle_limits, check_parallel_limits, pair_limits
from acopf.formulations.common import (AcopfModel, at_least, at_most, balances, constrain, equal, exact, exact_radians,
                                       generator_variables,
                                       losses_cut, pi_flows, tan_limits, thermal_limits, total_cost)
from acopf.formulations.rectangular import voltage_variables


def product_box(net, i: int, j: int, low: Fraction, high: Fraction) -> tuple[tuple, tuple]:
    """Boxes of wr = vm_i vm_j cos(d) and wi = vm_i vm_j sin(d) for d in [low, high] degrees (within +-90,
    so cos > 0), as exact sympy numbers: the extremes are chosen by comparing the exact degrees (cos falls
    with |d|, sin rises with d), never by comparing rounded values."""
    small = exact(net.vmin[i]) * exact(net.vmin[j])
    large = exact(net.vmax[i]) * exact(net.vmax[j])
    cos_low = sympy.cos(exact_radians(max(abs(low), abs(high))))
    cos_high = sympy.Integer(1) if low <= 0 <= high else sympy.cos(exact_radians(min(abs(low), abs(high))))
    sin_low, sin_high = sympy.sin(exact_radians(low)), sympy.sin(exact_radians(high))
    wr = (small * cos_low, large * cos_high)
    wi = ((small if low >= 0 else large) * sin_low, (large if high >= 0 else small) * sin_high)
    return wr, wi


def build_lifted(net) -> AcopfModel:
    check_angle_limits(net)
    check_parallel_limits(net)
    m = gv.Model(f"acopf_{net.name}_lifted")
    e, f = voltage_variables(m, net)
    pg, qg = generator_variables(m, net)
    links = []
    w = []
    for i, bus in enumerate(net.bus_ids):
        w.append(m.var(f"w_{bus}", exact(net.vmin[i]) ** 2, exact(net.vmax[i]) ** 2))
        links.append((w[i], e[i] ** 2 + f[i] ** 2))
    products = {}
    rows = []
    for (i, j), (low, high) in pair_limits(net).items():
        box_r, box_i = product_box(net, i, j, low, high)
        name = f"{net.bus_ids[i]}_{net.bus_ids[j]}"
        wr, wi = m.var(f"wr_{name}", *box_r), m.var(f"wi_{name}", *box_i)
        products[(i, j)] = (wr, wi)
        links += [(wr, e[i] * e[j] + f[i] * f[j]), (wi, f[i] * e[j] - e[i] * f[j])]
        tan_low, tan_high = tan_limits(low, high)
        rows += [at_most(wi - tan_high * wr, 0), at_least(wi - tan_low * wr, 0)]
        rows.append(at_most(gv.quad_over_lin(wr, w[j]) + gv.quad_over_lin(wi, w[j]) - w[i], 0))
    flows = []
    for k in range(net.n_branch):
        i, j = int(net.f_bus[k]), int(net.t_bus[k])
        wr, wi = products[(i, j)] if (i, j) in products else (products[(j, i)][0], -products[(j, i)][1])
        flow = pi_flows(net, k, w[i], w[j], wr, wi)  # linear in the lifted variables
        flows.append(flow)
        rows += thermal_limits(net, k, flow)
    rows += [equal(variable - expression, 0) for variable, expression in links]
    constrain(m, rows + balances(net, pg, qg, w, flows) + losses_cut(net, pg, w))
    return AcopfModel(m, total_cost(net, pg), e, f, pg, qg, "lifted", links)
