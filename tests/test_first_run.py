"""What a new user meets first: bundled cases by name, the help, the summaries' units, the plots of
runs without a curve, the model-file loading messages, and the CLI reference's option table."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner

import acopf
from acopf.data import bundled_names
from acopf.errors import CaseError
from graphver import cli
from graphver.bab.progress import gap_text

ROOT = Path(__file__).resolve().parent.parent


def run(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


# --- bundled cases by name -------------------------------------------------------------------------------
def test_bundled_cases_load_by_name():
    assert "case5_pjm" in bundled_names() and "case14_ieee" in bundled_names()
    assert acopf.load("case14_ieee").n_bus == 14
    assert acopf.load("pglib_opf_case5_pjm").n_bus == 5
    assert acopf.load(ROOT / "acopf" / "cases" / "pglib_opf_case3_lmbd.m").n_bus == 3  # a path still works


def test_a_misspelt_case_name_gets_a_did_you_mean_and_the_list():
    with pytest.raises(CaseError) as error:
        acopf.load("case5pjm")
    message = str(error.value)
    assert "did you mean case5_pjm?" in message and "case30_ieee" in message
    result = run("acopf", "solve", "case14ieee", "--quiet")
    assert result.exit_code == cli.EXIT_INPUT and "did you mean case14_ieee?" in result.output
    assert "Traceback" not in result.output


def test_an_empty_case_file_says_it_is_empty(tmp_path):
    path = tmp_path / "empty.m"
    path.write_text("\n  \n")
    with pytest.raises(CaseError, match="the file is empty"):
        acopf.load(path)
    result = run("acopf", "bound", path, "--timeout", "5")
    assert result.exit_code == cli.EXIT_INPUT and "is empty" in result.output


# --- help and units --------------------------------------------------------------------------------------
def test_graphver_help_lists_every_subcommand():
    result = run("--help")
    assert result.exit_code == 0
    listed = result.output.split("Commands:")[1]
    for name in cli.main.commands:
        assert re.search(rf"^\s+{name}\s", listed, re.MULTILINE), name
    assert {"verify", "bound", "interval", "vnncomp", "acopf"} <= set(cli.main.commands)


@pytest.mark.parametrize("command", ["solve", "bound"])
def test_formulation_has_help_text(command):
    result = run("acopf", command, "--help")
    text = " ".join(result.output.split())
    assert "--formulation" in text and "How the AC power flow is written" in text and "lifted" in text


def test_solve_tables_show_the_reactive_limits_and_units():
    result = run("acopf", "solve", "case3_lmbd")
    assert result.exit_code == 0, result.output
    assert "generator dispatch (P in MW, Q in MVAr)" in result.output
    assert "bus voltages (Vm in pu, Va in degrees)" in result.output
    header = next(line for line in result.output.splitlines() if "Pmin" in line)
    assert re.findall(r"[A-Za-z]+", header) == ["gen", "bus", "Pg", "Pmin", "Pmax", "Qg", "Qmin", "Qmax"]
    assert "$/h" in result.output and "pu (" in result.output  # objective in $/h, violation in pu
    data = acopf.solve("case3_lmbd").generators[0]
    assert data["qmin_mvar"] <= data["qg_mvar"] <= data["qmax_mvar"]


def test_bound_summary_and_quiet_line_name_their_units():
    result = run("acopf", "bound", "case3_lmbd", "--gap", "0.05", "--timeout", "60")
    assert "$/h" in result.output and "%" in result.output and "lower (certified)" in result.output
    quiet = run("acopf", "bound", "case3_lmbd", "--gap", "0.05", "--timeout", "60", "--quiet")
    assert quiet.output.count("$/h") == 2 and quiet.output.strip().endswith("%")


def test_the_live_gap_is_in_the_unit_of_the_target():
    assert gap_text(99.0, 100.0, 1e-3) == "1 = 1 % (target 0.1 %)"
    assert gap_text(-1.0, 1.0, 0.0) == "2"  # no relative target: the absolute gap
    assert gap_text(float("-inf"), 1.0, 1e-3) == "inf"
    assert gap_text(0.0, 0.0, 1e-3) == "0 = 0 % (target 0.1 %)"  # a closed gap at value 0
    assert gap_text(-1.0, 0.0, 1e-3) == "1 = inf % (target 0.1 %)"


# --- plots of runs without a curve -----------------------------------------------------------------------
def test_a_plot_without_a_curve_says_so(tmp_path):
    from graphver.report.plot import plot_series

    inf = float("inf")
    one = tmp_path / "one.png"
    plot_series(one, "decided at the root", [0.0], [1.5], [inf], "proven", "best", "margin", zero_line=True)
    none = tmp_path / "none.png"
    plot_series(none, "nothing", [], [], [], "proven", "best", "cost")
    curve = tmp_path / "curve.png"
    plot_series(curve, "a run", [0.0, 1.0, 2.0], [1.0, 2.0, 2.5], [3.0, 3.0, 2.6], "proven", "best", "cost")
    assert png_size(one) == png_size(none) == (800, 300)  # the message figure, not empty axes
    assert png_size(curve) == (800, 600)


def test_verify_plot_of_a_falsified_root_is_a_message(tmp_path):
    import graphver as gv

    m = gv.Model("falsified")
    x = m.var("x", 0, 1)
    result = m.verify(x <= 0.5, timeout=10)
    assert result.status == "falsified"
    from graphver.report.plot import plot_history

    path = tmp_path / "falsified.png"
    plot_history(result, path, "falsified", "verify")
    assert path.stat().st_size > 0


# --- loading a model file --------------------------------------------------------------------------------
def test_loading_says_loading_and_hints_at_large_sums(tmp_path, monkeypatch, capsys):
    from graphver.cli import model_file

    path = tmp_path / "big.py"
    path.write_text("import graphver as gv\nm = gv.Model('big')\nxs = [m.var(f'x{i}', 0, 1) for i in range(600)]\n"
                    "objective = sum(x * x for x in xs)\nmodel = m\n")
    monkeypatch.setattr(model_file, "SLOW_LOAD_SECONDS", 0.0)  # any load counts as slow here
    model, namespace = model_file.load_model(path, "bound", announce=True)
    out = capsys.readouterr().out
    assert out.startswith(f"loading {path}")
    assert "sympy.Add(*terms)" in out and "600 terms" in out
    model_file.load_model(path, "bound", announce=False)
    assert capsys.readouterr().out == ""  # --quiet and pipes: no messages
    small = tmp_path / "small.py"
    small.write_text("import graphver as gv\nm = gv.Model('s')\nx = m.var('x', 0, 1)\nobjective = x + 1\nmodel = m\n")
    model_file.load_model(small, "bound", announce=True)
    assert "hint" not in capsys.readouterr().out  # a small sum gets no hint


# --- the CLI reference's option table ----------------------------------------------------------------------
def test_cli_reference_option_table_matches_the_commands():
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    table = text.split("### Options")[1].split("\n\n")[2]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert len(rows) >= 10
    file_commands = ("verify", "bound", "interval")
    for row in rows:
        option_cell, commands_cell = row.split(" | ")[0:2]
        options = re.findall(r"`(-{1,2}[a-z-]+)", option_cell)
        commands = [c.strip() for c in commands_cell.split(",")]
        assert set(commands) <= set(file_commands), row
        for name in file_commands:
            flags = {flag for param in cli.main.commands[name].params for flag in param.opts}
            flags |= {"-h", "--help"}
            for option in options:
                assert (option in flags) == (name in commands), f"{option} on {name}: {row}"


def test_the_supported_function_list_in_the_docs_is_the_code_s():
    """docs/index.md's table names every function of the UnsupportedOpError message (ir/lower.py's
    SUPPORTED_TEXT), and tutorial 1 prints that message (checked by tests/test_docs.py)."""
    from graphver.ir.lower import SUPPORTED_TEXT

    table = (ROOT / "docs" / "index.md").read_text(encoding="utf-8").split("## Supported functions")[1]
    table = table.split("\n## ")[0]
    names = [name.strip() for name in SUPPORTED_TEXT.split("),")[-1].split(",")]
    assert "erf" in names and "round_half_even" in names
    for name in names:
        assert re.search(rf"\b{re.escape(name)}\b", table), name
    tutorial = (ROOT / "docs" / "tutorials" / "01-first-bounds.md").read_text(encoding="utf-8")
    assert SUPPORTED_TEXT in tutorial


PROPERTIES_FILE = """
import graphver as gv
m = gv.Model("props")
x = m.var("x", -1, 1)
y = m.var("y", 0, 2)
model = m
properties = {"holds": x * y <= 2.5, "fails": x * y <= 1.5, "also holds": x + y >= -2}
"""


def test_a_file_with_properties_gets_one_row_each(tmp_path):
    path = tmp_path / "props.py"
    path.write_text(PROPERTIES_FILE)
    out = tmp_path / "props.json"
    result = run("verify", path, "-q", "--timeout", "30", "--json", out)
    assert result.exit_code == cli.EXIT_FALSIFIED, result.output  # one property is false
    lines = [line for line in result.output.splitlines() if ": " in line]
    assert lines[0].startswith("holds: verified") and lines[1].startswith("fails: falsified")
    assert lines[2].startswith("also holds: verified")
    import json

    data = json.loads(out.read_text())
    assert [data[k]["status"] for k in ("holds", "fails", "also holds")] == ["verified", "falsified", "verified"]
    table = run("verify", path, "--timeout", "30")
    assert "3 properties" in table.output and "falsified" in table.output
