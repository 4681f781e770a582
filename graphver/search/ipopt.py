"""Local solves with IPOPT (cyipopt) on a compiled tape: ``Model.minimize`` / ``Model.maximize``.

The NLP is built from the tape alone: the objective and its gradient come from evaluating the tape
(gradient by torch autograd), the variable bounds from the model's box; the Hessian is exact (torch
autograd, dense) for up to ``EXACT_HESSIAN_LIMIT`` variables and IPOPT's limited-memory approximation
above that (or when asked). No certificate: a local solve finds a good point and its value, which the
branch-and-bound engine can use as an incumbent. IPOPT failures (non-convergence, restoration failure,
NaN from an op's domain) are returned in the result, never raised; a missing cyipopt raises
``SolverUnavailableError`` with the install command.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from graphver.errors import SolverUnavailableError
from graphver.tape.evaluate import evaluate
from graphver.tape.tape import Tape

EXACT_HESSIAN_LIMIT = 60


@dataclass
class LocalSolution:
    """Result of a local solve: ``point`` (variable -> value, inside the box), ``value`` of the expression
    there (re-evaluated in float64), IPOPT's ``status`` text, ``success`` (IPOPT reported convergence),
    ``iterations`` and wall ``seconds``."""

    point: dict[str, float]
    value: float
    status: str
    success: bool
    iterations: int
    seconds: float

    def __str__(self) -> str:
        where = ", ".join(f"{k}={v:.10g}" for k, v in self.point.items())
        return f"local solve: {self.value:.12g} at {where} ({self.status}, {self.iterations} iterations, {self.seconds:.2f} s)"


def import_cyipopt():
    try:
        import cyipopt
    except ImportError as error:  # pragma: no cover - cyipopt is a regular dependency
        raise SolverUnavailableError(
            "IPOPT is not available: install it with `pip install cyipopt-wheels` (bundles Ipopt and MUMPS)"
        ) from error
    return cyipopt


class TapeNLP:
    """cyipopt's problem interface over one output of a float64 tape (minimised; ``sign`` flips for max)."""

    def __init__(self, tape: Tape, sign: float, exact_hessian: bool):
        self.tape = tape
        self.sign = sign
        self.exact_hessian = exact_hessian
        self.iterations = 0

    def value(self, x: np.ndarray) -> torch.Tensor:
        point = torch.as_tensor(x, dtype=torch.float64)[None]
        return self.sign * evaluate(self.tape, point)[0, 0]

    def objective(self, x):
        with torch.no_grad():
            v = float(self.value(x))
        return v if math.isfinite(v) else 1e20  # IPOPT backs off from points outside an op's domain

    def gradient(self, x):
        point = torch.as_tensor(x, dtype=torch.float64).requires_grad_(True)
        v = self.sign * evaluate(self.tape, point[None])[0, 0]
        (grad,) = torch.autograd.grad(v, point)
        return np.nan_to_num(grad.numpy(), nan=0.0, posinf=1e20, neginf=-1e20)

    def constraints(self, x):
        return np.zeros(0)

    def jacobian(self, x):
        return np.zeros(0)

    def hessianstructure(self):
        n = self.tape.n_inputs
        return np.tril_indices(n)

    def hessian(self, x, lagrange, obj_factor):
        point = torch.as_tensor(x, dtype=torch.float64)
        h = torch.autograd.functional.hessian(lambda p: self.sign * evaluate(self.tape, p[None])[0, 0], point)
        rows, cols = self.hessianstructure()
        return np.nan_to_num(obj_factor * h.numpy()[rows, cols], nan=0.0)

    def intermediate(self, alg_mod, iter_count, *args):
        self.iterations = int(iter_count)
        return True


def local_solve(model, expr, sense: str = "min", start=None, max_iter: int = 200, max_wall_time: float = 10.0,
                hessian: str = "auto", tol: float = 1e-9, verbose: bool = False) -> LocalSolution:
    """Run IPOPT on ``expr`` over the model's box from ``start`` (dict or sequence; default: box centre)."""
    cyipopt = import_cyipopt()
    tape = model.compile(expr).to("cpu", torch.float64)
    low = np.asarray(model.lower, dtype=np.float64)
    high = np.asarray(model.upper, dtype=np.float64)
    if start is None:
        x0 = low + (high - low) / 2
    elif isinstance(start, dict):
        x0 = np.asarray([float(start[n]) for n in model.names], dtype=np.float64)
    else:
        x0 = np.asarray(start, dtype=np.float64).reshape(-1)
    x0 = np.clip(x0, low, high)
    exact = hessian == "exact" or (hessian == "auto" and len(low) <= EXACT_HESSIAN_LIMIT)
    nlp = TapeNLP(tape, 1.0 if sense == "min" else -1.0, exact)
    problem = cyipopt.Problem(n=len(low), m=0, problem_obj=nlp, lb=low, ub=high, cl=[], cu=[])
    problem.add_option("max_iter", int(max_iter))
    problem.add_option("max_wall_time", float(max_wall_time))
    problem.add_option("tol", float(tol))
    problem.add_option("print_level", 5 if verbose else 0)
    problem.add_option("sb", "yes")
    if not exact:
        problem.add_option("hessian_approximation", "limited-memory")
    start_time = time.perf_counter()
    try:
        x, info = problem.solve(x0)
        status, success = info["status_msg"].decode() if isinstance(info["status_msg"], bytes) else str(info["status_msg"]), info["status"] in (0, 1)
    except Exception as error:  # IPOPT or a callback failed: keep the start point, report why
        x, status, success = x0, f"IPOPT failed: {error}", False
    seconds = time.perf_counter() - start_time
    x = np.clip(np.asarray(x, dtype=np.float64), low, high)
    with torch.no_grad():
        value = float(evaluate(tape, torch.as_tensor(x)[None])[0, 0])
    return LocalSolution(dict(zip(model.names, x.tolist())), value, status, bool(success), nlp.iterations, seconds)
