"""acopf's I/O and data layers: the MATPOWER parser, checks, corrections, per-unit conversion.

Every deliberately broken file of tests/data/broken_cases raises CaseError with the file name and
the component in its message.
"""

import inspect
import logging
import math
from pathlib import Path

import numpy as np
import pytest

from acopf.data import CASES_DIR, Network, bundled_case, check_case, correct_case, load, to_network
from acopf.errors import CaseError
from acopf.io import matpower, parse_matpower, read_matpower, write_matpower

BROKEN = Path(__file__).parent / "data" / "broken_cases"

# name: (buses, generators, branches) of the bundled PGLib cases
COUNTS = {
    "case3_lmbd": (3, 3, 3),
    "case5_pjm": (5, 5, 6),
    "case14_ieee": (14, 5, 20),
    "case30_ieee": (30, 6, 41),
    "case30_as": (30, 6, 41),
}

# A valid 2-bus case; tests replace parts of it.
TINY = """\
function mpc = tiny
mpc.version = '2';
mpc.baseMVA = 100.0;
mpc.bus = [
    1  3  0.0   0.0  0.0  0.0  1  1.0  0.0  230.0  1  1.1  0.9;
    2  1  50.0  10.0 5.0  -3.0 1  1.0  0.0  230.0  1  1.05 0.95;
];
mpc.gen = [
    1  0.0  0.0  100.0  -100.0  1.0  100.0  1  200.0  10.0;
];
mpc.gencost = [
    2  0.0  0.0  3  0.02  10.0  5.0;
];
mpc.branch = [
    1  2  0.01  0.1  0.02  0.0  0.0  0.0  0.0  5.0  1  -30.0  90.0;
];
"""


def tiny_case(old: str = "", new: str = "") -> dict:
    assert old in TINY
    return parse_matpower(TINY.replace(old, new), source="tiny.m")


# ---- the bundled cases ----

@pytest.mark.parametrize("name", COUNTS)
def test_bundled_case_counts(name):
    case = read_matpower(bundled_case(name))
    assert case["name"] == f"pglib_opf_{name}"
    assert case["version"] == "2"
    assert case["baseMVA"] == 100.0
    assert (len(case["bus"]), len(case["gen"]), len(case["branch"])) == COUNTS[name]
    assert len(case["gencost"]) == len(case["gen"])
    network = load(bundled_case(name))
    assert (network.n_bus, network.n_gen, network.n_branch) == COUNTS[name]


@pytest.mark.parametrize("name", COUNTS)
def test_round_trip(name):
    case = read_matpower(bundled_case(name))
    assert parse_matpower(write_matpower(case)) == case


def test_round_trip_keeps_infinities_and_exact_floats():
    case = tiny_case("200.0  10.0", "Inf  -0.1")
    case["bus"][1][2] = 0.1 + 0.2  # not the float 0.3: the writer must keep every bit
    again = parse_matpower(write_matpower(case))
    assert again == case
    assert again["gen"][0][8] == math.inf and again["bus"][1][2] == 0.1 + 0.2


def test_case5_pjm_per_unit_values():
    network = load(bundled_case("case5_pjm"))
    assert network.name == "pglib_opf_case5_pjm" and network.base_mva == 100.0
    assert network.bus_ids.tolist() == [1, 2, 3, 4, 5]
    assert network.bus_ids.dtype.kind == "i" and network.gen_bus.dtype.kind == "i"
    assert network.pd[1] == pytest.approx(3.0) and network.qd[1] == pytest.approx(0.9861)
    assert network.ref == 3  # bus 4 is the reference bus (type 3)
    assert network.pmax[0] == pytest.approx(0.4) and network.pmin[0] == 0.0
    assert network.qmin[0] == pytest.approx(-0.3) and network.qmax[0] == pytest.approx(0.3)
    # 14 $/MWh * 100 MW per pu = 1400 $/h per pu
    np.testing.assert_allclose(network.cost[0], [0.0, 1400.0, 0.0])
    assert network.gen_bus.tolist() == [0, 0, 2, 3, 4]
    assert network.f_bus.tolist() == [0, 0, 0, 1, 2, 3]
    assert network.t_bus.tolist() == [1, 3, 4, 2, 3, 4]
    assert network.rate_a[0] == pytest.approx(4.0) and network.rate_a[5] == pytest.approx(2.4)
    assert network.r[0] == 0.00281 and network.x[0] == 0.0281 and network.b[0] == 0.00712
    np.testing.assert_array_equal(network.tap, 1.0)
    np.testing.assert_array_equal(network.shift, 0.0)
    np.testing.assert_allclose(network.angmin, -np.pi / 6)
    np.testing.assert_allclose(network.angmax, np.pi / 6)
    assert network.gens_at(0) == [0, 1] and network.gens_at(1) == []
    assert network.branches_from(0) == [0, 1, 2] and network.branches_to(3) == [1, 4]


