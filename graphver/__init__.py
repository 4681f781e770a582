"""graphver: certified bounds on general nonlinear computation graphs.

    import graphver as gv
    m = gv.Model("demo")
    x = m.var("x", -1, 2)
    print(m.interval(x**2 - x))          # a certified [lower, upper]
"""

import sys

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

# The rest of the public API is imported on first use (PEP 562), so that ``import graphver`` (and the
# command line's --help) does not pay for torch, sympy and the op registry until something needs them.
_LAZY = {
    **{name: "sympy" for name in ("Abs", "Eq", "Max", "Min", "atan", "cos", "erf", "exp", "log", "sin", "sqrt",
                                  "tan", "tanh")},
    **{name: "graphver.dsl.functions" for name in ("ceil", "floor", "quad_over_lin", "relu", "round_half_even",
                                                   "sigmoid")},
    "Model": "graphver.api", "All": "graphver.bab.properties", "Any": "graphver.bab.properties",
    "Interval": "graphver.report.interval", "Tape": "graphver.tape", "compile_expressions": "graphver.tape",
    "ops": "graphver.ops", "minimum": ("sympy", "Min"), "maximum": ("sympy", "Max"),
}


def __getattr__(name: str):
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'graphver' has no attribute {name!r}")
    module_name, attribute = (target, name) if isinstance(target, str) else target
    import importlib

    import graphver.ops  # noqa: F401  (registers every op before any of the API is used)

    module = importlib.import_module(module_name)
    value = module if module_name == "graphver.ops" and attribute == "ops" else getattr(module, attribute)
    globals()[name] = value
    return value


__version__ = "0.1.0"


def from_pyomo(block, derive_bounds: bool = True):
    """A Pyomo ``ConcreteModel`` (or block) as a ``graphver.pyomo_api.PyomoModel`` (bound, verify, load)."""
    from graphver.pyomo_api import from_pyomo as read

    return read(block, derive_bounds)


def _register_pyomo_solver() -> None:
    """``SolverFactory("graphver")`` for Pyomo users (Pyomo's solver factory has no plugin discovery):
    registered now when Pyomo is already imported, otherwise as soon as ``pyomo.opt`` is (an import hook,
    graphver.pyomo_hook), so that importing graphver alone does not import Pyomo."""
    if "pyomo.opt" in sys.modules:
        from graphver.pyomo_api import register

        register()
    else:
        from graphver.pyomo_hook import register_on_import

        register_on_import()


_register_pyomo_solver()

__all__ = [
    "Abs", "All", "Any", "BabOptions", "Eq", "BoundOptions", "DomainError", "GraphverError", "InfeasibleBoxError", "InternalError", "Interval",
    "Max", "Min", "Model", "ModelError", "OptionError", "SolverUnavailableError", "Tape", "UnsupportedOpError",
    "atan", "ceil", "compile_expressions", "floor", "from_pyomo", "round_half_even", "cos", "erf", "exp", "log", "maximum", "minimum", "quad_over_lin", "relu", "sigmoid", "sin", "sqrt",
    "tan", "tanh",
]
