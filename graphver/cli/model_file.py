"""The model file: a Python script that defines ``model`` and the question's ingredients.

``load_model`` runs it in a fresh namespace (a "loading FILE" line on a terminal first) and returns the
model (a graphver.Model, or a Pyomo model read by ``gv.from_pyomo``) with the file's namespace;
``require`` reads one ingredient with an error that says what the command needs. ``FILE_CONVENTION`` is
the text every command's --help shows.
"""

from __future__ import annotations

import difflib
import runpy
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import click

import graphver as gv
from graphver.cli.errors import InputError
from graphver.errors import GraphverError

SLOW_LOAD_SECONDS = 3.0  # a load slower than this, with a large sum in the file, gets sum_hint
LARGE_SUM_TERMS = 500
RUN_NAME = "__graphver__"  # the file's __name__: an `if __name__ == "__main__":` block does not run

FILE_CONVENTION = """\
FILE is a Python script. graphver runs it in a fresh namespace (with __name__ set to
"__graphver__", so an `if __name__ == "__main__":` block does not run) and reads these
module-level names:

\b
  model        a graphver.Model, or a Pyomo ConcreteModel        (every command;
               (then bound uses its active objective and          Pyomo: verify, bound)
               verify its Pyomo relations `prop`)
  prop         a relation f <= c (or >=, <, >), a list of them   (verify)
               (all must hold), gv.All([...]) or gv.Any([...])
  properties   a dict name -> prop: each decided on its own,     (verify, instead
               one row each (--workers N: N at once on Ray)       of prop)
  objective    a sympy expression over the model's variables     (bound; interval)
  sense        "min" (default) or "max"                          (bound, optional)
  expressions  an expression, a list of them, or a dict          (interval, optional;
               label -> expression                                 default: objective)
  options      a dict of BabOptions keywords, e.g.               (verify, bound; optional)
               {"branching": "input"}; command-line flags win

Constraints are part of the model: model.constrain(gv.Eq(h, 0)), model.constrain(g <= 0)
(verify and bound then work on the feasible set; see models/examples/hyperbola.py).
"""


def load_file(path: Path) -> dict[str, Any]:
    """Run the model file in a fresh namespace and return its globals; any failure becomes an InputError."""
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)  # like `python FILE.py`: helpers next to the file can be imported
    try:
        return runpy.run_path(str(path), run_name=RUN_NAME)
    except SyntaxError as error:
        raise InputError(f"{path}, line {error.lineno}: syntax error: {error.msg}") from None
    except SystemExit:
        raise InputError(f"{path} called sys.exit() while being loaded") from None
    except Exception as error:  # noqa: BLE001  (a GraphverError or any failure of the script: an input error)
        raise InputError(f"{path}{line_in(path, error)}: {type(error).__name__}: {error}") from None
    finally:
        if folder in sys.path:
            sys.path.remove(folder)


def line_in(path: Path, error: BaseException) -> str:
    """', line N' of the deepest traceback frame inside ``path`` ('' if none)."""
    target = path.resolve()
    frames = traceback.extract_tb(error.__traceback__)
    lines = [frame.lineno for frame in frames if Path(frame.filename).resolve() == target]
    return f", line {lines[-1]}" if lines else ""


