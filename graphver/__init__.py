"""graphver: certified bounds on general nonlinear computation graphs.

    import graphver as gv
    m = gv.Model("demo")
    x = m.var("x", -1, 2)
    print(m.interval(x**2 - x))          # a certified [lower, upper]
"""

from sympy import Abs, Eq, Max, Min, atan, cos, erf, exp, log, sin, sqrt, tan, tanh

from graphver import ops  # noqa: F401  (registers every op)
from graphver.dsl.functions import ceil, floor, quad_over_lin, relu, round_half_even, sigmoid
from graphver.api import Model
from graphver.bab.properties import All, Any
from graphver.errors import (
    DomainError,
    GraphverError,
    InfeasibleBoxError,
    InternalError,
    ModelError,
    OptionError,
    SolverUnavailableError,
    UnsupportedOpError,
)
from graphver.options import BabOptions, BoundOptions
from graphver.report.interval import Interval
from graphver.tape import Tape, compile_expressions

__version__ = "0.1.0"


def from_pyomo(block, derive_bounds: bool = True):
    """A Pyomo ``ConcreteModel`` (or block) as a ``graphver.pyomo_api.PyomoModel`` (bound, verify, load)."""
    from graphver.pyomo_api import from_pyomo as read

    return read(block, derive_bounds)


def _register_pyomo_solver() -> None:
    """``SolverFactory("graphver")`` for Pyomo users (Pyomo's solver factory has no plugin discovery)."""
    try:
        from graphver.pyomo_api import register
    except ImportError:  # pragma: no cover  (pyomo is a dependency)
        return
    register()


_register_pyomo_solver()

minimum = Min
maximum = Max

__all__ = [
    "Abs", "All", "Any", "BabOptions", "Eq", "BoundOptions", "DomainError", "GraphverError", "InfeasibleBoxError", "InternalError", "Interval",
    "Max", "Min", "Model", "ModelError", "OptionError", "SolverUnavailableError", "Tape", "UnsupportedOpError",
    "atan", "ceil", "compile_expressions", "floor", "from_pyomo", "round_half_even", "cos", "erf", "exp", "log", "maximum", "minimum", "quad_over_lin", "relu", "sigmoid", "sin", "sqrt",
    "tan", "tanh",
]
