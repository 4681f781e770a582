"""Audit (issue 12), items 7 and 10 of the ACOPF client.

Item 7: no limit of the case is tightened by rounding. The angle-difference limits enter the rectangular
and lifted formulations as tan(angmin) wr <= wi <= tan(angmax) wr, and the polar one as
angmin <= va_i - va_j <= angmax: the constants must be tan(degrees * pi / 180) (resp. degrees * pi / 180)
exactly, or beyond it outward, never a float rounded inward (math.tan rounds tan(60), tan(45), tan(12)
and tan(30) degrees toward 0). Checked against mpmath at 60 digits, on the bundled cases, on 60, 45, 12
degrees, on every whole degree and on random rational limits; likewise squared voltage limits, the
lifted boxes, generator boxes in per unit, thermal limits and the losses cut.

Item 10: a bus that no in-service branch reaches never crashes the build. With nothing attached it is
dropped (logged); with its own generator able to cover its load it is a feasible island of one bus; with
load it cannot balance it is a CaseError naming the bus (exit 2 from the command line, no traceback).
Type-4 (isolated) buses are out of service, as in MATPOWER and PowerModels.
"""

from __future__ import annotations

import logging
import math
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import mpmath
import pytest
import sympy
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_acopf_io import TINY

import acopf
from acopf.data import BUS, GEN, bundled_case, correct_case, load, to_network
from acopf.errors import CaseError
from acopf.formulations.common import losses_cut, thermal_limits
from acopf.io import parse_matpower, read_matpower
from graphver import cli
from graphver.tape.compile import round_exact

DATA = Path(__file__).parent / "data"
ISLANDS = DATA / "isolated_buses"
BUNDLED = ("case3_lmbd", "case5_pjm", "case14_ieee", "case30_ieee", "case30_as")
DIGITS = 60
NOISE = mpmath.mpf(10) ** -50  # two 60-digit evaluations of one real differ by less; a float rounding is ~1e-17
CASE3_OPTIMUM = 5812.642973773839  # IPOPT on case3_lmbd (PGLib BASELINE 5.8126e+03)

# The valid 2-bus case of test_acopf_io, whose one branch gets the angle limits under test.
TWO_BUS = TINY.replace("1  -30.0  90.0;", "1  ANGMIN  ANGMAX;").replace("mpc = tiny", "mpc = two_bus")
assert "ANGMIN" in TWO_BUS



logging.getLogger("acopf").setLevel(logging.ERROR)


# The angle limits of each case, from its file (not from the Network): id(network) -> (network, limits)
LIMITS: dict[int, tuple] = {}


def limits_of(case: dict) -> list[tuple[int, int, Fraction, Fraction]]:
    """(from bus id, to bus id, angmin, angmax in degrees) of each in-service branch of a corrected case."""
    return [(int(row[0]), int(row[1]), Fraction(row[11]), Fraction(row[12])) for row in case["branch"] if row[10] > 0]


def remember(net, case: dict):
    LIMITS[id(net)] = (net, limits_of(correct_case(case)))
    return net


def two_bus(low: float, high: float):
    text = TWO_BUS.replace("ANGMIN", repr(float(low))).replace("ANGMAX", repr(float(high)))
    case = parse_matpower(text, "two_bus.m")
    return remember(to_network(correct_case(case), "two_bus.m"), case)


@lru_cache(maxsize=None)
def bundled(name: str):
    return remember(load(bundled_case(name)), read_matpower(bundled_case(name)))


@lru_cache(maxsize=None)
def built(name: str, formulation: str):
    return acopf.build_model(bundled(name), formulation)


# ---- exact reference values (mpmath, 60 digits) ----

def mp(value) -> mpmath.mpf:
    """A sympy number, Fraction or float at 60 digits."""
    with mpmath.workdps(DIGITS):
        if isinstance(value, Fraction):
            return mpmath.mpf(value.numerator) / value.denominator
        if isinstance(value, float):
            return mpmath.mpf(value)
        return mpmath.mpf(str(sympy.N(value, DIGITS + 10)))


def radians(degrees: Fraction) -> mpmath.mpf:
    with mpmath.workdps(DIGITS):
        return mp(degrees) * mpmath.pi / 180


def tan_of(degrees: Fraction) -> mpmath.mpf:
    with mpmath.workdps(DIGITS):
        return mpmath.tan(radians(degrees))


