"""``graphver vnncomp``: one ONNX + VNN-LIB instance, or a benchmark's instances.csv."""

from __future__ import annotations

import sys
from pathlib import Path

import click

EXIT_DECIDED, EXIT_INPUT, EXIT_UNKNOWN = 0, 2, 3
VERDICT_STYLE = {"unsat": "bold green", "sat": "bold red", "unknown": "bold yellow", "error": "bold magenta"}


@click.command(help="Decide a VNN-COMP instance: MODEL.onnx and PROP.vnnlib, or a benchmark with --instances.\n\n"
               "Prints the verdict in the competition's words: unsat (the property holds), sat (a counterexample, "
               "reproduced by onnxruntime), unknown. With --instances CSV (rows: onnx, vnnlib, timeout, paths "
               "relative to the CSV), every instance runs in turn with a progress display, one row per instance "
               "goes to --out (verdict, seconds, domains, what decided it), and a rerun skips the instances "
               "already in --out.\n\nExit codes: 0 decided (unsat or sat; every instance run for --instances), "
               "3 unknown, 2 input error.")
@click.argument("model", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.argument("prop", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--instances", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A VNN-COMP instances.csv: run every instance.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Single instance: the result file (verdict, and the counterexample for sat, in the competition's "
                   "format). --instances: the results CSV (appended to; resumes).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds per instance (default: 60, or the CSV's per-instance timeout).")
@click.option("--quiet", "-q", is_flag=True, help="Only the verdict.")
def vnncomp(model: Path | None, prop: Path | None, instances: Path | None, out: Path | None, timeout: float | None,
            quiet: bool) -> None:
    from rich.console import Console

    from graphver.errors import GraphverError

    console = Console(highlight=False, quiet=quiet)
    if instances is not None:
        if model is not None or prop is not None:
            raise click.UsageError("give either MODEL PROP or --instances CSV, not both")
        if out is None:
            raise click.UsageError("--instances needs --out RESULTS.csv")
        sys.exit(run_benchmark(instances, out, timeout, console, quiet))
    if model is None or prop is None:
        raise click.UsageError("give MODEL.onnx and PROP.vnnlib (or --instances CSV --out RESULTS.csv)")
    from graphver.io.vnncomp import verify_instance, write_counterexample

    for path in (model, prop):
        if not path.is_file():
            raise click.UsageError(f"{path}: no such file")
    try:
        result = verify_instance(model, prop, timeout if timeout is not None else 60.0, progress=not quiet and sys.stdout.isatty())
    except GraphverError as error:
        raise click.ClickException(f"{type(error).__name__}: {error}") from None
    click.echo(result.verdict)
    console.print(f"[{VERDICT_STYLE.get(result.verdict, '')}]{result.verdict}[/] in {result.seconds:.2f} s, "
                  f"{result.domains} domains" + (f", decided by {result.decided_by}" if result.decided_by else "")
                  + (f" ({result.message})" if result.message else ""))
    if out is not None:
        if result.verdict == "sat":
            write_counterexample(result, out)
        else:
            out.write_text(("timeout" if result.message == "timeout" else result.verdict) + "\n", encoding="utf-8")
    sys.exit(EXIT_DECIDED if result.verdict in ("unsat", "sat") else EXIT_UNKNOWN)


def run_benchmark(instances: Path, out: Path, timeout: float | None, console, quiet: bool) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from graphver.errors import GraphverError
    from graphver.io.vnncomp import read_instances, run_instances

    try:
        total = len(read_instances(instances))
    except GraphverError as error:
        raise click.ClickException(str(error)) from None
    table = Table(title=f"{instances}", show_lines=False)
    for column in ("instance", "verdict", "seconds", "domains", "decided by"):
        table.add_column(column, justify="right" if column in ("seconds", "domains") else "left")
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console, disable=quiet)
    with progress:
        task = progress.add_task("vnncomp", total=total)

        def record(result):
            table.add_row(Path(result.vnnlib).name, f"[{VERDICT_STYLE.get(result.verdict, '')}]{result.verdict}[/]",
                          f"{result.seconds:.2f}", str(result.domains), result.decided_by or result.message)
            progress.advance(task)

        results = run_instances(instances, out, timeout, on_result=record)
        progress.update(task, completed=total)
    console.print(table)
    skipped = total - len(results)
    console.print(f"{len(results)} instances run" + (f", {skipped} already in {out} (skipped)" if skipped else "")
                  + f"; results in {out}")
    return EXIT_UNKNOWN if any(r.verdict in ("unknown", "error") for r in results) else EXIT_DECIDED
