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

from graphver.bab.problem import Goal, Problem
from graphver.report.results import BabStats
from graphver.tape.evaluate import evaluate


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

    def consider(self, points: Tensor, source: str) -> None:
        """Evaluate candidate points [P, n]; keep the best as the incumbent, noting its ``source``."""
        if points.numel() == 0:
            return
        with torch.no_grad():
            out = evaluate(self.tape, points.to(device=self.tape.device, dtype=torch.float64))
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