def assert_exact_constant(constant) -> None:
    """An exact sympy number (no Float), which graphver rounds at compile time with a recorded error that
    encloses its value."""
    constant = sympy.sympify(constant)
    assert constant.is_number and not constant.atoms(sympy.Float), constant
    nearest, error = round_exact(constant)
    with mpmath.workdps(DIGITS):
        value = mp(constant)
        assert mpmath.mpf(nearest) - error - NOISE <= value <= mpmath.mpf(nearest) + error + NOISE


def oriented_limits(net) -> dict[tuple[int, int], tuple[list, list]]:
    """Per bus pair (smaller id first): the upper and the lower limits (degrees) of va_i - va_j its
    branches give in the case file, each branch turned to that orientation."""
    pairs: dict[tuple[int, int], tuple[list, list]] = {}
    for i, j, low, high in LIMITS[id(net)][1]:
        if i > j:
            i, j, low, high = j, i, -high, -low
        uppers, lowers = pairs.setdefault((i, j), ([], []))
        uppers.append(high)
        lowers.append(low)
    return pairs


def by_value(constants: list) -> list:
    return sorted(constants, key=lambda c: float(sympy.N(c, 30)))


# ---- the angle-limit constants in each formulation's rows ----

def lifted_tan_constants(built_model) -> dict[tuple[int, int], tuple[list, list]]:
    """Per lifted pair (as named, wr_<i>_<j>): the constants t of wi - t wr <= 0 (upper) and of
    wi - t wr >= 0 (lower)."""
    found: dict[tuple[int, int], tuple[list, list]] = {}
    for constraint in built_model.model.constraints:
        names = sorted(s.name for s in constraint.expr.free_symbols)
        if constraint.kind != "le" or not names or not names[0].startswith("wi_") or len(names) > 2:
            continue
        suffix = names[0][3:]
        if names[1:] not in ([], [f"wr_{suffix}"]):
            continue
        wi, wr = sympy.Symbol(f"wi_{suffix}", real=True), sympy.Symbol(f"wr_{suffix}", real=True)
        a, t = constraint.expr.coeff(wi), constraint.expr.coeff(wr)  # t = 0: a limit of 0 degrees
        assert sympy.expand(constraint.expr - a * wi - t * wr) == 0, constraint.text
        i, j = (int(part) for part in suffix.split("_"))
        uppers, lowers = found.setdefault((i, j), ([], []))
        if a == 1:
            uppers.append(-t)  # wi - t_high wr <= 0
        else:
            assert a == -1, constraint.text
            lowers.append(t)  # t_low wr - wi <= 0
    return found


def rectangular_tan_constants(built_model) -> dict[tuple[int, int], tuple[list, list]]:
    """Per bus pair (i < j): tan of the upper limits of va_i - va_j (rows with f_i e_j - e_i f_j - t wr,
    from either branch orientation) and of the lower limits."""
    found: dict[tuple[int, int], tuple[list, list]] = {}
    for constraint in built_model.model.constraints:
        symbols = constraint.expr.free_symbols
        if constraint.kind != "le" or len(symbols) != 4:
            continue
        if any(power.base.free_symbols for power in constraint.expr.atoms(sympy.Pow)):
            continue  # squares: balances, thermal and voltage rows
        buses = sorted({int(s.name.split("_")[1]) for s in symbols})
        if len(buses) != 2:
            continue
        named = {s.name: s for s in symbols}
        e_i, e_j, f_i, f_j = (named[f"{v}_{b}"] for v, b in (("e", buses[0]), ("e", buses[1]), ("f", buses[0]),
                                                                ("f", buses[1])))
        coefficients: dict = {}
        for term in sympy.Add.make_args(sympy.expand(constraint.expr)):
            coefficient, monomial = term.as_independent(*symbols)
            coefficients[monomial] = coefficients.get(monomial, 0) + coefficient
        assert set(coefficients) <= {e_i * e_j, f_i * f_j, f_i * e_j, e_i * f_j}, constraint.text
        sign = sympy.nsimplify(coefficients.get(f_i * e_j, 0))
        uppers, lowers = found.setdefault(tuple(buses), ([], []))
        tan = coefficients.get(e_i * e_j, sympy.Integer(0))  # 0: a limit of 0 degrees
        if sign == 1:
            uppers.append(-tan)
        elif sign == -1:
            lowers.append(tan)
        else:
            assert sign == 0, constraint.text  # wr >= 0
    return found


