"""Pyomo users' entry points: ``graphver.from_pyomo(m)`` and the Pyomo solver ``SolverFactory("graphver")``.

``from_pyomo(block)`` returns a ``PyomoModel``: ``bound()`` certifies the active objective over the
feasible set of the active constraints (a ``BoundResult``, the witness keyed by the Pyomo variables'
names), ``verify(prop)`` proves or refutes Pyomo relations over it (a ``VerifyResult``), ``load(point)``
writes a point into the variables. The model is read by ``graphver.io.pyomo`` (no sympy on that path);
a counterexample is confirmed by certified evaluation of the same Pyomo expressions written exactly in
sympy, independently of the tape.

``GraphverSolver`` speaks Pyomo's solver interface: ``SolverFactory("graphver").solve(m, timeout=60)``
returns Pyomo's ``SolverResults``: termination condition ``optimal`` when the certified gap is within the
tolerance, ``infeasible`` when infeasibility is certified, ``maxTimeLimit`` otherwise; ``problem.lower_bound``
and ``upper_bound`` (the certified one and the witness's value); the witness loaded into the variables;
graphver's own result as ``results.graphver``. ``import graphver`` registers it when Pyomo is installed.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from graphver.api import run_bound, run_verify
from graphver.bab import Problem
from graphver.bab.problem import VerifyGoal
from graphver.confirm import sympy_confirmation
from graphver.io.pyomo import PyomoImport, active_objectives, check_block, sympy_rows
from graphver.io.pyomo import from_pyomo as import_pyomo
from graphver.options import BabOptions, make_options


class PyomoModel:
    """A Pyomo block, asked graphver's questions; see the module docstring."""

    def __init__(self, block, derive_bounds: bool = True):
        self.block = block
        self.derive_bounds = derive_bounds
        self._objective: PyomoImport | None = None

    @property
    def name(self) -> str:
        return str(self.block.name)

    def objective_import(self) -> PyomoImport:
        """The block read with its objective as row 0 (read once)."""
        if self._objective is None:
            self._objective = import_pyomo(self.block, derive_bounds=self.derive_bounds)
        return self._objective

    @property
    def names(self) -> list[str]:
        return list(self.objective_import().names)

    @property
    def sense(self) -> str:
        return self.objective_import().sense

    @property
    def derived_bounds(self) -> dict:
        """Variables whose finite bounds were derived from the constraints: name -> (lower, upper)."""
        return dict(self.objective_import().derived)

    def problem(self, imported: PyomoImport, confirm=None, starts=None) -> Problem:
        return Problem(imported.tape, torch.tensor(imported.lower, dtype=torch.float64),
                       torch.tensor(imported.upper, dtype=torch.float64), imported.n_rows, imported.combine,
                       imported.strict, imported.constraint_limits, confirm, tuple(imported.names), starts, self.name)

    def start_points(self, imported: PyomoImport) -> torch.Tensor | None:
        """The variables' current values as a first incumbent candidate (when every one has a value)."""
        values = [v.value for v in imported.variables]
        if any(v is None for v in values):
            return None
        return torch.tensor([values], dtype=torch.float64)

    def bound(self, rel_tol: float = 1e-4, abs_tol: float = 1e-6, timeout: float = 60.0, deadline: float | None = None,
              load: bool = False, **options: Any):
        """Certified global optimum of the active objective (its own sense) over the feasible set; a
        ``BoundResult``. load: write the witness into the Pyomo variables."""
        begin = time.perf_counter()  # reading the model counts towards the timeout
        opts = make_options(BabOptions, options, timeout=timeout, rel_tol=rel_tol, abs_tol=abs_tol)
        imported = self.objective_import()
        problem = self.problem(imported, starts=self.start_points(imported))
        result = run_bound(problem, imported.sense, opts, min(begin + opts.timeout, deadline or math.inf),
                           imported.texts[0], [c.text for c in imported.constraints])
        if load and result.witness is not None:
            imported.load(result.witness)
        return result

    def verify(self, prop, combine: str = "all", timeout: float = 60.0, deadline: float | None = None,
               **options: Any):
        """Prove or refute Pyomo relations (``m.x + m.y <= 3``, ranged, strict; a list: all must hold, or
        any with ``combine="any"``) over the feasible set; a ``VerifyResult``."""
        start = time.perf_counter()
        opts = make_options(BabOptions, options, timeout=timeout)
        imported = import_pyomo(self.block, prop, combine, self.derive_bounds)
        goal = VerifyGoal(imported.combine, imported.strict)
        problem = self.problem(imported, confirm=lazy_confirmation(imported, goal, opts.feasibility_tol))
        return run_verify(problem, goal, opts, min(start + opts.timeout, deadline or math.inf), list(imported.texts),
                          [c.text for c in imported.constraints])

    def load(self, point) -> None:
        """Write a point (a dict keyed by the variables' names, e.g. a result's witness) into the model."""
        self.objective_import().load(point)

    def __repr__(self) -> str:
        return f"PyomoModel({self.name!r})"


