"""The ``graphver`` command line: ``verify``, ``bound`` and ``interval`` on a model file.

A model file is a Python script that defines a module-level ``model`` and the question's ingredients
(see ``FILE_CONVENTION``). The command runs it in a fresh namespace, asks the engine, prints a Rich
summary and, if asked, writes the result as JSON and the convergence history as a PNG.

Exit codes: 0 verified / solved, 1 falsified, 3 unknown (timeout, domain cap, Ctrl-C), 2 usage or input
errors (a bad file, any ``GraphverError`` from the model), 4 an internal error (a bug in graphver), 130
Ctrl-C before the engine had a result. The same contract holds for vnncomp and the plugin commands
(``Commands.invoke`` runs every subcommand under ``run_guarded``).
"""

from __future__ import annotations

import difflib
import math
import os
import runpy
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import click

import graphver as gv
from graphver import clock
from graphver.errors import GraphverError, InternalError
from graphver.options import BabOptions

EXIT_OK = 0
EXIT_FALSIFIED = 1
EXIT_INPUT = 2
EXIT_UNKNOWN = 3
EXIT_INTERNAL = 4
EXIT_INTERRUPTED = 130  # Ctrl-C before the engine had a result (the shell's convention)

RUN_NAME = "__graphver__"  # the file's __name__: an `if __name__ == "__main__":` block does not run
SHOWN_CHARS = 160  # longer expressions are shortened in the summary (the JSON keeps them whole)

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
  objective    a sympy expression over the model's variables     (bound; interval)
  sense        "min" (default) or "max"                          (bound, optional)
  expressions  an expression, a list of them, or a dict          (interval, optional;
               label -> expression                                 default: objective)
  options      a dict of BabOptions keywords, e.g.               (verify, bound; optional)
               {"branching": "input"}; command-line flags win

Constraints are part of the model: model.constrain(gv.Eq(h, 0)), model.constrain(g <= 0)
(verify and bound then work on the feasible set; see models/examples/hyperbola.py).
"""


class InputError(click.ClickException):
    """A usage or input error: printed as one line on stderr, exit code 2."""

    exit_code = EXIT_INPUT


# --- the model file ---------------------------------------------------------------------------------
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


def load_model(path: Path, command: str, object_name: str | None = None) -> tuple[Any, dict]:
    """The file's ``model`` (a graphver.Model), or its Pyomo model (a ConcreteModel or block, read by
    ``gv.from_pyomo``: ``model``, or the one Pyomo model the file defines, or ``--object NAME``), and the
    file's whole namespace."""
    namespace = load_file(path)
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


# --- checks done before a long run ------------------------------------------------------------------
def check_device(device: str | None) -> None:
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise InputError("--device cuda: CUDA is not available on this machine (torch.cuda.is_available() is "
                             "False); use --device cpu")


def check_before_run(device: str | None, json_path: Path | None, plot_path: Path | None) -> None:
    """Fail on a bad device, output folder or a missing matplotlib now, not after a long run."""
    check_device(device)
    check_output(json_path, "--json")
    check_output(plot_path, "--plot")
    check_plotting(plot_path)


def check_output(path: Path | None, flag: str) -> None:
    if path is not None and not path.parent.exists():
        raise InputError(f"{flag} {path}: the folder {path.parent} does not exist")


def check_plotting(plot: Path | None) -> None:
    if plot is None:
        return
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InputError("--plot needs matplotlib: pip install 'matplotlib>=3.5'") from None


def engine_options(namespace: dict, path: Path, quiet: bool, **flags) -> dict:
    """BabOptions keywords: the file's ``options``, then the flags that were given; progress only on a terminal."""
    options = file_options(namespace, path)
    options.update({key: value for key, value in flags.items() if value is not None})
    options["progress"] = show_progress(quiet)
    return options


def deadline_of(options: dict) -> float:
    """The run's deadline: the whole process keeps to the timeout, start-up and loading the file included."""
    return clock.command_deadline(float(options.get("timeout", BabOptions.timeout)))


def show_progress(quiet: bool) -> bool:
    """The engine's live display: only on a terminal (logs, pipes and CI stay clean) and not with --quiet."""
    return sys.stdout.isatty() and not quiet


