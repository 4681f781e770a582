"""The search for good points: sampling, projected gradient, polishing, and IPOPT on a schedule.

At the root: the box's centre and corners, random samples, the caller's starts, projected gradient from
the best of them, a polish around the incumbent, then IPOPT from the centre, the incumbent and the best
other points. During branch-and-bound: the children's centres every round, projected gradient from the
worst children every ``pgd_every`` rounds, and IPOPT inside the best domains on a backing-off schedule.
Every point found goes to the ``Incumbent``; nothing here proves anything.
"""

from __future__ import annotations

import math
import time

import torch
from torch import Tensor

from graphver import clock
from graphver.bab.domains import Domains
from graphver.bab.incumbent import Incumbent, in_chunks
from graphver.bab.problem import Goal, Problem
from graphver.options import BabOptions
from graphver.report.results import BabStats
from graphver.search.ipopt import ValueSearch, ipopt_available
from graphver.search.local import corners, projected_gradient, random_points
from graphver.tape.evaluate import evaluate

PENALTY = 100.0  # weight of constraint violations in the value that projected gradient minimises
EXPLORE_STEPS = 40  # constant-step projected gradient from every root sample (the multi-start attack)
EXPLORE_STEP = 1 / 4  # its step, as a fraction of the box width: large steps cross ridges that halving misses
EXPLORE_SHARE = 0.1  # the attack's share of the time left at the root
ROOT_IPOPT_SHARE = 1 / 3  # the root IPOPT starts' share of the time left (the bounding needs the rest)