def lazy_confirmation(imported: PyomoImport, goal: VerifyGoal, feasibility_tol: float):
    """A ``Problem.confirm`` that writes the rows in sympy on its first call (most runs never confirm)."""
    built = []

    def confirm(point):
        if not built:
            import sympy

            symbols = [sympy.Symbol(f"x{i}", real=True) for i in range(len(imported.variables))]
            rows = sympy_rows(imported, symbols)
            built.append(sympy_confirmation(symbols, rows[:imported.n_rows], rows[imported.n_rows:], goal,
                                            feasibility_tol))
        return built[0](point)

    return confirm


def from_pyomo(block, derive_bounds: bool = True) -> PyomoModel:
    """A Pyomo ``ConcreteModel`` (or block) as a ``PyomoModel``; it is read when a question is asked.
    derive_bounds: variables without finite bounds get the bounds the constraints imply, when finite."""
    check_block(block)
    model = PyomoModel(block, derive_bounds)
    if active_objectives(block):
        model.objective_import()  # read now, so that errors show where the model is made
    return model


# --- Pyomo's solver interface -----------------------------------------------------------------------
class GraphverSolver:
    """``SolverFactory("graphver")``: certified global optimisation of a continuous Pyomo model.

    ``solve(model, timeout=60, rel_tol=1e-4, abs_tol=1e-6, load_solutions=True, tee=False, options={...})``;
    ``options`` (and any other keyword) are graphver's ``BabOptions`` (did-you-mean errors for unknown ones).
    """

    def __init__(self, **kwds):
        self.options = dict(kwds.pop("options", {}) or {})
        self.defaults = kwds
        self.name = "graphver"

    def available(self, exception_flag: bool = True) -> bool:
        return True

    def license_is_valid(self) -> bool:
        return True

    def version(self) -> tuple:
        from graphver import __version__

        return tuple(int(p) for p in __version__.split(".") if p.isdigit())

    def warm_start_capable(self) -> bool:
        return True  # the variables' current values are the first incumbent candidate

    def __enter__(self):
        return self

    def __exit__(self, *args) -> None:
        return None

    def solve(self, model, **kwds):
        from pyomo.opt import SolverResults, SolverStatus, TerminationCondition

        settings = {**self.defaults, **kwds}
        options = {**self.options, **dict(settings.pop("options", {}) or {})}
        timeout = float(settings.pop("timeout", settings.pop("timelimit", 60.0)))
        rel_tol = float(settings.pop("rel_tol", 1e-4))
        abs_tol = float(settings.pop("abs_tol", 1e-6))
        load = bool(settings.pop("load_solutions", True))
        tee = bool(settings.pop("tee", False))
        derive = bool(settings.pop("derive_bounds", True))
        options.update(settings)  # the rest are BabOptions; make_options names a misspelt one
        if "progress" not in options:
            options["progress"] = tee
        begin = time.perf_counter()
        pyomo_model = PyomoModel(model, derive)
        result = pyomo_model.bound(rel_tol=rel_tol, abs_tol=abs_tol, timeout=timeout, load=load, **options)
        if tee:
            print(result)

        results = SolverResults()
        results.problem.name = str(model.name)
        results.problem.sense = "maximize" if result.sense == "max" else "minimize"
        results.problem.number_of_variables = len(pyomo_model.names)
        results.problem.number_of_constraints = len(pyomo_model.objective_import().constraints)
        results.problem.lower_bound = result.lower
        results.problem.upper_bound = result.upper
        results.solver.name = "graphver"
        results.solver.wallclock_time = time.perf_counter() - begin
        if result.status == "solved":
            results.solver.status = SolverStatus.ok
            results.solver.termination_condition = TerminationCondition.optimal
            results.solver.message = f"certified gap {result.gap:.3g} within tolerance"
        elif result.status == "infeasible":
            results.solver.status = SolverStatus.warning
            results.solver.termination_condition = TerminationCondition.infeasible
            results.solver.message = "certified infeasible"
        else:
            results.solver.status = SolverStatus.aborted
            results.solver.termination_condition = TerminationCondition.maxTimeLimit
            results.solver.message = f"time limit: gap {result.gap:.3g} (the bound is certified)"
        results.graphver = result
        return results


def register() -> bool:
    """Register ``GraphverSolver`` with Pyomo's ``SolverFactory`` (once); False when Pyomo is missing."""
    try:
        from pyomo.opt import SolverFactory
    except ImportError:
        return False
    if "graphver" not in SolverFactory:
        SolverFactory.register("graphver", doc="graphver: certified global bounds of continuous models")(GraphverSolver)
    return True