def polar_angle_constants(built_model) -> dict[tuple[int, int], tuple[list, list]]:
    """Per bus pair (i < j): the constants of va_i - va_j <= U and va_i - va_j >= L."""
    found: dict[tuple[int, int], tuple[list, list]] = {}
    for constraint in built_model.model.constraints:
        symbols = sorted(constraint.expr.free_symbols, key=lambda s: int(s.name.split("_")[1]))
        if constraint.kind != "le" or len(symbols) != 2 or not all(s.name.startswith("va_") for s in symbols):
            continue
        va_i, va_j = symbols
        a = constraint.expr.coeff(va_i)
        constant = constraint.expr.subs({va_i: 0, va_j: 0})
        assert sympy.expand(constraint.expr - a * va_i + a * va_j - constant) == 0, constraint.text
        uppers, lowers = found.setdefault(tuple(int(s.name.split("_")[1]) for s in symbols), ([], []))
        if a == 1:
            uppers.append(-constant)
        else:
            lowers.append(constant)
    return found


def check_tan_constants(net, found) -> None:
    expected = oriented_limits(net)
    for pair, (uppers, lowers) in found.items():
        want_upper, want_lower = expected[pair]
        for constants, degrees, outward in ((uppers, want_upper, 1), (lowers, want_lower, -1)):
            assert len(constants) == len(degrees) or len(constants) == 1, (pair, constants, degrees)
            if len(constants) == 1:  # the lifted pair: the intersection of its branches' limits
                degrees = [min(degrees) if outward > 0 else max(degrees)]
            for constant, limit in zip(by_value(constants), sorted(degrees)):
                assert_exact_constant(constant)
                with mpmath.workdps(DIGITS):
                    # tan(high) rounded up (or exact), tan(low) rounded down (or exact)
                    assert outward * (mp(constant) - tan_of(limit)) >= -NOISE, (pair, limit, constant)
    assert set(found) == set(expected) or all(len(v[0]) == 1 for v in found.values())


def check_polar_constants(net, found) -> None:
    expected = oriented_limits(net)
    assert set(found) == set(expected)
    for pair, (uppers, lowers) in found.items():
        for constants, degrees, outward in ((uppers, expected[pair][0], 1), (lowers, expected[pair][1], -1)):
            for constant, limit in zip(by_value(constants), sorted(degrees)):
                assert_exact_constant(constant)
                with mpmath.workdps(DIGITS):
                    assert outward * (mp(constant) - radians(limit)) >= -NOISE, (pair, limit, constant)


def check_all_formulations(net, formulations=("lifted", "rectangular", "polar")) -> None:
    for formulation in formulations:
        model = acopf.build_model(net, formulation)
        if formulation == "lifted":
            found = lifted_tan_constants(model)
            check_tan_constants(net, {tuple(sorted(pair)): _orient(pair, v) for pair, v in found.items()})
        elif formulation == "rectangular":
            check_tan_constants(net, rectangular_tan_constants(model))
        else:
            check_polar_constants(net, polar_angle_constants(model))


def _orient(pair, limits):
    """Lifted limits of va_i - va_j for a pair named (i, j) with i > j, turned to (j, i): tan(-d) = -tan(d)."""
    uppers, lowers = limits
    return (uppers, lowers) if pair[0] < pair[1] else ([-t for t in lowers], [-t for t in uppers])


# ---- item 7: the tests ----

@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_cases_lifted_angle_constants_are_exact(name):
    net = bundled(name)
    found = lifted_tan_constants(built(name, "lifted"))
    assert found, "the lifted model has angle rows"
    check_tan_constants(net, {tuple(sorted(pair)): _orient(pair, v) for pair, v in found.items()})


@pytest.mark.parametrize("name", ["case5_pjm", "case14_ieee"])
@pytest.mark.parametrize("formulation", ["rectangular", "polar"])
def test_bundled_cases_angle_constants_are_exact(name, formulation):
    net = bundled(name)
    model = built(name, formulation)
    if formulation == "rectangular":
        found = rectangular_tan_constants(model)
        check_tan_constants(net, found)
    else:
        found = polar_angle_constants(model)
        check_polar_constants(net, found)
    assert sum(len(u) + len(lo) for u, lo in found.values()) == 2 * net.n_branch


