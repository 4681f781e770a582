"""The branch-and-bound loop (GenBaB for general graphs).

The engine minimises the aggregated value v(x) of a ``Problem`` over its box, for a goal: ``VerifyGoal``
asks whether the margins hold everywhere, ``BoundGoal`` asks for min v within a tolerance. Each round:

1. pop open domains, best-first (smallest certified bound), as many as the clock and memory allow;
2. split each and bound the children in one batched call (``Splitter``: input or node splits, strong
   branching; ``DomainBounder``: FBBT, the bound pass, Lagrangian, LP);
3. search the children for good points (``IncumbentSearch``): a violation ends ``verify`` once the
   problem's ``confirm`` certifies it, a better value becomes ``bound``'s incumbent;
4. prune children that are proven, cannot beat the incumbent or are empty; push the rest.

The proven lower bound is the minimum over open, pruned and unsplittable domains and, until the root has
been bounded and filed, the best bound proven for the whole box so far (-inf before any): stopping at any
time (timeout, domain cap, Ctrl-C, in any phase) returns a valid result. The deadline is checked inside
long passes (``graphver.clock``): a round cut short by it, or by Ctrl-C, is dropped and the domains it
popped are put back, so every result rests on finished work only.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from torch import Tensor

from graphver import clock
from graphver.bab.bounder import DomainBounder, check_defined
from graphver.bab.branching import Candidates
from graphver.bab.domains import Domains, DomainStore
from graphver.bab.incumbent import Incumbent
from graphver.bab.obbt import obbt
from graphver.bab.point_search import IncumbentSearch
from graphver.bab.problem import BoundGoal, Goal, Problem
from graphver.bab.progress import Progress
from graphver.bab.rounds import RoundSizer
from graphver.bab.splitting import Splitter
from graphver.options import BabOptions
from graphver.report.results import BabStats

OBBT_ITERATIONS = 40  # Adam steps of the multipliers of each OBBT bound (2n of them, batched)
STOP_REASONS = {
    "proven": "no domain left: every domain proven", "falsified": "counterexample found and confirmed",
    "solved": "gap within tolerance", "exhausted": "no domain left", "interrupted": "interrupted (Ctrl-C): best "
    "proven result so far", None: "stopped",
}


@dataclass
class Outcome:
    lower: float  # proven lower bound of v over the whole box
    best_value: float  # smallest v found at a point
    best_point: Tensor | None  # [n]
    status: str  # "proven", "falsified", "solved", "exhausted", "infeasible", "timeout", "unknown", ...
    stats: BabStats = field(default_factory=BabStats)
    margins: tuple | None = None  # the confirmed counterexample's margins, as text


class Engine:
    """One branch-and-bound run of ``problem`` for ``goal``."""

    def __init__(self, problem: Problem, goal: Goal, options: BabOptions):
        self.problem, self.goal, self.options = problem, goal, options
        self.dtype = torch.float64 if options.dtype == "float64" else torch.float32
        if options.device is not None and str(options.device).startswith("cuda") and not torch.cuda.is_available():
            from graphver.errors import SolverUnavailableError

            raise SolverUnavailableError(f"device {options.device!r} requested but CUDA is not available; use device='cpu'")
        self.tape = problem.tape.to(options.device, self.dtype)
        self.device = self.tape.device
        self.exact_tape = self.tape.to(dtype=torch.float64)
        self.stats = BabStats()
        self.generator = torch.Generator().manual_seed(options.seed)
        self.incumbent = Incumbent(problem, goal, options.feasibility_tol, self.stats, self.device)
        self.search = IncumbentSearch(problem, goal, self.incumbent, options, self.stats, self.tape, self.generator)
        nodes = Candidates.of(self.tape).nodes.to(self.device)  # the branchable nodes
        self.bounder = DomainBounder(problem, self.tape, self.exact_tape, nodes, options, isinstance(goal, BoundGoal),
                                     self.stats)
        self.bounder.lp.target = self.row_targets
        self.splitter = Splitter(self.tape, nodes, goal, self.bounder, options, self.stats, self.generator)
        self.sizer = RoundSizer(options, self.device, problem.n_constraints > 0 and options.lp_bounds)
        self.pruned_min = math.inf
        self.stuck_min = math.inf
        self.stuck = 0  # domains set aside unproven (depth limit, or nothing left to split)
        # proven bound of the part of the box not yet filed (store, pruned_min, stuck_min): the whole box until
        # the root is filed; -inf until some bound of the root is known (+inf once the root is filed)
        self.unfiled_lower = -math.inf
        self.root_floor = -math.inf  # a bound of the whole box proven before OBBT (root_before_obbt)
        self.margins: tuple | None = None
        self.deadline = math.inf
        self.start = 0.0
        self.pool = None  # the Ray workers (graphver.bab.workers) when options.workers > 1
        self.leaves: list | None = None  # set to [] to record every filed domain's box that left the store

    # --- the loop ----------------------------------------------------------------------------------
    def run(self, deadline: float | None = None) -> Outcome:
        """The run; ``deadline`` (``time.perf_counter()`` seconds) defaults to now plus ``options.timeout``
        (callers that spent time before, building the problem, pass their own)."""
        opts = self.options
        start = self.start = time.perf_counter()
        self.deadline = start + opts.timeout if deadline is None else deadline
        self.splitter.deadline = self.deadline
        lower, upper = self.problem.box(self.dtype, self.device)
        self.bounder.lp.root_width = (upper - lower)[0]
        store = DomainStore(opts.max_domains)
        progress = Progress(opts.progress, self.goal.kind, self.problem.label, opts.rel_tol)
        status, snapshot = None, None  # snapshot: the store before a round's pop, restored if it is cut short
        try:
            progress.phase("checking the box")
            check_defined(self.problem, self.exact_tape, lower, upper)  # an op undefined at the centre or a corner
            if self.quick_proof(store, lower, upper):
                return self.finish(self.done(store), store, start)
            self.first_bound(store, lower, upper)
            progress.phase("searching for good points")
            self.search.root(lower, upper, self.deadline)
            if self.problem.n_constraints and opts.obbt_rounds:
                progress.phase(f"bounding the root before OBBT ({opts.root_method})")
                self.root_before_obbt(store, lower, upper)
                if self.goal.kind == "bound" and self.goal.solved(self.proven_lower(store), self.incumbent.value):
                    return self.finish("solved", store, start)  # the relaxation already closes the gap
                progress.phase("tightening the box (OBBT)")
                lower, upper = self.tighten_root(lower, upper)
            progress.phase(f"bounding the root ({opts.root_method})")
            self.file_root(store, lower, upper)
            status = self.done(store)
            if status is None and opts.workers > 1:
                progress.phase(f"starting {opts.workers} workers (Ray)")
                from graphver.bab.workers import WorkerPool

                self.pool = WorkerPool(self.problem, self.goal, opts, self.root_state(), self.stats)
            while status is None:
                status = self.stop_reason(store)
                if status is not None:
                    break
                self.stats.proved_by = "bab"
                snapshot = store.domains
                shares = self.pool.size if self.pool is not None else 1
                parents = store.pop(self.sizer.size(self.deadline) * shares)
                round_start = time.perf_counter()
                children = self.split_round(parents, store)
                if len(children):
                    self.search.during(children, lower, upper, self.deadline)
                self.stats.rounds += 1
                self.file(store, children)
                self.add_candidates()
                snapshot = None
                self.sizer.record(max(1, len(parents) // shares), time.perf_counter() - round_start)
                status = self.done(store)
                elapsed = time.perf_counter() - start
                self.stats.history.append((elapsed, self.proven_lower(store), self.incumbent.value))
                progress.update(elapsed, len(store), self.proven_lower(store), self.incumbent.value, self.stats)
        except KeyboardInterrupt:
            status = "interrupted"
        except clock.DeadlineReached:
            status = "timeout"
            if self.unfiled_lower == -math.inf and len(store) == 0 and lower is not None:
                self.bound_root(lower, upper, "ibp")  # the deadline came before any bound: one IBP pass
        finally:
            if snapshot is not None:  # the popped domains' bounds must still count
                store.domains = snapshot
            self.sizer.watch.peak()  # stops the memory sampler of a round cut short
            progress.close()
            if self.pool is not None:
                self.pool.close()
        return self.finish(status, store, start)

    def row_targets(self) -> Tensor:
        """[rows]: row bounds at which a domain is finished whatever more bounding adds (its LP cut rounds
        stop there): the margins' 0 for ``verify``, the incumbent less the tolerance for ``bound`` (+inf
        before there is an incumbent)."""
        if self.goal.kind == "verify":
            return torch.zeros(self.problem.n_rows, dtype=self.dtype, device=self.device)
        best = self.incumbent.value
        cut = best - self.goal.tolerance(best) if math.isfinite(best) else math.inf
        return torch.full((self.problem.n_rows,), cut, dtype=self.dtype, device=self.device)

    def stop_reason(self, store: DomainStore) -> str | None:
        if clock.passed(self.deadline):
            return "timeout"
        if self.options.max_explored is not None and self.stats.domains_explored >= self.options.max_explored:
            return "domain cap"
        return None

    def split(self, parents: Domains) -> Domains:
        return self.splitter.split(parents)

    def split_round(self, parents: Domains, store: DomainStore) -> Domains:
        """The round's children: here, or on the workers, whose unanswered shares go back into the store."""
        if self.pool is None:
            return self.split(parents)
        children, returned, found = self.pool.split(parents, self.deadline, self.device)
        store.push(returned)
        self.splitter.found.extend(found)
        return children

    def root_state(self) -> dict:
        """What bounding learnt at the root and uses later (a worker's engine starts from it)."""
        return {"root_width": self.bounder.lp.root_width, "multipliers": self.bounder.lagrangian.multipliers,
                "scale": self.bounder.lagrangian.scale}

    def load_root_state(self, state: dict) -> None:
        self.bounder.lp.root_width = state["root_width"]
        self.bounder.lagrangian.multipliers = state["multipliers"]
        self.bounder.lagrangian.scale = state["scale"]

    def bound_root(self, lower: Tensor, upper: Tensor, method: str) -> Domains:
        """Bound the root box. A first bound of the box is always computed, whatever the clock says (a run
        that stops reports it): once the deadline has passed with nothing proven, the root gets one IBP pass
        (cheap on any tape), without a deadline."""
        deadline = self.deadline
        if clock.passed(deadline) and self.unfiled_lower == -math.inf:
            method, deadline = "ibp", math.inf
        k = self.splitter.nodes.numel()
        split_lo = torch.full((1, k), -math.inf, dtype=self.dtype, device=self.device)
        split_hi = torch.full((1, k), math.inf, dtype=self.dtype, device=self.device)
        depth = torch.zeros(1, dtype=torch.long, device=self.device)
        with self.bounder.root_cut_rounds():
            root = self.splitter.bound(lower, upper, split_lo, split_hi, depth, None, None, None, None, None, None, method,
                                       deadline)
        if len(root):  # the root's bound is proven for the whole box (what OBBT removed is in pruned_min)
            bound = float(root.lower_bound.min())
            self.unfiled_lower = max(self.unfiled_lower, -math.inf if math.isnan(bound) else bound)
        return root

    def file_root(self, store: DomainStore, lower: Tensor | None, upper: Tensor | None) -> None:
        if lower is None:  # OBBT: the relaxed feasible set is empty, nothing to bound
            self.unfiled_lower = math.inf
            return
        root = self.bound_root(lower, upper, self.options.root_method)
        self.stats.proved_by = self.options.root_method
        self.file(store, root)
        self.add_candidates()
        self.unfiled_lower = math.inf  # the whole box is in the store, pruned or set aside
        self.record(store)

    def record(self, store: DomainStore) -> None:
        """One history point now: (seconds since the start, proven lower bound, best value)."""
        self.stats.history.append((time.perf_counter() - self.start, self.proven_lower(store), self.incumbent.value))

    def root_before_obbt(self, store: DomainStore, lower: Tensor, upper: Tensor) -> None:
        """The root's full bound (LP and cut rounds) on the box before OBBT: a real bound of the relaxation
        as soon as it exists (OBBT's 2n LPs take minutes on an 89-bus ACOPF), its LP points as incumbent
        candidates (a better cut-off for OBBT), and a floor under every later bound, which holds for the
        whole box (the root is bounded again on the tightened box, and a bound there may come out lower)."""
        try:
            self.bound_root(lower, upper, self.options.root_method)
        except clock.DeadlineReached:
            return
        self.stats.domains_explored -= 1  # bounded again (and counted) after OBBT
        self.add_candidates()
        if math.isfinite(self.unfiled_lower):
            self.root_floor = max(self.root_floor, self.unfiled_lower)
        self.record(store)

    def first_bound(self, store: DomainStore, lower: Tensor, upper: Tensor) -> None:
        """A proven bound of the whole box in the first seconds: one CROWN pass without the Lagrangian and
        LP stages, before the search, OBBT and the root's own bounding (which can take most of a short run);
        it goes into the history, so reports and plots have it at once. Skipped when ``quick_proof``
        already bounded the box, or for root_method "ibp"."""
        if self.unfiled_lower > -math.inf or self.options.root_method == "ibp":
            return
        with self.bounder.passes_only():
            self.bound_root(lower, upper, "crown")
        self.stats.domains_explored -= 1  # the root is bounded again (and counted) after the search
        self.record(store)

    def quick_proof(self, store: DomainStore, lower: Tensor, upper: Tensor) -> bool:
        """``verify`` without constraints: one CROWN pass over the root box before any search; when it
        proves every row, that is the answer (``stats.proved_by`` "crown") and the search is skipped."""
        if self.goal.kind != "verify" or self.problem.n_constraints or self.options.root_method == "ibp":
            return False
        root = self.bound_root(lower, upper, "crown")  # a bound of the whole box: what a stop now reports
        if not bool(root.proven.all()):
            self.stats.domains_explored -= 1  # the root is bounded again (and counted) after the search
            return False
        self.stats.proved_by = "crown"
        self.file(store, root)
        self.unfiled_lower = math.inf
        self.stats.history.append((0.0, self.proven_lower(store), self.incumbent.value))
        return True

    def tighten_root(self, lower: Tensor, upper: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """OBBT on the root box (``bound``: with the incumbent as objective cut-off). Returns the tightened
        box, or (None, None) when nothing of the box can be feasible (and better than the incumbent)."""
        start = time.perf_counter()
        best = self.incumbent.value
        cutoff = best if self.goal.kind == "bound" and math.isfinite(best) else None
        rows = list(range(self.problem.n_rows, self.tape.n_outputs))
        new_lower, new_upper, kept, empty = obbt(self.tape, lower, upper, rows, 0 if cutoff is not None else None,
                                                 cutoff, self.options.bound_options, self.options.obbt_rounds,
                                                 OBBT_ITERATIONS, self.deadline)
        self.stats.obbt_kept = kept
        if cutoff is not None:
            # the removed points have f > cutoff: the cut-off stays a candidate lower bound (see bab/obbt.py)
            self.pruned_min = min(self.pruned_min, cutoff)
        self.stats.time_bound += time.perf_counter() - start
        if empty:
            self.stats.constraint_infeasible += 1
            return None, None
        return new_lower, new_upper

    # --- filing and deciding -----------------------------------------------------------------------
    def add_candidates(self) -> None:
        """Points the bounding stages found (LP solutions) become incumbent candidates."""
        for points, source in self.splitter.found:
            self.incumbent.consider(points, source)
        self.splitter.found.clear()

    def file(self, store: DomainStore, domains: Domains) -> None:
        """Prune proven / empty children, set aside unsplittable ones, push the rest."""
        if len(domains) == 0:
            return
        empty = torch.isinf(domains.lower_bound) & (domains.lower_bound > 0)
        self.stats.pruned_infeasible += int(empty.sum())
        if self.goal.kind == "verify":
            pruned = domains.proven | empty
        else:
            pruned = self.goal.prunable(domains.lower_bound, self.incumbent.value) | empty
        finite_pruned = domains.lower_bound[pruned & ~empty]
        if finite_pruned.numel():
            self.pruned_min = min(self.pruned_min, float(finite_pruned.min()))
        self.stats.pruned_bound += int((pruned & ~empty).sum())
        width = (domains.upper - domains.lower).amax(dim=1)
        stuck = ~pruned & ((domains.depth >= self.options.max_depth) | ((width <= 0) & (domains.node_choice < 0)))
        if bool(stuck.any()):
            self.stuck += int(stuck.sum())
            self.stuck_min = min(self.stuck_min, float(domains.lower_bound[stuck].min()))
            self.incumbent.consider(domains.lower[stuck] + (domains.upper[stuck] - domains.lower[stuck]) / 2,
                                    "domain centre")
        if self.leaves is not None:
            done = pruned | stuck
            self.leaves.append((domains.lower[done].cpu(), domains.upper[done].cpu()))
        store.push(domains.select(torch.nonzero(~pruned & ~stuck).flatten()))
        self.stats.max_depth = max(self.stats.max_depth, int(domains.depth.max()))

    def proven_lower(self, store: DomainStore) -> float:
        """The proven lower bound of v over the box: the minimum over open, pruned and set-aside domains and
        the part not filed yet (-inf before the root is bounded). NaN anywhere gives -inf."""
        parts = (store.min_bound(), self.pruned_min, self.stuck_min, self.unfiled_lower)
        if any(math.isnan(p) for p in parts):
            return -math.inf
        return max(min(parts), self.root_floor)  # both bound v over the whole box

    def done(self, store: DomainStore) -> str | None:
        if self.goal.kind == "verify":
            point = self.incumbent.point
            if point is not None and self.goal.counterexample(self.incumbent.value):
                if self.confirmed(point):
                    return "falsified"
                if self.stats.candidates_unconfirmed == 0:
                    self.stats.messages.append(f"candidate with margin {self.incumbent.value:.3g} not confirmed")
                self.stats.candidates_unconfirmed += 1
                self.incumbent.discard()
            return "proven" if len(store) == 0 else None
        if self.goal.solved(self.proven_lower(store), self.incumbent.value):
            return "solved"
        return "exhausted" if len(store) == 0 else None

    def confirmed(self, point: Tensor) -> bool:
        """The problem's certified re-check of a candidate counterexample (none: its float64 value)."""
        if self.problem.confirm is None:
            return True
        verdict = self.problem.confirm(point)
        if verdict.violated:
            self.margins = tuple(verdict.margins)
        return bool(verdict.violated)

    def finish(self, status, store: DomainStore, start: float) -> Outcome:
        self.stats.time_total = time.perf_counter() - start
        if self.leaves is not None and store.domains is not None:  # the open domains are leaves too
            self.leaves.append((store.domains.lower.cpu(), store.domains.upper.cpu()))
        self.stats.domains_left = len(store)
        self.stats.stop_reason = STOP_REASONS.get(status) or {
            "timeout": f"timeout after {self.options.timeout:g} s",
            "domain cap": f"domain cap of {self.options.max_explored} reached"}[status]
        lower = self.proven_lower(store)
        best = self.incumbent.value
        if (self.problem.n_constraints and len(store) == 0 and status in ("proven", "exhausted", "solved")
                and lower == math.inf and not math.isfinite(best)):
            status = "infeasible"  # every domain was pruned as infeasible: no point of the box is feasible
            self.stats.stop_reason = "every domain pruned as infeasible: the constraints have no solution in the box"
        if self.goal.kind == "bound" and lower == math.inf and math.isfinite(best):
            # every domain pruned as infeasible, yet a point within feasibility_tol was found: the exact feasible
            # set is empty, so any number bounds it; the incumbent's value keeps lower <= upper
            lower = best
            self.stats.messages.append("every domain was pruned as infeasible, but a point within feasibility_tol "
                                       "was found: the lower bound reported is its value")
        if status == "proven" and self.stuck:
            status = "unknown"
            self.stats.stop_reason = "domains at the depth limit could not be proven"
        return Outcome(lower, best, self.incumbent.point, status or "unknown", self.stats, self.margins)
