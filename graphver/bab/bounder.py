"""Bounding a batch of domains: ordered stages that each tighten the rows' certified lower bounds.

1. ``FbbtStage``: forward-backward bound tightening on the constraints shrinks each box (or proves it
   empty); constrained problems only.
2. ``PassStage``: the batched bound pass (``bab.bounding.bound_batch``: IBP, CROWN or alpha, node splits
   applied) gives the rows' bounds and the linear bounds the later stages read; boxes that left an op's
   domain are checked for a feasible point where an op is certainly undefined (``check_defined``).
3. ``LagrangianStage``: the rows' linear bounds plus multipliers times the constraints' linear bounds,
   the multipliers optimised per domain (constrained problems only).
4. ``LpStage``: the LP over all linear bounds and their variants, with cutting rounds (a domain's rounds
   stop once its rows reach the engine's target or its rounds stall); its points come back as candidates
   (``DomainBounds.candidates``) and, for ``bound``, its spatial branching choice.

Each stage reads only its own options and leaves its result in the ``DomainBounds`` it passes on. Every
stage keeps the better of its bound and the bound before it, so the result is the best of all stages.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor

from graphver import clock
from graphver.bab.bounding import BatchBounds, bound_batch, domain_taint
from graphver.bab.branching import lp_branching
from graphver.bab.problem import Problem
from graphver.bounds.fbbt import fbbt
from graphver.bounds.ibp import DomainMarks, NodeSplits, argument_bounds, domain_error_text, forward_bounds
from graphver.bounds.lagrangian import lagrangian_lower, lp_duals
from graphver.bounds.lp import RowBlocks, lp_lower, point_variant, relaxation_variants
from graphver.bounds.plan import plan_for
from graphver.options import BabOptions
from graphver.report.results import BabStats
from graphver.tape.evaluate import evaluate_all
from graphver.tape.reach import nonlinear_support

UNDEFINED_CHECK_BOXES = 128  # boxes per bound call whose points are checked for an undefined, feasible point
CUT_STALL = 0.01  # a cut round that moves no row by this share of its distance to the target has stalled
CUT_PATIENCE = 2  # stalled cut rounds in a row after which a domain's cut rounds end
# the root's: its first rounds' cuts can gain little before the cone's tangents bite (case89: 3 rounds gaining
# 0.2 % of the gap, then 40 %), and its bound floors every other
ROOT_CUT_PATIENCE = 5
MAX_CUT_NUMBERS = 2**13  # coefficients of the cuts a domain stores for its children (64 KB in float64; case30_ieee:
#                          44 cuts of 184 coefficients bound as many domains in 60 s as 178 did)
MIN_CUTS = 16  # fewer cuts than this per domain are not worth storing
ELEMENT_SECONDS = 1e-7  # a cut round's seconds per coefficient of its rows before one is measured (case500: 1.2e-7)


@dataclass
class DomainBounds:
    """A batch of domains as the stages leave it."""

    lower: Tensor  # [B, n] boxes (after FBBT)
    upper: Tensor
    split_lo: Tensor  # [B, K] node split intervals
    split_hi: Tensor
    empty: Tensor  # [B] proven to hold no feasible point
    rows: Tensor | None = None  # [B, n_rows] certified lower bounds of the rows
    passed: BatchBounds | None = None  # the bound pass (node intervals, linear bounds, alphas)
    lp_choice: tuple | None = None  # (variable [B], point [B]) where the LP suggests a split (-1: none)
    lp_settled: Tensor | None = None  # [B] every row got a certified LP bound (None: no LP ran)
    candidates: list = field(default_factory=list)  # (points [P, n], source) found while bounding
    inherited: tuple | None = None  # the parents' cuts (coef [B, C, n], offset [B, C], row [B, C]), or None
    cuts: tuple | None = None  # the domains' own cuts for their children (same layout), or None


class FbbtStage:
    def __init__(self, problem: Problem, tape, candidates: Tensor, rounds: int, stats: BabStats):
        self.tape, self.candidates, self.rounds, self.stats = tape, candidates, rounds, stats
        self.constraint_index = torch.arange(problem.n_rows, tape.n_outputs, device=tape.device)
        self.active = problem.n_constraints > 0 and rounds > 0

    def run(self, d: DomainBounds) -> None:
        if not self.active:
            return
        before = (d.upper - d.lower).sum()
        splits = NodeSplits(self.candidates, d.split_lo, d.split_hi)
        d.lower, d.upper, empty = fbbt(self.tape, d.lower, d.upper, self.constraint_index, splits, self.rounds)
        d.empty = d.empty | empty
        self.stats.fbbt_infeasible += int(empty.sum())
        self.stats.fbbt_shrink += float(before - (d.upper - d.lower).sum())


class PassStage:
    def __init__(self, problem: Problem, tape, exact_tape, candidates: Tensor, options: BabOptions, stats: BabStats):
        self.problem, self.tape, self.exact_tape = problem, tape, exact_tape
        self.candidates, self.options, self.stats = candidates, options.bound_options, stats

    def run(self, d: DomainBounds, method: str, alphas: Tensor | None, deadline: float,
            prior: tuple[Tensor, Tensor] | None = None) -> None:
        splits = NodeSplits(self.candidates, d.split_lo.clone(), d.split_hi.clone())
        result = bound_batch(self.tape, d.lower, d.upper, splits, method, self.options,
                             alphas if method == "alpha" else None, deadline=deadline, prior=prior)
        self.stats.domains_explored += d.lower.shape[0]
        suspect = result.domain_error & ~d.empty
        if bool(suspect.any()):
            bad = torch.nonzero(suspect).flatten()[:UNDEFINED_CHECK_BOXES]
            check_defined(self.problem, self.exact_tape, d.lower[bad], d.upper[bad])
        if result.domain_message and self.stats.domain_errors == 0:
            self.stats.messages.append("a domain left an op's domain (split further): " + result.domain_message)
        self.stats.domain_errors += int(result.domain_error.sum())
        d.passed = result
        d.rows = result.rows_lower[:, : self.problem.n_rows]


class LagrangianStage:
    """max over mu >= 0 of the row's linear bound plus mu times the constraints' linear bounds (each <= 0 on
    the feasible set), from two starts per domain: the root LP's multipliers and zero (the plain bound)."""

    def __init__(self, problem: Problem, iterations: int, stats: BabStats):
        self.n_rows, self.iterations, self.stats = problem.n_rows, iterations, stats
        self.active = problem.n_constraints > 0 and iterations > 0
        self.multipliers: Tensor | None = None  # the root LP's multipliers [rows, constraint rows]
        self.scale: Tensor | None = None

    def run(self, d: DomainBounds, deadline: float) -> None:
        linear = d.passed.linear
        if not self.active or linear is None or linear.offset is None or clock.passed(deadline):
            return
        start = time.perf_counter()
        q = d.passed.rows_lower.shape[1]  # the pass also bounds the negated outputs (rows q..2q-1): not used
        coef, offset = linear.input_coef[:, :q], linear.offset[:, :q]
        if self.multipliers is None:  # the root: optimal multipliers of its linear relaxation, by an LP
            found, solved = lp_duals(coef[0], offset[0], d.lower[0], d.upper[0], self.n_rows, deadline)
            if not bool(solved.any()) and clock.passed(deadline):
                return  # the deadline came first: the root's multipliers are found by a later call, if any
            self.multipliers = found
            self.scale = self.multipliers.abs() + self.multipliers.abs().mean() + 1.0
        # the LP's bound is at least this one (its relaxation holds the pass's lines, and its duals are
        # the optimal multipliers): only the domains whose LP gave no bound need it
        todo = torch.ones(d.lower.shape[0], dtype=torch.bool, device=d.lower.device) if d.lp_settled is None \
            else ~d.lp_settled
        if bool(todo.any()):
            index = torch.nonzero(todo)[:, 0]
            b = len(index)
            starts = torch.cat([self.multipliers.expand(b, -1, -1), torch.zeros_like(self.multipliers).expand(b, -1, -1)])
            both, _ = lagrangian_lower(coef[index].repeat(2, 1, 1), offset[index].repeat(2, 1),
                                       d.lower[index].repeat(2, 1), d.upper[index].repeat(2, 1), self.n_rows,
                                       self.iterations, start=starts, scale=self.scale, deadline=deadline)
            bound = torch.maximum(both[:b], both[b:])
            # a box that left an op's domain has meaningless linear bounds for some rows: no Lagrangian bound
            bound = torch.where(d.passed.domain_error[index, None], torch.full_like(bound, -math.inf), bound)
            self.stats.lagrangian_improved += int((bound > d.rows[index]).any(dim=1).sum())
            rows = d.rows.clone()  # d.rows may be a view of the pass's bounds
            rows[index] = torch.maximum(rows[index], bound)
            d.rows = rows
        self.stats.time_lagrangian += time.perf_counter() - start