@pytest.mark.parametrize("degrees, inward", [(60, True), (45, True), (30, True), (12, False)])
def test_angle_limits_that_math_tan_rounds(degrees, inward):
    """math.tan(math.radians(d)) < tan(d degrees) for 60, 45 and 30: the old constant cut a sliver off
    (for 12 degrees it happens to round up, by 8e-19). The constants now are exact for all of them."""
    exact = tan_of(Fraction(degrees))
    assert (mp(math.tan(math.radians(degrees))) < exact) == inward  # the audit's finding, for the record
    check_all_formulations(two_bus(-degrees, degrees))


def test_asymmetric_and_one_sided_limits():
    for low, high in ((-12.0, 45.0), (5.0, 60.0), (-60.0, -12.0), (-0.1, 89.9), (0.0, 30.0)):
        check_all_formulations(two_bus(low, high))


@pytest.mark.parametrize("degrees", range(1, 90))
def test_every_whole_degree(degrees):
    net = two_bus(-degrees, degrees)
    found = lifted_tan_constants(acopf.build_model(net, "lifted"))
    check_tan_constants(net, found)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.fractions(min_value=-89, max_value=89, max_denominator=997),
       st.fractions(min_value=-89, max_value=89, max_denominator=997))
def test_random_rational_limits(a, b):
    low, high = sorted((float(a), float(b)))
    check_all_formulations(two_bus(low, high))


@pytest.mark.parametrize("degrees", [60, 45, 12])
def test_compiled_tape_encloses_the_exact_tan(degrees):
    """graphver rounds the exact constant once, at compile time, and records an error bound: the tape's
    coefficient of wr in wi - tan(angmax) wr <= 0, plus or minus that bound, contains -tan(angmax)."""
    model = acopf.build_model(two_bus(-degrees, degrees), "lifted").model
    (row,) = [c.expr for c in model.constraints
              if c.kind == "le" and {s.name for s in c.expr.free_symbols} == {"wi_1_2", "wr_1_2"}
              and c.expr.coeff(sympy.Symbol("wi_1_2", real=True)) == 1]
    tape = model.compile([row])
    (linear,) = [i for i in tape.instructions if i.kind == "linear"]
    column = model.names.index("wr_1_2")
    (k,) = (linear.cols == column).nonzero().flatten().tolist()
    weight, error = float(linear.weights[k]), float(linear.weight_error[k])
    with mpmath.workdps(DIGITS):
        exact = -tan_of(Fraction(degrees))
        assert mpmath.mpf(weight) - error - NOISE <= exact <= mpmath.mpf(weight) + error + NOISE


@pytest.mark.parametrize("name", BUNDLED)
def test_voltage_limits_are_exact_squares(name):
    net = bundled(name)
    rect = built(name, "rectangular").model
    for constraint in rect.constraints:
        symbols = sorted(constraint.expr.free_symbols, key=lambda s: s.name)
        if len(symbols) != 2 or {s.name.split("_")[0] for s in symbols} != {"e", "f"}:
            continue
        if len({s.name.split("_")[1] for s in symbols}) != 1:
            continue
        bus = net.bus_ids.tolist().index(int(symbols[0].name.split("_")[1]))
        constant = constraint.expr.subs({s: 0 for s in symbols})
        assert isinstance(constant, sympy.Rational), constraint.text  # exact, not a rounded Float
        vmax2, vmin2 = Fraction(float(net.vmax[bus])) ** 2, Fraction(float(net.vmin[bus])) ** 2
        if constant < 0:  # e^2 + f^2 - vmax^2 <= 0
            assert Fraction(int(-constant.p), int(constant.q)) >= vmax2
        else:  # vmin^2 - e^2 - f^2 <= 0
            assert Fraction(int(constant.p), int(constant.q)) <= vmin2
    lifted = built(name, "lifted").model
    for i, bus in enumerate(net.bus_ids):
        index = lifted.names.index(f"w_{bus}")
        assert Fraction(lifted.lower[index]) <= Fraction(float(net.vmin[i])) ** 2
        assert Fraction(lifted.upper[index]) >= Fraction(float(net.vmax[i])) ** 2


