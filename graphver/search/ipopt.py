"""Local solves with IPOPT (cyipopt) on a compiled tape: ``Model.minimize`` / ``Model.maximize`` and the
branch-and-bound engine's counterexample and incumbent search.

The NLP is built from the tape alone (``TapeNLP``): the objective is one output of the tape, the
constraints are other outputs with lower and upper limits, and the variable bounds are a box. First
derivatives come from one batched autograd pass (the point repeated once per needed output), the
constraint Jacobian is sparse with the structure the tape's dependencies give, and the Hessian of the
Lagrangian is exact (a batched double-backward pass, dense lower triangle) for up to
``EXACT_HESSIAN_LIMIT`` variables or IPOPT's limited-memory approximation.

The maximum of several outputs is minimised in epigraph form: one more variable ``t``, the objective
``t`` and the constraints ``out_r(x) - t <= 0``; this is how ``verify`` searches an "any" property.

No certificate: a local solve finds a good point and its value. IPOPT failures (non-convergence,
restoration failure, NaN from an op's domain, an exception inside IPOPT) are returned in the result,
never raised; a missing cyipopt raises ``SolverUnavailableError`` with the install command.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from graphver.errors import SolverUnavailableError
from graphver.tape.evaluate import evaluate
from graphver.tape.reach import input_dependencies
from graphver.tape.tape import Tape

ITERATION_EVALUATIONS = 2  # iterations that must fit in the time left (see ValueSearch.run)
EXACT_HESSIAN_LIMIT = 200  # variables up to which the exact (dense) Hessian is used by default
HESSIAN_GRADIENTS = 3  # one exact Hessian of n variables costs about this many gradients per variable
IPOPT_INF = 1e20  # IPOPT reads bounds beyond 1e19 as infinite
CONSTRAINT_TOL = 1e-9  # absolute constraint violation IPOPT must reach to report convergence
BAD_VALUE = 1e20  # what IPOPT sees where the tape is NaN or infinite: a point to back off from


@dataclass
class LocalSolution:
    """Result of a local solve: ``point`` (variable -> value, inside the box), ``value`` of the expression
    there (re-evaluated in float64), IPOPT's ``status`` text, ``success`` (IPOPT reported convergence),
    ``iterations``, wall ``seconds`` and the number of ``starts`` it was the best of."""

    point: dict[str, float]
    value: float
    status: str
    success: bool
    iterations: int
    seconds: float
    starts: int = 1
    max_violation: float = 0.0  # largest constraint violation at the point (0 without constraints)

    def __str__(self) -> str:
        where = ", ".join(f"{k}={v:.10g}" for k, v in self.point.items())
        best = f", best of {self.starts} starts" if self.starts > 1 else ""
        violation = f", max constraint violation {self.max_violation:.3g}" if self.max_violation else ""
        return (f"local solve: {self.value:.12g} at {where} ({self.status}, {self.iterations} iterations, "
                f"{self.seconds:.2f} s{best}{violation})")


@dataclass
class IpoptRun:
    """One IPOPT call: the final point (inside the box), status text, convergence, iterations, seconds."""

    x: np.ndarray
    status: str
    success: bool
    iterations: int
    seconds: float


def import_cyipopt():
    try:
        import cyipopt
    except ImportError as error:
        raise SolverUnavailableError(
            "IPOPT is not available: install it with `pip install cyipopt-wheels` (bundles Ipopt and MUMPS)"
        ) from error
    return cyipopt


def ipopt_available() -> bool:
    try:
        import_cyipopt()
    except SolverUnavailableError:
        return False
    return True


class TapeNLP:
    """cyipopt's problem interface over outputs of a float64 CPU tape.

    Variables: the tape's inputs, plus one epigraph variable ``t`` when ``epigraph_rows`` are given.
    Objective: ``sign * out[objective]``, or ``t`` (minimise the maximum of the epigraph rows).
    Constraints: first ``out[r] - t <= 0`` for each epigraph row, then ``out[rows[k]]`` within
    ``[row_lower[k], row_upper[k]]`` (``-IPOPT_INF`` / ``IPOPT_INF`` for a missing side).
    """

    def __init__(self, tape: Tape, objective: int | None = None, sign: float = 1.0, rows=(), row_lower=(),
                 row_upper=(), epigraph_rows=(), exact_hessian: bool = True):
        epigraph_rows = [int(r) for r in epigraph_rows]
        if (objective is None) == (not epigraph_rows):
            raise ValueError("give an objective output or epigraph rows (minimise their maximum), not both")
        self.tape = tape.to("cpu", torch.float64)
        self.n = tape.n_inputs
        self.objective_index = objective
        self.sign = float(sign)
        self.epigraph = bool(epigraph_rows)
        self.n_epigraph = len(epigraph_rows)
        self.rows = epigraph_rows + [int(r) for r in rows]
        self.row_lower = np.concatenate([np.full(self.n_epigraph, -IPOPT_INF), np.asarray(row_lower, dtype=np.float64)])
        self.row_upper = np.concatenate([np.zeros(self.n_epigraph), np.asarray(row_upper, dtype=np.float64)])
        if len(self.row_lower) != len(self.rows) or len(self.row_upper) != len(self.rows):
            raise ValueError("row_lower and row_upper need one entry per row")
        self.exact_hessian = exact_hessian
        self.needed = ([] if objective is None else [objective]) + self.rows  # outputs whose gradients we need
        deps = input_dependencies(self.tape, self.needed)
        row_deps = deps[1:] if objective is not None else deps
        cols = [np.concatenate([d, [self.n]]) if k < self.n_epigraph else d for k, d in enumerate(row_deps)]
        self.jac_rows = np.concatenate([np.full(len(c), k) for k, c in enumerate(cols)]).astype(np.int64) if cols else np.zeros(0, np.int64)
        self.jac_cols = np.concatenate(cols).astype(np.int64) if cols else np.zeros(0, np.int64)
        self.hess_rows, self.hess_cols = np.tril_indices(self.n)
        self.iterations = 0
        self.key = None
        self.values = None  # outputs at the cached point
        self.gradients = None  # [len(needed), n] at the cached point

    @property
    def n_variables(self) -> int:
        return self.n + (1 if self.epigraph else 0)

    @property
    def n_constraints(self) -> int:
        return len(self.rows)

    # --- cached first-order information ------------------------------------------------------------
    def at(self, x: np.ndarray) -> None:
        """Values and gradients of the needed outputs at ``x`` (cached: IPOPT asks several times per point)."""
        key = x.tobytes()
        if key == self.key:
            return
        point = torch.as_tensor(x[: self.n], dtype=torch.float64)
        q = len(self.needed)
        batch = point.expand(q, self.n).clone().requires_grad_(True)
        out = evaluate(self.tape, batch)
        chosen = out[torch.arange(q), torch.as_tensor(self.needed)]
        if chosen.requires_grad:
            (grads,) = torch.autograd.grad(chosen.sum(), batch, allow_unused=True)
            grads = torch.zeros_like(batch) if grads is None else grads
        else:
            grads = torch.zeros_like(batch)
        self.values = chosen.detach().numpy().copy()
        self.gradients = np.nan_to_num(grads.detach().numpy(), nan=0.0, posinf=BAD_VALUE, neginf=-BAD_VALUE)
        self.key = key

    def objective(self, x):
        if self.epigraph:
            return float(x[self.n])
        self.at(x)
        v = self.sign * float(self.values[0])
        return v if math.isfinite(v) else BAD_VALUE

    def gradient(self, x):
        grad = np.zeros(self.n_variables)
        if self.epigraph:
            grad[self.n] = 1.0
            return grad
        self.at(x)
        grad[: self.n] = self.sign * self.gradients[0]
        return grad

    def constraints(self, x):
        if not self.rows:
            return np.zeros(0)
        self.at(x)
        values = self.values[-len(self.rows):].copy()
        values[: self.n_epigraph] -= x[self.n] if self.epigraph else 0.0
        return np.nan_to_num(values, nan=BAD_VALUE, posinf=BAD_VALUE, neginf=-BAD_VALUE)

    def jacobianstructure(self):
        return self.jac_rows, self.jac_cols

    def jacobian(self, x):
        if not self.rows:
            return np.zeros(0)
        self.at(x)
        offset = 0 if self.objective_index is None else 1
        dense = np.zeros((len(self.rows), self.n_variables))
        dense[:, : self.n] = self.gradients[offset:]
        if self.epigraph:
            dense[: self.n_epigraph, self.n] = -1.0
        return dense[self.jac_rows, self.jac_cols]

    # --- second order ------------------------------------------------------------------------------
    def hessianstructure(self):
        return self.hess_rows, self.hess_cols

    def hessian(self, x, lagrange, obj_factor):
        """Lower triangle of the Hessian of the Lagrangian (the epigraph variable enters linearly)."""
        weights = torch.zeros(self.tape.n_outputs, dtype=torch.float64)
        if self.objective_index is not None:
            weights[self.objective_index] += obj_factor * self.sign
        for k, r in enumerate(self.rows):
            weights[r] += float(lagrange[k])
        n = self.n
        batch = torch.as_tensor(x[:n], dtype=torch.float64).expand(n, n).clone().requires_grad_(True)
        lagrangian = evaluate(self.tape, batch) @ weights
        hess = np.zeros((n, n))
        if lagrangian.requires_grad:
            (grad,) = torch.autograd.grad(lagrangian.sum(), batch, create_graph=True, allow_unused=True)
            if grad is not None and grad.requires_grad:
                (second,) = torch.autograd.grad(grad.diagonal().sum(), batch, allow_unused=True)
                if second is not None:
                    hess = second.detach().numpy()
        hess = np.nan_to_num(hess, nan=0.0, posinf=BAD_VALUE, neginf=-BAD_VALUE)
        return hess[self.hess_rows, self.hess_cols]

    def intermediate(self, alg_mod, iter_count, *args):
        self.iterations = int(iter_count)
        return True

    # --- one solve ---------------------------------------------------------------------------------
    def solve(self, x0: np.ndarray, lower: np.ndarray, upper: np.ndarray, max_iter: int = 200,
              max_wall_time: float = 10.0, tol: float = 1e-9, verbose: bool = False) -> IpoptRun:
        """Run IPOPT from ``x0`` (clipped into the box; ``t`` starts at the rows' maximum) in ``[lower, upper]``."""
        cyipopt = import_cyipopt()
        lower = np.asarray(lower, dtype=np.float64)
        upper = np.asarray(upper, dtype=np.float64)
        x0 = np.clip(np.asarray(x0, dtype=np.float64).reshape(-1), lower, upper)
        lb, ub = lower, upper
        if self.epigraph:
            self.at(np.concatenate([x0, [0.0]]))
            first = 0 if self.objective_index is None else 1
            tops = self.values[first : first + self.n_epigraph]
            top = float(np.nanmax(tops)) if np.isfinite(tops).any() else 0.0
            x0 = np.concatenate([x0, [top if math.isfinite(top) else 0.0]])
            lb, ub = np.concatenate([lower, [-IPOPT_INF]]), np.concatenate([upper, [IPOPT_INF]])
        self.iterations = 0
        start = time.perf_counter()
        try:
            problem = cyipopt.Problem(n=self.n_variables, m=self.n_constraints, problem_obj=self, lb=lb, ub=ub,
                                      cl=self.row_lower, cu=self.row_upper)
            problem.add_option("max_iter", int(max_iter))
            problem.add_option("max_wall_time", float(max(max_wall_time, 1e-3)))
            problem.add_option("tol", float(tol))
            problem.add_option("constr_viol_tol", CONSTRAINT_TOL)  # IPOPT's default (1e-4) is too loose
            problem.add_option("print_level", 5 if verbose else 0)
            problem.add_option("sb", "yes")
            if not self.exact_hessian:
                problem.add_option("hessian_approximation", "limited-memory")
            x, info = problem.solve(x0)
            message = info["status_msg"]
            status = message.decode() if isinstance(message, bytes) else str(message)
            success = info["status"] in (0, 1)
        except Exception as error:  # IPOPT or a callback failed: keep the start point, report why
            x, status, success = x0, f"IPOPT failed: {type(error).__name__}: {error}", False
        seconds = time.perf_counter() - start
        x = np.clip(np.nan_to_num(np.asarray(x, dtype=np.float64)[: self.n], nan=0.0), lower, upper)
        return IpoptRun(x, status, bool(success), self.iterations, seconds)


class ValueSearch:
    """IPOPT multi-start on the branch-and-bound engine's value ``v``: the minimum of the tape's rows
    ("all") or their maximum ("any", epigraph form). With several "all" rows, each call is one row: the
    rows are taken most-nearly-violated first (smallest value over the starts), each from the start where
    it is smallest, and later rounds go on with the next rows, so that every row gets searched. Calls
    are cut at ``time_limit`` seconds each and at the caller's deadline."""

    def __init__(self, tape: Tape, combine: str, max_iter: int, time_limit: float, hessian: str = "auto",
                 n_rows: int | None = None, constraints: tuple = ((), (), ())):
        self.tape = tape.to("cpu", torch.float64)
        self.n_rows = tape.n_outputs if n_rows is None else n_rows  # the outputs after them belong to constraints
        # (rows, lower limits, upper limits) of the constraints for IPOPT: an equality once, with [0, 0]
        self.constraints = [list(c) for c in constraints]
        self.combine = combine
        self.max_iter = max_iter
        self.time_limit = time_limit
        self.exact = use_exact_hessian(hessian, self.tape.n_inputs)
        self.nlps: dict = {}
        self.cursor = 0  # rotation over "all" rows across calls
        self.evaluation_seconds: float | None = None  # one forward evaluation of the tape, measured once

    def nlp(self, row: int | None) -> TapeNLP:
        if row not in self.nlps:
            rows, lower, upper = self.constraints
            limits = dict(rows=rows, row_lower=np.clip(lower, -IPOPT_INF, IPOPT_INF), row_upper=np.asarray(upper, float),
                          exact_hessian=self.exact)
            if row is None:
                self.nlps[row] = TapeNLP(self.tape, None, epigraph_rows=range(self.n_rows), **limits)
            else:
                self.nlps[row] = TapeNLP(self.tape, row, **limits)
        return self.nlps[row]

    def iteration_seconds(self, x: np.ndarray, row: int | None, exact: bool) -> float:
        """An estimate of one IPOPT iteration's seconds: IPOPT checks its wall-time limit between iterations
        only, and an iteration evaluates a Jacobian, about one gradient per row of the NLP (on a tape of
        10**5 nodes with hundreds of rows: seconds), and an exact Hessian about ``HESSIAN_GRADIENTS``
        gradients per variable. The gradient of one row is timed once."""
        if self.evaluation_seconds is None:
            start = time.perf_counter()
            point = torch.as_tensor(x[None]).clone().requires_grad_(True)
            torch.autograd.grad(evaluate(self.tape, point)[0, 0], point)
            self.evaluation_seconds = time.perf_counter() - start
        nlp_rows = len(self.constraints[0]) + (self.n_rows if row is None else 1) + 1
        hessian = self.tape.n_inputs * HESSIAN_GRADIENTS if exact else 0
        return self.evaluation_seconds * (nlp_rows + hessian)

    def assignments(self, starts: np.ndarray) -> list[tuple[int, int | None]]:
        """(start index, row) per call; row None is the epigraph of all rows."""
        rows = self.n_rows
        if rows == 1:
            return [(s, 0) for s in range(len(starts))]
        if self.combine == "any":
            return [(s, None) for s in range(len(starts))]
        with torch.no_grad():
            values = evaluate(self.tape, torch.as_tensor(starts)).numpy()[:, :rows]
        values = np.where(np.isfinite(values), values, np.inf)
        order = np.argsort(values.min(axis=0), kind="stable")
        pairs = []
        for k in range(len(starts)):
            row = int(order[(self.cursor + k) % rows])
            pairs.append((int(np.argmin(values[:, row])), row))
        self.cursor = (self.cursor + len(starts)) % rows
        return pairs

    def run(self, starts: np.ndarray, lower: np.ndarray, upper: np.ndarray, deadline: float) -> list[IpoptRun]:
        """IPOPT calls from ``starts`` [S, n], start s inside the box ``lower[s], upper[s]``, until the deadline."""
        starts = np.clip(starts, lower, upper)
        runs = []
        for s, row in self.assignments(starts):
            left = deadline - time.perf_counter()
            remaining = min(self.time_limit, left)
            # a call is skipped unless ITERATION_EVALUATIONS iterations fit in the time left; the exact
            # Hessian is kept only while they fit in the call's own budget (else limited-memory)
            if remaining <= 0.01 or self.iteration_seconds(starts[s], row, False) * ITERATION_EVALUATIONS > left:
                break
            nlp = self.nlp(row)
            nlp.exact_hessian = self.exact and (self.iteration_seconds(starts[s], row, True) * ITERATION_EVALUATIONS
                                                <= remaining)
            runs.append(nlp.solve(starts[s], lower[s], upper[s], self.max_iter, remaining))
        return runs


def use_exact_hessian(hessian: str, n: int) -> bool:
    if hessian not in ("auto", "exact", "limited-memory"):
        from graphver.errors import OptionError

        raise OptionError(f"hessian must be 'auto', 'exact' or 'limited-memory', got {hessian!r}")
    return hessian == "exact" or (hessian == "auto" and n <= EXACT_HESSIAN_LIMIT)


def start_points(model, tape: Tape, sign: float, start, starts: int, seed: int) -> np.ndarray:
    """Starting points [S, n]: the given ``start``, or the box centre followed by the ``starts - 1`` best
    of 64 * starts random points (by the objective's value)."""
    low = np.asarray(model.lower, dtype=np.float64)
    high = np.asarray(model.upper, dtype=np.float64)
    if start is not None:
        if isinstance(start, dict):
            x0 = np.asarray([float(start[n]) for n in model.names], dtype=np.float64)
        else:
            x0 = np.asarray(start, dtype=np.float64).reshape(-1)
        return x0[None]
    centre = (low + (high - low) / 2)[None]
    if starts <= 1:
        return centre
    rng = np.random.default_rng(seed)
    samples = low + (high - low) * rng.random((64 * starts, len(low)))
    with torch.no_grad():
        values = sign * evaluate(tape, torch.as_tensor(samples))[:, 0].numpy()
    order = np.argsort(np.where(np.isfinite(values), values, np.inf))[: starts - 1]
    return np.concatenate([centre, samples[order]])


def local_solve(model, expr, sense: str = "min", start=None, starts: int = 1, max_iter: int = 200,
                max_wall_time: float = 10.0, hessian: str = "auto", tol: float = 1e-9, verbose: bool = False,
                seed: int = 0) -> LocalSolution:
    """Run IPOPT on ``expr`` over the model's box from ``start`` (dict or sequence), or from ``starts``
    points (box centre and the best random samples); return the best solution found."""
    from graphver.errors import OptionError

    if sense not in ("min", "max"):
        raise OptionError(f"sense must be 'min' or 'max', got {sense!r}")
    if starts < 1:
        raise OptionError(f"starts must be >= 1, got {starts}")
    import_cyipopt()
    constraints = model.constraint_rows
    tape = model.compile([expr] + constraints).to("cpu", torch.float64)
    sign = 1.0 if sense == "min" else -1.0
    low = np.asarray(model.lower, dtype=np.float64)
    high = np.asarray(model.upper, dtype=np.float64)
    k = len(constraints)
    rows, row_lower, row_upper = model.constraint_limits(first_row=1)
    nlp = TapeNLP(tape, 0, sign, rows=rows, row_lower=np.clip(row_lower, -IPOPT_INF, IPOPT_INF), row_upper=row_upper,
                  exact_hessian=use_exact_hessian(hessian, len(low)))
    best, best_value, total = None, (True, math.inf), 0.0
    deadline = time.perf_counter() + max_wall_time
    for x0 in start_points(model, tape, sign, start, starts, seed):
        remaining = deadline - time.perf_counter()
        if remaining <= 0 and best is not None:
            break
        run = nlp.solve(x0, low, high, max_iter, max(remaining, 1e-3), tol, verbose)
        total += run.seconds
        with torch.no_grad():
            out = evaluate(tape, torch.as_tensor(run.x)[None])[0]
        value = float(out[0])
        violation = float(out[1:].clamp(min=0).max()) if k else 0.0
        # feasible points first (within IPOPT's own constraint tolerance), then the best value
        score = (violation > 1e-6 or not math.isfinite(violation), sign * value if math.isfinite(value) else math.inf)
        if best is None or score < best_value or (score == best_value and run.success and not best[0].success):
            best, best_value = (run, value, violation), score
    run, value, violation = best
    return LocalSolution(dict(zip(model.names, run.x.tolist())), value, run.status, run.success, run.iterations,
                         total, starts if start is None else 1, violation)