def run_guarded(path: Path | str, action):
    """Run ``action()`` under the exit-code contract: a GraphverError becomes a one-line input error (exit
    2), an InternalError or any other exception (a bug) prints its traceback and a please-report line
    (exit 4); click's own exits, Ctrl-C and SystemExit pass through. ``path``: what to report with the bug.
    Every subcommand runs under it (``Commands.invoke``, plugin commands included); commands use it
    around their engine call to name their input file in the message."""
    try:
        return action()
    except InternalError as error:
        internal_error(path, str(error))
    except GraphverError as error:
        raise InputError(f"{path}: {type(error).__name__}: {error}" if path else f"{type(error).__name__}: {error}") \
            from None
    except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, KeyboardInterrupt):
        raise
    except Exception as error:  # noqa: BLE001  (not a documented error: a bug, shown with its traceback)
        internal_error(path, f"{type(error).__name__}: {error}")


def internal_error(path: Path | str, message: str):
    """The traceback of the exception being handled, a please-report line, exit 4."""
    click.echo(traceback.format_exc(), err=True)
    about = path or "the command line and its input files"
    click.echo(f"Internal error (a bug in graphver; please report it with {about}): {message}", err=True)
    sys.exit(EXIT_INTERNAL)


# --- output -----------------------------------------------------------------------------------------
def fmt(value: float | None, digits: int = 10) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return f"{value:.{digits}g}"


