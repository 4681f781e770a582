"""Deadlines inside long computations.

A run has one wall-clock deadline (``time.perf_counter()`` seconds, ``math.inf`` for none). Loops that can
take long (the steps of a backward pass, alpha's iterations, the LPs of a batch, OBBT, IPOPT starts) call
``check(deadline)`` between units of work; past the deadline it raises ``DeadlineReached``, which the
branch-and-bound loop catches like Ctrl-C: the round in progress is dropped, the domains it popped are put
back, and the result is the bound proven before the round (never a bound of unfinished work).

A loop whose partial result is itself sound (alpha keeps the best bound of the iterations done) may stop
early with ``passed(deadline)`` instead of raising.
"""

from __future__ import annotations

import math
import os
import time

IMPORTED = time.perf_counter()


class DeadlineReached(Exception):
    """The run's deadline passed inside a computation; its partial result must not be used."""


def passed(deadline: float | None) -> bool:
    """Whether ``deadline`` (perf_counter seconds; None or inf: never) has passed."""
    return deadline is not None and deadline != math.inf and time.perf_counter() > deadline


def check(deadline: float | None) -> None:
    """Raise ``DeadlineReached`` when ``deadline`` has passed."""
    if passed(deadline):
        raise DeadlineReached


def remaining(deadline: float | None) -> float:
    """Seconds left before ``deadline`` (inf for none, 0 once passed)."""
    if deadline is None or deadline == math.inf:
        return math.inf
    return max(0.0, deadline - time.perf_counter())


EXIT_RESERVE = 1.5  # seconds a command keeps, of its timeout, for its last round, writing the results and exiting


def process_age() -> float:
    """Seconds since this process started (interpreter start-up and imports included; Linux), else since
    ``graphver.clock`` was imported. Commands subtract it from their ``--timeout``, so that the whole
    process, as a benchmark harness times it, keeps to the limit."""
    try:
        with open("/proc/self/stat") as f:
            started_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - started_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return time.perf_counter() - IMPORTED


PROCESS_START: float | None = None  # the process's start on the perf_counter scale (set by ``graphver.cli.run``)


def started_as_command() -> None:
    """Called first by the ``graphver`` program (``graphver.cli.run``): commands then count the process's
    start-up (interpreter, imports) towards their timeout. Not called when a command runs inside another
    program (tests with click's runner), where only the command's own time counts."""
    global PROCESS_START
    PROCESS_START = time.perf_counter() - process_age()


def command_budget(timeout: float) -> float:
    """The seconds a command's computation may take of its ``--timeout``: what the process has not used yet
    (since its start, see ``started_as_command``), less ``EXIT_RESERVE`` for writing the results and exiting;
    at least a little, so that a tiny timeout still gives a first result."""
    used = 0.0 if PROCESS_START is None else time.perf_counter() - PROCESS_START
    return max(0.01, timeout - used - EXIT_RESERVE)


def command_deadline(timeout: float) -> float:
    """``time.perf_counter()`` at which a command's computation must stop: ``command_budget`` from now."""
    return time.perf_counter() + command_budget(timeout)
