"""The pipeline's one-way flow (design.md): every module of graphver/ is parsed with ``ast`` and each of its
imports, at module level and inside functions alike, is checked against ``MAY_NOT_IMPORT``.

    dsl  ->  ir  ->  tape  ->  bounds  ->  bab  <->  search  ->  report  ->  cli
               \\_____ ops (registry: one file per op family) _____/

``MAY_NOT_IMPORT`` names, for each part of the package, the parts it must never import. ``"api"`` stands for
the layer on top of the pipeline: the package root (``graphver/__init__.py``, the public API), ``api.py``,
``confirm.py``, ``cli/`` and ``__main__.py``. ``"foundation"`` is what every stage may use: errors, rounding,
exact constants, options and the clock. Reading ``__version__`` from the package root is allowed anywhere.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "graphver"

FOUNDATION = ("errors", "rounding", "exact", "options", "clock")
STAGES = ("ops", "dsl", "ir", "tape", "bounds", "search", "bab", "report", "io")
API = ("api",)  # the package root, api.py, confirm.py, cli/, __main__.py
EVERYTHING = STAGES + API

MAY_NOT_IMPORT: dict[str, tuple[str, ...]] = {
    "foundation": EVERYTHING,
    "ops": EVERYTHING,  # one registry, below every stage that reads it
    "dsl": ("bounds", "bab", "search", "io") + API,  # a model compiles (tape) but never bounds or searches
    "ir": ("tape", "bounds", "bab", "search", "report", "io") + API,
    "tape": ("dsl", "bounds", "bab", "search", "report", "io") + API,
    "bounds": ("dsl", "bab", "search", "report", "io") + API,
    "search": ("dsl", "ir", "bounds", "bab", "report", "io") + API,  # search reads the tape only
    "bab": ("dsl", "ir", "io") + API,  # bab sees a Problem (tape, box, rows), never sympy
    "report": ("dsl", "ir", "tape", "ops", "bounds", "bab", "search", "io") + API,  # plain result objects
    "io": ("dsl", "ir"),  # importers never see sympy
    "api": (),
}

# The functions a model may use are sympy classes (sigmoid, relu, quad_over_lin, ...) that lowering and
# certified constant evaluation must recognise; dsl/functions.py itself imports nothing of graphver.
ALLOWED = {("ir", "graphver.dsl.functions"), ("foundation", "graphver.dsl.functions")}


def part_of(module: str) -> str:
    """The part of the package a module belongs to (``graphver.bounds.ibp`` -> ``bounds``)."""
    parts = module.split(".")
    if len(parts) == 1:
        return "api"
    if parts[1] in FOUNDATION:
        return "foundation"
    if parts[1] in STAGES:
        return parts[1]
    return "api"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import in the file, at any depth; ``from graphver import x`` names
    the submodule ``graphver.x`` when there is one, and the package root otherwise."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                is_module = (PACKAGE.parent / Path(*candidate.split("."))).with_suffix(".py").exists() or (
                    PACKAGE.parent / Path(*candidate.split(".")) / "__init__.py").exists()
                if is_module:
                    found.append((node.lineno, candidate))
                elif not (source == "graphver" and alias.name == "__version__"):
                    found.append((node.lineno, source))
    return [(line, name) for line, name in found if name == "graphver" or name.startswith("graphver.")]


def violations(importer: str) -> list[str]:
    """Every import of a module of part ``importer`` that ``MAY_NOT_IMPORT`` forbids, as 'file:line -> module'."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if part_of(module_name(path)) != importer:
            continue
        for line, name in imports(path):
            target = part_of(name)
            if target != importer and target in MAY_NOT_IMPORT[importer] and (importer, name) not in ALLOWED:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line} -> {name}")
    return found


def test_every_module_belongs_to_a_part_with_a_rule():
    parts = {part_of(module_name(path)) for path in PACKAGE.rglob("*.py")}
    assert parts <= set(MAY_NOT_IMPORT), parts - set(MAY_NOT_IMPORT)
    assert set(STAGES) <= parts


def test_the_allowed_exception_imports_nothing_of_graphver():
    assert imports(PACKAGE / "dsl" / "functions.py") == []


@pytest.mark.parametrize("importer", sorted(MAY_NOT_IMPORT))
def test_imports_flow_one_way(importer):
    found = violations(importer)
    assert not found, f"{importer} may not import {', '.join(MAY_NOT_IMPORT[importer])}:\n" + "\n".join(found)


def test_the_checker_sees_function_level_imports(monkeypatch):
    source = "import graphver.bab\n\ndef f():\n    from graphver.search import ipopt\n    from graphver import __version__\n"
    path = PACKAGE / "tape" / "compile.py"
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: source)
    assert imports(path) == [(1, "graphver.bab"), (4, "graphver.search.ipopt")]


def test_the_command_line_starts_without_the_heavy_modules():
    """``graphver --help`` must answer at once: the package, the command line and its plugin commands import
    torch, sympy, Pyomo, onnx and scipy only where a command uses them."""
    code = ("import sys, graphver.cli, acopf.cli, graphver.cli.vnncomp; "
            "print(sorted(m for m in ('torch', 'sympy', 'pyomo', 'onnx', 'onnxruntime', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("order", ["graphver first", "pyomo first"])
def test_pyomo_finds_the_solver_whichever_is_imported_first(order):
    imports = ["import graphver", "import pyomo.environ as pe"]
    if order == "pyomo first":
        imports.reverse()
    code = "; ".join(imports + ["import pyomo.environ as pe", "print(pe.SolverFactory('graphver').available())"])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
