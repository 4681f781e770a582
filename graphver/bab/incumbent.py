"""The incumbent: the best point found so far (smallest aggregated value v among feasible candidates).

Every candidate is evaluated in float64 on the float64 tape, whatever the bounding precision; a point where
v is undefined or overflows (nan, +-inf), or that violates a constraint by more than the feasibility
tolerance, is no candidate. ``bound`` prunes with the incumbent's value; ``verify`` confirms it as a
counterexample when its value violates the property.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from graphver import clock
from graphver.bab.problem import Goal, Problem
from graphver.report.results import BabStats
from graphver.tape.evaluate import evaluate

EVALUATION_ELEMENTS = 2**23  # node values per chunk of candidate points (64 MiB in float64)


def in_chunks(fn, points: Tensor, tape, deadline: float | None) -> Tensor:
    """``fn`` (without gradients) on chunks of ``points`` [P, n] of ``EVALUATION_ELEMENTS`` node values of
    ``tape`` each, concatenated: the results of the first chunks, up to the one that ends past
    ``deadline`` (the first chunk always runs)."""
    chunk = max(1, EVALUATION_ELEMENTS // max(1, tape.n_nodes))
    parts = []
    with torch.no_grad():
        for begin in range(0, points.shape[0], chunk):
            if parts and clock.passed(deadline):
                break
            parts.append(fn(points[begin : begin + chunk]))
    return torch.cat(parts)


class Incumbent:
    def __init__(self, problem: Problem, goal: Goal, feasibility_tol: float, stats: BabStats, device):
        self.tape = problem.tape.to(device, torch.float64)
        self.n_rows = problem.n_rows
        self.constrained = problem.n_constraints > 0
        self.goal = goal
        self.feasibility_tol = feasibility_tol
        self.stats = stats
        self.value = math.inf
        self.point: Tensor | None = None  # [n] float64, on the CPU

    def consider(self, points: Tensor, source: str, deadline: float | None = None) -> None:
        """Evaluate candidate points [P, n]; keep the best as the incumbent, noting its ``source``. The
        points are evaluated in chunks of ``EVALUATION_ELEMENTS`` node values; past ``deadline`` the rest
        are dropped (on a tape of 10**5 nodes a thousand samples take seconds)."""
        if points.numel() == 0:
            return
        at = lambda part: evaluate(self.tape, part.to(device=self.tape.device, dtype=torch.float64))  # noqa: E731
        out = in_chunks(at, points, self.tape, deadline)
        points = points[: out.shape[0]]
        values = self.goal.aggregate(out[:, : self.n_rows])
        ok = torch.isfinite(values)
        if self.constrained:
            ok = ok & (out[:, self.n_rows :] <= self.feasibility_tol).all(dim=1)
        values = torch.where(ok, values, torch.full_like(values, math.inf))
        self.stats.candidates_evaluated += int(points.shape[0])
        best = int(torch.argmin(values))
        if float(values[best]) < self.value:
            self.value = float(values[best])
            self.point = points[best].detach().to(torch.float64).cpu()
            self.stats.incumbent_from = source

    def discard(self) -> None:
        """Forget the incumbent (a candidate counterexample that confirmation rejected)."""
        self.value = math.inf
        self.point = None
