"""Splitting domains: each domain's next split, its children, and strong branching between input and node.

When a batch of domains is bounded (``Splitter.bound``), each one's best input split and best node split
are decided from its own bound pass (``decide``) and stored with it. When it is popped, ``split`` makes the
children: on an input at the split point, or on a branchable node (the node's split interval is cut);
with ``auto`` branching both are bounded for a trial subset and the split whose worse child improves more
is kept (``strong_branching``). A child is a subset of its parent, so it inherits the parent's bound when
that is better.
"""

from __future__ import annotations

import math
import time

import torch
from torch import Tensor

from graphver.bab.bounder import DomainBounder, DomainBounds
from graphver.bab.branching import NODE_HEURISTICS, BranchContext, InputWidthScore
from graphver.bab.domains import Domains
from graphver.bab.problem import Goal
from graphver.bounds.ibp import refined_nodes
from graphver.options import BabOptions
from graphver.report.results import BabStats

MAX_INHERITED_NODES = 4096  # refined nodes a domain stores for its children (16 bytes each in float64; 64 KB at most)
NODE_MIN_GAIN = 1e-4  # relative margin by which a node split must beat the input split (strong branching)


class Splitter:
    def __init__(self, tape, nodes: Tensor, goal: Goal, bounder: DomainBounder, options: BabOptions, stats: BabStats,
                 generator: torch.Generator):
        self.tape, self.goal, self.bounder, self.options, self.stats = tape, goal, bounder, options, stats
        self.nodes = nodes  # the branchable nodes (``Candidates.nodes``), on the tape's device
        self.input_heuristic = InputWidthScore()
        self.node_heuristic = NODE_HEURISTICS[options.node_heuristic](options.branch_points)
        self.generator = generator
        self.node_win_rate = 1.0  # recent share of trial node splits that beat the input split
        self.deadline = float("inf")
        self.found: list = []  # candidate points the bounding stages produced, for the incumbent
        self.refined = refined_nodes(tape)[0]
        # children inherit their parents' intervals of the refined nodes while they are few enough to store
        self.inherit = self.refined.numel() <= MAX_INHERITED_NODES

    def bound(self, lower: Tensor, upper: Tensor, split_lo: Tensor, split_hi: Tensor, depth: Tensor,
              alphas: Tensor | None, prior_lo: Tensor | None, prior_hi: Tensor | None, cut_coef: Tensor | None,
              cut_offset: Tensor | None, cut_row: Tensor | None, method: str, deadline: float | None = None) -> Domains:
        """Bound a batch of domains (warm-starting alpha from ``alphas``, intersecting the refined nodes with
        the ``prior_*`` intervals when given) and decide each one's next split; ``deadline`` (default: the
        run's) is checked inside the passes (``graphver.clock``)."""
        prior = (prior_lo, prior_hi) if prior_lo is not None and prior_lo.shape[1] else None
        cuts = (cut_coef, cut_offset, cut_row) if cut_coef is not None and cut_coef.shape[1] else None
        d = self.bounder.bound(lower, upper, split_lo, split_hi, alphas, method,
                               self.deadline if deadline is None else deadline, prior, cuts)
        self.found.extend(d.candidates)
        rows = d.rows
        proven = self.goal.proven(rows) & ~d.empty
        lower_bound = self.goal.aggregate(rows)
        lower_bound = torch.where(torch.isnan(lower_bound), torch.full_like(lower_bound, -torch.inf), lower_bound)
        lower_bound = torch.where(proven & (lower_bound < 0), torch.zeros_like(lower_bound), lower_bound)
        proven = proven | d.empty
        choice = self.decide(d, self.goal.binding_row(rows))
        if d.lp_choice is not None:  # spatial branching on the LP's worst relaxation error, where it has one
            has = d.lp_choice[0] >= 0
            choice = (torch.where(has, d.lp_choice[0], choice[0]), torch.where(has, d.lp_choice[1], choice[1]),
                      torch.where(has, torch.full_like(choice[2], -1), choice[2]), choice[3])
        kept = d.passed.alphas
        if kept is None or kept.shape[0] != d.lower.shape[0]:
            kept = torch.zeros(d.lower.shape[0], 0, dtype=d.lower.dtype, device=d.lower.device)
        refined = self.refined if self.inherit else self.refined[:0]
        if d.cuts is not None:
            cut_coef, cut_offset, cut_row = d.cuts
        elif cuts is None:  # no LP ran (and no parent's cuts): unusable rows, as many as every domain has
            batch, n = d.lower.shape
            keep = self.bounder.lp.keep_cuts
            cut_coef = torch.zeros(batch, keep, n, dtype=d.lower.dtype, device=d.lower.device)
            cut_offset = torch.full((batch, keep), math.nan, dtype=d.lower.dtype, device=d.lower.device)
            cut_row = torch.zeros(batch, keep, dtype=torch.long, device=d.lower.device)
        # else: the parent's cuts (valid on the child) pass on
        return Domains(d.lower, d.upper, split_lo, split_hi, lower_bound, proven, depth, self.goal.binding_row(rows),
                       *choice, kept.to(d.lower.device), d.passed.lo[:, refined], d.passed.hi[:, refined],
                       cut_coef, cut_offset, cut_row)

    def decide(self, d: DomainBounds, row: Tensor):
        """Each domain's best input split and best node split (scores from its own bound pass)."""
        start = time.perf_counter()
        result, lower, upper = d.passed, d.lower, d.upper
        bad = result.domain_error
        width = upper - lower
        linear = result.linear
        if linear is not None and linear.input_coef is not None:
            ctx = BranchContext(self.tape, linear, result.lo, result.hi, lower, upper, row)
            input_scores, input_points = self.input_heuristic.scores(ctx)
            input_scores = torch.where(bad[:, None], width, input_scores)
        else:
            ctx = None
            input_scores, input_points = width.clone(), lower + width / 2
        input_scores = torch.where(width > 0, torch.nan_to_num(input_scores, nan=0.0), torch.full_like(width, -1.0))
        input_choice = input_scores.argmax(dim=1)
        take = torch.arange(lower.shape[0], device=lower.device)
        input_point = input_points[take, input_choice]
        node_choice = torch.full_like(input_choice, -1)
        node_point = torch.zeros_like(input_point)
        if ctx is not None and self.options.branching != "input" and self.nodes.numel():
            scores, points = self.node_heuristic.scores(ctx)
            node_lo, node_hi = result.lo[:, self.nodes], result.hi[:, self.nodes]
            # inputs are split by the input rule (midpoint); node candidates are intermediate nodes only
            not_input = (self.nodes >= self.tape.n_inputs)[None, :]
            inside = (points > node_lo) & (points < node_hi) & (scores > 0) & not_input
            scores = torch.where(inside & ~bad[:, None], scores, torch.full_like(scores, -1.0))
            best = scores.argmax(dim=1)
            usable = scores[take, best] > 0
            node_choice = torch.where(usable, best, node_choice)
            node_point = points[take, best]
        self.stats.time_branch += time.perf_counter() - start
        return input_choice, input_point, node_choice, node_point

    def children(self, parents: Domains, use_node: Tensor) -> tuple[Tensor, ...]:
        """Boxes and split intervals of the two children of each parent ([2P, ...], children interleaved)."""
        p = len(parents)
        lower = parents.lower.repeat_interleave(2, 0).clone()
        upper = parents.upper.repeat_interleave(2, 0).clone()
        split_lo = parents.split_lo.repeat_interleave(2, 0).clone()
        split_hi = parents.split_hi.repeat_interleave(2, 0).clone()
        left = torch.arange(p, device=lower.device) * 2
        right = left + 1
        node_index = parents.node_choice.clamp(min=0)
        node_global = self.nodes[node_index] if self.nodes.numel() else node_index
        node_is_input = use_node & (node_global < self.tape.n_inputs)
        # input splits (also node choices that are inputs)
        var = torch.where(node_is_input, node_global, parents.input_choice)
        point = torch.where(use_node, parents.node_point, parents.input_point)
        by_input = ~use_node | node_is_input
        rows_in = torch.nonzero(by_input).flatten()
        upper[left[rows_in], var[rows_in]] = point[rows_in]
        lower[right[rows_in], var[rows_in]] = point[rows_in]
        rows_node = torch.nonzero(~by_input).flatten()
        k = node_index[rows_node]
        split_hi[left[rows_node], k] = torch.minimum(split_hi[left[rows_node], k], point[rows_node])
        split_lo[right[rows_node], k] = torch.maximum(split_lo[right[rows_node], k], point[rows_node])
        depth = parents.depth.repeat_interleave(2, 0) + 1
        return (lower, upper, split_lo, split_hi, depth, parents.alphas.repeat_interleave(2, 0),
                parents.prior_lo.repeat_interleave(2, 0), parents.prior_hi.repeat_interleave(2, 0),
                parents.cut_coef.repeat_interleave(2, 0), parents.cut_offset.repeat_interleave(2, 0),
                parents.cut_row.repeat_interleave(2, 0))

    def strong_branching(self, parents: Domains, has_node: Tensor, method: str) -> tuple[Tensor, Domains]:
        """Bound the input split of every parent and the node split of a trial subset, keep the better.

        The trial subset is adaptive: every parent with a node candidate while node splits keep winning,
        down to a tenth of them (chosen by the seeded generator) when they rarely do, so that a graph where
        node splits do not help costs little more than input branching alone."""
        p = len(parents)
        rate = max(0.1, min(1.0, 4.0 * self.node_win_rate))
        draw = torch.rand(p, generator=self.generator).to(has_node.device) < rate
        trial = torch.nonzero(has_node & draw).flatten()
        by_input = self.children(parents, torch.zeros_like(has_node))
        if trial.numel() == 0:
            return torch.zeros_like(has_node), self.bound(*by_input, method)
        tried = parents.select(trial)
        by_node = self.children(tried, torch.ones(trial.numel(), dtype=torch.bool, device=has_node.device))
        bounded = self.bound(*[torch.cat([a, b]) for a, b in zip(by_input, by_node)], method)
        t = trial.numel()
        worse_input = bounded.lower_bound[: 2 * p].view(p, 2).amin(dim=1)
        worse_node = bounded.lower_bound[2 * p :].view(t, 2).amin(dim=1)
        # Compare children as they will be kept (a child inherits its parent's bound when that is better).
        # The node split must beat the input split and improve on the parent by a clear margin: a child whose
        # node constraint is unsatisfiable but not yet detected, or a split of a variable that is already
        # narrow, gains a little forever and starves the splits that matter.
        parent_bound = tried.lower_bound
        gain = torch.maximum(worse_node, parent_bound) - torch.maximum(worse_input[trial], parent_bound)
        wins = gain.nan_to_num(nan=-1.0) > NODE_MIN_GAIN * (1.0 + parent_bound.abs())
        self.node_win_rate = 0.8 * self.node_win_rate + 0.2 * float(wins.float().mean())
        use_node = torch.zeros_like(has_node)
        use_node[trial[wins]] = True
        pairs = lambda n: torch.stack([2 * torch.arange(n, device=has_node.device),  # noqa: E731
                                       2 * torch.arange(n, device=has_node.device) + 1], 1)
        rows = pairs(p)
        rows[trial[wins]] = 2 * p + pairs(t)[wins]
        return use_node, bounded.select(rows.flatten())

    def split(self, parents: Domains) -> Domains:
        """Children of every parent; with ``auto`` branching, strong branching between the best input split and
        the best node split decides per parent (see ``strong_branching``)."""
        method = self.options.method
        has_node = parents.node_choice >= 0
        if self.options.branching == "input" or not bool(has_node.any()):
            use_node = torch.zeros_like(has_node)
            children = self.bound(*self.children(parents, use_node), method)
        elif self.options.branching == "node":
            use_node = has_node
            children = self.bound(*self.children(parents, use_node), method)
        else:
            use_node, children = self.strong_branching(parents, has_node, method)
        # a child is a subset of its parent: the parent's bound holds for it too
        children.lower_bound = torch.maximum(children.lower_bound, parents.lower_bound.repeat_interleave(2, 0))
        node_global = self.nodes[parents.node_choice.clamp(min=0)] if self.nodes.numel() else None
        on_nodes = use_node if node_global is None else use_node & (node_global >= self.tape.n_inputs)
        self.stats.node_splits += int(on_nodes.sum())
        self.stats.input_splits += len(parents) - int(on_nodes.sum())
        return children
