"""``graphver acopf``: AC optimal power flow from MATPOWER / PGLib case files (a graphver plugin command).

    graphver acopf solve CASE [--json PATH] [--quiet]
    graphver acopf bound CASE [--timeout S] [--gap G] [--plot PNG] [--json PATH]

CASE is a MATPOWER case file, or the name of a bundled case (``case5_pjm``; ``acopf/cases/``), with a
did-you-mean listing the bundled names when it is neither. Results are drawn by graphver's report layer
(graphver/report/render.py, graphver/report/plot.py), as for graphver's own commands.

Registered under the ``graphver.commands`` entry point, so graphver itself never imports acopf.
Exit codes follow graphver's contract (its ``Commands`` group runs every plugin command under
``graphver.cli.run_guarded``): 0 solved (IPOPT converged and the point is feasible within 1e-6; bound:
gap reached or certified infeasible), 3 not converged, infeasible beyond the tolerance or stopped first,
2 input error (a broken case file, a missing output folder, any GraphverError), 4 internal error
(traceback printed), 130 Ctrl-C before a result. Output paths are checked before the run; JSON files are
strict JSON (non-finite numbers as the strings "inf", "-inf", "nan").
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from acopf.errors import CaseError

FEASIBILITY_TOL = 1e-6
EXIT_OK, EXIT_INPUT, EXIT_UNKNOWN = 0, 2, 3
CASE_ARGUMENT = click.argument("case", metavar="CASE")
FORMULATION_HELP = ("How the AC power flow is written: polar (vm, va), rectangular (e, f) or lifted (rectangular plus "
                    "the products w = e^2 + f^2, wr, wi as variables, with the SOC cut; the tightest relaxation for "
                    "bounds).")


class CaseInputError(click.ClickException):
    """A broken case file: one line on stderr, exit code 2 (graphver's input-error code)."""

    exit_code = EXIT_INPUT


def check_outputs(json_path: Path | None = None, plot_path: Path | None = None) -> None:
    """graphver's checks of output paths (and matplotlib for --plot), before a run that may take minutes."""
    from graphver.cli import check_output, check_plotting

    check_output(json_path, "--json")
    check_output(plot_path, "--plot")
    check_plotting(plot_path)


def write_json(data: dict, path: Path) -> None:
    """``data`` as strict JSON (graphver's convention: non-finite numbers as strings)."""
    from graphver.report.results import json_text

    path.write_text(json_text(data) + "\n", encoding="utf-8")


def load_case(case: str):
    """The network of CASE (a file, or a bundled case by name); a CaseError is an input error (exit 2)."""
    from acopf.data import load

    try:
        return load(case)
    except CaseError as error:
        raise CaseInputError(str(error)) from None


class AcopfCommands(click.Group):
    """The acopf group: a CaseError raised anywhere in a command (loading the case, or building a model
    from a network that the case's checks let through) is an input error, exit 2, without a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CaseError as error:
            raise CaseInputError(str(error)) from None


@click.group(cls=AcopfCommands, help="AC optimal power flow on MATPOWER / PGLib case files.")
def acopf() -> None:
    pass


@acopf.command(help="Solve the ACOPF of CASE locally with IPOPT: objective, time, iterations, the worst "
                    "constraint violation (checked independently of the solver), dispatch and voltages.\n\n"
                    "Exit codes: 0 solved and feasible within 1e-6 pu, 3 otherwise, 2 input error, 4 internal error.")
@CASE_ARGUMENT
@click.option("--formulation", type=click.Choice(["polar", "rectangular", "lifted"]), default="rectangular",
              show_default=True, help=FORMULATION_HELP)
@click.option("--max-iter", type=click.IntRange(min=1), default=500, show_default=True, help="IPOPT iterations.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
              help="Write the solution (objective, status, violations, dispatch, voltages) as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="One line: objective, status, max violation.")
def solve(case: str, formulation: str, max_iter: int, json_path: Path | None, quiet: bool) -> None:
    from dataclasses import asdict

    from acopf.solve import solve as run_solve

    check_outputs(json_path)
    network = load_case(case)
    result = run_solve(network, formulation, max_iter=max_iter)
    ok = result.success and result.max_violation <= FEASIBILITY_TOL
    if quiet:
        click.echo(f"{'solved' if ok else 'not solved'} {result.objective:.2f} $/h (violation {result.max_violation:.1e} pu)")
    else:
        print_solution(result, ok)
    if json_path is not None:
        write_json(asdict(result), json_path)
        click.echo(f"wrote {json_path}")
    sys.exit(EXIT_OK if ok else EXIT_UNKNOWN)


def print_solution(result, ok: bool) -> None:
    from graphver.report.render import console, data_table, summary_panel

    worst = max(result.violations, key=result.violations.get)
    rows = [("case", f"{result.case} ({result.formulation} formulation)"),
            ("objective", f"{result.objective:.6f} $/h"),
            ("IPOPT", f"{result.iterations} iterations, {result.seconds:.2f} s"),
            ("max violation", f"{result.max_violation:.2e} pu ({worst}; independent numpy evaluation)")]
    out = console()
    out.print(summary_panel(f"graphver acopf solve {result.case}", "solved" if ok else "not solved", rows,
                            detail=f"IPOPT: {result.status}"))
    columns = [(header, "right") for header in ("gen", "bus", "Pg", "Pmin", "Pmax", "Qg", "Qmin", "Qmax")]
    out.print(data_table("generator dispatch (P in MW, Q in MVAr)", columns, [
        [str(g["gen"]), str(g["bus"]), f"{g['pg_mw']:.3f}", f"{g['pmin_mw']:.1f}", f"{g['pmax_mw']:.1f}",
         f"{g['qg_mvar']:.3f}", f"{g['qmin_mvar']:.1f}", f"{g['qmax_mvar']:.1f}"] for g in result.generators]))
    columns = [(header, "right") for header in ("bus", "Vm", "Vmin", "Vmax", "Va")]
    out.print(data_table("bus voltages (Vm in pu, Va in degrees)", columns, [
        [str(b["bus"]), f"{b['vm_pu']:.5f}", f"{b['vmin_pu']:.3f}", f"{b['vmax_pu']:.3f}", f"{b['va_deg']:.4f}"]
        for b in result.buses]))


@acopf.command(help="Certified optimality gap of CASE: IPOPT's feasible point (checked independently) as the upper "
                    "bound, graphver's branch-and-bound over the exact ACOPF feasible set as the lower bound. "
                    "Several cases (files, bundled names or folders of .m files) make a batch: one row per case, "
                    "with --workers N cases at once, each in its own process on Ray.\n\n"
                    "Exit codes: 0 gap reached (or certified infeasible; a batch: for every case), 3 stopped first "
                    "(timeout, Ctrl-C), 2 input error (a batch: also a case that failed), 4 internal error.")
@click.argument("cases", nargs=-1, required=True, metavar="CASE...")
@click.option("--formulation", type=click.Choice(["polar", "rectangular", "lifted"]), default="lifted",
              show_default=True, help=FORMULATION_HELP)
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=600.0, show_default=True,
              metavar="SECONDS", help="Wall-clock limit per case (IPOPT included); the best certified gap so far is "
                                      "reported.")
@click.option("--gap", type=click.FloatRange(min=0), default=1e-3, show_default=True,
              help="Target relative gap (upper - lower) / upper.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, metavar="N",
              help="One case: processes that bound its domains (Ray). Several cases: cases run at once, each in its "
                   "own process (a crashed one is retried once, then recorded as an error).")
@click.option("--address", metavar="ADDR", help="The Ray cluster for --workers (default: a local one).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
              help="Write the report (bounds, gap, time, domains, history) as JSON; a batch: a list of them.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
              help="Write a PNG of the lower and upper bound versus time (one case).")
@click.option("--quiet", "-q", is_flag=True, help="No progress display; one line (per case).")
def bound(cases: tuple[str, ...], formulation: str, timeout: float, gap: float, workers: int, address: str | None,
          json_path: Path | None, plot_path: Path | None, quiet: bool) -> None:
    from acopf.bound import bound as run_bound

    check_outputs(json_path, plot_path)
    names = expand_cases(cases)
    if len(names) > 1:
        if plot_path is not None:
            raise click.UsageError("--plot draws one case; give one CASE, or leave --plot out for a batch")
        sys.exit(bound_batch(names, formulation, timeout, gap, workers, address, json_path, quiet))
    network = load_case(names[0])
    from graphver.clock import command_budget

    engine = {} if workers == 1 and address is None else {"workers": workers, "address": address}
    # the whole process keeps to the timeout: start-up and reading the case count (graphver.clock)
    report = run_bound(network, formulation, timeout=command_budget(timeout), gap=gap,
                       progress=None if not quiet else False, **engine)
    if quiet:
        click.echo(quiet_line(report))
    else:
        print_bound(report)
    if json_path is not None:
        json_path.write_text(report.to_json() + "\n", encoding="utf-8")
        click.echo(f"wrote {json_path}")
    if plot_path is not None:
        plot_bounds(report, plot_path)
        click.echo(f"wrote {plot_path}")
    sys.exit(EXIT_OK if report.status in ("solved", "infeasible") else EXIT_UNKNOWN)


def quiet_line(report) -> str:
    from graphver.report.render import percent

    return f"{report.status}: lower {report.lower:.6f} $/h, upper {report.upper:.6f} $/h, gap {percent(report.gap)}"


def expand_cases(cases: tuple[str, ...]) -> list[str]:
    """The cases named: files and bundled names as given, a folder as its .m files (sorted)."""
    names: list[str] = []
    for case in cases:
        path = Path(case)
        if path.is_dir():
            found = sorted(str(p) for p in path.glob("*.m"))
            if not found:
                raise CaseInputError(f"{case}: a folder without .m case files")
            names += found
        else:
            names.append(case)
    return names


def bound_task(case: str, formulation: str, timeout: float, gap: float):
    """One case of a batch, in its own process: its BoundReport (a broken case raises CaseError)."""
    import torch

    from acopf.bound import bound as run_bound

    torch.set_num_threads(1)
    return run_bound(load_case_quietly(case), formulation, timeout=timeout, gap=gap, progress=False)


def load_case_quietly(case: str):
    import logging

    from acopf.data import load

    logging.getLogger("acopf").setLevel(logging.ERROR)
    return load(case)


def bound_batch(names: list[str], formulation: str, timeout: float, gap: float, workers: int, address: str | None,
                json_path: Path | None, quiet: bool) -> int:
    """Every case, one row each (in completion order with workers); the exit code of the batch."""
    from graphver.report.render import TaskProgress, console, data_table, percent, styled

    rows, reports, failed = [], [], False

    def record(name: str, report=None, error: str = "") -> None:
        nonlocal failed
        advance()
        if report is None:
            failed = True
            rows.append([name, styled("error"), "-", "-", "-", "-", error])
            if quiet:
                click.echo(f"{name}: error: {error}")
            return
        reports.append(report)
        rows.append([report.case, styled(report.status), f"{report.lower:.6f}", f"{report.upper:.6f}",
                     percent(report.gap), f"{report.seconds:.1f}", report.stop_reason])
        if quiet:
            click.echo(f"{report.case}: {quiet_line(report)}")

    with TaskProgress(console(quiet), "acopf bound", len(names), quiet) as advance:
        if workers > 1 or address is not None:
            from graphver.batch import Task, run_tasks

            tasks = [Task(name, bound_task, (name, formulation, timeout, gap), timeout) for name in names]
            run_tasks(tasks, workers, address, on_result=lambda r: record(r.key, r.value if r.ok else None, r.error))
        else:
            for name in names:
                try:
                    record(name, bound_task(name, formulation, timeout, gap))
                except CaseError as error:
                    record(name, error=str(error))
    if not quiet:
        columns = [("case", "left"), ("status", "left"), ("lower ($/h)", "right"), ("upper ($/h)", "right"),
                   ("gap", "right"), ("s", "right"), ("why", "left")]
        console().print(data_table(f"graphver acopf bound: {len(names)} cases ({formulation})", columns, rows))
    if json_path is not None:
        from graphver.report.results import json_text
        from dataclasses import asdict

        json_path.write_text(json_text([asdict(r) for r in reports]) + "\n", encoding="utf-8")
        click.echo(f"wrote {json_path}")
    if failed:
        return EXIT_INPUT
    return EXIT_OK if all(r.status in ("solved", "infeasible") for r in reports) else EXIT_UNKNOWN


def print_bound(report) -> None:
    from graphver.report.render import console, percent, summary_panel

    rows = [("case", f"{report.case} ({report.formulation} formulation)"),
            ("lower (certified)", f"{report.lower:.6f} $/h"),
            ("upper (feasible)", f"{report.upper:.6f} $/h  (max violation {report.max_violation:.2e} pu, "
                                 "independent evaluation)"),
            ("gap", percent(report.gap)),
            ("work", f"{report.domains} domains, {report.seconds:.1f} s")]
    console().print(summary_panel(f"graphver acopf bound {report.case}", report.status, rows,
                                  detail=report.stop_reason))


def plot_bounds(report, path: Path) -> None:
    """The certified lower bound versus time against the feasible upper bound (graphver's convergence plot)."""
    from graphver.report.plot import plot_series
    from graphver.report.render import percent

    times = [h[0] for h in report.history] + [report.seconds]
    lower = [h[1] for h in report.history] + [report.lower]
    upper = [report.upper] * len(times)
    plot_series(path, f"{report.case}: gap {percent(report.gap, 3)} ({report.status.upper()})", times, lower, upper,
                "certified lower bound", f"feasible upper bound {report.upper:.2f}", "cost ($/h)")