@dataclass
class RootPool:
    """The root's cut pool: the linear bounds of the root's last LPs that every domain's LP starts with.

    They were computed on the root box, which holds every domain, so they bound the rows on each of them
    (a child's own bounds are tighter, but it would need the root's tens of cut rounds to get as many). Kept:
    every objective variant of each row (a few tens) and the constraint rows with a positive multiplier at
    some row's last LP (at most about one per variable: the LP's active rows), so a child's LP is at least as
    high as the root's on the child's box. The second root bound (after OBBT) starts from the first's pool and
    replaces it with its own."""

    obj_coef: list  # per row: [V, n]
    obj_offset: list  # per row: [V]
    con_coef: Tensor  # [P, n]
    con_offset: Tensor  # [P]
    con_row: Tensor  # [P]: the constraint row (0 .. K-1, K = outputs - rows) each pool row bounds

    @staticmethod
    def of(last: list, k: int, p: int, before: "RootPool | None") -> "RootPool | None":
        """The pool of the root's last LPs (``last[r]``: row r's objective rows, its constraint rows as the
        ``RowBlocks`` it read, multipliers and bound; the first ``p`` constraint rows are ``before``'s pool);
        None when some row had no LP or none was certified."""
        if any(entry is None for entry in last) or not all(math.isfinite(float(entry[4])) for entry in last):
            return None
        used = torch.zeros_like(last[0][3], dtype=torch.bool)
        for _, _, _, multipliers, _ in last:
            used |= multipliers > 0
        chosen = torch.nonzero(used).flatten()
        con_coef, con_offset = last[0][2].select(chosen, 1)  # only the kept rows are copied
        origin = constraint_origin(chosen, before.con_row if p else None, None, k)
        return RootPool([entry[0] for entry in last], [entry[1] for entry in last], con_coef[0], con_offset[0], origin)