def test_case30_ieee_transformer_taps():
    network = load(bundled_case("case30_ieee"))
    # branch 11 (6-9) has ratio 0.978 in the file; lines have 0, which means 1
    assert network.tap[10] == 0.978 and network.tap[0] == 1.0


def test_quadratic_cost_in_per_unit():
    network = load(bundled_case("case3_lmbd"))
    # gen 1: 0.11 P^2 + 5 P ($/h, P in MW) = 1100 p^2 + 500 p with p = P / 100 in pu
    np.testing.assert_allclose(network.cost[0], [1100.0, 500.0, 0.0])
    assert np.polyval(network.cost[0], 1.5) == pytest.approx(0.11 * 150.0**2 + 5.0 * 150.0)


def test_tiny_case_per_unit():
    case = tiny_case()
    check_case(case, "tiny.m")
    network = to_network(correct_case(case), "tiny.m")
    assert network.gs[1] == pytest.approx(0.05) and network.bs[1] == pytest.approx(-0.03)
    assert network.vmin.tolist() == [0.9, 0.95] and network.vmax.tolist() == [1.1, 1.05]
    assert network.shift[0] == pytest.approx(math.radians(5.0))
    np.testing.assert_allclose(network.cost[0], [200.0, 1000.0, 5.0])


def test_bundled_case_names():
    assert bundled_case("case5_pjm") == CASES_DIR / "pglib_opf_case5_pjm.m"
    assert bundled_case("pglib_opf_case5_pjm.m") == CASES_DIR / "pglib_opf_case5_pjm.m"
    with pytest.raises(CaseError, match="did you mean case5_pjm"):
        bundled_case("case5_pj")


# ---- corrections ----

def test_corrections_are_applied_and_logged(caplog):
    case = tiny_case()
    with caplog.at_level(logging.INFO, logger="acopf"):
        corrected = correct_case(case)
    branch = corrected["branch"][0]
    assert branch[5] == math.inf and branch[8] == 1.0 and branch[12] == 60.0 and branch[11] == -30.0
    assert case["branch"][0][5] == 0.0, "correct_case must not change its input"
    messages = caplog.text
    assert "branch 1 (1-2): rate_a 0.0 -> inf" in messages
    assert "branch 1 (1-2): tap 0.0 -> 1.0" in messages
    assert "branch 1 (1-2): angmax 90.0 -> 60.0" in messages
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1 and "angmax" in warnings[0].getMessage()
    network = to_network(corrected, "tiny.m")
    assert network.rate_a[0] == math.inf and network.tap[0] == 1.0
    assert network.angmax[0] == pytest.approx(math.pi / 3)


def test_unlimited_angle_limits_become_60_degrees(caplog):
    case = tiny_case("-30.0  90.0", "0.0  0.0")
    with caplog.at_level(logging.WARNING, logger="acopf"):
        branch = correct_case(case)["branch"][0]
    assert branch[11:13] == [-60.0, 60.0]
    assert "angmin 0.0 -> -60.0" in caplog.text and "angmax 0.0 -> 60.0" in caplog.text
    branch = correct_case(tiny_case("-30.0  90.0", "-360.0  360.0"))["branch"][0]
    assert branch[11:13] == [-60.0, 60.0]
    branch = correct_case(tiny_case("-30.0  90.0", "-75.0  89.0"))["branch"][0]
    assert branch[11:13] == [-75.0, 89.0], "limits inside +-90 degrees are kept"


def test_to_network_refuses_uncorrected_case():
    with pytest.raises(CaseError, match="run correct_case first"):
        to_network(tiny_case(), "tiny.m")


