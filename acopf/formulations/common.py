"""What every ACOPF formulation shares (the role of PowerModels' constraint templates).

The pi-model flows are written once, in ``pi_flows``, over the three quantities a formulation decides:
w_i = |V_i|^2 at each end and the products wr = |V_i||V_j| cos(va_i - va_j), wi = |V_i||V_j| sin(va_i -
va_j). Each formulation only says what stands for them: polar vm_i^2 and vm_i vm_j cos / sin of the angle
difference, rectangular e_i^2 + f_i^2, e_i e_j + f_i f_j and f_i e_j - e_i f_j, lifted its own variables.
The balances, thermal limits, the losses cut, generator variables and costs are the same rows in every
formulation. Data checks (limits the formulations need, the angle limits in exact degrees) live in
``acopf.data``.

Limits are never tightened by rounding: angle limits are exact numbers degrees * pi / 180, squared limits
exact squares, and ``Model.var`` rounds box ends outward.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from fractions import Fraction

import sympy

import graphver as gv
from acopf.data import branch_degrees
from acopf.errors import CaseError


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


def exact_radians(degrees: Fraction) -> sympy.Expr:
    """degrees * pi / 180 as an exact sympy number."""
    return sympy.Rational(degrees.numerator, degrees.denominator) * sympy.pi / 180


def exact(value: float) -> sympy.Rational:
    """A float as the exact rational it is (for constants that get squared or summed)."""
    return sympy.Rational(float(value))


FULL_TURN = Fraction(360)  # degrees


def angle_bounds(net) -> list[Fraction]:
    """|va_i| <= the smallest sum of |angle-difference limits| along a path to the reference bus, in degrees,
    exactly (Fraction sums), at most a full turn. An island that the reference bus does not reach (a bus
    no in-service branch connects, with its own generator) gets its own reference, its first bus: turning
    all voltages of an island by one angle changes none of its rows and none of the others', so fixing
    that angle at 0 cuts off no cost, and removes the island's rotational symmetry. A bound of 0 means the
    angle is 0 (the formulations fix it)."""
    neighbours: dict[int, list[tuple[int, Fraction]]] = {i: [] for i in range(net.n_bus)}
    for f, t, (low, high) in zip(net.f_bus, net.t_bus, branch_degrees(net)):
        w = max(abs(low), abs(high))
        neighbours[int(f)].append((int(t), w))
        neighbours[int(t)].append((int(f), w))
    distance: list[Fraction | None] = [None] * net.n_bus
    for root in [int(net.ref), *range(net.n_bus)]:
        if distance[root] is not None:
            continue
        distance[root] = Fraction(0)
        queue = [(Fraction(0), root)]
        while queue:
            d, i = heapq.heappop(queue)
            if d > distance[i]:
                continue
            for j, w in neighbours[i]:
                if distance[j] is None or d + w < distance[j]:
                    distance[j] = d + w
                    heapq.heappush(queue, (d + w, j))
    return [min(d, FULL_TURN) for d in distance]


def branch_parameters(net, k) -> tuple[float, ...]:
    """Series conductance g and susceptance b (g + jb = 1/(r + jx)), charging bc, and the tap's real and
    imaginary parts tr, ti and squared magnitude tm2 of branch k."""
    r, x, bc = float(net.r[k]), float(net.x[k]), float(net.b[k])
    tap, shift = float(net.tap[k]), float(net.shift[k])
    return r / (r * r + x * x), -x / (r * r + x * x), bc, tap * math.cos(shift), tap * math.sin(shift), tap * tap


def pi_flows(net, k, w_from, w_to, wr, wi) -> tuple[sympy.Expr, ...]:
    """(p_fr, q_fr, p_to, q_to) of branch k in the pi model: series admittance g + jb = 1/(r + jx), line
    charging bc/2 at each end, a complex tap t = tr + j ti at the from end, over w_from = |V_i|^2,
    w_to = |V_j|^2, wr = |V_i||V_j| cos(va_i - va_j), wi = |V_i||V_j| sin(va_i - va_j):

        p_fr = g/tm2 w_from + (-g tr + b ti)/tm2 wr + (-b tr - g ti)/tm2 wi
        q_fr = -(b + bc/2)/tm2 w_from - (-b tr - g ti)/tm2 wr + (-g tr + b ti)/tm2 wi
        p_to = g w_to + (-g tr - b ti)/tm2 wr - (-b tr + g ti)/tm2 wi
        q_to = -(b + bc/2) w_to - (-b tr + g ti)/tm2 wr - (-g tr - b ti)/tm2 wi

    (the to end sees the angle difference va_j - va_i: cos is even, sin is odd)."""
    g, b, bc, tr, ti, tm2 = branch_parameters(net, k)
    p_fr = linear((g / tm2, w_from), ((-g * tr + b * ti) / tm2, wr), ((-b * tr - g * ti) / tm2, wi))
    q_fr = linear((-(b + bc / 2) / tm2, w_from), (-(-b * tr - g * ti) / tm2, wr), ((-g * tr + b * ti) / tm2, wi))
    p_to = linear((g, w_to), ((-g * tr - b * ti) / tm2, wr), (-(-b * tr + g * ti) / tm2, wi))
    q_to = linear((-(b + bc / 2), w_to), (-(-b * tr + g * ti) / tm2, wr), (-(-g * tr - b * ti) / tm2, wi))
    return p_fr, q_fr, p_to, q_to


def linear(*terms) -> sympy.Expr:
    """sum c * x over (float c, expression x) pairs, each product left unexpanded (sympy distributes a
    number over a sum, and the balances would then re-collect thousands of terms: seconds per case)."""
    return sum_of([scaled(c, x) for c, x in terms if c != 0])


def scaled(c: float, x) -> sympy.Expr:
    """c * x as written (sympy's evaluating product distributes c over a sum and re-sorts the factors)."""
    if c == 1:
        return x
    return sympy.Mul(sympy.Float(c), x, evaluate=False)


def at_most(lhs, rhs) -> sympy.Rel:
    """``lhs <= rhs`` as written: sympy's evaluating ``<=`` asks the assumption system about lhs - rhs,
    seconds per row on the flow expressions of a 60-bus case, to decide a row that is never trivial here."""
    return sympy.Le(lhs, rhs, evaluate=False)


def at_least(lhs, rhs) -> sympy.Rel:
    return sympy.Ge(lhs, rhs, evaluate=False)


def equal(lhs, rhs) -> sympy.Rel:
    return sympy.Eq(lhs, rhs, evaluate=False)


def tan_limits(low, high) -> tuple[sympy.Expr, sympy.Expr]:
    """tan of the exact angle limits (degrees, within +-90): exact sympy numbers (tan(60 deg) = sqrt(3))."""
    return sympy.tan(exact_radians(low)), sympy.tan(exact_radians(high))


def polynomial(coefficients, value) -> sympy.Expr:
    """sum c_k value^k with coefficients highest degree first."""
    degree = len(coefficients) - 1
    return sum(float(c) * value ** (degree - k) for k, c in enumerate(coefficients) if c != 0) or sympy.Integer(0)


def constrain(m: gv.Model, rows: list) -> None:
    """Model.constrain for rows that sympy may have decided: a row that holds for every point (True) is
    left out; one that never holds (False) means the network is infeasible, which ``balances`` and
    ``losses_cut`` report by name before this point is reached."""
    kept = []
    for row in rows:
        if row is sympy.true or row is True:
            continue
        if row is sympy.false or row is False:
            raise CaseError(f"network {net_name(m)}: a constraint row is false for every point (infeasible data)")
        kept.append(row)
    if kept:
        m.constrain(kept)


def net_name(m: gv.Model) -> str:
    return m.name.removeprefix("acopf_")


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
    rate = exact(net.rate_a[k]) ** 2  # exact: a float square may round below rate_a^2
    return [at_most(p_fr**2 + q_fr**2, rate), at_most(p_to**2 + q_to**2, rate)]


def balances(net, pg, qg, squared_magnitudes, flows) -> list:
    """Active and reactive power balance at every bus (two equalities per bus, in bus order):
    generation - demand - shunt |V|^2 = the flows leaving the bus. A bus with nothing connected has no
    terms: its balance 0 = 0 is left out, and a non-zero demand there raises CaseError naming the bus
    (``acopf.data`` drops such buses, or refuses them, before a model is built)."""
    # the terms of each mismatch, summed once (sympy's += re-flattens the growing sum: seconds on 89 buses);
    # a flow leaving the bus enters as -1 * flow, unexpanded
    p_terms = [[pg[k] for k in net.gens_at(i)] for i in range(net.n_bus)]
    q_terms = [[qg[k] for k in net.gens_at(i)] for i in range(net.n_bus)]
    for k, (p_fr, q_fr, p_to, q_to) in enumerate(flows):
        i, j = int(net.f_bus[k]), int(net.t_bus[k])
        p_terms[i].append(negated(p_fr))
        q_terms[i].append(negated(q_fr))
        p_terms[j].append(negated(p_to))
        q_terms[j].append(negated(q_to))
    rows = []
    for i in range(net.n_bus):
        w = squared_magnitudes[i]
        active = p_terms[i] + nonzero((-float(net.pd[i]), 1), (-float(net.gs[i]), w))
        reactive = q_terms[i] + nonzero((-float(net.qd[i]), 1), (float(net.bs[i]), w))
        rows += balance_row(net, i, "active", sum_of(active))
        rows += balance_row(net, i, "reactive", sum_of(reactive))
    return rows


def sum_of(terms: list) -> sympy.Expr:
    """The sum of ``terms`` as written: sympy's evaluating sum sorts and merges hundreds of terms (seconds
    per case); the tape sums repeated terms just the same."""
    if not terms:
        return sympy.Integer(0)
    return sympy.Add(*terms, evaluate=False) if len(terms) > 1 else terms[0]


def nonzero(*terms) -> list:
    """c * x for the (c, x) pairs with c != 0 (a zero Float would stay in a sum as 0.0)."""
    return [sympy.Float(c) * x for c, x in terms if c != 0]


def negated(expression) -> sympy.Expr:
    """-expression, term by term for a sum, keeping each term's sum unexpanded (``scaled``)."""
    if isinstance(expression, sympy.Add):
        return sympy.Add(*[negated(term) for term in expression.args], evaluate=False)
    coefficient, rest = expression.as_coeff_Mul()
    return scaled(-float(coefficient), rest) if coefficient.is_Float or coefficient.is_Integer else -expression


def balance_row(net, i: int, kind: str, mismatch: sympy.Expr) -> list:
    """[mismatch = 0]; [] when the mismatch is the number 0; CaseError when it is another number."""
    mismatch = sympy.sympify(mismatch)
    if mismatch.free_symbols:
        return [equal(mismatch, 0)]
    if mismatch == 0:
        return []
    raise CaseError(f"bus {net.bus_ids[i]}: nothing in service is connected to it (no branch, generator or shunt), "
                    f"so its {kind} demand {-float(mismatch)} pu cannot be balanced: the network is infeasible")


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
    # the same float demands as the balances, summed exactly (a rounded sum could cut feasible points off)
    total = sum(pg, sympy.Integer(0)) - sum((exact(pd) for pd in net.pd), sympy.Integer(0))
    total -= sum((float(net.gs[i]) * squared_magnitudes[i] for i in range(net.n_bus) if net.gs[i] != 0), sympy.Integer(0))
    slack = sympy.Rational(losses_slack(net))  # a Rational: a Float would round the sum with it
    if not total.free_symbols:  # no generator and no shunt: the cut says total demand <= 0
        if total >= -slack:
            return []
        raise CaseError(f"network {net.name}: a total demand of {-float(total)} pu and no in-service generator: "
                        "the network is infeasible")
    return [at_least(total, -slack)]


LOSSES_SLACK = 1e-12  # relative: covers the roundings of the model's float coefficients (a few ulps each)


def losses_slack(net) -> float:
    """How far below 0 the sum of the balances' flow terms can be on the feasible set. With exact
    coefficients p_fr + p_to = g |V_i/t - V_j|^2 >= 0, a semidefinite form on the edge of indefiniteness,
    so the roundings of g/tm2, (-g tr + b ti)/tm2, ... and of sympy's sums of the Float coefficients of one
    monomial in a balance row (parallel branches, the shunt g_s |V_i|^2) can make it slightly negative: by
    at most 1e-12 of the magnitudes of the terms, with |V_i| <= vmax_i. A float, rounded up."""
    total = Fraction(0)
    for k in range(net.n_branch):
        g, b, bc, tr, ti, tm2 = branch_parameters(net, k)
        i, j = int(net.f_bus[k]), int(net.t_bus[k])
        vi, vj = Fraction(float(net.vmax[i])), Fraction(float(net.vmax[j]))
        cross = Fraction((abs(g * tr) + abs(b * ti) + abs(b * tr) + abs(g * ti)) / tm2)
        total += Fraction(abs(g / tm2)) * vi * vi + Fraction(abs(g)) * vj * vj + 2 * cross * vi * vj
    total += sum((Fraction(abs(float(gs))) * Fraction(float(v)) ** 2 for gs, v in zip(net.gs, net.vmax)), Fraction(0))
    # the factor 2 covers the float magnitudes above
    return math.nextafter(float(total * 2 * Fraction(LOSSES_SLACK)), math.inf) if total else 0.0
