"""The command line's exit-code contract, written once: every command (verify, bound, interval,
vnncomp and the plugin commands such as acopf) exits with

    0 verified / solved / unsat, 1 falsified / sat, 2 usage or input error (a bad file, any
    ``GraphverError``), 3 unknown (timeout, domain cap, Ctrl-C), 4 internal error (a bug in graphver:
    traceback printed), 130 Ctrl-C before the engine had a result.

``run_guarded`` maps exceptions to these codes; ``Commands.invoke`` (graphver/cli/group.py) runs every
subcommand under it.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import click

from graphver.errors import GraphverError, InternalError

EXIT_OK = 0
EXIT_FALSIFIED = 1
EXIT_INPUT = 2
EXIT_UNKNOWN = 3
EXIT_INTERNAL = 4
EXIT_INTERRUPTED = 130  # Ctrl-C before the engine had a result (the shell's convention)


class InputError(click.ClickException):
    """A usage or input error: printed as one line on stderr, exit code 2."""

    exit_code = EXIT_INPUT


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