def test_out_of_service_components_are_dropped(caplog):
    case = tiny_case()
    case["gen"].insert(0, [2.0, 0.0, 0.0, 50.0, -50.0, 1.0, 100.0, 0.0, 80.0, 0.0])  # status 0
    case["gencost"].insert(0, [2.0, 0.0, 0.0, 2.0, 1.0, 0.0])
    case["branch"].append([1.0, 2.0, 0.02, 0.2, 0.0, 100.0, 0.0, 0.0, 0.0, 0.0, 0.0, -30.0, 30.0])  # status 0
    with caplog.at_level(logging.INFO, logger="acopf"):
        network = load_case(case)
    assert network.n_gen == 1 and network.n_branch == 1
    assert network.gen_bus.tolist() == [0] and network.pmax[0] == pytest.approx(2.0)
    np.testing.assert_allclose(network.cost[0], [200.0, 1000.0, 5.0])
    assert network.x[0] == 0.1
    assert "tiny.m: dropped 1 out-of-service generators" in caplog.text
    assert "tiny.m: dropped 1 out-of-service branches" in caplog.text


def test_several_reference_buses_use_the_first(caplog):
    case = tiny_case("2  1  50.0", "2  3  50.0")
    with caplog.at_level(logging.WARNING, logger="acopf"):
        network = load_case(case)
    assert network.ref == 0
    assert "2 reference buses (1, 2); using bus 1" in caplog.text


def load_case(case: dict) -> Network:
    check_case(case, "tiny.m")
    return to_network(correct_case(case), "tiny.m")


# ---- broken case files ----

BROKEN_MESSAGES = {
    "unknown_bus_in_branch": "branch 2 (3-9): bus 9 does not exist",
    "no_reference_bus": "no reference bus (type 3)",
    "vmin_above_vmax": "bus 2: Vmin 1.1 > Vmax 0.9",
    "dcline": "line 28: dcline data is not supported",
    "piecewise_linear_cost": "line 25: gen 2 (gencost row 2): piecewise-linear cost (model 1) is not supported",
    "wrong_column_count": "line 10: bus 2: 12 columns, at least 13 needed",
    "unterminated_matrix": "line 8: mpc.bus opened with '[' is not closed by ']'",
    "garbage_token": "line 18: unexpected 'oops' in the matrix mpc.gen",
    "version_1": "line 3: case format version '1' is not supported",
    "missing_gen": "missing table mpc.gen",
    "duplicate_bus_id": "bus 2: duplicate bus id (rows 2 and 3)",
    "isolated_bus": "bus 3: isolated buses (type 4) are not supported",
    "pmin_above_pmax": "gen 2: Pmin 500.0 > Pmax 400.0",
    "zero_impedance": "branch 2 (3-2): zero impedance (r = x = 0)",
    "negative_rate_a": "branch 2 (3-2): negative rate_a -50.0",
    "angmin_above_angmax": "branch 2 (3-2): angmin 30.0 > angmax -30.0",
    "gencost_count": "gencost has 1 rows but gen has 2",
}


def test_every_broken_file_is_listed():
    assert sorted(path.stem for path in BROKEN.glob("*.m")) == sorted(BROKEN_MESSAGES)


@pytest.mark.parametrize("name", sorted(BROKEN_MESSAGES))
def test_broken_case_raises(name):
    path = BROKEN / f"{name}.m"
    assert path.read_text().startswith("% BROKEN: "), "each broken file says what is broken"
    with pytest.raises(CaseError) as error:
        load(path)
    message = str(error.value)
    assert message.startswith(str(path))
    assert BROKEN_MESSAGES[name] in message


# ---- the parser ----

def test_comments_continuations_commas_and_special_numbers():
    text = """\
% a header comment
function mpc = syntax   % a comment after code
mpc.version = '2';
mpc.baseMVA = 1e2;
mpc.bus = [
    1, 3, 0, 0, 0, 0, 1, 1, 0, 230, 1, 1.1, 0.9   % rows end at a newline too
    2  2  -0.5 1e-3 .5 ...  this continues the row
       0  1  1  0  230  1  1.1  0.9;  3 1 Inf -Inf NaN 0 1 1 0 230 1 1.1 0.9
];
mpc.bus_name = { 'bus one'; 'it''s 50% done' };
"""
    text += TINY[TINY.index("mpc.gen"):]
    case = parse_matpower(text)
    assert case["name"] == "syntax" and case["baseMVA"] == 100.0
    assert case["bus"][0] == [1, 3, 0, 0, 0, 0, 1, 1, 0, 230, 1, 1.1, 0.9]
    assert case["bus"][1][:6] == [2, 2, -0.5, 0.001, 0.5, 0]
    assert len(case["bus"][1]) == 13
    assert case["bus"][2][2:4] == [math.inf, -math.inf] and math.isnan(case["bus"][2][4])


