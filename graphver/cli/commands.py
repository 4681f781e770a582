"""``graphver verify | bound | interval FILE``: the questions asked of a model file.

Each command loads the file (graphver/cli/model_file.py), checks its outputs before the run, asks the
model, and hands the result to ``finish``: the one place that prints the summary (or the --quiet line),
writes --json and --plot, and exits with the contract's code (graphver/cli/errors.py). What the summary
looks like is graphver/report/render.py's business, the plot graphver/report/plot.py's.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

import graphver as gv
from graphver.cli.errors import EXIT_FALSIFIED, EXIT_INPUT, EXIT_OK, EXIT_UNKNOWN, InputError, run_guarded
from graphver.cli.model_file import FILE_CONVENTION, as_expressions, load_model, require
from graphver.cli.options import (FILE_ARGUMENT, OBJECT_OPTION, check_before_run, check_device, check_output,
                                  deadline_of, default, engine_options, run_options, show_progress)
from graphver.report.render import bound_rows, console, fmt, interval_table, point_text, summary_panel, verify_rows

VERIFY_CODES = {"verified": EXIT_OK, "infeasible": EXIT_OK, "falsified": EXIT_FALSIFIED}  # infeasible: vacuous
BOUND_CODES = {"solved": EXIT_OK, "infeasible": EXIT_OK}  # a certified infeasibility is an answer


def finish(result, mode: str, file: Path, model, quiet_line: str, quiet: bool, json_path: Path | None,
           plot_path: Path | None, codes: dict) -> None:
    """Print the result (a panel, or ``quiet_line`` with --quiet), write --json and --plot (after the
    summary, so an interrupted run still leaves both), exit with ``codes[result.status]`` (else 3)."""
    title = f"graphver {mode} {file.name}"
    if quiet:
        click.echo(quiet_line)
    else:
        rows = verify_rows(result) if mode == "verify" else bound_rows(result)
        console().print(summary_panel(f"{title} (model {model.name!r})", result.status, rows))
    out = console(quiet)
    try:
        if json_path is not None:
            json_path.write_text(result.to_json() + "\n", encoding="utf-8")
            out.print(f"wrote {json_path}")
        if plot_path is not None:
            from graphver.report.plot import plot_history

            plot_history(result, plot_path, title, mode)
            out.print(f"wrote {plot_path}")
    except OSError as error:
        raise InputError(f"cannot write {error.filename}: {error.strerror}") from None
    sys.exit(codes.get(result.status, EXIT_UNKNOWN))


@click.command(help="Prove or refute the property `prop` of FILE over the model's box by branch-and-bound.\n\n"
               + FILE_CONVENTION
               + "\nExit codes: 0 verified (or constraints infeasible), 1 falsified (a counterexample is printed), "
                 "3 unknown, 2 input error.")
@FILE_ARGUMENT
@run_options
@OBJECT_OPTION
def verify(file: Path, timeout, device, batch_size, seed, ipopt, workers, address, json_path, plot_path, quiet,
           object_name) -> None:
    check_before_run(device, json_path, plot_path)
    model, namespace = load_model(file, "verify", object_name, show_progress(quiet))
    if "properties" in namespace and "prop" not in namespace:
        if plot_path is not None:
            raise InputError(f"{file}: --plot draws one property's run; the file defines `properties` (several)")
        flags = dict(timeout=timeout, device=device, batch_size=batch_size, seed=seed, ipopt=ipopt)
        sys.exit(verify_properties(file, model, namespace, object_name, flags, workers, address, json_path, quiet))
    prop = require(namespace, "prop", file, "verify",
                   "a relation such as f <= c, a list of them, gv.All([...]) or gv.Any([...]) "
                   "(for a Pyomo model: Pyomo relations such as m.x + m.y <= 3)")
    options = engine_options(namespace, file, quiet, timeout=timeout, device=device, batch_size=batch_size, seed=seed,
                             ipopt=ipopt, workers=workers, address=address)
    result = run_guarded(file, lambda: model.verify(prop, deadline=deadline_of(options), **options))
    line = (f"{result.status}: proven margin >= {fmt(result.margin_lower)}"
            + (f"; counterexample {point_text(result.counterexample)}" if result.counterexample else ""))
    finish(result, "verify", file, model, line, quiet, json_path, plot_path, VERIFY_CODES)


def property_task(file: Path, object_name: str | None, name: str, flags: dict):
    """One property of a file's ``properties``, in its own process (graphver.batch): its VerifyResult."""
    import torch

    torch.set_num_threads(1)
    model, namespace = load_model(file, "verify", object_name)
    options = engine_options(namespace, file, True, **flags)
    return model.verify(namespace["properties"][name], deadline=deadline_of(options), **options)


