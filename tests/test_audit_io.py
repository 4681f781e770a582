"""Audit (issue 12) regressions of the input/output layer: exact VNN-LIB constants (item 6), one exit-code
contract for every subcommand (item 11), output paths checked before the run (item 12), strict JSON from
every writer (item 13)."""

from __future__ import annotations

import importlib
import json
import math
import random
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import graphver as gv
from graphver import cli
from graphver.io.vnnlib import parse_vnnlib
from graphver.report import Interval
from graphver.report.results import BabStats, BoundResult, VerifyResult

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from graphver.io import vnncomp  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "acopf" / "cases"
CASE3 = CASES / "pglib_opf_case3_lmbd.m"
EXAMPLES = ROOT / "models" / "examples"
INF, NAN = math.inf, math.nan


def run(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


def strict_loads(text: str):
    """json.loads that rejects the non-standard constants Infinity, -Infinity and NaN."""
    def reject(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=reject)


def scaled_model(tmp_path: Path, factor: float = 3.0, name: str = "scale", dtype=TensorProto.DOUBLE) -> Path:
    """y = factor * x, one input and one output."""
    numpy_dtype = np.float64 if dtype == TensorProto.DOUBLE else np.float32
    graph = helper.make_graph([helper.make_node("Mul", ["x", "K"], ["y"])], name,
                              [helper.make_tensor_value_info("x", dtype, [1, 1])],
                              [helper.make_tensor_value_info("y", dtype, [1, 1])],
                              [numpy_helper.from_array(np.array([factor], dtype=numpy_dtype), "K")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 7
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def property_file(tmp_path: Path, text: str, name: str = "prop") -> Path:
    path = tmp_path / f"{name}.vnnlib"
    path.write_text(text, encoding="utf-8")
    return path


ONE_IN_ONE_OUT = "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n"
THRESHOLD_210 = "(+ " + " ".join(["0.07"] * 3000) + ")"  # exactly 210; 209.99999999998602 summed in float64
SAT_210 = ONE_IN_ONE_OUT + f"(assert (>= X_0 70))\n(assert (<= X_0 100))\n(assert (<= Y_0 {THRESHOLD_210}))\n"


# --- item 6: exact VNN-LIB constants ---------------------------------------------------------------
def test_threshold_of_3000_terms_is_exact_and_the_counterexample_is_found(tmp_path):
    spec = parse_vnnlib(SAT_210)
    (conj,) = spec.disjuncts
    assert conj.offset.tolist() == [-210.0] and conj.exact[0] == ({0: Fraction(1)}, Fraction(-210))
    network, prop = scaled_model(tmp_path), property_file(tmp_path, SAT_210)
    result = vnncomp.verify_instance(network, prop, timeout=30)
    assert result.verdict == "sat", result  # X = 70 gives Y = 210 <= 210
    x = result.counterexample["x"][0]
    assert 70 <= x <= 100 and 3 * Fraction(x) <= 210
    out = tmp_path / "result.txt"
    command = run("vnncomp", network, prop, "--out", out)
    assert command.exit_code == 1, command.output  # sat: a counterexample, like verify's "falsified"
    assert command.output.splitlines()[0] == "sat" and out.read_text().startswith("sat\n")


def test_float32_model_counterexample_at_the_exact_threshold(tmp_path):
    network = scaled_model(tmp_path, dtype=TensorProto.FLOAT, name="scale32")
    result = vnncomp.verify_instance(network, property_file(tmp_path, SAT_210), timeout=30)
    assert result.verdict == "sat", result


def test_counterexample_must_satisfy_the_exact_property(tmp_path):
    """Y = X on [1/10, 1], unsafe Y <= 1/10: the only real counterexample, X = 1/10, is no float (the float
    0.1 is above 1/10), so no float input reproduces a violation: never "sat" (float rounding said sat)."""
    text = ONE_IN_ONE_OUT + "(assert (>= X_0 0.1))\n(assert (<= X_0 1))\n(assert (<= Y_0 0.1))\n"
    spec = parse_vnnlib(text)
    assert Fraction(spec.boxes[0][0][0]) < Fraction(1, 10) < Fraction(spec.inner_boxes[0][0][0])  # outer / inner
    assert not vnncomp.unsafe(spec, np.array([0.1]))[0]  # 0.1 (float) > 1/10: safe, decided exactly
    assert vnncomp.unsafe(spec, np.array([math.nextafter(0.1, 0)]))[0]
    result = vnncomp.verify_instance(scaled_model(tmp_path, 1.0, "identity"), property_file(tmp_path, text),
                                     timeout=3)
    assert result.verdict == "unknown", result
    # an undecided run says how far it got: the proven margin (of Y - 1/10 over the outer box) is just
    # below 0; the points with a negative float margin were rejected, so none closer than 0 is kept
    assert -1e-12 < result.proven_margin <= 0 <= result.closest_margin, result
    assert "proven margin >= " in result.margins_text()
    row = result.row()
    assert float(row["proven_margin"]) == pytest.approx(result.proven_margin, abs=1e-15)


def test_vnncomp_unknown_prints_margins_and_writes_json(tmp_path):
    text = ONE_IN_ONE_OUT + "(assert (>= X_0 0.1))\n(assert (<= X_0 1))\n(assert (<= Y_0 0.1))\n"
    model, prop = scaled_model(tmp_path, 1.0, "identity"), property_file(tmp_path, text)
    out = tmp_path / "result.json"
    run = CliRunner().invoke(cli.main, ["vnncomp", str(model), str(prop), "--timeout", "2", "--json", str(out)])
    assert run.exit_code == 3, run.output
    assert run.output.splitlines()[0] == "unknown" and "proven margin >= " in run.output
    data = json.loads(out.read_text(), parse_constant=lambda name: pytest.fail(f"bare {name} in JSON"))
    assert data["verdict"] == "unknown" and -1e-12 < data["proven_margin"] <= 0
    assert data["counterexample"] is None and set(data) >= {"closest_margin", "closest_point", "seconds"}
    (tmp_path / "x.csv").write_text(f"{model},{prop},10\n")
    run = CliRunner().invoke(cli.main, ["vnncomp", "--instances", str(tmp_path / "x.csv"), "--out",
                                        str(tmp_path / "r.csv"), "--json", str(out)])
    assert run.exit_code == 2 and "--json writes one instance's result" in run.output
    assert not (tmp_path / "r.csv").exists()  # refused before any run


def decimal(rng: random.Random) -> str:
    """A random decimal numeral: up to 19 significant digits, a random point, sometimes an exponent."""
    digits = str(rng.randrange(1, 10 ** rng.randint(1, 19)))
    point = rng.randint(0, len(digits))
    text = (digits[:point] or "0") + ("." + digits[point:] if point < len(digits) else "")
    if rng.random() < 0.3:
        text += f"e{rng.randint(-12, 12)}"
    return text


def random_sum(rng: random.Random, terms: int, variable: str | None = None) -> tuple[str, Fraction]:
    """(+/- ...) of ``terms`` random decimals with random signs (``variable`` scaled in once), and the exact
    value of the constant and the coefficient."""
    parts, constant = [], Fraction(0)
    for _ in range(terms):
        number = decimal(rng)
        if rng.random() < 0.5:
            parts.append(f"(- {number})")
            constant -= Fraction(number)
        else:
            parts.append(number)
            constant += Fraction(number)
    if variable is not None:
        parts.insert(rng.randrange(len(parts) + 1), variable)
    return "(+ " + " ".join(parts) + ")", constant


@pytest.mark.parametrize("seed", range(12))
def test_fuzz_constants_exact_within_recorded_error_and_box_outward(seed):
    rng = random.Random(seed)
    n_in, n_out = 3, 2
    lines = [f"(declare-const X_{i} Real)" for i in range(n_in)] + [f"(declare-const Y_{j} Real)" for j in range(n_out)]
    lows, highs = [], []
    for i in range(n_in):
        low_text, low = random_sum(rng, rng.choice([1, 2, 10, rng.randint(1, 3000)]))
        width_text, width = random_sum(rng, rng.randint(1, 50))
        lows.append(low)
        highs.append(low + abs(width))
        lines.append(f"(assert (>= X_{i} {low_text}))")
        high_text = f"(+ {low_text} {width_text})" if width >= 0 else f"(- {low_text} {width_text})"
        lines.append(f"(assert (<= X_{i} {high_text}))")
    coefficients, constants = [], []
    for _ in range(4):
        row_coefficients = []
        terms = []
        for j in range(n_out):
            coefficient_text, coefficient = random_sum(rng, rng.randint(1, 200))
            terms.append(f"(* {coefficient_text} Y_{j})")
            row_coefficients.append(coefficient)
        constant_text, constant = random_sum(rng, rng.choice([1, 3000, rng.randint(1, 3000)]))
        lines.append(f"(assert (<= (+ {' '.join(terms)}) {constant_text}))")  # c . y - constant <= 0
        coefficients.append(row_coefficients)
        constants.append(-constant)
    spec = parse_vnnlib("\n".join(lines))
    (lower, upper), = spec.boxes
    (exact_lower, exact_upper), = spec.exact_boxes
    (inner_lower, inner_upper), = spec.inner_boxes
    assert exact_lower == lows and exact_upper == highs
    for i in range(n_in):
        # outward and tight: the largest float <= the exact lower end, the smallest >= the exact upper end
        assert Fraction(lower[i]) <= lows[i] < Fraction(math.nextafter(lower[i], INF))
        assert Fraction(math.nextafter(upper[i], -INF)) < highs[i] <= Fraction(upper[i])
        assert lows[i] <= Fraction(inner_lower[i]) and Fraction(inner_upper[i]) <= highs[i]
    (conj,) = spec.disjuncts
    for r in range(len(constants)):
        for j in range(n_out):
            assert abs(Fraction(conj.coef[r, j]) - coefficients[r][j]) <= Fraction(conj.coef_error[r, j])
            assert conj.coef_error[r, j] <= abs(conj.coef[r, j]) * 2.0 ** -52  # one rounding, not a sum's
            assert conj.exact[r][0].get(j, Fraction(0)) == coefficients[r][j]
        # the constant rounded down (the rounded row holds on a superset of the exact unsafe row), tightly
        assert Fraction(conj.offset[r]) <= constants[r] < Fraction(math.nextafter(conj.offset[r], INF))
        assert conj.exact[r][1] == constants[r]


def test_vnnlib_rejects_non_finite_numbers():
    with pytest.raises(gv.ModelError, match="not a finite number"):
        parse_vnnlib(ONE_IN_ONE_OUT + "(assert (>= X_0 0))\n(assert (<= X_0 inf))\n(assert (<= Y_0 1))\n")


# --- item 11: one exit-code contract -------------------------------------------------------------------
def softmax_model(tmp_path: Path) -> Path:
    graph = helper.make_graph([helper.make_node("Softmax", ["x"], ["y"], name="probabilities")], "soft",
                              [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [1, 1])],
                              [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [1, 1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 7
    path = tmp_path / "soft.onnx"
    onnx.save(model, str(path))
    return path


GOOD_PROP = ONE_IN_ONE_OUT + "(assert (>= X_0 0))\n(assert (<= X_0 1))\n(assert (>= Y_0 5))\n"


@pytest.mark.parametrize("case, message", [
    ("bad vnnlib", "line 3: unknown formula head '=='"),
    ("input count", "declares 2 inputs"),
    ("not onnx", "not a readable ONNX model"),
    ("unsupported op", "unsupported ONNX op 'Softmax'"),
])
def test_vnncomp_input_errors_exit_2(tmp_path, case, message):
    network, prop = scaled_model(tmp_path), property_file(tmp_path, GOOD_PROP)
    if case == "bad vnnlib":
        prop = property_file(tmp_path, ONE_IN_ONE_OUT + "(assert (== X_0 1))\n", "bad")
    elif case == "input count":
        prop = property_file(tmp_path, "(declare-const X_1 Real)\n" + GOOD_PROP, "two")
    elif case == "not onnx":
        network = tmp_path / "junk.onnx"
        network.write_bytes(b"\x08\x07 this is not protobuf")
    else:
        network = softmax_model(tmp_path)
    result = run("vnncomp", network, prop)
    assert result.exit_code == cli.EXIT_INPUT, result.output
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert "Traceback" not in result.output


def test_vnncomp_benchmark_input_errors_exit_2(tmp_path):
    broken = tmp_path / "broken.csv"
    broken.write_text("a.onnx,b.vnnlib\n")
    result = run("vnncomp", "--instances", broken, "--out", tmp_path / "out.csv")
    assert result.exit_code == cli.EXIT_INPUT and "expected onnx,vnnlib,timeout" in result.stderr
    network = scaled_model(tmp_path)
    bad = property_file(tmp_path, ONE_IN_ONE_OUT + "(assert (== X_0 1))\n", "bad")
    instances = tmp_path / "instances.csv"
    instances.write_text(f"{network.name},{bad.name},10\n")
    result = run("vnncomp", "--instances", instances, "--out", tmp_path / "results.csv")
    assert result.exit_code == cli.EXIT_INPUT, result.output  # recorded as an error row
    assert "error" in (tmp_path / "results.csv").read_text()


def boom(*args, **kwargs):
    raise RuntimeError("injected failure")


def test_vnncomp_unexpected_exception_exits_4_with_traceback(tmp_path, monkeypatch):
    monkeypatch.setattr(vnncomp, "verify_instance", boom)
    result = run("vnncomp", scaled_model(tmp_path), property_file(tmp_path, GOOD_PROP))
    assert result.exit_code == cli.EXIT_INTERNAL, result.output
    assert "Traceback" in result.stderr and "RuntimeError: injected failure" in result.stderr
    assert "please report" in result.stderr
    monkeypatch.setattr(vnncomp, "run_instances", boom)
    instances = tmp_path / "instances.csv"
    instances.write_text("scale.onnx,prop.vnnlib,10\n")
    result = run("vnncomp", "--instances", instances, "--out", tmp_path / "results.csv")
    assert result.exit_code == cli.EXIT_INTERNAL and "Traceback" in result.stderr


def acopf_module(name: str):
    pytest.importorskip("acopf")
    return importlib.import_module(name)


@pytest.mark.parametrize("command", ["solve", "bound"])
def test_acopf_input_errors_exit_2(tmp_path, monkeypatch, command):
    broken = tmp_path / "broken.m"
    broken.write_text("function mpc = broken\nmpc.version = '2';\nmpc.baseMVA = 100;\nmpc.bus = [\n"
                      "1 3 0 0 0 0 1 1 0 1 1 1.1 0.9;\n")
    result = run("acopf", command, broken)
    assert result.exit_code == cli.EXIT_INPUT and "broken.m" in result.stderr and "Traceback" not in result.output

    def model_error(*args, **kwargs):
        raise gv.ModelError("injected input error")

    module = acopf_module(f"acopf.{command}")
    monkeypatch.setattr(module, command, model_error)
    result = run("acopf", command, CASE3)
    assert result.exit_code == cli.EXIT_INPUT, result.output
    assert "ModelError: injected input error" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize("command", ["solve", "bound"])
def test_acopf_case_error_while_building_exits_2(monkeypatch, command):
    """A CaseError raised after loading (while the formulation is built) is an input error too."""
    from acopf.errors import CaseError

    def case_error(*args, **kwargs):
        raise CaseError("bus 7: injected data error")

    module = acopf_module(f"acopf.{command}")
    monkeypatch.setattr(module, command, case_error)
    result = run("acopf", command, CASE3)
    assert result.exit_code == cli.EXIT_INPUT, result.output
    assert "bus 7: injected data error" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize("command", ["solve", "bound"])
def test_acopf_unexpected_exception_exits_4_with_traceback(monkeypatch, command):
    monkeypatch.setattr(acopf_module(f"acopf.{command}"), command, boom)
    result = run("acopf", command, CASE3)
    assert result.exit_code == cli.EXIT_INTERNAL, result.output
    assert "Traceback" in result.stderr and "RuntimeError: injected failure" in result.stderr
    assert "please report" in result.stderr


def test_acopf_ctrl_c_before_a_result_exits_130(monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(acopf_module("acopf.bound"), "bound", interrupted)
    assert run("acopf", "bound", CASE3).exit_code == cli.EXIT_INTERRUPTED


# --- item 12: output paths checked before the run ------------------------------------------------------
@pytest.mark.parametrize("command, flag", [("solve", "--json"), ("bound", "--json"), ("bound", "--plot")])
def test_acopf_missing_output_folder_fails_before_the_run(tmp_path, monkeypatch, command, flag):
    def never(*args, **kwargs):
        raise AssertionError("the engine ran although the output folder does not exist")

    monkeypatch.setattr(acopf_module(f"acopf.{command}"), command, never)
    result = run("acopf", command, CASE3, flag, tmp_path / "missing" / "out.file")
    assert result.exit_code == cli.EXIT_INPUT, result.output
    assert "does not exist" in result.stderr and flag in result.stderr


def test_vnncomp_missing_output_folder_fails_before_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr(vnncomp, "verify_instance", boom)  # exit 4 if it ran
    monkeypatch.setattr(vnncomp, "run_instances", boom)
    missing = tmp_path / "missing" / "result.txt"
    result = run("vnncomp", scaled_model(tmp_path), property_file(tmp_path, GOOD_PROP), "--out", missing)
    assert result.exit_code == cli.EXIT_INPUT and "--out" in result.stderr and "does not exist" in result.stderr
    instances = tmp_path / "instances.csv"
    instances.write_text("scale.onnx,prop.vnnlib,10\n")
    result = run("vnncomp", "--instances", instances, "--out", missing)
    assert result.exit_code == cli.EXIT_INPUT and "does not exist" in result.stderr


# --- item 13: strict JSON from every writer -------------------------------------------------------------
def test_strict_json_helpers():
    assert strict_loads(Interval(-INF, INF, "ibp").to_json()) == {"lower": "-inf", "upper": "inf", "method": "ibp"}
    bound_result = BoundResult("min", -INF, INF, INF, "unknown", None, "x", BabStats(history=[[0.0, -INF, NAN]]), {})
    data = strict_loads(bound_result.to_json())
    assert data["lower"] == "-inf" and data["gap"] == "inf" and data["stats"]["history"] == [[0.0, "-inf", "nan"]]


def fake_bound(self, *args, **kwargs):
    return BoundResult("min", -INF, INF, INF, "unknown", None, "x", BabStats(history=[[0.0, -INF, INF]]),
                       {"timeout": INF})


def fake_verify(self, *args, **kwargs):
    return VerifyResult("unknown", -INF, None, None, ["x <= 1"], "all", BabStats(history=[[0.0, -INF, NAN]]), {})


def fake_interval(self, expressions, method="crown", **kwargs):
    return [Interval(-INF, NAN, method) for _ in expressions]


def fake_acopf_bound(network, formulation, **kwargs):
    from acopf.bound import BoundReport

    return BoundReport(network.name, formulation, -INF, INF, INF, "unknown", 0.5, 0, NAN, NAN, [[0.1, -INF, INF]],
                       "interrupted")


def fake_acopf_solve(network, formulation, **kwargs):
    from acopf.solve import SolveResult

    return SolveResult(network.name, formulation, NAN, "failed", False, 3, 0.1, INF, {"balance": NAN, "voltage": INF})


WRITERS = {
    "bound": (["bound", EXAMPLES / "camel.py"], (gv.Model, "bound", fake_bound), ("upper", "inf")),
    "verify": (["verify", EXAMPLES / "peak.py"], (gv.Model, "verify", fake_verify), ("margin_lower", "-inf")),
    "interval": (["interval", EXAMPLES / "ranges.py"], (gv.Model, "interval", fake_interval), None),
    "acopf solve": (["acopf", "solve", CASE3], ("acopf.solve", "solve", fake_acopf_solve), ("objective", "nan")),
    "acopf bound": (["acopf", "bound", CASE3], ("acopf.bound", "bound", fake_acopf_bound), ("upper", "inf")),
}


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_every_json_writer_is_strict_json_with_non_finite_values(tmp_path, monkeypatch, writer):
    args, (owner, name, fake), expected = WRITERS[writer]
    if isinstance(owner, str):
        owner = acopf_module(owner)
    monkeypatch.setattr(owner, name, fake)
    path = tmp_path / "out.json"
    result = run(*args, "--json", path)
    assert result.exit_code == cli.EXIT_UNKNOWN or (writer == "interval" and result.exit_code == 0), result.output
    text = path.read_text()
    assert "Infinity" not in text and "NaN" not in text
    data = strict_loads(text)
    if expected is not None:
        assert data[expected[0]] == expected[1]
    else:
        assert {row["upper"] for row in data["intervals"]} == {"nan"}


def test_json_of_real_runs_is_strict(tmp_path):
    """A short real run (bound stopped by its timeout) and an interval run, parsed strictly."""
    path = tmp_path / "bound.json"
    result = run("bound", EXAMPLES / "camel.py", "--timeout", "0.01", "--json", path, "-q")
    assert result.exit_code in (cli.EXIT_OK, cli.EXIT_UNKNOWN), result.output
    strict_loads(path.read_text())
    path = tmp_path / "interval.json"
    assert run("interval", EXAMPLES / "ranges.py", "--json", path, "-q").exit_code == 0
    strict_loads(path.read_text())