def constraint_origin(positions: Tensor, pool_rows: Tensor | None, cut_rows: Tensor | None, k: int) -> Tensor:
    """The constraint row (0 .. k-1) that each of an LP's constraint rows ``positions`` bounds, in the LP's
    order: the pool's rows (their ``pool_rows``), the parent's cuts (their ``cut_rows``), then one block of
    k rows per variant."""
    p = 0 if pool_rows is None else pool_rows.numel()
    c = 0 if cut_rows is None else cut_rows.numel()
    origin = (positions - p - c) % k
    if p:
        origin = torch.where(positions < p, pool_rows[positions.clamp(max=p - 1)], origin)
    if c:
        from_parent = (positions >= p) & (positions < p + c)
        origin = torch.where(from_parent, cut_rows[(positions - p).clamp(0, c - 1)], origin)
    return origin


class LpStage:
    """LP bounds of every row from the pass's linear bounds and their variants (``graphver.bounds.lp``),
    re-solved with cuts at the LP point; for ``bound``, the split the LP suggests (``lp_branching``)."""

    def __init__(self, problem: Problem, tape, options: BabOptions, branching: bool, stats: BabStats):
        self.tape, self.n_rows, self.stats = tape, problem.n_rows, stats
        self.cut_rounds = options.lp_cut_rounds
        self.root_cut_rounds = options.root_cut_rounds
        self.active = problem.n_constraints > 0 and options.lp_bounds
        self.branching = branching
        self.plan = None
        self.support: Tensor | None = None
        self.root_width: Tensor | None = None
        # the row values at which a domain needs no more cut rounds ([rows]; None: none known): set by the
        # engine (the incumbent less the tolerance for ``bound``, the margins' 0 for ``verify``)
        self.target: Callable[[], Tensor] | None = None
        self.at_root = False  # the root's rounds: root_cut_rounds of them (its bound floors all others)
        # the root's cut pool (``RootPool``): its rows tight at the root's last LPs, valid on every domain
        self.pool: RootPool | None = None
        self.weights: Tensor | None = None  # of the rows' fingerprints (``fingerprint``)
        # cuts a domain hands to its children: at most n + 1 (an LP's active rows: its columns are x and t),
        # within MAX_CUT_NUMBERS coefficients per domain (none when fewer than MIN_CUTS of them fit)
        cap = min(tape.n_inputs + 1, MAX_CUT_NUMBERS // max(1, tape.n_inputs))
        self.keep_cuts = cap if self.active and cap >= min(tape.n_inputs + 1, MIN_CUTS) else 0
        self.element_seconds = ELEMENT_SECONDS  # a round's seconds per coefficient, measured by the last round

    def output_plan(self):
        if self.plan is None:
            targets = self.tape.outputs
            self.plan = plan_for(self.tape, targets, max(self.tape.instruction_of(int(t)) for t in targets))
        return self.plan

    def run(self, d: DomainBounds, deadline: float) -> None:
        linear = d.passed.linear
        if not self.active or linear is None or linear.offset is None or clock.passed(deadline):
            return
        start = time.perf_counter()
        if self.root_width is None:
            self.root_width = (d.upper - d.lower)[0]
        try:
            self.bound_by_lp(d, linear, deadline)
        except clock.DeadlineReached:
            pass  # the variants' passes ran past the deadline before any LP: the rows keep the pass's bounds
        self.stats.time_lp += time.perf_counter() - start

    def bound_by_lp(self, d: DomainBounds, linear, deadline: float) -> None:
        """The cut rounds on the batch; past ``deadline`` no new LP or pass starts, and the rounds so far count."""
        result, lower, upper = d.passed, d.lower, d.upper
        batch, n = lower.shape
        q = self.tape.n_outputs
        variants = [(linear.input_coef[:, :q], linear.offset[:, :q])]
        fingerprints = [self.fingerprint(variants[0])]  # of every variant's constraint rows, before repeats are dropped
        for variant in relaxation_variants(self.tape, self.output_plan(), result.lo, result.hi, deadline=deadline):
            variants.append(self.without_repeats(fingerprints, variant))
        best = torch.full((batch, self.n_rows), -math.inf, dtype=lower.dtype, device=lower.device)
        points = torch.full((batch, n), math.nan, dtype=lower.dtype, device=lower.device)
        mu = None  # [B, constraint rows]: the multipliers of the last LP of each domain, summed over variants
        target = self.target() if self.target is not None else None
        # one growing LP per (row, domain): each cut round adds its lines and re-solves from the basis
        models = [[None] * batch for _ in range(self.n_rows)]
        active = torch.arange(batch, device=lower.device)  # the domains whose cut rounds go on
        quiet = torch.zeros(batch, dtype=torch.long, device=lower.device)  # their stalled cut rounds in a row
        cut_rounds = self.root_cut_rounds if self.at_root else self.cut_rounds
        pool = self.pool
        p = 0 if pool is None else pool.con_coef.shape[0]
        inherited = d.inherited
        c = 0 if inherited is None else inherited[0].shape[1]
        skip = p + c  # the pool's rows, then the parent's cuts, come before the variants' rows
        final_mu: dict[int, Tensor] = {}  # each domain's multipliers at its last LP (summed over the rows)
        last: list = [None] * self.n_rows  # at the root: each row's last LP (its rows and multipliers), for the pool
        for cut_round in range(1 + cut_rounds):
            # a round starts only while its expected seconds fit before the deadline: its dense work (the
            # rows' concatenation, the LP's matrix, the certificate) takes seconds on a 500-bus case
            elements = len(active) * (sum(coef.shape[1] for coef, _ in variants) + skip) * n
            began = time.perf_counter()
            if began + self.element_seconds * elements > deadline:
                break
            # the pool's rows come first: a domain's growing LP keeps the rows it was given and adds the new ones
            constraints = RowBlocks(self.constraint_blocks(pool, inherited, variants), active)
            bounds = []
            for r in range(self.n_rows):
                obj_coef = torch.stack([coef[active, r] for coef, _ in variants], 1)
                obj_offset = torch.stack([offset[active, r] for _, offset in variants], 1)
                if pool is not None:
                    obj_coef = torch.cat([pool.obj_coef[r].expand(len(active), -1, -1), obj_coef], 1)
                    obj_offset = torch.cat([pool.obj_offset[r].expand(len(active), -1), obj_offset], 1)
                row_models = [models[r][b] for b in active.tolist()]
                bound, found, multipliers = lp_lower(obj_coef, obj_offset, constraints, None, lower[active],
                                                     upper[active], deadline, row_models)
                for b, model in zip(active.tolist(), row_models):
                    models[r][b] = model
                bounds.append(bound)
                if self.at_root:
                    last[r] = (obj_coef[0], obj_offset[0], constraints, multipliers[0], bound[0])
                round_mu = multipliers if r == 0 else round_mu + multipliers
                if r == 0:
                    points[active] = found
                    summed = multipliers[:, skip:].reshape(len(active), len(variants), -1).sum(1)
                    if p:  # the pool's and the cuts' multipliers count for the constraint rows they were cut from
                        summed = summed.index_add(1, pool.con_row, multipliers[:, :p])
                    if c:
                        summed = summed.scatter_add(1, inherited[2][active], multipliers[:, p:skip])
                    mu = torch.zeros(batch, summed.shape[1], dtype=lower.dtype, device=lower.device) if mu is None else mu
                    mu[active] = summed
            for i, b in enumerate(active.tolist()):
                final_mu[b] = round_mu[i]
            self.stats.lp_solved += len(active) * self.n_rows
            self.element_seconds = (time.perf_counter() - began) / max(1, elements)
            before = best[active]
            now = torch.maximum(before, torch.stack(bounds, 1))
            best[active] = now
            if cut_round == cut_rounds or clock.passed(deadline):
                break
            stalled = None if cut_round == 0 else quiet[active]
            going = self.going_on(before, now, target, stalled, ROOT_CUT_PATIENCE if self.at_root else CUT_PATIENCE)
            if stalled is not None:
                quiet[active] = stalled
            active = active[going]
            if active.numel() == 0:
                break
            # cuts: the relaxation lines tightest at the LP point (box centre where there is none)
            at = torch.where(torch.isnan(points[active]), lower[active] + (upper[active] - lower[active]) / 2,
                             points[active])
            at = torch.minimum(torch.maximum(at, lower[active]), upper[active])
            lo, hi = result.lo[active], result.hi[active]
            with torch.no_grad():
                values = evaluate_all(self.tape, at)
            values = torch.minimum(torch.maximum(values, lo), hi)
            try:
                coef, offset = point_variant(self.tape, self.output_plan(), lo, hi, values, deadline)
            except clock.DeadlineReached:
                break  # the rows keep the bounds of the rounds so far
            # the domains that stopped never read this variant's rows: zeros (0 <= 0) stand in for them
            full_coef = torch.zeros(batch, *coef.shape[1:], dtype=coef.dtype, device=coef.device)
            full_offset = torch.zeros(batch, *offset.shape[1:], dtype=offset.dtype, device=offset.device)
            full_coef[active], full_offset[active] = coef, offset
            variants.append(self.without_repeats(fingerprints, (full_coef, full_offset)))
        if mu is None:
            return  # no round fitted before the deadline
        if self.keep_cuts:
            d.cuts = self.domain_cuts(RowBlocks(self.constraint_blocks(pool, inherited, variants)), final_mu,
                                      pool, inherited, batch, n, lower)
        if self.at_root and batch == 1 and not bool(result.domain_error[0]):
            self.pool = RootPool.of(last, self.tape.n_outputs - self.n_rows, p, self.pool) or self.pool
        best = torch.where(result.domain_error[:, None], torch.full_like(best, -math.inf), best)
        d.lp_settled = (best > -math.inf).all(dim=1)
        self.stats.lp_improved += int((best > d.rows).any(dim=1).sum())
        d.rows = torch.maximum(d.rows, best)
        has_point = ~torch.isnan(points).any(dim=1)
        if bool(has_point.any()):
            inside = torch.minimum(torch.maximum(points[has_point], lower[has_point]), upper[has_point])
            d.candidates.append((inside, "lp"))
        if self.branching:
            if self.support is None:
                self.support = nonlinear_support(self.tape).to(self.tape.device)
            d.lp_choice = lp_branching(self.tape, self.support, points, mu, lower, upper, self.root_width, self.n_rows)

    def constraint_blocks(self, pool: "RootPool | None", inherited: tuple | None, variants: list) -> list:
        """The constraint rows of the LPs in their order: the root's pool, the parent's cuts, each variant's."""
        blocks = [(pool.con_coef[None], pool.con_offset[None])] if pool is not None else []
        if inherited is not None:
            blocks.append((inherited[0], inherited[1]))
        return blocks + [(coef[:, self.n_rows :], offset[:, self.n_rows :]) for coef, offset in variants]

    def domain_cuts(self, rows: RowBlocks, final_mu: dict, pool, inherited, batch: int, n: int, like: Tensor) -> tuple:
        """Each domain's cuts for its children: the constraint rows of its last LP with the largest positive
        multipliers, at most ``keep_cuts`` (padded with unusable rows: zero coefficients, offset NaN)."""
        cap = self.keep_cuts
        coef = torch.zeros(batch, cap, n, dtype=like.dtype, device=like.device)
        offset = torch.full((batch, cap), math.nan, dtype=like.dtype, device=like.device)
        origin = torch.zeros(batch, cap, dtype=torch.long, device=like.device)
        p = 0 if pool is None else pool.con_coef.shape[0]
        c = 0 if inherited is None else inherited[0].shape[1]
        k = self.tape.n_outputs - self.n_rows
        if inherited is not None:  # a domain whose LP failed passes its parent's cuts on
            coef[:, :c], offset[:, :c], origin[:, :c] = inherited[0][:, :cap], inherited[1][:, :cap], inherited[2][:, :cap]
        for b, mu in final_mu.items():
            positive = torch.nonzero(mu > 0).flatten()
            if positive.numel() == 0:
                continue
            coef[b], offset[b], origin[b] = 0.0, math.nan, 0
            chosen = positive[torch.argsort(mu[positive], descending=True)[:cap]].sort().values
            all_coef, all_offset = rows.domain(b)
            count = chosen.numel()
            coef[b, :count], offset[b, :count] = all_coef[chosen], all_offset[chosen]
            origin[b, :count] = constraint_origin(chosen, pool.con_row if p else None,
                                                  inherited[2][b] if c else None, k)
        return coef, offset, origin

    def fingerprint(self, variant: tuple[Tensor, Tensor]) -> Tensor:
        """[B, K]: one number per constraint row, a fixed random combination of its coefficients and offset;
        equal rows get equal numbers (the same arithmetic on the same values)."""
        coef, offset = variant
        n = coef.shape[2]
        if self.weights is None or self.weights.shape[0] != n + 1 or self.weights.dtype != coef.dtype:
            generator = torch.Generator().manual_seed(7)
            self.weights = (torch.rand(n + 1, generator=generator, dtype=torch.float64) + 0.5).to(coef)
        k = self.n_rows
        return coef[:, k:] @ self.weights[:n] + offset[:, k:] * self.weights[n]

    def without_repeats(self, fingerprints: list, variant: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """``variant`` with its constraint rows that repeat the same row of an earlier variant (same
        fingerprint) marked unusable (offset NaN: left out of the LP, no multiplier); its fingerprint joins
        ``fingerprints``. Rows without a nonlinear relaxation (an ACOPF's balances in the lifted variables, 204
        of case30's 551) are the same in every variant, and a cut round's lines often equal an earlier
        variant's (the relaxation has a single line there): on case30_ieee two in three rows of the later
        variants were repeats. Dropping a row that only shares a fingerprint costs tightness, never soundness."""
        coef, offset = variant
        k = self.n_rows
        mark = self.fingerprint(variant)
        same = torch.zeros_like(mark, dtype=torch.bool)
        for earlier in fingerprints:
            same |= mark == earlier
        fingerprints.append(mark)
        if not bool(same.any()):
            return variant
        offset = offset.clone()
        offset[:, k:] = torch.where(same, torch.full_like(offset[:, k:], math.nan), offset[:, k:])
        return coef, offset

    @staticmethod
    def going_on(before: Tensor, now: Tensor, target: Tensor | None, quiet: Tensor | None,
                 patience: int = CUT_PATIENCE) -> Tensor:
        """[A]: the domains whose next cut round may pay, from their row bounds before and after this round
        ([A, rows]). A domain stops when every row reached its target (pruned whatever the cuts add), or when
        ``patience`` cut rounds in a row moved no unfinished row by ``CUT_STALL`` of its distance to the
        target (of 1 + |bound| where there is no finite target): a round's cut at the LP point can gain
        nothing and the next one much (a disc's tangents). ``quiet`` [A]: the stalled rounds in a row so far,
        updated in place (None after the first LP, which has no cut). A domain where some row has no bound
        (its LP failed) goes on."""
        unfinished = now < math.inf if target is None else now < target
        if quiet is None:
            return unfinished.any(dim=1)
        scale = 1.0 + now.abs()
        if target is not None:
            scale = torch.minimum(scale, torch.where(torch.isfinite(target), target - now, scale))
        gained = (((now - before) > CUT_STALL * scale) | ~torch.isfinite(now)) & unfinished
        quiet.copy_(torch.where(gained.any(dim=1), torch.zeros_like(quiet), quiet + 1))
        return unfinished.any(dim=1) & (quiet < patience)


class DomainBounder:
    """The stages in order; ``bound`` returns the batch's ``DomainBounds`` with rows of empty domains +inf."""

    def __init__(self, problem: Problem, tape, exact_tape, candidates: Tensor, options: BabOptions, branch_by_lp: bool,
                 stats: BabStats):
        self.problem, self.stats = problem, stats
        self.fbbt = FbbtStage(problem, tape, candidates, options.fbbt_rounds, stats)
        self.passes = PassStage(problem, tape, exact_tape, candidates, options, stats)
        self.lagrangian = LagrangianStage(problem, options.lagrangian_iterations, stats)
        self.lp = LpStage(problem, tape, options, branch_by_lp, stats)

    @contextmanager
    def passes_only(self):
        """Within: no Lagrangian and no LP stage (a first bound in the first seconds of a run)."""
        saved = self.lagrangian.active, self.lp.active
        self.lagrangian.active = self.lp.active = False
        try:
            yield
        finally:
            self.lagrangian.active, self.lp.active = saved

    @contextmanager
    def root_cut_rounds(self):
        """Within: the LP stage runs up to ``root_cut_rounds`` cut rounds (the root's bounds)."""
        saved = self.lp.at_root
        self.lp.at_root = True
        try:
            yield
        finally:
            self.lp.at_root = saved

    def bound(self, lower: Tensor, upper: Tensor, split_lo: Tensor, split_hi: Tensor, alphas: Tensor | None,
              method: str, deadline: float, prior: tuple[Tensor, Tensor] | None = None,
              cuts: tuple | None = None) -> DomainBounds:
        start = time.perf_counter()
        empty = torch.zeros(lower.shape[0], dtype=torch.bool, device=lower.device)
        d = DomainBounds(lower, upper, split_lo, split_hi, empty, inherited=cuts)
        self.fbbt.run(d)
        self.passes.run(d, method, alphas, deadline, prior)
        self.stats.time_bound += time.perf_counter() - start
        if self.lagrangian.multipliers is None:
            # the root: the Lagrangian bound first, a cheap first bound if the LP does not finish in time
            self.lagrangian.run(d, deadline)
            self.lp.run(d, deadline)
        else:
            self.lp.run(d, deadline)
            self.lagrangian.run(d, deadline)  # where the LP gave no bound (failed, or past the deadline)
        # a constraint row certified > 0 on the whole domain: no feasible point in it
        infeasible = d.empty | (d.passed.rows_lower[:, self.problem.n_rows :] > 0).any(dim=1)
        if self.problem.n_constraints:
            self.stats.constraint_infeasible += int(infeasible.sum())
        d.empty = infeasible
        d.rows = torch.where(infeasible[:, None], torch.full_like(d.rows, math.inf), d.rows)
        return d


def check_defined(problem: Problem, tape, lower: Tensor, upper: Tensor) -> None:
    """Raise ``DomainError`` when an op of the rows is undefined at a point of one of the boxes (its centre
    or a corner) that satisfies every constraint: no split and no constraint can exclude that point, so
    branch-and-bound would split the region forever. Both facts are certified on the point box in float64
    (IBP, ``tape`` in float64): the op's argument interval there lies outside its domain at every corner, as
    the op checks its domain (``domain_taint``), and every constraint row is defined there with an upper
    bound <= 0 (no tolerance). A region that the constraints exclude (``log(x)`` with ``x >= 0.5``) never
    raises: its points violate a constraint; nor does a box whose interval leaves a domain only through
    IBP's overestimate (its points are all defined). Those boxes are split further."""
    points = torch.cat([lower + (upper - lower) / 2, lower, upper]).to(device=tape.device, dtype=torch.float64)
    marks = DomainMarks(points.shape[0], points.device)
    with torch.no_grad():
        lo, hi = forward_bounds(tape, points, points, None, None, marks)
    if not bool(marks.bad.any()):
        return
    tainted, witnessed = domain_taint(tape, lo, hi)
    found = witnessed.any(dim=1)
    if problem.n_constraints:
        rows = tape.outputs[problem.n_rows :]
        found &= (~tainted[:, rows] & (hi[:, rows] <= 0)).all(dim=1)
    if not bool(found.any()):
        return
    from graphver.errors import DomainError
    from graphver.report.results import format_point

    p = int(torch.nonzero(found)[0])
    node = int(torch.nonzero(witnessed[p])[0])
    instr = tape.instructions[tape.instruction_of(node)]
    bounds = argument_bounds(instr, lo[p : p + 1], hi[p : p + 1])
    bad = torch.zeros(1, instr.size, dtype=torch.bool, device=points.device)
    bad[0, node - instr.start] = True
    where = format_point(dict(zip(problem.names, points[p].tolist())))
    feasible = " that satisfies every constraint" if problem.n_constraints else ""
    raise DomainError(f"undefined at {where}, a point of the box{feasible}: "
                      f"{domain_error_text(tape, instr, bounds, bad)} (Or add a constraint that excludes such "
                      f"points.)")
