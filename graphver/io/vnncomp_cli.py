"""``graphver vnncomp``: one ONNX + VNN-LIB instance, or a benchmark's instances.csv.

Exit codes follow graphver's contract (graphver/cli.py): 0 unsat (the property holds; with --instances:
every instance decided), 1 sat (a counterexample), 2 usage or input error (a malformed VNN-LIB file, a
file that is not ONNX, an unsupported op, input counts that do not match, a missing output folder; with
--instances: also an instance recorded as "error"), 3 unknown, 4 internal error (traceback printed), 130
Ctrl-C before a result.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

EXIT_DECIDED, EXIT_SAT, EXIT_INPUT, EXIT_UNKNOWN = 0, 1, 2, 3
EXIT_CODES = {"unsat": EXIT_DECIDED, "sat": EXIT_SAT}  # any other verdict: unknown
VERDICT_STYLE = {"unsat": "bold green", "sat": "bold red", "unknown": "bold yellow", "error": "bold magenta"}


@click.command(help="Decide a VNN-COMP instance: MODEL.onnx and PROP.vnnlib, or a benchmark with --instances.\n\n"
               "Prints the verdict in the competition's words: unsat (the property holds), sat (a counterexample, "
               "reproduced by onnxruntime), unknown. With --instances CSV (rows: onnx, vnnlib, timeout, paths "
               "relative to the CSV), every instance runs in turn with a progress display, one row per instance "
               "goes to --out (verdict, seconds, domains, what decided it), and a rerun skips the instances "
               "already in --out.\n\nExit codes: 0 unsat (--instances: every instance decided), 1 sat, 2 usage or "
               "input error (--instances: also an instance that could not be read), 3 unknown, 4 internal error.")
@click.argument("model", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.argument("prop", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--instances", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A VNN-COMP instances.csv: run every instance.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Single instance: the result file (verdict, and the counterexample for sat, in the competition's "
                   "format). --instances: the results CSV (appended to; resumes).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds per instance (default: 60, or the CSV's per-instance timeout).")
@click.option("--device", default=None, metavar="DEVICE",
              help="Where domains are bounded: cpu (default) or cuda / cuda:N (a GPU; an error without one).")
@click.option("--quiet", "-q", is_flag=True, help="Only the verdict.")
def vnncomp(model: Path | None, prop: Path | None, instances: Path | None, out: Path | None, timeout: float | None,
            device: str | None, quiet: bool) -> None:
    from rich.console import Console

    from graphver.cli import check_output, run_guarded

    console = Console(highlight=False, quiet=quiet)
    options = {} if device is None else {"device": check_device(device)}
    if instances is not None:
        if model is not None or prop is not None:
            raise click.UsageError("give either MODEL PROP or --instances CSV, not both")
        if out is None:
            raise click.UsageError("--instances needs --out RESULTS.csv")
        check_output(out, "--out")
        sys.exit(run_benchmark(instances, out, timeout, console, quiet, options))
    if model is None or prop is None:
        raise click.UsageError("give MODEL.onnx and PROP.vnnlib (or --instances CSV --out RESULTS.csv)")
    from graphver.io import vnncomp as runner

    for path in (model, prop):
        if not path.is_file():
            raise click.UsageError(f"{path}: no such file")
    check_output(out, "--out")  # before the run, not after it
    # input errors (GraphverError: VNN-LIB, ONNX, unsupported op, input counts) exit 2, bugs exit 4
    from graphver.clock import command_budget

    budget = command_budget(timeout if timeout is not None else 60.0)  # start-up counts (graphver.clock)
    result = run_guarded("", lambda: runner.verify_instance(model, prop, budget,
                                                            progress=not quiet and sys.stdout.isatty(), **options))
    click.echo(result.verdict)
    console.print(f"[{VERDICT_STYLE.get(result.verdict, '')}]{result.verdict}[/] in {result.seconds:.2f} s, "
                  f"{result.domains} domains" + (f", decided by {result.decided_by}" if result.decided_by else "")
                  + (f" ({result.message})" if result.message else ""))
    if out is not None:
        if result.verdict == "sat":
            runner.write_counterexample(result, out)
        else:
            out.write_text(("timeout" if result.message == "timeout" else result.verdict) + "\n", encoding="utf-8")
    sys.exit(EXIT_CODES.get(result.verdict, EXIT_UNKNOWN))


def check_device(device: str) -> str:
    """``cpu``, ``cuda`` or ``cuda:N``; a GPU that is not there is a usage error (exit 2), before any work."""
    if device != "cpu" and not (device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit())):
        raise click.BadParameter(f"{device!r}: use cpu, cuda or cuda:N", param_hint="--device")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise click.BadParameter(f"{device!r} requested but CUDA is not available on this machine; use cpu",
                                     param_hint="--device")
        index = int(device[5:]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise click.BadParameter(f"{device!r}: this machine has {torch.cuda.device_count()} GPU(s)",
                                     param_hint="--device")
    return device


def run_benchmark(instances: Path, out: Path, timeout: float | None, console, quiet: bool, options: dict) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from graphver.cli import run_guarded
    from graphver.io import vnncomp as runner

    total = len(run_guarded("", lambda: runner.read_instances(instances)))  # a broken CSV: input error, exit 2
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

        results = runner.run_instances(instances, out, timeout, on_result=record, **options)
        progress.update(task, completed=total)
    console.print(table)
    skipped = total - len(results)
    console.print(f"{len(results)} instances run" + (f", {skipped} already in {out} (skipped)" if skipped else "")
                  + f"; results in {out}")
    if any(r.verdict == "error" for r in results):  # an instance that could not be read (recorded, others ran)
        return EXIT_INPUT
    return EXIT_UNKNOWN if any(r.verdict == "unknown" for r in results) else EXIT_DECIDED
