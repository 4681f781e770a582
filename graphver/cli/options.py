"""Options and checks shared by the commands: the run options of verify and bound, output paths and
devices checked before a long run (not after it), and the engine's keywords (the file's ``options``, then
the flags given).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from graphver import clock
from graphver.cli.errors import InputError
from graphver.cli.model_file import file_options
from graphver.options import BabOptions


def check_device(device: str | None) -> None:
    """``cpu``, ``cuda`` or ``cuda:N`` (None: the default, cpu); a GPU that is not there is a usage error
    (exit 2), before any work."""
    if device is None or device == "cpu":
        return
    if not (device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit())):
        raise click.BadParameter(f"{device!r}: use cpu, cuda or cuda:N", param_hint="--device")
    import torch

    if not torch.cuda.is_available():
        raise click.BadParameter(f"{device!r} requested but CUDA is not available on this machine "
                                 "(torch.cuda.is_available() is False); use cpu", param_hint="--device")
    index = int(device[5:]) if ":" in device else 0
    if index >= torch.cuda.device_count():
        raise click.BadParameter(f"{device!r}: this machine has {torch.cuda.device_count()} GPU(s)",
                                 param_hint="--device")


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


def default(name: str):
    return BabOptions.__dataclass_fields__[name].default


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
        click.option("--workers", type=click.IntRange(min=1), metavar="N",
                     help="Processes that bound domains; more than 1 runs them on Ray (a local cluster unless "
                          "--address). [default: 1]"),
        click.option("--address", metavar="ADDR", help="The Ray cluster for --workers (default: a local one)."),
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
