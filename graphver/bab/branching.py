"""Branching: which input or intermediate node to split, and where.

Heuristics are swappable objects with one method, ``scores(context) -> (scores [B, K], points [B, K])``
over the candidate set (inputs for input heuristics, branchable nodes for node heuristics):

- ``InputWidthScore``: width times the magnitude of the input's coefficient in the binding row's final
  backward pass (how much of the bound's looseness the input's range explains), plus a width term that
  keeps inputs with small coefficients from starving; midpoint splits.
- ``BBPSScore``: for each consumer of a node (a nonlinear op whose argument it is), recompute the
  consumer's relaxation on both halves of the node's interval, weight it by the coefficient the last
  backward pass put on the consumer's output in the domain's binding row (``LinearBounds.step_coef``,
  whatever the pass's coefficient storage), and concretise it over the intervals of the consumer's
  arguments (the shortcut: no further backward propagation). The score is the estimated improvement of
  the worse child, summed over consumers. Relaxation slopes and intercepts both count.
- ``BaBSRScore``: the same, counting only the intercept change (the classic BaBSR-style ablation).

Branching points for nodes: the consumer op's pre-optimised lookup table (graphver.bab.branch_points) for
unary ops, ``branch_point`` for products (0 across 0) and piecewise-linear ops (the kink), or the plain
midpoint (``branch_points="midpoint"``, the ablation); any point strictly inside the interval is sound.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from graphver.bab.branch_points import optimized_point
from graphver.bounds.backward import LinearBounds
from graphver.bounds.ibp import argument_bounds
from graphver.tape.tape import Tape


@dataclass(frozen=True)
class CandidatesKey:
    """Tape cache key of ``Candidates.of``."""


@dataclass(frozen=True)
class Candidates:
    """The branchable nodes of a tape: every argument of a nonlinear op (inputs included)."""

    nodes: Tensor  # [K] global indices, sorted
    position: Tensor  # [n_nodes] -> index in nodes, or -1

    @staticmethod
    def of(tape: Tape) -> "Candidates":
        def build():
            args = [a for instr in tape.instructions if instr.kind != "linear" for a in instr.args]
            nodes = torch.unique(torch.cat(args)) if args else torch.zeros(0, dtype=torch.long)
            position = torch.full((tape.n_nodes,), -1, dtype=torch.long)
            position[nodes] = torch.arange(nodes.numel())
            return Candidates(nodes, position)

        return tape.cache.get(CandidatesKey(), build)


@dataclass
class BranchContext:
    """What the heuristics read: the final backward pass of each domain (either storage) and its intervals."""

    tape: Tape
    linear: LinearBounds
    lo: Tensor  # [B, n_nodes]
    hi: Tensor
    lower: Tensor  # [B, n_inputs] input boxes
    upper: Tensor
    row: Tensor  # [B] the binding row of each domain


WIDTH_SHARE = 0.01


class InputWidthScore:
    name = "input-width"

    def scores(self, ctx: BranchContext) -> tuple[Tensor, Tensor]:
        coef = ctx.linear.input_coef  # [B, rows, n]
        binding = coef[torch.arange(coef.shape[0]), ctx.row]
        width = ctx.upper - ctx.lower
        scores = torch.nan_to_num(binding.abs() * width, nan=0.0, posinf=0.0)
        # A variable with a small coefficient in the final linear bound can still make the bound loose through
        # the intercepts of its relaxations (sin(sqrt(|y|)) * y on a wide y): never let it starve. Each
        # variable also scores WIDTH_SHARE times the best score per unit width times its own width, so a
        # variable 1/WIDTH_SHARE times wider than the best-scored one is split first.
        per_width = (scores / torch.where(width > 0, width, torch.ones_like(width))).amax(dim=1, keepdim=True)
        scores = scores + WIDTH_SHARE * per_width * width + 1e-300 * width
        return scores, ctx.lower + width / 2


def concretise(slopes_and_ranges, bias: Tensor) -> Tensor:
    """Lower bound of bias + sum slope*arg over arg in [l, u] for each (slope, l, u)."""
    value = bias
    for slope, low, high in slopes_and_ranges:
        value = value + torch.minimum(slope * low, slope * high)
    return torch.nan_to_num(value, nan=-torch.inf)


class BBPSScore:
    name = "bbps"
    intercept_only = False

    def __init__(self, branch_points: str = "optimized"):
        self.branch_points = branch_points  # "optimized" (lookup tables) or "midpoint"

    def point(self, op, instr, low: Tensor, high: Tensor) -> Tensor:
        if self.branch_points == "midpoint":
            return low + (high - low) / 2
        if instr.kind == "unary":
            return optimized_point(op, instr.param, low, high)
        return op.branch_point(low, high, instr.param)

    def contribution(self, op, instr, coef, bounds, lines_from) -> Tensor:
        """Lower bound of coef * (relaxation of the consumer) over the argument intervals."""
        pos, neg = coef.clamp(min=0), coef.clamp(max=0)
        relaxation = lines_from(bounds)
        if instr.kind == "unary":
            slopes = [pos * relaxation.lower_slope + neg * relaxation.upper_slope]
            bias = pos * relaxation.lower_bias + neg * relaxation.upper_bias
        else:
            slopes = [pos * relaxation.lower_x + neg * relaxation.upper_x, pos * relaxation.lower_y + neg * relaxation.upper_y]
            bias = pos * relaxation.lower_bias + neg * relaxation.upper_bias
        bias = torch.where(coef == 0, torch.zeros_like(bias), bias)
        if self.intercept_only:
            return bias
        return concretise([(s, l, u) for s, (l, u) in zip(slopes, bounds)], bias)

    def scores(self, ctx: BranchContext) -> tuple[Tensor, Tensor]:
        tape = ctx.tape
        cands = Candidates.of(tape)
        batch = ctx.lo.shape[0]
        total = torch.zeros(batch, tape.n_nodes, dtype=ctx.lo.dtype, device=ctx.lo.device)
        point_of = torch.full_like(total, torch.nan)
        for index in ctx.linear.step_instructions():
            instr = tape.instructions[index]
            op = instr.op_object
            coef = ctx.linear.step_coef(index, ctx.row)  # [B, size]: the binding row's coefficients
            bounds = argument_bounds(instr, ctx.lo, ctx.hi)

            def lines_from(bs, op=op, instr=instr):
                return op.relax(*[t for pair in bs for t in pair], instr.param)

            old = self.contribution(op, instr, coef, bounds, lines_from)
            for slot, arg in enumerate(instr.args):
                low, high = bounds[slot]
                point = self.point(op, instr, low, high)
                point = torch.where((point > low) & (point < high), point, low + (high - low) / 2)
                gains = []
                for child in ((low, point), (point, high)):
                    child_bounds = list(bounds)
                    child_bounds[slot] = child
                    gains.append(self.contribution(op, instr, coef, child_bounds, lines_from) - old)
                gain = torch.nan_to_num(torch.minimum(gains[0], gains[1]), nan=0.0).clamp(min=0)
                gain = torch.where(high > low, gain, torch.zeros_like(gain))
                nodes = arg.to(ctx.lo.device)
                total.index_add_(1, nodes, gain)
                point_of[:, nodes] = point
        scores = total[:, cands.nodes]
        points = point_of[:, cands.nodes]
        mid = (ctx.lo[:, cands.nodes] + ctx.hi[:, cands.nodes]) / 2
        return scores, torch.where(torch.isnan(points), mid, points)


class BaBSRScore(BBPSScore):
    name = "babsr"
    intercept_only = True


NODE_HEURISTICS = {"bbps": BBPSScore, "babsr": BaBSRScore}


LP_SPLIT_MARGIN = 0.25  # an LP-point split stays this share of the width away from the box's ends


def lp_branching(tape: Tape, support: Tensor, points: Tensor, multipliers: Tensor, lower: Tensor, upper: Tensor,
                 root_width: Tensor, n_rows: int) -> tuple[Tensor, Tensor]:
    """Spatial branching from each domain's LP solution x*: a constraint row that x* violates (c_k(x*) > 0)
    is where the relaxation is loose, weighted by its multiplier (how much the bound rests on it). Each such
    row scores the inputs that enter it nonlinearly, times their width relative to the root box; the best
    is split near x* (clamped ``LP_SPLIT_MARGIN`` inside), which cuts x* off. Returns (input [B], point [B]);
    input -1 where x* violates nothing or there is no x*."""
    from graphver.tape.evaluate import evaluate

    batch = lower.shape[0]
    none = torch.full((batch,), -1, dtype=torch.long, device=lower.device)
    has = ~torch.isnan(points).any(dim=1)
    x = torch.where(has[:, None], points, lower + (upper - lower) / 2)
    x = torch.minimum(torch.maximum(x, lower), upper)
    with torch.no_grad():
        values = torch.nan_to_num(evaluate(tape, x), nan=0.0, posinf=0.0, neginf=0.0)
    violation = values[:, n_rows:].clamp(min=0)
    weight = violation * (multipliers + 1e-6 * (1.0 + multipliers.amax(dim=1, keepdim=True)))
    width = upper - lower
    relative = torch.where(root_width > 0, width / torch.where(root_width > 0, root_width, 1.0), torch.zeros_like(width))
    scores = (weight @ support[n_rows:].to(weight.dtype)) * relative
    choice = scores.argmax(dim=1)
    take = torch.arange(batch, device=lower.device)
    usable = has & (scores[take, choice] > 0)
    low, high = lower[take, choice], upper[take, choice]
    margin = LP_SPLIT_MARGIN * (high - low)
    point = torch.minimum(torch.maximum(x[take, choice], low + margin), high - margin)
    return torch.where(usable, choice, none), point