@pytest.mark.parametrize("name", BUNDLED)
def test_lifted_product_boxes_contain_the_exact_extremes(name):
    net = bundled(name)
    lifted = built(name, "lifted").model
    limits = oriented_limits(net)
    for index, variable in enumerate(lifted.names):
        if not variable.startswith(("wr_", "wi_")):
            continue
        i, j = (int(part) for part in variable.split("_")[1:])
        uppers, lowers = limits[tuple(sorted((i, j)))]
        low, high = max(lowers), min(uppers)
        if i > j:
            low, high = -high, -low
        a, b = (net.bus_ids.tolist().index(bus) for bus in (i, j))
        with mpmath.workdps(DIGITS):
            small = mp(float(net.vmin[a])) * mp(float(net.vmin[b]))
            large = mp(float(net.vmax[a])) * mp(float(net.vmax[b]))
            if variable.startswith("wr_"):
                extremes = [small * mpmath.cos(radians(max(abs(low), abs(high)))),
                            large * (1 if low <= 0 <= high else mpmath.cos(radians(min(abs(low), abs(high)))))]
            else:
                extremes = [min(small * mpmath.sin(radians(low)), large * mpmath.sin(radians(low))),
                            max(small * mpmath.sin(radians(high)), large * mpmath.sin(radians(high)))]
            assert mpmath.mpf(lifted.lower[index]) <= extremes[0], variable
            assert mpmath.mpf(lifted.upper[index]) >= extremes[1], variable


@pytest.mark.parametrize("name", BUNDLED)
def test_generator_boxes_and_thermal_limits_are_rounded_outward(name):
    """pmin / base and qmin / base rounded down, pmax / base, qmax / base and rate_a / base up (a nearest
    quotient such as -30 MVAr / 100 = -0.29999999999999998890 lies inside the case's limit)."""
    case = read_matpower(bundled_case(name))
    base = Fraction(case["baseMVA"])
    net = bundled(name)
    model = built(name, "lifted").model
    gens = [row for row in case["gen"] if row[GEN["status"]] > 0]
    for k, row in enumerate(gens):
        for symbol, low, high in (("pg", "Pmin", "Pmax"), ("qg", "Qmin", "Qmax")):
            index = model.names.index(f"{symbol}_{k}")
            assert Fraction(model.lower[index]) <= Fraction(row[GEN[low]]) / base
            assert Fraction(model.upper[index]) >= Fraction(row[GEN[high]]) / base
    p, q = sympy.symbols("p q", real=True)
    branches = [row for row in case["branch"] if row[10] > 0]
    for k, row in enumerate(branches):
        rows = thermal_limits(net, k, (p, q, p, q))
        if row[5] == 0:
            assert rows == []
            continue
        constant = -rows[0].lhs.subs({p: 0, q: 0}) + rows[0].rhs if rows[0].lhs.free_symbols else rows[0].rhs
        assert isinstance(constant, sympy.Rational)
        assert Fraction(int(constant.p), int(constant.q)) >= (Fraction(row[5]) / base) ** 2


@pytest.mark.parametrize("name", BUNDLED)
def test_losses_cut_never_exceeds_the_exact_demand(name):
    """sum pg - sum gs w >= sum pd - slack: the constant is the exact sum of the demands the balances use,
    lowered by a slack for the rounding of the flow coefficients (never a rounded-up float sum)."""
    net = bundled(name)
    pg = sympy.symbols(f"pg0:{net.n_gen}", real=True)
    w = sympy.symbols(f"w0:{net.n_bus}", real=True)
    (row,) = losses_cut(net, list(pg), list(w))
    expr = row.rhs - row.lhs  # <= 0
    constant = expr.subs({s: 0 for s in expr.free_symbols})
    assert not constant.atoms(sympy.Float)
    demand = sum((Fraction(float(pd)) for pd in net.pd), Fraction(0))
    assert Fraction(int(constant.p), int(constant.q)) <= demand
    assert demand - Fraction(int(constant.p), int(constant.q)) <= Fraction(1, 10**8)  # the slack: 2e-9 pu on case5