class IncumbentSearch:
    def __init__(self, problem: Problem, goal: Goal, incumbent: Incumbent, options: BabOptions, stats: BabStats,
                 tape, generator: torch.Generator):
        self.problem = problem
        self.goal = goal
        self.incumbent = incumbent
        self.options = options
        self.stats = stats
        self.tape = tape  # the bounding tape (device and dtype of the run)
        self.generator = generator
        self.ipopt = self.make_ipopt()
        self.ipopt_interval = options.ipopt_every  # rounds between periodic IPOPT searches (backs off)
        self.ipopt_next = options.ipopt_every

    def make_ipopt(self) -> ValueSearch | None:
        """IPOPT for the search, per the ``ipopt`` option (a missing cyipopt only fails when it is "on")."""
        opts = self.options
        if opts.ipopt == "off" or opts.ipopt_starts == 0:
            self.stats.ipopt = "off"
            return None
        if not ipopt_available():
            if opts.ipopt == "on":
                from graphver.search.ipopt import import_cyipopt

                import_cyipopt()  # raises SolverUnavailableError with the install command
            self.stats.ipopt = "IPOPT unavailable (pip install cyipopt-wheels): searched without it"
            self.stats.messages.append(self.stats.ipopt)
            return None
        self.stats.ipopt = "used"
        return ValueSearch(self.incumbent.tape, self.goal.combine, opts.ipopt_max_iter, opts.ipopt_time,
                           n_rows=self.problem.n_rows, constraints=self.problem.constraint_limits)

    def value(self, points: Tensor) -> Tensor:
        """The aggregated value v at points [P, n] (differentiable), plus a penalty on constraint violations
        that steers projected gradient towards the feasible set (feasibility itself is checked by consider)."""
        out = evaluate(self.tape, points)
        value = self.goal.aggregate(out[:, : self.problem.n_rows])
        if self.problem.n_constraints:
            value = value + PENALTY * out[:, self.problem.n_rows :].clamp(min=0).sum(dim=1)
        return value

    def root(self, lower: Tensor, upper: Tensor, deadline: float) -> None:
        start = time.perf_counter()
        opts = self.options
        points = [lower + (upper - lower) / 2, lower, upper]
        if opts.samples:
            points.append(random_points(lower.cpu(), upper.cpu(), opts.samples, self.generator).to(lower.device))
            points.append(corners(lower.cpu(), upper.cpu(), min(opts.samples, 64), self.generator).to(lower.device))
        candidates = torch.cat(points).to(lower.dtype)
        if self.problem.starts is not None:
            given = torch.minimum(torch.maximum(self.problem.starts.to(lower), lower), upper)
            self.incumbent.consider(given, "given start")
        self.incumbent.consider(candidates, "sampling", deadline)
        if clock.passed(deadline):
            self.stats.time_search += time.perf_counter() - start
            return
        explored = self.explore(candidates, lower, upper, deadline)  # each at least as good as its start
        starts = explored if len(explored) else candidates
        found = self.pgd(starts, lower.expand_as(starts), upper.expand_as(starts), opts.pgd_domains, deadline)
        self.polish(lower, upper, deadline)
        if self.ipopt is not None and not clock.passed(deadline):
            # starts: the box centre, the incumbent, then the best other samples and projected-gradient points
            best = self.incumbent.point
            pool = torch.cat([candidates[:1], best.to(candidates)[None] if best is not None else candidates[:1],
                              candidates[1:], found])
            with torch.no_grad():
                values = torch.nan_to_num(self.value(pool), nan=math.inf)
            values[:2] = -math.inf  # always start from the centre and the incumbent
            starts = unique_rows(pool[torch.argsort(values)])[: opts.ipopt_starts]
            share = time.perf_counter() + ROOT_IPOPT_SHARE * clock.remaining(deadline)
            self.local_search(starts, lower.expand_as(starts), upper.expand_as(starts), min(deadline, share))
        self.stats.time_search += time.perf_counter() - start

    def during(self, children: Domains, lower: Tensor, upper: Tensor, deadline: float) -> None:
        """The search of one round: children's centres, and projected gradient and IPOPT when due."""
        start = time.perf_counter()
        opts = self.options
        self.incumbent.consider(children.lower + (children.upper - children.lower) / 2, "domain centre", deadline)
        if opts.pgd_every and self.stats.rounds % opts.pgd_every == 0 and not clock.passed(deadline):
            worst = children.select(torch.argsort(children.lower_bound)[: opts.pgd_domains])
            centres = worst.lower + (worst.upper - worst.lower) / 2
            self.pgd(centres, worst.lower, worst.upper, opts.pgd_domains, deadline)
            self.polish(lower, upper, deadline)
        if self.ipopt_due() and not clock.passed(deadline):
            self.periodic_ipopt(children, deadline)
        self.stats.time_search += time.perf_counter() - start

    def explore(self, starts: Tensor, lower: Tensor, upper: Tensor, deadline: float) -> Tensor:
        """The multi-start attack: constant-step projected gradient from all ``starts`` at once, in a share
        of the time left (``EXPLORE_SHARE``). Halving steps converge to the nearest local optimum; constant
        large steps keep jumping between faces of the box and find the narrow ridges that the value's
        optimum often sits on (on the 300-bus ML4ACOPF prop2, 170 of 256 starts reach the ridge that
        halving steps never find). Returns the best point of each start, for the converging search."""
        if self.options.pgd_steps <= 0 or starts.numel() == 0 or clock.passed(deadline):
            return starts[:0]
        budget = time.perf_counter() + EXPLORE_SHARE * clock.remaining(deadline)
        found = projected_gradient(self.value, starts, lower.expand_as(starts), upper.expand_as(starts),
                                   EXPLORE_STEPS, budget, step_fraction=EXPLORE_STEP, halve_every=0)
        self.incumbent.consider(found, "projected gradient", deadline)
        return found

    def pgd(self, starts: Tensor, lower: Tensor, upper: Tensor, keep: int, deadline: float) -> Tensor:
        """Projected gradient from the ``keep`` best of ``starts`` (chosen by their value, evaluated in
        chunks until the deadline; unevaluated ones come last)."""
        if self.options.pgd_steps <= 0 or starts.numel() == 0 or clock.passed(deadline):
            return starts[:0]
        values = torch.full((starts.shape[0],), math.inf, dtype=starts.dtype, device=starts.device)
        found = torch.nan_to_num(in_chunks(self.value, starts, self.tape, deadline), nan=math.inf)
        values[: found.shape[0]] = found
        order = torch.argsort(values, stable=True)[:keep]
        found = projected_gradient(self.value, starts[order], lower[order], upper[order], self.options.pgd_steps,
                                   deadline)
        self.incumbent.consider(found, "projected gradient", deadline)
        return found

    def polish(self, lower: Tensor, upper: Tensor, deadline: float) -> None:
        """Projected gradient in shrinking boxes around the incumbent: a cheap local refinement that makes
        ``bound``'s incumbent (and so its pruning) much better than the best sampled point."""
        if self.incumbent.point is None or self.options.pgd_steps <= 0:
            return
        for radius in (1e-1, 1e-2, 1e-3, 1e-4):
            if clock.passed(deadline):
                return
            point = self.incumbent.point.to(device=lower.device, dtype=lower.dtype)[None]
            half = (upper - lower) * radius
            box_low, box_high = torch.maximum(point - half, lower), torch.minimum(point + half, upper)
            found = projected_gradient(self.value, point, box_low, box_high, self.options.pgd_steps, deadline)
            self.incumbent.consider(found, "projected gradient")

    def local_search(self, starts: Tensor, lower: Tensor, upper: Tensor, deadline: float) -> None:
        """IPOPT from each start inside its box; every final point is a candidate (converged or not)."""
        start = time.perf_counter()
        as_numpy = lambda t: t.detach().to("cpu", torch.float64).numpy()  # noqa: E731
        runs = self.ipopt.run(as_numpy(starts), as_numpy(lower), as_numpy(upper), deadline)
        for run in runs:
            before = self.incumbent.value
            self.incumbent.consider(torch.as_tensor(run.x, device=lower.device)[None], "ipopt")
            self.stats.ipopt_calls += 1
            self.stats.ipopt_failures += int(not run.success)
            self.stats.ipopt_improved += int(self.incumbent.value < before)
            self.stats.ipopt_status[run.status] = self.stats.ipopt_status.get(run.status, 0) + 1
        self.stats.time_ipopt += time.perf_counter() - start

    def ipopt_due(self) -> bool:
        """Periodic IPOPT searches back off: the interval doubles after each search that did not improve
        the best point and returns to ``ipopt_every`` after one that did (rounds, not seconds, so that runs
        stay deterministic for a fixed seed)."""
        return self.ipopt is not None and self.options.ipopt_every > 0 and self.stats.rounds >= self.ipopt_next

    def periodic_ipopt(self, children: Domains, deadline: float) -> None:
        best = children.select(torch.argsort(children.lower_bound)[: self.options.ipopt_starts])
        centres = best.lower + (best.upper - best.lower) / 2
        before = self.incumbent.value
        self.local_search(centres, best.lower, best.upper, deadline)
        improved = self.incumbent.value < before
        self.ipopt_interval = self.options.ipopt_every if improved else 2 * self.ipopt_interval
        self.ipopt_next = self.stats.rounds + self.ipopt_interval


def unique_rows(points: Tensor) -> Tensor:
    """The rows of ``points`` without exact repeats, first occurrences in their order."""
    keep, seen = [], set()
    for i, row in enumerate(points.tolist()):
        key = tuple(row)
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return points[keep]