def shorten(text: str, limit: int = SHOWN_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def point_text(point: dict[str, float] | None) -> str:
    if point is None:
        return "-"
    return shorten(", ".join(f"{name} = {fmt(value)}" for name, value in point.items()), 400)


STATUS_STYLE = {"verified": "bold green", "solved": "bold green", "falsified": "bold red", "unknown": "bold yellow",
                "infeasible": "bold magenta"}


def console(quiet: bool = False):
    from rich.console import Console

    return Console(highlight=False, quiet=quiet)


def stats_rows(stats) -> list[tuple[str, str]]:
    other = max(0.0, stats.time_total - stats.time_bound - stats.time_branch - stats.time_search)
    rows = [
        ("domains", f"{stats.domains_explored} explored, {stats.domains_left} left, max depth {stats.max_depth}, "
                    f"{stats.rounds} rounds ({stats.input_splits} input / {stats.node_splits} node splits)"),
        ("time", f"{stats.time_total:.2f} s total: bound {stats.time_bound:.2f} s, branch {stats.time_branch:.2f} s, "
                 f"search {stats.time_search:.2f} s, other {other:.2f} s"),
        ("proved by", stats.proved_by or "-"),
        ("stop reason", stats.stop_reason or "-"),
    ]
    if stats.incumbent_from:
        rows.insert(2, ("best point from", stats.incumbent_from))
    if stats.ipopt_calls:
        failed = f", {stats.ipopt_failures} not converged" if stats.ipopt_failures else ""
        rows.insert(2, ("ipopt", f"{stats.ipopt_calls} local solves{failed}, {stats.ipopt_improved} improved the "
                                 f"best point, {stats.time_ipopt:.2f} s"))
    for message in dict.fromkeys(stats.messages):  # unique, in order
        rows.append(("note", shorten(str(message), 300)))
    return rows


def summary_panel(title: str, status: str, rows: list[tuple[str, str]]):
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("status", Text(status.upper(), style=STATUS_STYLE.get(status, "")))
    for name, value in rows:
        table.add_row(name, Text(value))
    return Panel(table, title=title, title_align="left", expand=False)


def verify_rows(result) -> list[tuple[str, str]]:
    joiner = " and " if result.combine == "all" else " or "
    rows = [("property", shorten(joiner.join(result.property))),
            ("proven margin", f">= {fmt(result.margin_lower)}  (>= 0 proves the property)")]
    worst = worst_seen(result)
    if worst is not None:
        rows.append(("worst margin seen", fmt(worst)))
    if result.counterexample is not None:
        rows.append(("counterexample", point_text(result.counterexample)))
        rows.append(("margins there", ", ".join(fmt(v) for v in result.counterexample_margins or [])))
    return rows + constraint_rows(result) + stats_rows(result.stats)


def worst_seen(result) -> float | None:
    """The smallest margin evaluated at a point (the last history entry), if any was finite."""
    if result.counterexample_margins:
        aggregate = min if result.combine == "all" else max
        return aggregate(result.counterexample_margins)
    if result.stats.history and math.isfinite(result.stats.history[-1][2]):
        return result.stats.history[-1][2]
    return None


def bound_rows(result) -> list[tuple[str, str]]:
    proven, attained = ("lower", "upper") if result.sense == "min" else ("upper", "lower")
    scale = abs(result.upper if result.sense == "min" else result.lower)
    relative = f", relative {result.gap / scale:.3g}" if scale > 0 and math.isfinite(result.gap) else ""
    rows = [
        ("objective", f"{result.sense} of {shorten(result.expression)}"),
        (f"proven {proven}", fmt(getattr(result, proven))),
        (f"best value ({attained})", f"{fmt(getattr(result, attained))}  (attained at the witness)"),
        ("gap", f"{fmt(result.gap, 3)}{relative}"),
        ("witness", point_text(result.witness)),
    ]
    return rows + constraint_rows(result) + stats_rows(result.stats)


def constraint_rows(result) -> list[tuple[str, str]]:
    """The constraints and how far the reported point is from satisfying them (nothing without constraints)."""
    if not result.constraints:
        return []
    rows = [("constraints", shorten(f"{len(result.constraints)}: " + "; ".join(result.constraints)))]
    if result.max_violation is not None:
        rows.append(("max violation", f"{fmt(result.max_violation, 3)}  (of the reported point; certified bounds "
                                      "are for the exact constraints)"))
    return rows


def write_outputs(out, result, json_path: Path | None, plot_path: Path | None, title: str, mode: str) -> None:
    """The --json and --plot files, after the summary (so an interrupted run still leaves both)."""
    try:
        if json_path is not None:
            json_path.write_text(result.to_json() + "\n", encoding="utf-8")
            out.print(f"wrote {json_path}")
        if plot_path is not None:
            plot_history(result, plot_path, title, mode)
            out.print(f"wrote {plot_path}")
    except OSError as error:
        raise InputError(f"cannot write {error.filename}: {error.strerror}") from None


# --- the convergence plot ---------------------------------------------------------------------------
def history_series(result, mode: str) -> tuple[list[float], list[float], list[float], str, str]:
    """(times, proven, best, proven label, best label) in the user's terms (a max bound is mirrored back)."""
    history = list(result.stats.history)
    if mode == "verify":
        final = (result.stats.time_total, result.margin_lower, worst_seen(result) or math.inf)
    else:
        # engine terms: the engine minimised the objective (sense "min") or its negation (sense "max")
        low, high = (result.lower, result.upper) if result.sense == "min" else (-result.upper, -result.lower)
        final = (result.stats.time_total, low, high)
    history.append(final)
    times = [entry[0] for entry in history]
    proven = [entry[1] for entry in history]
    best = [entry[2] for entry in history]
    if mode == "verify":
        return times, proven, best, "proven lower bound on the worst margin", "worst margin seen"
    if result.sense == "max":  # the engine minimised -expr: mirror back
        return times, [-v for v in proven], [-v for v in best], "proven upper bound", "best value found (incumbent)"
    return times, proven, best, "proven lower bound", "best value found (incumbent)"


def plot_history(result, path: Path, title: str, mode: str) -> None:
    """PNG of the proven bound and the best value found versus time, and their gap (log scale) below."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    def finite(values):
        return [v if math.isfinite(v) else math.nan for v in values]

    times, proven, best, proven_label, best_label = history_series(result, mode)
    gaps = [abs(b - p) if math.isfinite(b) and math.isfinite(p) and b != p else math.nan for p, b in zip(proven, best)]
    figure = Figure(figsize=(8, 6), layout="constrained")
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": (2, 1)})  # matplotlib 3.5
    top.step(times, finite(proven), where="post", label=proven_label, color="tab:blue")
    top.step(times, finite(best), where="post", label=best_label, color="tab:orange")
    if mode == "verify":
        top.axhline(0.0, color="gray", linewidth=0.8, linestyle="--", label="0 (the property holds above)")
        top.set_ylabel("margin")
    else:
        top.set_ylabel(f"{result.sense} of the objective")
    top.legend(loc="best")
    top.grid(alpha=0.3)
    bottom.step(times, gaps, where="post", color="tab:green")
    if any(g > 0 for g in gaps if math.isfinite(g)):
        bottom.set_yscale("log")
    bottom.set_ylabel("gap")
    bottom.set_xlabel("time (s)")
    bottom.grid(alpha=0.3)
    figure.suptitle(f"{title}: {result.status.upper()}")
    figure.savefig(path, format="png", dpi=100)


# --- the commands -----------------------------------------------------------------------------------
def default(name: str):
    return BabOptions.__dataclass_fields__[name].default


def print_version(ctx: click.Context, _param, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from graphver.report.results import versions

    found = versions()
    click.echo(f"graphver {found['graphver']} (torch {found['torch']}, sympy {found['sympy']}, "
               f"python {found['python']})")
    ctx.exit(EXIT_OK)


FILE_ARGUMENT = click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))


def run_options(command):
    """Options shared by verify and bound (decorators apply bottom-up, so --help lists them in this order)."""
    options = [
        click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
                     help="Wall-clock limit; the best proven result so far is reported. "
                          f"[default: {default('timeout'):g}]"),
        click.option("--device", type=click.Choice(["cpu", "cuda"]), help="Where domains are bounded. [default: cpu]"),
        click.option("--batch-size", type=click.IntRange(min=1), metavar="N",
                     help=f"Domains split per round. [default: {default('batch_size')}]"),
        click.option("--seed", type=int, metavar="N",
                     help=f"Seed of every random choice. [default: {default('seed')}]"),
        click.option("--ipopt", type=click.Choice(["auto", "on", "off"]),
                     help="Local solves with IPOPT in the search: auto (when installed), on (required), off. "
                          f"[default: {default('ipopt')}]"),
        click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
                     help="Write the result (status, bounds, stats, options, versions) as JSON."),
        click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
                     help="Write a PNG of the proven bound and the best value found versus time."),
        click.option("--quiet", "-q", is_flag=True, help="No progress display and a one-line result."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


OBJECT_OPTION = click.option("--object", "object_name", metavar="NAME",
                             help="The model to use when FILE defines several (e.g. two Pyomo models).")


class Commands(click.Group):
    """The command group. Every subcommand, the plugin commands (acopf) and vnncomp included, runs under
    one exit-code contract (``run_guarded``): a GraphverError that reaches here is an input error (2), any
    other exception an internal error (4, with its traceback); Ctrl-C outside the engine's own handling
    exits 130 (click's default, 1, means falsified)."""

    def invoke(self, ctx: click.Context):
        try:
            return run_guarded("", lambda: super(Commands, self).invoke(ctx))
        except KeyboardInterrupt:
            click.echo("Interrupted (Ctrl-C) before a result was available.", err=True)
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=print_version,
              help="Show the versions of graphver, torch, sympy and python, and exit.")
def main() -> None:
    """Certified bounds on nonlinear computation graphs, from a model file.

    \b
      graphver verify FILE.py     prove or refute the property `prop`
      graphver bound FILE.py      certified global min (or max) of `objective`
      graphver interval FILE.py   one pass of IBP, CROWN and alpha over the whole box
      graphver vnncomp M.onnx P.vnnlib   decide a VNN-COMP instance (unsat / sat / unknown)

    Exit codes (every command): 0 verified/solved/unsat, 1 falsified/sat, 2 usage or input
    error, 3 unknown (timeout, domain cap, Ctrl-C), 4 internal error, 130 Ctrl-C before a
    result. `graphver COMMAND --help` describes FILE.
    """


def run() -> None:
    """The ``graphver`` program: the commands' timeouts count the process's start-up (graphver.clock), and
    the process leaves as soon as a command has written its results (``leave``)."""
    clock.started_as_command()
    try:
        main()
    except SystemExit as stop:
        leave(stop.code)
    leave(0)


def leave(code) -> None:
    """Flush the output and end the process at once. An orderly interpreter shutdown frees every tensor
    and cache one by one: after a run on a 10**5-node tape, seconds past the end of the timeout. Results
    are written and closed by then (every file is written inside a ``with``)."""
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can reach it
            pass
    os._exit(code)


@main.command(help="Prove or refute the property `prop` of FILE over the model's box by branch-and-bound.\n\n"
              + FILE_CONVENTION
              + "\nExit codes: 0 verified (or constraints infeasible), 1 falsified (a counterexample is printed), 3 unknown, "
              "2 input error.")
@FILE_ARGUMENT
@run_options
@OBJECT_OPTION
def verify(file: Path, timeout, device, batch_size, seed, ipopt, json_path, plot_path, quiet, object_name) -> None:
    check_before_run(device, json_path, plot_path)
    model, namespace = load_model(file, "verify", object_name)
    prop = require(namespace, "prop", file, "verify",
                   "a relation such as f <= c, a list of them, gv.All([...]) or gv.Any([...]) "
                   "(for a Pyomo model: Pyomo relations such as m.x + m.y <= 3)")
    options = engine_options(namespace, file, quiet, timeout=timeout, device=device, batch_size=batch_size, seed=seed,
                             ipopt=ipopt)
    result = run_guarded(file, lambda: model.verify(prop, deadline=deadline_of(options), **options))
    if quiet:
        click.echo(f"{result.status}: proven margin >= {fmt(result.margin_lower)}"
                   + (f"; counterexample {point_text(result.counterexample)}" if result.counterexample else ""))
    else:
        console().print(summary_panel(f"graphver verify {file.name} (model {model.name!r})", result.status,
                                      verify_rows(result)))
    write_outputs(console(quiet), result, json_path, plot_path, f"graphver verify {file.name}", "verify")
    # infeasible constraints: the property holds vacuously (a certificate, exit 0)
    sys.exit({"verified": EXIT_OK, "infeasible": EXIT_OK, "falsified": EXIT_FALSIFIED}.get(result.status, EXIT_UNKNOWN))


@main.command(help="Certified global minimum (or maximum) of `objective` of FILE over the model's box.\n\n"
              + FILE_CONVENTION
              + "\nExit codes: 0 solved (gap within tolerance) or certified infeasible, 3 unknown, 2 input error.")
@FILE_ARGUMENT
@run_options
@click.option("--sense", type=click.Choice(["min", "max"]), help="Minimise or maximise (overrides the file's `sense`).")
@click.option("--rel-tol", type=click.FloatRange(min=0), metavar="TOL",
              help=f"Stop when the gap <= max(abs-tol, rel-tol * |value|). [default: {default('rel_tol'):g}]")
@click.option("--abs-tol", type=click.FloatRange(min=0), metavar="TOL",
              help=f"Absolute gap tolerance. [default: {default('abs_tol'):g}]")
@OBJECT_OPTION
def bound(file: Path, timeout, device, batch_size, seed, ipopt, json_path, plot_path, quiet, sense, rel_tol,
          abs_tol, object_name) -> None:
    check_before_run(device, json_path, plot_path)
    model, namespace = load_model(file, "bound", object_name)
    if isinstance(model, gv.Model):
        objective = require(namespace, "objective", file, "bound", "a sympy expression over the model's variables")
        sense = sense or namespace.get("sense", "min")
    else:  # a Pyomo model: its active objective, in its own sense
        objective = None
        own = run_guarded(file, lambda: model.sense)  # reads the model: errors name the file
        if sense is not None and sense != own:
            raise InputError(f"{file}: the Pyomo objective is a {own}imisation; --sense {sense} contradicts it")
        sense = own
    if sense not in ("min", "max"):
        raise InputError(f"{file}: `sense` must be \"min\" or \"max\", got {sense!r}")
    options = engine_options(namespace, file, quiet, timeout=timeout, device=device, batch_size=batch_size, seed=seed,
                             ipopt=ipopt, rel_tol=rel_tol, abs_tol=abs_tol)
    if objective is None:
        result = run_guarded(file, lambda: model.bound(deadline=deadline_of(options), **options))
    else:
        result = run_guarded(file, lambda: model.bound(objective, sense=sense, deadline=deadline_of(options),
                                                       **options))
    if quiet:
        click.echo(f"{result.status}: {sense} in [{fmt(result.lower)}, {fmt(result.upper)}] (gap {fmt(result.gap, 3)})")
    else:
        console().print(summary_panel(f"graphver bound {file.name} (model {model.name!r})", result.status,
                                      bound_rows(result)))
    write_outputs(console(quiet), result, json_path, plot_path, f"graphver bound {file.name}", "bound")
    sys.exit(EXIT_OK if result.status in ("solved", "infeasible") else EXIT_UNKNOWN)  # infeasible is certified


@main.command(help="Certified bounds of `expressions` (or `objective`) of FILE over the whole box in one pass "
              "of each bounding method, no branching.\n\n" + FILE_CONVENTION + "\nExit codes: 0 done, 2 input error.")
@FILE_ARGUMENT
@click.option("--method", type=click.Choice(["ibp", "crown", "alpha", "all"]), default="all", show_default=True,
              help="Bounding method (all: one row per method).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), help="Where the bounds are computed. [default: cpu]")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
              help="Write the intervals (and versions) as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="Plain lines: label, method, lower, upper.")
def interval(file: Path, method, device, json_path, quiet) -> None:
    check_device(device)
    check_output(json_path, "--json")
    model, namespace = load_model(file, "interval")
    name = "expressions" if "expressions" in namespace or "objective" not in namespace else "objective"
    value = require(namespace, name, file, "interval",
                    "an expression, a list of them or a dict label -> expression; or define `objective`")
    expressions = as_expressions(value, file)
    methods = ["ibp", "crown", "alpha"] if method == "all" else [method]
    rows = run_guarded(file, lambda: interval_rows(model, expressions, methods, device))
    if quiet:
        for label, name, found, _seconds in rows:
            click.echo(f"{label}\t{name}\t{fmt(found.lower, 17)}\t{fmt(found.upper, 17)}")
    else:
        console().print(interval_table(f"graphver interval {file.name} (model {model.name!r})", rows))
    if json_path is not None:
        json_path.write_text(interval_json(model, rows) + "\n", encoding="utf-8")
        console(quiet).print(f"wrote {json_path}")
    sys.exit(EXIT_OK)


def interval_rows(model: gv.Model, expressions: dict, methods: list[str], device) -> list[tuple]:
    """(label, method, Interval, seconds) per expression and method; one ``Model.interval`` call per method."""
    rows = []
    for name in methods:
        start = time.perf_counter()
        found = model.interval(list(expressions.values()), method=name, device=device)
        seconds = time.perf_counter() - start
        rows.extend((label, name, one, seconds) for label, one in zip(expressions, found))
    order = {label: i for i, label in enumerate(expressions)}
    return sorted(rows, key=lambda row: order[row[0]])  # stable: methods stay in order within an expression


def interval_json(model: gv.Model, rows: list[tuple]) -> str:
    from graphver.report.results import json_text, versions

    data = {
        "model": model.name,
        "variables": {name: [low, high] for name, low, high in zip(model.names, model.lower, model.upper)},
        "intervals": [{"label": label, "method": name, **found.to_dict(), "seconds": seconds}
                      for label, name, found, seconds in rows],
        "versions": versions(),
    }
    return json_text(data)


def interval_table(title: str, rows: list[tuple]):
    from rich.table import Table

    seconds = {name: spent for _label, name, _found, spent in rows}  # one call per method covers every expression
    spent = ", ".join(f"{name} {t:.3f} s" for name, t in seconds.items())
    caption = f"time per method (all expressions in one call): {spent}"
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    for header, justify in (("expression", "left"), ("method", "left"), ("lower", "right"), ("upper", "right"),
                            ("width", "right")):
        table.add_column(header, justify=justify, overflow="fold")
    previous = None
    for label, name, found, _seconds in rows:
        shown = shorten(label, 60) if label != previous else ""
        table.add_row(shown, name, fmt(found.lower), fmt(found.upper), fmt(found.width, 4))
        previous = label
    return table


PLUGIN_GROUP = "graphver.commands"  # entry points adding subcommands (acopf registers `graphver acopf`)


def add_plugin_commands(group: click.Group) -> None:
    """Subcommands that installed packages register under the ``graphver.commands`` entry-point group.
    graphver imports nothing of them until the command line is built; a plugin that fails to load is
    reported on stderr and left out, so that it cannot break the core commands."""
    from importlib.metadata import entry_points

    for entry in entry_points(group=PLUGIN_GROUP):
        if entry.name in group.commands:
            continue
        try:
            group.add_command(entry.load(), entry.name)
        except Exception as error:  # noqa: BLE001 - any failure of a plugin's import
            click.echo(f"graphver: the {entry.name!r} command could not be loaded: {error}", err=True)


def add_vnncomp_command(group: click.Group) -> None:
    from graphver.io.vnncomp_cli import vnncomp

    group.add_command(vnncomp, "vnncomp")


add_vnncomp_command(main)
add_plugin_commands(main)

if __name__ == "__main__":
    main()
