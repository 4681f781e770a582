"""Local solves with IPOPT (cyipopt) on a compiled tape: ``Model.minimize`` / ``Model.maximize`` and the
branch-and-bound engine's counterexample and incumbent search.

The NLP is built from the tape alone (``TapeNLP``): the objective is one output of the tape, the
constraints are other outputs with lower and upper limits, and the variable bounds are a box. Derivatives
are sparse and computed compressed (graphver/tape/sparsity.py): the gradients of all needed outputs in one
batched autograd pass with one batch element per group of outputs that share no input, the constraint
Jacobian with the structure the tape's dependencies give, and the Hessian of the Lagrangian on its
structural pattern (lower triangle) from one batched double-backward pass, one Hessian-vector product
per colour of the pattern's columns; exact while it takes at most ``EXACT_HESSIAN_LIMIT`` colours, else
IPOPT's limited-memory approximation.

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
import scipy.sparse as sp
import torch

from graphver.errors import SolverUnavailableError
from graphver.tape.evaluate import evaluate
from graphver.tape.reach import input_dependencies
from graphver.tape.sparsity import dependency_matrix, greedy_colouring, hessian_pattern
from graphver.tape.tape import Tape

ITERATION_EVALUATIONS = 2  # iterations that must fit in the time left (see ValueSearch.run)
EXACT_HESSIAN_LIMIT = 200  # colours (Hessian-vector products per Hessian) up to which "auto" is exact
HESSIAN_GRADIENTS = 3  # one Hessian-vector product costs about this many gradients
IPOPT_INF = 1e20  # IPOPT reads bounds beyond 1e19 as infinite
CONSTRAINT_TOL = 1e-9  # absolute constraint violation IPOPT must reach to report convergence
BAD_VALUE = 1e20  # what IPOPT sees where the tape is NaN or infinite: a point to back off from
CONVERGED_FACTOR = 3  # a call may take this many times the iterations of the slowest converged call so far
MIN_CAPPED_ITERATIONS = 50  # but at least this many (ValueSearch.iteration_cap)


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
        self.row_index = torch.as_tensor(self.rows, dtype=torch.long)  # the outputs of the rows, for the Hessian
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
        # compressed first derivatives: needed outputs that share no input are one group, one reverse
        # pass per group (graphver/tape/sparsity.py)
        depends = dependency_matrix(deps, self.n).astype(np.int64)
        self.groups = greedy_colouring(depends @ depends.T) if deps else np.zeros(0, np.int64)
        self.n_groups = int(self.groups.max()) + 1 if len(self.groups) else 0
        self.group_of = torch.as_tensor(self.groups)
        # the gradients are kept sparse: entry e is d out[needed[flat_k[e]]] / d x[flat_cols[e]]
        self.flat_k = np.repeat(np.arange(len(deps)), [len(d) for d in deps]).astype(np.int64)
        self.flat_cols = np.concatenate(deps).astype(np.int64) if deps else np.zeros(0, np.int64)
        objective_entries = len(deps[0]) if objective is not None and deps else 0
        self.objective_cols = self.flat_cols[:objective_entries]
        # each Jacobian entry: the flat entry it copies, or -1 for the epigraph variable's coefficient (-1)
        source, entry = [], objective_entries
        for k, d in enumerate(row_deps):
            source.append(np.arange(entry, entry + len(d)))
            entry += len(d)
            if k < self.n_epigraph:
                source.append(np.array([-1]))
        self.jac_source = np.concatenate(source).astype(np.int64) if source else np.zeros(0, np.int64)
        # Hessian: the structural pattern's lower triangle, recovered from one Hessian-vector product per
        # colour of a distance-2 colouring of its columns
        pattern = hessian_pattern(self.tape, self.needed).astype(np.int64)
        lower = sp.tril(pattern).tocoo()
        self.hess_rows, self.hess_cols = lower.row.astype(np.int64), lower.col.astype(np.int64)
        self.colours = greedy_colouring(pattern @ pattern) if pattern.nnz else np.zeros(self.n, np.int64)
        self.n_colours = int(self.colours.max()) + 1 if pattern.nnz else 0
        self.iterations = 0
        self.key = None  # the point of the cached gradients
        self.value_key = None  # the point of the cached values
        self.values = None  # outputs at the cached point
        self.gradients = None  # the flat (sparse) gradient entries at the cached point

    @property
    def n_variables(self) -> int:
        return self.n + (1 if self.epigraph else 0)

    @property
    def n_constraints(self) -> int:
        return len(self.rows)

    # --- cached first-order information ------------------------------------------------------------
    def values_at(self, x: np.ndarray) -> None:
        """Values of the needed outputs at ``x``, without gradients (IPOPT's line search asks for values
        at trial points it may reject; cached)."""
        key = x.tobytes()
        if key == self.value_key:
            return
        with torch.no_grad():
            out = evaluate(self.tape, torch.as_tensor(x[None, : self.n], dtype=torch.float64))[0]
        self.values = out[torch.as_tensor(self.needed)].numpy().copy()
        self.value_key = key

    def at(self, x: np.ndarray) -> None:
        """Values and gradients of the needed outputs at ``x`` (cached: IPOPT asks several times per point)."""
        key = x.tobytes()
        if key == self.key:
            return
        point = torch.as_tensor(x[: self.n], dtype=torch.float64)
        # one batch element per group of outputs with disjoint inputs: its gradient is the sum of theirs,
        # and each output's own inputs read its gradient off
        batch = point.expand(max(1, self.n_groups), self.n).clone().requires_grad_(True)
        out = evaluate(self.tape, batch)
        chosen = out[self.group_of, torch.as_tensor(self.needed)]  # [q]: output k from its group's element
        flat = np.zeros(len(self.flat_cols))
        if chosen.requires_grad:
            (grads,) = torch.autograd.grad(chosen.sum(), batch, allow_unused=True)
            if grads is not None:
                flat = grads.detach().numpy()[self.groups[self.flat_k], self.flat_cols]
        self.values = chosen.detach().numpy().copy()
        self.gradients = np.nan_to_num(flat, nan=0.0, posinf=BAD_VALUE, neginf=-BAD_VALUE)
        self.key, self.value_key = key, key

    def objective(self, x):
        if self.epigraph:
            return float(x[self.n])
        self.values_at(x)
        v = self.sign * float(self.values[0])
        return v if math.isfinite(v) else BAD_VALUE

    def gradient(self, x):
        grad = np.zeros(self.n_variables)
        if self.epigraph:
            grad[self.n] = 1.0
            return grad
        self.at(x)
        grad[self.objective_cols] = self.sign * self.gradients[: len(self.objective_cols)]
        return grad

    def constraints(self, x):
        if not self.rows:
            return np.zeros(0)
        self.values_at(x)
        values = self.values[-len(self.rows):].copy()
        values[: self.n_epigraph] -= x[self.n] if self.epigraph else 0.0
        return np.nan_to_num(values, nan=BAD_VALUE, posinf=BAD_VALUE, neginf=-BAD_VALUE)

    def jacobianstructure(self):
        return self.jac_rows, self.jac_cols

    def jacobian(self, x):
        if not self.rows:
            return np.zeros(0)
        self.at(x)
        return np.where(self.jac_source >= 0, self.gradients[np.maximum(self.jac_source, 0)], -1.0)

    # --- second order ------------------------------------------------------------------------------
    def hessianstructure(self):
        return self.hess_rows, self.hess_cols

    def hessian(self, x, lagrange, obj_factor):
        """Lower triangle of the Hessian of the Lagrangian (the epigraph variable enters linearly)."""
        weights = torch.zeros(self.tape.n_outputs, dtype=torch.float64)
        if self.objective_index is not None:
            weights[self.objective_index] += obj_factor * self.sign
        if self.rows:
            weights.index_add_(0, self.row_index, torch.as_tensor(np.asarray(lagrange, dtype=np.float64)))
        n, c = self.n, self.n_colours
        if c == 0:
            return np.zeros(len(self.hess_rows))
        # element k of the batch computes H s_k, s_k the indicator of colour k's columns
        seeds = torch.as_tensor(self.colours[None, :] == np.arange(c)[:, None], dtype=torch.float64)
        batch = torch.as_tensor(x[:n], dtype=torch.float64).expand(c, n).clone().requires_grad_(True)
        lagrangian = evaluate(self.tape, batch) @ weights
        products = np.zeros((c, n))
        if lagrangian.requires_grad:
            (grad,) = torch.autograd.grad(lagrangian.sum(), batch, create_graph=True, allow_unused=True)
            if grad is not None and grad.requires_grad:
                (second,) = torch.autograd.grad((grad * seeds).sum(), batch, allow_unused=True)
                if second is not None:
                    products = second.detach().numpy()
        values = products[self.colours[self.hess_cols], self.hess_rows]  # H[i, j] = (H s_colour(j))[i]
        return np.nan_to_num(values, nan=0.0, posinf=BAD_VALUE, neginf=-BAD_VALUE)

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
            self.values_at(np.concatenate([x0, [0.0]]))
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
        use_exact_hessian(hessian, 0)  # checks the option; "auto" decides per NLP by its colours
        self.hessian = hessian
        self.nlps: dict = {}
        self.cursor = 0  # rotation over "all" rows across calls
        self.evaluation_seconds: float | None = None  # one forward evaluation of the tape, measured once
        self.converged_iterations = 0  # the most iterations a converged call of this search took

    def nlp(self, row: int | None) -> TapeNLP:
        if row not in self.nlps:
            rows, lower, upper = self.constraints
            limits = dict(rows=rows, row_lower=np.clip(lower, -IPOPT_INF, IPOPT_INF), row_upper=np.asarray(upper, float))
            if row is None:
                nlp = TapeNLP(self.tape, None, epigraph_rows=range(self.n_rows), **limits)
            else:
                nlp = TapeNLP(self.tape, row, **limits)
            nlp.exact_hessian = use_exact_hessian(self.hessian, nlp.n_colours)
            self.nlps[row] = nlp
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
        nlp = self.nlp(row)
        hessian = nlp.n_colours * HESSIAN_GRADIENTS if exact else 0  # one Hessian-vector product per colour
        return self.evaluation_seconds * (max(1, nlp.n_groups) + hessian)

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
            nlp.exact_hessian = use_exact_hessian(self.hessian, nlp.n_colours) and (
                self.iteration_seconds(starts[s], row, True) * ITERATION_EVALUATIONS <= remaining)
            runs.append(nlp.solve(starts[s], lower[s], upper[s], self.iteration_cap(), remaining))
            if runs[-1].success:
                self.converged_iterations = max(self.converged_iterations, runs[-1].iterations)
        return runs

    def iteration_cap(self) -> int:
        """Iterations of the next call: ``max_iter``, or once some call converged, ``CONVERGED_FACTOR`` times
        the most any converged call took (at least ``MIN_CAPPED_ITERATIONS``): a start that needs many times
        that is wandering (an 8-variable problem's random starts ran 200 iterations, 1 s each, for nothing)."""
        if self.converged_iterations == 0:
            return self.max_iter
        return min(self.max_iter, max(MIN_CAPPED_ITERATIONS, CONVERGED_FACTOR * self.converged_iterations))


def use_exact_hessian(hessian: str, colours: int) -> bool:
    """Whether IPOPT gets the exact Hessian: "exact", or "auto" while one Hessian costs at most
    ``EXACT_HESSIAN_LIMIT`` Hessian-vector products (its columns' colours)."""
    if hessian not in ("auto", "exact", "limited-memory"):
        from graphver.errors import OptionError

        raise OptionError(f"hessian must be 'auto', 'exact' or 'limited-memory', got {hessian!r}")
    return hessian == "exact" or (hessian == "auto" and colours <= EXACT_HESSIAN_LIMIT)


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
    use_exact_hessian(hessian, 0)  # the option is checked before the NLP is built
    nlp = TapeNLP(tape, 0, sign, rows=rows, row_lower=np.clip(row_lower, -IPOPT_INF, IPOPT_INF), row_upper=row_upper)
    nlp.exact_hessian = use_exact_hessian(hessian, nlp.n_colours)
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
