"""The ``graphver`` command line: exit codes per outcome, JSON and PNG outputs, input errors, entry points.

Most tests run the commands in-process with click's CliRunner; one runs ``python -m graphver`` and one
``python -m graphver.cli`` as real subprocesses to check the entry points.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import graphver as gv
from graphver import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "models" / "examples"
CAMEL_MIN = -1.0316284534898774  # six-hump camel, global minimum over [-3, 3] x [-2, 2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(*args: str):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


def write(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(source, encoding="utf-8")
    return path


HEADER = "import sympy\nimport graphver as gv\nmodel = gv.Model('t')\nx = model.var('x', 0, 1)\n"


# --- bound -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def camel(tmp_path_factory):
    """One real run of the camel example with --json and --plot (the other tests read its outputs)."""
    folder = tmp_path_factory.mktemp("camel")
    json_path, png_path = folder / "camel.json", folder / "camel.png"
    result = run("bound", EXAMPLES / "camel.py", "--json", json_path, "--plot", png_path)
    return result, json_path, png_path


def test_bound_solved_exit_0_and_known_minimum(camel):
    result, json_path, _ = camel
    assert result.exit_code == cli.EXIT_OK, result.output
    assert "SOLVED" in result.output and "witness" in result.output
    data = json.loads(json_path.read_text())
    assert data["lower"] <= CAMEL_MIN <= data["upper"]
    assert data["upper"] - data["lower"] <= 1e-4 * abs(CAMEL_MIN)  # the default rel_tol


def test_bound_json_schema(camel):
    data = json.loads(camel[1].read_text())
    for key in ("sense", "lower", "upper", "gap", "status", "witness", "expression", "stats", "options", "versions"):
        assert key in data, key
    assert data["status"] == "solved" and data["sense"] == "min"
    assert set(data["witness"]) == {"x", "y"}
    for key in ("domains_explored", "time_total", "stop_reason", "history"):
        assert key in data["stats"], key
    assert data["options"]["timeout"] == gv.BabOptions().timeout
    assert data["options"]["progress"] is False  # CliRunner's stdout is not a terminal
    assert data["versions"]["graphver"] == gv.__version__


def test_bound_plot_is_a_png(camel):
    png = camel[2].read_bytes()
    assert png[:8] == PNG_MAGIC and len(png) > 5000


def test_bound_unknown_exit_3(tmp_path):
    json_path = tmp_path / "out.json"
    result = run("bound", EXAMPLES / "camel.py", "--timeout", "0.01", "--json", json_path)
    assert result.exit_code == cli.EXIT_UNKNOWN, result.output
    assert "UNKNOWN" in result.output
    data = json.loads(json_path.read_text())
    assert data["status"] == "unknown" and data["stats"]["stop_reason"] == "timeout after 0.01 s"


def test_bound_sense_from_file_and_flag(tmp_path):
    path = write(tmp_path, "parabola.py", HEADER + "objective = x * (1 - x)\nsense = 'max'\n")
    result = run("bound", path, "--quiet")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("solved: max in [0.25")  # max of x(1-x) on [0, 1] is 1/4
    result = run("bound", path, "--sense", "min", "-q", "--rel-tol", "0", "--abs-tol", "1e-9")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("solved: min in [")
    lower, upper = (float(v) for v in result.output.split("[")[1].split("]")[0].split(","))
    assert lower <= 0.0 <= upper and upper - lower <= 1e-9


def test_bound_max_plot(tmp_path):
    path = write(tmp_path, "parabola.py", HEADER + "objective = x * (1 - x)\nsense = 'max'\n")
    png = tmp_path / "max.png"
    assert run("bound", path, "-q", "--plot", png).exit_code == 0
    assert png.read_bytes()[:8] == PNG_MAGIC


# --- verify ------------------------------------------------------------------------------------------
def test_verify_verified_exit_0_and_json(tmp_path):
    json_path = tmp_path / "peak.json"
    result = run("verify", EXAMPLES / "peak.py", "--json", json_path, "--seed", "3", "--batch-size", "64")
    assert result.exit_code == cli.EXIT_OK, result.output
    assert "VERIFIED" in result.output
    data = json.loads(json_path.read_text())
    for key in ("status", "margin_lower", "counterexample", "property", "stats", "options", "versions"):
        assert key in data, key
    assert data["status"] == "verified" and data["margin_lower"] >= 0
    assert data["options"]["seed"] == 3 and data["options"]["batch_size"] == 64


def test_verify_falsified_exit_1_with_counterexample():
    result = run("verify", EXAMPLES / "spike.py")
    assert result.exit_code == cli.EXIT_FALSIFIED, result.output
    assert "FALSIFIED" in result.output and "counterexample" in result.output
    x = float(result.output.split("x = ")[1].split()[0])
    assert abs(x - 0.7) < 0.00064  # inside the dip, where the margin is negative


def test_verify_unknown_exit_3_with_plot(tmp_path):
    # true (the camel minimum is -1.03162845...) but by a margin of 4.7e-8: no proof within 0.05 s
    path = write(tmp_path, "tight.py", "import sympy\nimport graphver as gv\nmodel = gv.Model('tight')\n"
                 "x = model.var('x', -3, 3)\ny = model.var('y', -2, 2)\n"
                 "f = (4 - sympy.Rational(21, 10) * x**2 + x**4 / 3) * x**2 + x * y + (-4 + 4 * y**2) * y**2\n"
                 "prop = f >= -1.0316285\n")
    png = tmp_path / "tight.png"
    result = run("verify", path, "--timeout", "0.05", "--plot", png)
    assert result.exit_code == cli.EXIT_UNKNOWN, result.output
    assert "UNKNOWN" in result.output and "timeout" in result.output
    assert png.read_bytes()[:8] == PNG_MAGIC


def test_ctrl_c_in_the_engine_still_reports_and_writes(tmp_path, monkeypatch):
    """The engine turns Ctrl-C into an 'unknown' result; the CLI prints it and writes JSON and PNG (exit 3).

    The interrupt is raised at the end of the first round (where the progress display is updated), when
    every open domain is back in the store.
    """
    from graphver.bab.progress import Progress

    def interrupted(self, *args):
        raise KeyboardInterrupt

    monkeypatch.setattr(Progress, "update", interrupted)
    json_path, png_path = tmp_path / "int.json", tmp_path / "int.png"
    result = run("bound", EXAMPLES / "camel.py", "--json", json_path, "--plot", png_path)
    assert result.exit_code == cli.EXIT_UNKNOWN, result.output
    assert "UNKNOWN" in result.output and "interrupted (Ctrl-C)" in result.output
    data = json.loads(json_path.read_text())
    assert data["stats"]["stop_reason"].startswith("interrupted") and data["lower"] <= CAMEL_MIN
    assert png_path.read_bytes()[:8] == PNG_MAGIC


def test_ctrl_c_during_a_round_keeps_the_popped_domains(tmp_path, monkeypatch):
    from graphver.bab.engine import Engine

    def interrupted(self, parents):
        raise KeyboardInterrupt

    monkeypatch.setattr(Engine, "split", interrupted)
    json_path = tmp_path / "int.json"
    result = run("bound", EXAMPLES / "camel.py", "--json", json_path)
    data = json.loads(json_path.read_text())
    assert result.exit_code == cli.EXIT_UNKNOWN and data["status"] == "unknown"
    assert data["lower"] <= CAMEL_MIN  # the root's bound (about -156) at least


def test_ctrl_c_before_a_result_exits_130(monkeypatch):
    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(gv.Model, "verify", interrupted)
    result = run("verify", EXAMPLES / "peak.py")
    assert result.exit_code == cli.EXIT_INTERRUPTED
    assert "Interrupted" in result.output


def test_progress_only_on_a_terminal(monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert cli.show_progress(quiet=False) is True
    assert cli.show_progress(quiet=True) is False
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    assert cli.show_progress(quiet=False) is False


# --- interval ----------------------------------------------------------------------------------------
def test_interval_table_and_json(tmp_path):
    json_path = tmp_path / "ranges.json"
    result = run("interval", EXAMPLES / "ranges.py", "--json", json_path)
    assert result.exit_code == 0, result.output
    assert "crown" in result.output and "-0.25" in result.output
    data = json.loads(json_path.read_text())
    rows = {(row["label"], row["method"]): row for row in data["intervals"]}
    assert len(rows) == 9  # 3 expressions x 3 methods
    crown = rows[("x**2 - x", "crown")]
    assert crown["lower"] <= -0.25 and crown["lower"] >= -0.25 - 1e-12  # exact range [-0.25, 2]
    assert 2 <= crown["upper"] <= 2 + 1e-12
    ibp = rows[("x**2 - x", "ibp")]  # IBP: [-1, 2]**2 - [-1, 2] = [0, 4] - [-1, 2] = [-2, 5], widened by rounding
    assert -2 - 1e-12 <= ibp["lower"] <= -2 and 5 <= ibp["upper"] <= 5 + 1e-12


def test_interval_one_method_quiet_falls_back_to_objective(tmp_path):
    path = write(tmp_path, "obj.py", HEADER + "objective = x**2 - x\n")
    result = run("interval", path, "--method", "ibp", "-q")
    assert result.exit_code == 0, result.output
    label, method, lower, upper = result.output.strip().split("\t")
    assert (label, method) == ("x**2 - x", "ibp")
    assert -1 - 1e-12 <= float(lower) <= -1 and 1 <= float(upper) <= 1 + 1e-12  # [0, 1] - [0, 1], widened


# --- input errors: one clear line, exit 2, no traceback ------------------------------------------------
@pytest.mark.parametrize(
    "command, source, expected",
    [
        ("verify", HEADER + "prp = x <= 2\n", ["defines no `prop`", "Did you mean 'prp'?"]),
        ("bound", HEADER + "prop = x <= 2\n", ["defines no `objective`", "graphver bound --help"]),
        ("verify", "import graphver as gv\nmodel = gv.Model('t'\nprop = 1\n", ["line 2: syntax error"]),
        ("verify", "model = 3\nprop = 1\n", ["`model` must be a graphver.Model, got int"]),
        ("bound", "objective = 1\n", ["defines no `model`"]),
        ("bound", HEADER + "objective = x / undefined_name\n", ["line 5: NameError", "undefined_name"]),
        ("bound", "import graphver as gv\nmodel = gv.Model('t')\nx = model.var('x', 2, 1)\nobjective = x\n",
         ["line 3: ModelError", "lower bound 2.0 exceeds upper bound 1.0"]),
        ("bound", HEADER + "objective = x\nsense = 'maximum'\n", ["`sense` must be \"min\" or \"max\""]),
        ("bound", HEADER + "objective = x\noptions = {'branchng': 'input'}\n", ["OptionError", "'branching'"]),
        ("bound", HEADER + "objective = sympy.gamma(x + 1)\n", ["UnsupportedOpError", "'gamma'"]),
        ("interval", HEADER + "objective = gv.log(x - 1)\n", ["DomainError", "leaves the domain of log"]),
    ],
    ids=["missing-prop", "missing-objective", "syntax", "not-a-model", "missing-model", "name-error", "bad-box",
         "bad-sense", "bad-option", "unsupported-op", "domain-error"],
)
def test_input_errors_exit_2(tmp_path, command, source, expected):
    path = write(tmp_path, "broken.py", source)
    result = run(command, path)
    assert result.exit_code == cli.EXIT_INPUT, result.output
    assert result.stderr.startswith(f"Error: {path}")  # names the file
    for text in expected:
        assert text in result.stderr
    assert "Traceback" not in result.output


def test_missing_output_folder_fails_before_the_run(tmp_path):
    result = run("bound", EXAMPLES / "camel.py", "--json", tmp_path / "no" / "such" / "out.json")
    assert result.exit_code == cli.EXIT_INPUT
    assert "does not exist" in result.stderr


def test_missing_file_is_a_usage_error():
    result = run("verify", "no/such/file.py")
    assert result.exit_code == 2 and "does not exist" in result.output


# --- help, version, entry points -----------------------------------------------------------------------
def test_help_describes_the_file_convention():
    result = run("verify", "--help")
    assert result.exit_code == 0
    for text in ("FILE is a Python script", "model", "a graphver.Model", "prop", "objective", "--timeout",
                 "--json", "--plot", "Exit codes: 0 verified (or constraints infeasible), 1 falsified"):
        assert text in result.output, text
    assert "--rel-tol" in run("bound", "--help").output and "--method" in run("interval", "--help").output
    top = run("--help").output
    assert all(name in top for name in ("verify", "bound", "interval"))


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and result.output.startswith(f"graphver {gv.__version__} (torch ")


def test_python_dash_m_graphver_runs_the_cli(tmp_path):
    json_path = tmp_path / "peak.json"
    done = subprocess.run([sys.executable, "-m", "graphver", "verify", str(EXAMPLES / "peak.py"), "-q",
                           "--json", str(json_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("verified: proven margin >= ")
    assert json.loads(json_path.read_text())["status"] == "verified"


def test_python_dash_m_graphver_cli_version():
    done = subprocess.run([sys.executable, "-m", "graphver.cli", "--version"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"graphver {gv.__version__}")


def test_ipopt_flag_and_its_report(tmp_path):
    json_path = tmp_path / "spike.json"
    on = run("verify", EXAMPLES / "spike.py", "--ipopt", "on", "--json", json_path)
    assert on.exit_code == cli.EXIT_FALSIFIED, on.output
    assert "ipopt" in on.output and "local solves" in on.output and "best point from" in on.output
    data = json.loads(json_path.read_text())
    assert data["options"]["ipopt"] == "on" and data["stats"]["ipopt_calls"] >= 1
    assert float(data["counterexample_check"][0]) < 0  # the 30-digit margin
    off = run("bound", EXAMPLES / "camel.py", "--ipopt", "off", "--json", json_path)
    assert off.exit_code == cli.EXIT_OK, off.output
    data = json.loads(json_path.read_text())
    assert data["stats"]["ipopt_calls"] == 0 and data["stats"]["ipopt"] == "off"
    bad = run("bound", EXAMPLES / "camel.py", "--ipopt", "maybe")
    assert bad.exit_code == 2 and "maybe" in bad.output


def test_constrained_model_file_and_infeasible_exit_codes(tmp_path):
    json_path = tmp_path / "hyperbola.json"
    result = run("bound", EXAMPLES / "hyperbola.py", "--json", json_path)
    assert result.exit_code == cli.EXIT_OK, result.output
    data = json.loads(json_path.read_text())
    assert data["lower"] <= 7.0 <= data["upper"] + 1e-6 and data["max_violation"] <= 1e-6
    assert data["constraints"] == ["Eq(x*y, 1)"]
    path = write(tmp_path, "empty.py", HEADER + "y = model.var('y', 0, 1)\nmodel.constrain(x + y >= 3)\n"
                 "objective = x * y\nprop = x <= 0\n")
    bound = run("bound", path)
    assert bound.exit_code == cli.EXIT_OK and "INFEASIBLE" in bound.output
    verify = run("verify", path)
    assert verify.exit_code == cli.EXIT_OK and "INFEASIBLE" in verify.output


def test_the_program_flushes_and_leaves_with_the_commands_exit_code(tmp_path):
    """``graphver`` ends the process right after a command (``cli.leave``): what was printed, unflushed,
    still arrives, and the exit code is the command's (usage error 2, a message code 1, success 0)."""
    script = ("import sys; from graphver import cli; sys.stdout.write('partial line'); "
              "sys.argv = ['graphver'] + sys.argv[1:]; cli.run()")
    usage = subprocess.run([sys.executable, "-c", script, "no-such-command"], capture_output=True, text=True)
    assert usage.returncode == 2 and usage.stdout.startswith("partial line") and "No such command" in usage.stderr
    helped = subprocess.run([sys.executable, "-c", script, "--help"], capture_output=True, text=True)
    assert helped.returncode == 0 and "Usage: graphver" in helped.stdout
    message = subprocess.run([sys.executable, "-c", "from graphver import cli; cli.leave('stopped: why')"],
                             capture_output=True, text=True)
    assert message.returncode == 1 and "stopped: why" in message.stderr