def test_hand_built_network_without_degrees_steps_outward():
    """A Network without angmin_deg / angmax_deg: degrees from its radians, stepped outward."""
    import dataclasses

    net = dataclasses.replace(two_bus(-60.0, 60.0), angmin_deg=None, angmax_deg=None)
    found = lifted_tan_constants(acopf.build_model(net, "lifted"))
    ((uppers, lowers),) = found.values()
    with mpmath.workdps(DIGITS):
        exact = mpmath.tan(mp(float(net.angmax[0])))  # tan of the Network's own radians
        assert mp(uppers[0]) >= exact and mp(lowers[0]) <= -exact


# ---- item 10: isolated buses ----

def run(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


def test_isolated_bus_with_nothing_attached_is_dropped_and_logged(caplog):
    path = ISLANDS / "empty_bus.m"
    with caplog.at_level(logging.INFO, logger="acopf"):
        net = load(path)
    assert net.n_bus == 3 and net.bus_ids.tolist() == [1, 2, 3]
    assert "bus 4: dropped: no in-service branch or generator, no load or shunt" in caplog.text
    for formulation in ("polar", "rectangular", "lifted"):
        acopf.build_model(net, formulation)
    result = acopf.solve(net)
    assert result.success and result.max_violation <= 1e-6
    assert result.objective == pytest.approx(CASE3_OPTIMUM, rel=1e-7)


def test_island_with_its_own_generator_builds_and_solves():
    """Bus 4 (20 MW, 5 MVAr) with no in-service branch and a generator of 10 $/MWh that covers it: a feasible
    island, modelled as it is; the optimum is case3_lmbd's plus 200 $/h, in every formulation."""
    net = load(ISLANDS / "island_with_generator.m")
    assert net.n_bus == 4 and net.gens_at(3) == [3] and 3 not in net.f_bus.tolist() + net.t_bus.tolist()
    lifted = acopf.build_model(net, "lifted").model
    assert "w_4" in lifted.names
    rect = acopf.build_model(net, "rectangular").model
    index = rect.names.index("f_4")  # the island is its own angle reference: f = 0, e >= 0
    assert rect.lower[index] == rect.upper[index] == 0.0 and rect.lower[rect.names.index("e_4")] == 0.9
    for formulation in ("rectangular", "polar"):
        result = acopf.solve(net, formulation)
        assert result.success and result.max_violation <= 1e-6, formulation
        assert result.objective == pytest.approx(CASE3_OPTIMUM + 200.0, rel=1e-7), formulation
        assert result.generators[3]["pg_mw"] == pytest.approx(20.0, abs=1e-5)


def test_type4_bus_is_out_of_service(caplog):
    """Type 4 with nothing in service attached: dropped with its load, which a warning names."""
    with caplog.at_level(logging.INFO, logger="acopf"):
        net = load(ISLANDS / "type4_with_load.m")
    assert net.n_bus == 3 and 4 not in net.bus_ids.tolist()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "bus 4" in r.getMessage()]
    assert warnings and "Pd 20.0 MW" in warnings[0] and "not served" in warnings[0]
    assert acopf.solve(net).objective == pytest.approx(CASE3_OPTIMUM, rel=1e-7)


def test_type4_bus_with_in_service_branches_is_an_error():
    with pytest.raises(CaseError) as error:
        load(DATA / "broken_cases" / "isolated_bus.m")
    assert ("bus 3: isolated buses (type 4) are not supported with in-service components attached "
            "(branch 1 (1-3), branch 2 (3-2))") in str(error.value)