def test_extra_fields_are_skipped_with_a_warning(caplog):
    """Every field acopf does not use is skipped and named; MATPOWER's own optional ones (areas, names)
    at info level, anything else as a warning."""
    text = TINY + "mpc.areas = [1 1];\nmpc.bus_name = {\n 'a';\n 'b'\n};\nmpc.note = 'x';\n"
    with caplog.at_level(logging.INFO, logger="acopf"):
        case = parse_matpower(text, "tiny.m")
    assert set(case) == {"name", "version", "baseMVA", "bus", "gen", "branch", "gencost"}
    for field, line in (("mpc.areas", 17), ("mpc.bus_name", 18), ("mpc.note", 22)):
        assert f"tiny.m, line {line}: skipping {field}" in caplog.text
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warned == ["tiny.m, line 22: skipping mpc.note (not used by acopf)"]


@pytest.mark.parametrize("old, new, message", [
    ("mpc.baseMVA = 100.0;\n", "", "tiny.m: missing mpc.baseMVA"),
    ("mpc.version = '2';\n", "", "mpc.version is missing"),
    ("mpc.version = '2';", "mpc.version = 3;", "line 2: case format version '3' is not supported"),
    ("mpc.baseMVA = 100.0;", "mpc.baseMVA = -1;", "line 3: mpc.baseMVA must be a positive number"),
    ("mpc.baseMVA = 100.0;", "mpc.baseMVA = 100.0 200;", "line 3: unexpected '200' after the value"),
    ("mpc.baseMVA = 100.0;", "mpc.baseMVA = 1 - 2;", "line 3: unexpected character '-'"),
    ("mpc.baseMVA = 100.0;", "mpc.baseMVA = 100.0; x = @;", "line 3: unexpected character '@'"),
    ("mpc.baseMVA = 100.0;", "mpc.baseMVA = 100.0;\nhello world", "line 4: expected '=' after hello"),
    ("mpc.version = '2';", "mpc.version = '2", "line 2: unexpected character \"'\""),
    ("2  0.0  0.0  3  0.02", "2  0.0  0.0  4  0.02", "line 12: gen 1 (gencost row 1): a polynomial of 4"),
    ("2  0.0  0.0  3  0.02", "5  0.0  0.0  3  0.02", "line 12: gen 1 (gencost row 1): unknown cost model 5"),
    ("mpc.gen = [", "mpc.gen = 5; x = [", "line 8: mpc.gen must be a matrix"),
    ("];\nmpc.gencost", "\nmpc.gencost", "line 8: mpc.gen opened with '[' is not closed by ']'"),
])
def test_parse_errors(old, new, message):
    with pytest.raises(CaseError) as error:
        tiny_case(old, new)
    assert message in str(error.value)


def test_unterminated_cell_array():
    with pytest.raises(CaseError, match=r"tiny.m, line 17: mpc.bus_name opened with '\{' is not closed"):
        parse_matpower(TINY + "mpc.bus_name = { 'a'; 'b';\n", "tiny.m")


def test_header_is_optional():
    case = parse_matpower(TINY.replace("function mpc = tiny\n", ""), "data/my_case.m")
    assert case["name"] == "my_case"
    assert case["bus"] == tiny_case()["bus"]


def test_check_case_on_hand_built_data():
    case = tiny_case()
    del case["gencost"]
    with pytest.raises(CaseError, match="hand.m: missing table mpc.gencost"):
        check_case(case, "hand.m")
    case = tiny_case()
    case["bus"][1][3] = math.nan
    with pytest.raises(CaseError, match="hand.m: bus 2: Qd is NaN"):
        check_case(case, "hand.m")
    case = tiny_case()
    case["gen"][0] = case["gen"][0][:9]
    with pytest.raises(CaseError, match="hand.m: gen 1: 9 columns, at least 10 needed"):
        check_case(case, "hand.m")


def test_parser_never_evaluates_text():
    source = inspect.getsource(matpower)
    assert "eval(" not in source and "exec(" not in source
