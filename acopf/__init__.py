"""acopf: AC optimal power flow on graphver, from MATPOWER / PGLib case files.

Three layers, as in PowerModels.jl: ``acopf.io`` parses case files into plain data, ``acopf.data``
checks, corrects and converts it to a per-unit ``Network``, ``acopf.formulations`` writes the equations in
graphver's modeling language. On top: ``solve`` (IPOPT, a local solution checked by an independent
evaluation), ``bound`` (a certified lower bound by graphver's branch-and-bound and a feasible upper
bound) and the ``graphver acopf`` command line. graphver never imports this package.

    import acopf
    net = acopf.load("acopf/cases/pglib_opf_case5_pjm.m")
    print(acopf.solve(net))                      # objective, status, max violation
    built = acopf.build_model(net)               # a graphver Model (rectangular by default), objective, symbols
    print(acopf.bound(net, timeout=60))          # certified lower bound, feasible upper bound, gap
"""

import importlib
import sys
import types

# The API is imported on first use (PEP 562): the command line registers ``graphver acopf`` through
# acopf.cli, and ``graphver --help`` should not pay for torch and sympy.
_LAZY = {"BoundReport": "acopf.bound", "bound": "acopf.bound", "Network": "acopf.data", "load": "acopf.data",
         "AcopfModel": "acopf.formulations", "build": "acopf.formulations",
         "build_model": ("acopf.formulations", "build"), "SolveResult": "acopf.solve", "solve": "acopf.solve"}
_SHADOWED = ("bound", "solve")  # functions named like the submodule that defines them


def __getattr__(name: str):
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'acopf' has no attribute {name!r}")
    module_name, attribute = (target, name) if isinstance(target, str) else target
    value = getattr(importlib.import_module(module_name), attribute)
    globals()[name] = value
    return value


class _Package(types.ModuleType):
    """Importing the submodule ``acopf.bound`` sets the package attribute ``bound`` to the module; the
    public name is the function, so the function is stored instead (as the eager ``from acopf.bound import
    bound`` did)."""

    def __setattr__(self, name, value):
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__all__ = ["AcopfModel", "BoundReport", "Network", "SolveResult", "bound", "build", "build_model", "load", "solve"]