def verify_properties(file: Path, model, namespace: dict, object_name, flags: dict, workers, address,
                      json_path: Path | None, quiet: bool) -> int:
    """Every property of ``properties``: one row each (a table, or a line each with --quiet); with
    ``workers`` > 1 on Ray, each in its own process. Exit: 2 if one failed, 1 if one was falsified, 3 if one
    is unknown, else 0."""
    from graphver.report.render import TaskProgress, data_table, styled

    properties = namespace["properties"]
    if not isinstance(properties, dict) or not properties:
        raise InputError(f"{file}: `properties` must be a non-empty dict name -> property, got {properties!r:.80}")
    flags = {key: value for key, value in flags.items() if value is not None}
    rows, results = [], {}

    def record(name: str, result=None, error: str = "") -> None:
        if result is None:
            results[name] = None
            rows.append([name, styled("error"), "-", "-", error])
            line = f"{name}: error: {error}"
        else:
            results[name] = result
            rows.append([name, styled(result.status), fmt(result.margin_lower), f"{result.stats.time_total:.2f}",
                         result.stats.stop_reason])
            line = f"{name}: {result.status}: proven margin >= {fmt(result.margin_lower)}"
        if quiet:
            click.echo(line)
        advance()

    with TaskProgress(console(quiet), f"verify {file.name}", len(properties), quiet) as advance:
        if (workers or 1) > 1 or address is not None:
            from graphver.batch import Task, run_tasks

            limit = float(flags.get("timeout", default("timeout")))
            tasks = [Task(name, property_task, (file, object_name, name, flags), limit) for name in properties]
            run_tasks(tasks, workers or 1, address,
                      on_result=lambda r: record(r.key, r.value if r.ok else None, r.error))
        else:
            options = engine_options(namespace, file, True, **flags)
            for name, prop in properties.items():
                try:
                    record(name, run_guarded(file, lambda: model.verify(prop, deadline=deadline_of(options),
                                                                        **options)))
                except click.ClickException as error:  # one property's input error: recorded, the others run
                    record(name, error=error.format_message())
    if not quiet:
        columns = [("property", "left"), ("status", "left"), ("proven margin", "right"), ("s", "right"),
                   ("why", "left")]
        console().print(data_table(f"graphver verify {file.name}: {len(properties)} properties", columns, rows))
    if json_path is not None:
        import json

        data = {name: None if r is None else json.loads(r.to_json()) for name, r in results.items()}
        json_path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        console(quiet).print(f"wrote {json_path}")
    statuses = [None if r is None else r.status for r in results.values()]
    if None in statuses:
        return EXIT_INPUT
    if "falsified" in statuses:
        return EXIT_FALSIFIED
    return EXIT_OK if all(s in ("verified", "infeasible") for s in statuses) else EXIT_UNKNOWN


@click.command(help="Certified global minimum (or maximum) of `objective` of FILE over the model's box.\n\n"
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
def bound(file: Path, timeout, device, batch_size, seed, ipopt, workers, address, json_path, plot_path, quiet, sense,
          rel_tol, abs_tol, object_name) -> None:
    check_before_run(device, json_path, plot_path)
    model, namespace = load_model(file, "bound", object_name, show_progress(quiet))
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
                             ipopt=ipopt, workers=workers, address=address, rel_tol=rel_tol, abs_tol=abs_tol)
    if objective is None:
        result = run_guarded(file, lambda: model.bound(deadline=deadline_of(options), **options))
    else:
        result = run_guarded(file, lambda: model.bound(objective, sense=sense, deadline=deadline_of(options),
                                                       **options))
    line = f"{result.status}: {sense} in [{fmt(result.lower)}, {fmt(result.upper)}] (gap {fmt(result.gap, 3)})"
    finish(result, "bound", file, model, line, quiet, json_path, plot_path, BOUND_CODES)


@click.command(help="Certified bounds of `expressions` (or `objective`) of FILE over the whole box in one pass "
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
    model, namespace = load_model(file, "interval", announce=show_progress(quiet))
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
