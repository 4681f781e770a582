"""The public API: the questions asked about a model, each answered by building a problem and running it.

``Model`` (``graphver.Model``) is the modeling ``graphver.dsl.model.Model`` plus ``interval`` (bounds without
branching), ``verify`` and ``bound`` (branch-and-bound: a ``graphver.bab.Problem`` built here from the
model's variables, box, rows and constraints, with sympy confirmation of counterexamples), and ``minimize``
/ ``maximize`` (IPOPT, no certificate). Data flows one way: dsl (the model) -> tape -> bab -> results.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import sympy
import torch

from graphver.bab import BoundGoal, Engine, Problem, normalise
from graphver.bounds import output_bounds
from graphver.confirm import sympy_confirmation
from graphver.dsl import model as dsl
from graphver.errors import OptionError
from graphver.options import BabOptions, BoundOptions, make_options
from graphver.report.interval import Interval
from graphver.report.results import BoundResult, VerifyResult
from graphver.tape import compile_expressions, evaluate


def problem_of(model: dsl.Model, rows, combine: str = "all", strict=(), starts=None, confirm=None) -> Problem:
    """The branch-and-bound problem of sympy ``rows`` (then the model's constraint rows) over the model's box."""
    rows = list(rows)
    tape = compile_expressions(model.variables, rows + model.constraint_rows)
    lower, upper = model.box()
    return Problem(tape, lower, upper, len(rows), combine, tuple(strict), model.constraint_limits(first_row=len(rows)),
                   confirm, tuple(model.names), starts, model.name)


def max_violation(problem: Problem, point: torch.Tensor) -> float:
    """Largest constraint violation max(c_k(x), 0) of a point [n] of the problem, evaluated in float64 on its tape."""
    if not problem.n_constraints:
        return 0.0
    values = evaluate(problem.tape, point.to(torch.float64).reshape(1, -1))[0, problem.n_rows:]
    return float(torch.clamp(values, min=0).max())


def run_verify(problem: Problem, goal, opts: BabOptions, deadline: float, texts: list, constraint_texts: list):
    """Run branch-and-bound on a verify problem (margin rows) until ``deadline``; a ``VerifyResult``."""
    outcome = Engine(problem, goal, opts).run(deadline)
    status = {"proven": "verified", "falsified": "falsified", "infeasible": "infeasible"}.get(outcome.status, "unknown")
    counterexample = margins = check = violation = None
    if status == "falsified":
        counterexample = dict(zip(problem.names, outcome.best_point.tolist()))
        margins = evaluate(problem.tape, outcome.best_point.to(torch.float64)[None])[0, :problem.n_rows].tolist()
        check = list(outcome.margins) if outcome.margins is not None else None
        violation = max_violation(problem, outcome.best_point)
    return VerifyResult(status, outcome.lower, counterexample, margins, texts, problem.combine, outcome.stats,
                        options_record(opts), check, constraint_texts, violation)


def run_bound(problem: Problem, sense: str, opts: BabOptions, deadline: float, expression: str,
              constraint_texts: list):
    """Run branch-and-bound on a problem whose one row is the objective (negated for "max") until
    ``deadline``; a ``BoundResult`` in the objective's own sense."""
    goal = BoundGoal(opts.rel_tol, opts.abs_tol)
    outcome = Engine(problem, goal, opts).run(deadline)
    if sense == "min":
        lower, upper = outcome.lower, outcome.best_value
    else:
        lower, upper = -outcome.best_value, -outcome.lower
    gap = upper - lower
    status = "solved" if gap <= goal.tolerance(outcome.best_value) else "unknown"
    if outcome.status == "infeasible":
        status, gap = "infeasible", math.nan
    witness = None if outcome.best_point is None else dict(zip(problem.names, outcome.best_point.tolist()))
    violation = max_violation(problem, outcome.best_point) if witness is not None else None
    return BoundResult(sense, lower, upper, gap, status, witness, expression, outcome.stats, options_record(opts),
                       constraint_texts, violation)


def options_record(options) -> dict:
    """Options as plain data for results (nested option objects flattened)."""
    return dataclasses.asdict(options)


class Model(dsl.Model):
    __doc__ = dsl.Model.__doc__

    def interval(
        self,
        exprs,
        method: str = "crown",
        lower=None,
        upper=None,
        device=None,
        dtype=torch.float64,
        **options: Any,
    ):
        """Certified bounds of one expression (-> ``Interval``) or a list (-> list of ``Interval``).

        method: "ibp", "crown" (intermediate bounds = IBP intersected with CROWN) or "alpha" (CROWN with
        relaxation parameters optimised by Adam). lower, upper: optional boxes [B, n_vars]; then the
        Interval fields are tensors of shape [B]. Options: see ``BoundOptions``. The bounds hold over the
        whole box: the model's constraints are not used here (``bound`` and ``verify`` use them).
        """
        single = not isinstance(exprs, (list, tuple))
        opts = make_options(BoundOptions, options)
        tape = self.compile(exprs).to(device, dtype)
        batched = lower is not None and torch.as_tensor(lower).dim() == 2
        low, high = self.boxes_tensor(lower, upper, dtype, tape.device)
        out_low, out_high = output_bounds(tape, low, high, method, opts)
        results = []
        for j in range(tape.n_outputs):
            if batched:
                results.append(Interval(out_low[:, j].detach(), out_high[:, j].detach(), method))
            else:
                results.append(Interval(float(out_low[0, j]), float(out_high[0, j]), method))
        return results[0] if single else results

    def verify(self, prop, timeout: float = 60.0, deadline: float | None = None, **options: Any):
        """Prove or refute a property over the box by branch-and-bound; returns a ``VerifyResult``.

        prop: a sympy relation (``f <= c``, ``f >= c``, strict ones too), a list of them (all must hold),
        ``gv.All([...])`` or ``gv.Any([...])``. Options: see ``BabOptions`` (``batch_size``, ``seed``,
        ``branching``, ``device``, ...). Ctrl-C or the timeout return "unknown" with the best proven margin.
        deadline: optional ``time.perf_counter()`` time to stop at if that comes before the timeout.
        """
        start = time.perf_counter()  # compiling counts towards the timeout
        opts = make_options(BabOptions, options, timeout=timeout)
        prop = normalise(prop)
        goal = prop.goal()
        confirm = sympy_confirmation(self.variables, prop.margins, self.constraint_rows, goal, opts.feasibility_tol)
        problem = problem_of(self, prop.margins, prop.combine, prop.strict, confirm=confirm)
        return run_verify(problem, goal, opts, min(start + opts.timeout, deadline or math.inf), list(prop.texts),
                          self.constraint_texts)

    def bound(self, expr, sense: str = "min", rel_tol: float = 1e-4, abs_tol: float = 1e-6, timeout: float = 60.0,
              start=None, deadline: float | None = None, **options: Any):
        """Certified global minimum (or maximum) of ``expr`` over the box by branch-and-bound.

        Returns a ``BoundResult``: for "min", ``lower`` is proven and ``upper`` is the value at ``witness``;
        for "max", ``upper`` is proven and ``lower`` is the value at ``witness``. "solved" when
        ``upper - lower <= max(abs_tol, rel_tol*|value|)``. start: optional points (a dict, a sequence, or a
        list of them) evaluated first as incumbent candidates, e.g. a known local solution. deadline: as
        for ``verify``.
        """
        if sense not in ("min", "max"):
            raise OptionError(f"sense must be 'min' or 'max', got {sense!r}")
        begin = time.perf_counter()  # compiling counts towards the timeout
        opts = make_options(BabOptions, options, timeout=timeout, rel_tol=rel_tol, abs_tol=abs_tol)
        expr = sympy.sympify(expr)
        problem = problem_of(self, [expr if sense == "min" else -expr], starts=self.start_tensor(start))
        return run_bound(problem, sense, opts, min(begin + opts.timeout, deadline or math.inf), str(expr),
                         self.constraint_texts)

    def minimize(self, expr, start=None, **options):
        """Local minimum of ``expr`` over the box by IPOPT (no certificate); returns a ``LocalSolution``.

        start: a dict or sequence; without it, ``starts`` points (default 1: the box centre; more: the best
        random samples too) and the best result is returned. Options: ``starts``, ``max_iter``,
        ``max_wall_time`` (all starts together), ``hessian`` ("auto", "exact", "limited-memory"), ``tol``,
        ``verbose``, ``seed``. IPOPT failures are reported in the result, not raised."""
        from graphver.search.ipopt import local_solve

        return local_solve(self, expr, "min", start, **options)

    def maximize(self, expr, start=None, **options):
        """Local maximum of ``expr`` over the box by IPOPT (no certificate); see ``minimize``."""
        from graphver.search.ipopt import local_solve

        return local_solve(self, expr, "max", start, **options)
