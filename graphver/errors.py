"""The one exception hierarchy of graphver.

Every error a user can trigger derives from ``GraphverError``; each message says what
went wrong and what to do about it.
"""


class GraphverError(Exception):
    """Base class of every error raised by graphver."""


class ModelError(GraphverError, ValueError):
    """The model is malformed: a bad variable box, a duplicate name, a non-finite constant."""


class UnsupportedOpError(GraphverError, NotImplementedError):
    """An expression uses a function graphver has no sound relaxation for."""


class DomainError(GraphverError, ArithmeticError):
    """An op's input interval leaves the op's domain (log of a non-positive interval, 1/x across 0, ...)."""


class InfeasibleBoxError(GraphverError, ValueError):
    """A box given to a bound computation is empty, inverted or not finite."""


class SolverUnavailableError(GraphverError, ImportError):
    """An optional solver or device (IPOPT, CUDA) is not installed or not reachable."""


class OptionError(GraphverError, TypeError):
    """An unknown or invalid option name or value."""


class InternalError(GraphverError, AssertionError):
    """An internal invariant failed: a bug in graphver. Please report it with the model that triggered it."""


def label_text(label, limit: int = 200) -> str:
    """A node label as text for messages, shortened to ``limit`` characters."""
    text = str(label)
    return text if len(text) <= limit else text[: limit - 3] + "..."
