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

from acopf.bound import BoundReport, bound
from acopf.data import Network, load
from acopf.formulations import AcopfModel, build
from acopf.solve import SolveResult, solve

build_model = build

__all__ = ["AcopfModel", "BoundReport", "Network", "SolveResult", "bound", "build", "build_model", "load", "solve"]
