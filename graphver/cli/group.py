"""The ``graphver`` command group: its commands, the plug-in commands, and the program's entry point.

``main`` is the click group; ``run`` is the ``graphver`` script (``graphver.cli:run``). The core
commands live in graphver/cli/commands.py (verify, bound, interval) and graphver/cli/vnncomp.py;
installed packages add theirs under the ``graphver.commands`` entry point (acopf adds ``graphver
acopf``). Every subcommand runs under one exit-code contract (graphver/cli/errors.py).
"""

from __future__ import annotations

import os
import sys

import click

from graphver import clock
from graphver.cli.errors import EXIT_INTERRUPTED, EXIT_OK, run_guarded


def print_version(ctx: click.Context, _param, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from graphver.report.results import versions

    found = versions()
    click.echo(f"graphver {found['graphver']} (torch {found['torch']}, sympy {found['sympy']}, "
               f"python {found['python']})")
    ctx.exit(EXIT_OK)


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
      graphver acopf bound CASE   certified optimality gap of an AC optimal power flow
                                  (CASE: a MATPOWER file or a bundled case, e.g. case5_pjm)

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