def require(namespace: dict, name: str, path: Path, command: str, what: str):
    """The value of ``name`` in the file, or an InputError naming the file, the name and what it should be."""
    if name in namespace:
        return namespace[name]
    defined = [key for key in namespace if not key.startswith("_")]
    close = difflib.get_close_matches(name, defined, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise InputError(
        f"{path} defines no `{name}`: `graphver {command}` needs `{name} = ...` ({what}) at module level.{hint} "
        f"See `graphver {command} --help` for the FILE convention."
    )


def load_model(path: Path, command: str, object_name: str | None = None, announce: bool = False) -> tuple[Any, dict]:
    """The file's ``model`` (a graphver.Model), or its Pyomo model (a ConcreteModel or block, read by
    ``gv.from_pyomo``: ``model``, or the one Pyomo model the file defines, or ``--object NAME``), and the
    file's whole namespace. With ``announce`` (a terminal, not --quiet), says "loading FILE" first, and
    after a slow load that built a large sum, how to build it in linear time (``sum_hint``)."""
    if announce:
        click.echo(f"loading {path}")
    start = time.perf_counter()
    namespace = load_file(path)
    hint = sum_hint(namespace, time.perf_counter() - start)
    if hint and announce:
        click.echo(hint)
    if object_name is not None:
        value = require(namespace, object_name, path, command, "the model named by --object")
    else:
        value = namespace.get("model")
        if not isinstance(value, gv.Model) and not is_pyomo_block(value):
            blocks = {id(v): k for k, v in namespace.items() if not k.startswith("_") and is_pyomo_block(v)}
            if len(blocks) > 1:
                raise InputError(f"{path} defines {len(blocks)} Pyomo models ({', '.join(sorted(blocks.values()))}): "
                                 "pick one with --object NAME")
            value = namespace[next(iter(blocks.values()))] if blocks else \
                require(namespace, "model", path, command, "a graphver.Model or a Pyomo ConcreteModel")
    if isinstance(value, gv.Model):
        return value, namespace
    if is_pyomo_block(value):
        if command == "interval":
            raise InputError(f"{path}: `graphver interval` needs a graphver.Model; for a Pyomo model use bound or verify")
        try:
            return gv.from_pyomo(value), namespace
        except GraphverError as error:
            raise InputError(f"{path}: {error}") from None
    raise InputError(f"{path}: `model` must be a graphver.Model, got {type(value).__name__} ({value!r:.80}); "
                     "a Pyomo ConcreteModel works too")


def sum_hint(namespace: dict, seconds: float) -> str:
    """A hint for a file that took ``seconds`` (over ``SLOW_LOAD_SECONDS``) to load and defines a sympy sum
    of at least ``LARGE_SUM_TERMS`` terms: ``sum(terms)`` or ``+=`` in a loop rebuild the sum at every step
    (quadratic time), ``sympy.Add(*terms)`` builds it once. '' otherwise."""
    if seconds < SLOW_LOAD_SECONDS or "sympy" not in sys.modules:
        return ""
    import sympy

    largest = 0
    for value in namespace.values():
        if isinstance(value, gv.Model):
            value = [c.expr for c in value.constraints]
        for expr in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(expr, sympy.Basic):
                largest = max([largest] + [len(a.args) for a in sympy.preorder_traversal(expr) if a.is_Add])
    if largest < LARGE_SUM_TERMS:
        return ""
    return (f"hint: loading took {seconds:.1f} s and the file builds a sum of {largest} terms; sum(terms) or += in a "
            "loop rebuild the sum at every step (quadratic time): build it once with sympy.Add(*terms)")


def is_pyomo_block(value) -> bool:
    """Whether ``value`` is a Pyomo model or block (without importing Pyomo when the file did not)."""
    if "pyomo.core" not in sys.modules:
        return False
    from pyomo.core.base.block import BlockData

    return isinstance(value, BlockData)


def file_options(namespace: dict, path: Path) -> dict:
    options = namespace.get("options", {})
    if not isinstance(options, dict):
        raise InputError(f"{path}: `options` must be a dict of BabOptions keywords, got {type(options).__name__}")
    return dict(options)


def as_expressions(value, path: Path) -> dict[str, Any]:
    """``expressions`` (one, a list or a dict label -> expression) as an ordered dict label -> sympy expression."""
    if isinstance(value, dict):
        items = list(value.items())
    else:
        items = [(None, e) for e in (value if isinstance(value, (list, tuple)) else [value])]
    out: dict[str, Any] = {}
    for label, expr in items:
        import sympy

        try:
            expr = sympy.sympify(expr)
        except (sympy.SympifyError, TypeError) as error:
            raise InputError(f"{path}: cannot read {expr!r} as an expression: {error}") from None
        out[str(expr) if label is None else str(label)] = expr
    if not out:
        raise InputError(f"{path}: `expressions` is empty")
    return out
