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

# imported on first use (PEP 562): the command line registers ``graphver acopf`` through acopf.cli, and
# ``graphver --help`` should not pay for torch and sympy
_LAZY = {"BoundReport": "acopf.bound", "bound": "acopf.bound", "Network": "acopf.data", "load": "acopf.data",
         "AcopfModel": "acopf.formulations", "build": "acopf.formulations", "build_model": ("acopf.formulations", "build"),
         "SolveResult": "acopf.solve", "solve": "acopf.solve"}


def __getattr__(name: str):
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'acopf' has no attribute {name!r}")
    import importlib

    module_name, attribute = (target, name) if isinstance(target, str) else target
    value = getattr(importlib.import_module(module_name), attribute)
    globals()[name] = value
    return value


__all__ = ["AcopfModel", "BoundReport", "Network", "SolveResult", "bound", "build", "build_model", "load", "solve"]
