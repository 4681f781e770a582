"""``graphver vnncomp``: one ONNX + VNN-LIB instance, or a benchmark's instances.csv.

Exit codes follow graphver's contract (graphver/cli/errors.py): 0 unsat (the property holds; with --instances:
every instance decided), 1 sat (a counterexample), 2 usage or input error (a malformed VNN-LIB file, a
file that is not ONNX, an unsupported op, input counts that do not match, a missing output folder; with
--instances: also an instance recorded as "error"), 3 unknown, 4 internal error (traceback printed), 130
Ctrl-C before a result.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from graphver.cli.errors import EXIT_FALSIFIED, EXIT_INPUT, EXIT_OK, EXIT_UNKNOWN, run_guarded
from graphver.cli.options import check_device, check_output
from graphver.report.render import console as make_console
from graphver.report.render import TaskProgress, data_table, styled

EXIT_CODES = {"unsat": EXIT_OK, "sat": EXIT_FALSIFIED}  # any other verdict: unknown


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
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, metavar="N",
              help="--instances: instances run at once, each in its own process on Ray (a crashed one is retried "
                   "once, then recorded as an error).")
@click.option("--address", metavar="ADDR", help="--instances: the Ray cluster to run on (default: a local one).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
              help="Single instance: write the result as JSON (verdict, seconds, domains, the proven margin, the "
                   "closest point found and its margin, the counterexample for sat).")
@click.option("--quiet", "-q", is_flag=True, help="Only the verdict.")
def vnncomp(model: Path | None, prop: Path | None, instances: Path | None, out: Path | None, timeout: float | None,
            device: str | None, workers: int, address: str | None, json_path: Path | None, quiet: bool) -> None:
    console = make_console(quiet)
    check_device(device)
    options = {} if device is None else {"device": device}
    if instances is not None:
        if model is not None or prop is not None:
            raise click.UsageError("give either MODEL PROP or --instances CSV, not both")
        if out is None:
            raise click.UsageError("--instances needs --out RESULTS.csv")
        check_output(out, "--out")
        if json_path is not None:
            raise click.UsageError("--json writes one instance's result; with --instances the rows go to --out")
        if workers > 1 or address is not None:
            options.update(workers=workers, address=address)
        sys.exit(run_benchmark(instances, out, timeout, console, quiet, options))
    if model is None or prop is None:
        raise click.UsageError("give MODEL.onnx and PROP.vnnlib (or --instances CSV --out RESULTS.csv)")
    check_output(json_path, "--json")
    if workers > 1 or address is not None:
        raise click.UsageError("--workers and --address run the instances of --instances CSV in parallel")
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
    console.print(f"{styled(result.verdict)} in {result.seconds:.2f} s, "
                  f"{result.domains} domains" + (f", decided by {result.decided_by}" if result.decided_by else "")
                  + (f" ({result.message})" if result.message else ""))
    if result.verdict == "unknown":
        console.print(result.margins_text())
    if out is not None:
        if result.verdict == "sat":
            runner.write_counterexample(result, out)
        else:
            out.write_text(("timeout" if result.message == "timeout" else result.verdict) + "\n", encoding="utf-8")
    if json_path is not None:
        json_path.write_text(result.to_json() + "\n", encoding="utf-8")
    sys.exit(EXIT_CODES.get(result.verdict, EXIT_UNKNOWN))


def run_benchmark(instances: Path, out: Path, timeout: float | None, console, quiet: bool, options: dict) -> int:
    from graphver.io import vnncomp as runner

    total = len(run_guarded("", lambda: runner.read_instances(instances)))  # a broken CSV: input error, exit 2
    columns = [("instance", "left"), ("verdict", "left"), ("seconds", "right"), ("domains", "right"),
               ("decided by", "left")]
    rows: list[list[str]] = []
    with TaskProgress(console, "vnncomp", total, quiet) as advance:

        def record(result):
            note = result.decided_by or result.message
            if result.verdict == "unknown":
                note += f"; {result.margins_text()}"
            rows.append([Path(result.vnnlib).name, styled(result.verdict), f"{result.seconds:.2f}", str(result.domains),
                         note])
            advance()

        results = runner.run_instances(instances, out, timeout, on_result=record, **options)
    console.print(data_table(f"{instances}", columns, rows))
    skipped = total - len(results)
    console.print(f"{len(results)} instances run" + (f", {skipped} already in {out} (skipped)" if skipped else "")
                  + f"; results in {out}")
    if any(r.verdict == "error" for r in results):  # an instance that could not be read (recorded, others ran)
        return EXIT_INPUT
    return EXIT_UNKNOWN if any(r.verdict == "unknown" for r in results) else EXIT_OK