BROKEN = {
    "unserved_load": ["bus 4: no in-service branch connects it", "Pd 30.0 MW, Qd 10.0 MVAr and no in-service "
                      "generator", "infeasible"],
    "island_generator_too_small": ["bus 4: no in-service branch connects it", "against gen 4 with Pg in [0.0, 20.0] MW"],
    "isolated_reference_bus": ["reference bus 4: no in-service branch, load, shunt or generator is attached"],
    "self_loop": ["branch 4 (2-2): both ends at bus 2"],
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_isolated_bus_files_are_case_errors(name):
    path = ISLANDS / f"{name}.m"
    assert path.read_text().startswith("% BROKEN: ")
    with pytest.raises(CaseError) as error:
        load(path)
    message = str(error.value)
    assert message.startswith(str(path))
    for part in BROKEN[name]:
        assert part in message


@pytest.mark.parametrize("command", ["bound", "solve"])
@pytest.mark.parametrize("name", sorted(BROKEN))
def test_cli_isolated_bus_is_an_input_error_without_traceback(name, command):
    result = run("acopf", command, ISLANDS / f"{name}.m", "--timeout" if command == "bound" else "--quiet",
                 *(["5"] if command == "bound" else []))
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert BROKEN[name][0] in result.output and "Traceback" not in result.output


def test_cli_island_with_generator_is_solved():
    result = run("acopf", "solve", ISLANDS / "island_with_generator.m", "--quiet")
    assert result.exit_code == 0 and result.output.startswith("solved "), result.output


GEN_4 = "\t4\t20.0\t0.0\t10.0\t-10.0\t1.0\t100.0\t1\t50.0"
BUS_4 = "\t4\t2\t20.0\t5.0\t0.0\t0.0"


@pytest.mark.parametrize("old, new, keep_generator, feasible", [
    (GEN_4, GEN_4.replace("50.0", "20.0"), True, True),  # Pmax = Pd exactly
    (GEN_4, GEN_4.replace("50.0", repr(math.nextafter(20.0, 0.0))), True, False),  # one ulp short
    (GEN_4, GEN_4.replace("10.0\t-10.0", "4.0\t-10.0"), True, False),  # Qmax 4 < Qd 5 MVAr
    # no generator: 10 MW of load against a shunt Gs = -10 MW (it produces 10 MW at vm = 1): feasible
    (BUS_4, "\t4\t1\t10.0\t0.0\t-10.0\t0.0", False, True),
    (BUS_4, "\t4\t1\t10.0\t0.0\t-10.0\t1.0", False, False),  # Bs = 1 MVAr has nowhere to go
    (BUS_4, "\t4\t1\t0.0\t0.0\t10.0\t0.0", False, False),  # a shunt alone consumes unless vm = 0
])
def test_island_balance_is_decided_exactly(old, new, keep_generator, feasible):
    from acopf.data import check_case

    text = (ISLANDS / "island_with_generator.m").read_text()
    assert old in text
    text = text.replace(old, new)
    if not keep_generator:  # remove the generator at bus 4 (its gen and gencost rows)
        text = "".join(line for line in text.splitlines(keepends=True)
                       if not line.startswith(GEN_4) and line != "\t2\t0.0\t0.0\t3\t0.0\t10.0\t0.0;\n")
    case = parse_matpower(text, "island.m")
    assert len(case["gen"]) == (4 if keep_generator else 3)
    if not feasible:
        with pytest.raises(CaseError, match="island.m: bus 4: no in-service branch connects it"):
            check_case(case, "island.m")
        return
    check_case(case, "island.m")
    net = to_network(correct_case(case), "island.m")
    assert net.n_bus == 4
    for formulation in ("polar", "rectangular", "lifted"):
        acopf.build_model(net, formulation)
    result = acopf.solve(net)
    assert result.success and result.max_violation <= 1e-6


def hand_built_with_isolated_bus(pd: float = 0.0):
    """A Network whose bus 4 no branch reaches, built past the data layer's checks and corrections."""
    case = parse_matpower((ISLANDS / "empty_bus.m").read_text(), "hand.m")
    corrected = correct_case(case)
    row = list(case["bus"][3])
    row[BUS["Pd"]] = pd
    corrected["bus"].append(row)
    return to_network(corrected, "hand.m")


def test_formulations_never_pass_a_bool_to_constrain():
    """A bus with nothing connected has balance rows 0 = 0: left out, not handed to Model.constrain as
    True (graphver's "constrain got True, not a relation")."""
    net = hand_built_with_isolated_bus()
    assert net.n_bus == 4
    base = load(ISLANDS / "empty_bus.m")
    for formulation in ("polar", "rectangular", "lifted"):
        model = acopf.build_model(net, formulation).model
        reference = acopf.build_model(base, formulation).model
        extra = {"polar": 0, "rectangular": 2, "lifted": 1}[formulation]  # voltage rows / link of bus 4
        assert len(model.constraints) == len(reference.constraints) + extra, formulation


def test_formulations_report_unserved_load_by_bus():
    net = hand_built_with_isolated_bus(pd=30.0)
    for formulation in ("polar", "rectangular", "lifted"):
        with pytest.raises(CaseError, match="bus 4: nothing in service is connected to it"):
            acopf.build_model(net, formulation)
