"""Interval bound propagation (IBP) over the tape, with the domain checks of every op."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from graphver.clock import check
from graphver.errors import DomainError
from graphver.errors import label_text
from graphver.ops.linear import linear_interval
from graphver.tape.tape import Instruction, Tape


def domain_error_text(tape: Tape, instr: Instruction, bounds: list[tuple[Tensor, Tensor]], bad: Tensor) -> str:
    """The message naming the first node whose input interval leaves its op's domain."""
    op = instr.op_object
    box, j = (int(v) for v in torch.nonzero(bad)[0])
    label = label_text(tape.labels[instr.start + j])
    intervals = ", ".join(f"[{float(l[box, j]):.17g}, {float(u[box, j]):.17g}]" for l, u in bounds)
    where = f" (box {box} of the batch)" if bad.shape[0] > 1 else ""
    return (
        f"node {label!r}: input interval {intervals} leaves the domain of {op.describe(instr.param)} "
        f"({op.domain}){where}. Shrink the variable box or guard the expression so that its argument stays "
        f"inside the domain."
    )


class DomainMarks:
    """Collects, instead of raising, the boxes whose bound pass left an op's domain (branch-and-bound
    splits those further). Their argument intervals are replaced by the op's ``safe_point`` so the pass can
    go on; every bound computed for a marked box is meaningless and must be discarded by the caller."""

    def __init__(self, batch: int, device):
        self.bad = torch.zeros(batch, dtype=torch.bool, device=device)
        self.first_message: str | None = None


def check_domain(tape: Tape, instr: Instruction, bounds: list[tuple[Tensor, Tensor]], marks: DomainMarks | None = None):
    """Raise DomainError (or, with ``marks``, record it) for intervals that leave the op's domain.

    Returns the bounds to use (unchanged unless marks replaced violating ones)."""
    op = instr.op_object
    flat = [t for pair in bounds for t in pair]
    bad = op.domain_violation(*flat, instr.param)
    if not bool(bad.any()):
        return bounds
    if marks is None:
        raise DomainError(domain_error_text(tape, instr, bounds, bad))
    if marks.first_message is None:
        marks.first_message = domain_error_text(tape, instr, bounds, bad)
    marks.bad |= bad.any(dim=1)
    safe = torch.full_like(bounds[0][0], float(op.safe_point(instr.param)))
    return [(torch.where(bad, safe, l), torch.where(bad, safe, u)) for l, u in bounds]


def instruction_interval(
    tape: Tape, instr: Instruction, lo: Tensor, hi: Tensor, marks: DomainMarks | None = None
) -> tuple[Tensor, Tensor]:
    """Sound interval of one instruction's outputs given the intervals of all earlier nodes."""
    if instr.kind == "linear":
        return linear_interval(instr.rows, instr.cols, instr.weights, instr.bias, instr.fan_in, lo, hi,
                               instr.weight_error, instr.bias_error)
    bounds = argument_bounds(instr, lo, hi)
    bounds = check_domain(tape, instr, bounds, marks)
    flat = [t for pair in bounds for t in pair]
    return instr.op_object.interval(*flat, instr.param)


def argument_bounds(instr: Instruction, lo: Tensor, hi: Tensor) -> list[tuple[Tensor, Tensor]]:
    """Intervals of a nonlinear instruction's arguments, snapped onto closed domain edges (see UnaryOp)."""
    bounds = [(lo.index_select(1, a), hi.index_select(1, a)) for a in instr.args]
    if instr.kind == "unary":
        (l, u), = bounds
        bounds = [(instr.op_object.snap_to_domain(l, u, instr.param), u)]
    return bounds


RefineHook = Callable[[int, Instruction, Tensor, Tensor], None]


@dataclass
class NodeSplits:
    """Per-box interval constraints on intermediate nodes (branch-and-bound's node splits).

    ``nodes``: global indices [K]; ``lo``/``hi``: [B, K] (+-inf where a box has no constraint). A box is the
    set of points of its input box whose node values lie in these intervals. ``infeasible`` [B] is set by
    ``forward_bounds`` for boxes whose constraints contradict the computed intervals (empty sets).
    """

    nodes: Tensor
    lo: Tensor
    hi: Tensor
    infeasible: Tensor | None = None

    def in_instruction(self, instr: Instruction) -> tuple[Tensor, Tensor]:
        """Positions k of the split nodes this instruction produces, and their local output indices."""
        inside = (self.nodes >= instr.start) & (self.nodes < instr.stop)
        positions = torch.nonzero(inside).flatten()
        return positions, self.nodes[positions]


def apply_splits(splits: NodeSplits, instr: Instruction, lo: Tensor, hi: Tensor) -> None:
    """Intersect an instruction's fresh output intervals with the split constraints, in place; flag empty sets."""
    positions, nodes = splits.in_instruction(instr)
    if positions.numel() == 0:
        return
    new_lo = torch.maximum(lo[:, nodes], splits.lo[:, positions])
    new_hi = torch.minimum(hi[:, nodes], splits.hi[:, positions])
    empty = new_lo > new_hi
    if bool(empty.any()):
        splits.infeasible |= empty.any(dim=1)
        # keep the pass well defined on empty sets: a point inside the split interval
        point = torch.where(torch.isfinite(splits.lo[:, positions]), splits.lo[:, positions], splits.hi[:, positions])
        new_lo = torch.where(empty, point, new_lo)
        new_hi = torch.where(empty, point, new_hi)
    lo[:, nodes] = new_lo
    hi[:, nodes] = new_hi


def forward_bounds(
    tape: Tape,
    lower: Tensor,
    upper: Tensor,
    refine: RefineHook | None = None,
    splits: NodeSplits | None = None,
    marks: DomainMarks | None = None,
    deadline: float | None = None,
    prior: tuple[Tensor, Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """Intervals of every node, each [B, n_nodes]. ``refine`` may tighten an instruction's outputs in place
    right after IBP computes them (CROWN uses this), so that later IBP steps start from tighter inputs.
    ``splits`` intersects split nodes with their constraints before refinement; ``marks`` records domain
    violations per box instead of raising. ``prior`` ([B, R] lower and upper ends of the refined nodes,
    ``refined_nodes`` order) holds intervals known to enclose those nodes on each box (a parent domain's:
    valid on its children); they are intersected with each instruction's refined outputs. ``check(deadline)``
    runs before every instruction (``DeadlineReached``)."""
    batch = lower.shape[0]
    lo = torch.empty(batch, tape.n_nodes, dtype=lower.dtype, device=lower.device)
    hi = torch.empty_like(lo)
    lo[:, : tape.n_inputs] = lower
    hi[:, : tape.n_inputs] = upper
    if splits is not None and splits.infeasible is None:
        splits.infeasible = torch.zeros(batch, dtype=torch.bool, device=lower.device)
    for index, instr in enumerate(tape.instructions):
        check(deadline)
        out_lo, out_hi = instruction_interval(tape, instr, lo, hi, marks)
        lo[:, instr.start : instr.stop] = out_lo
        hi[:, instr.start : instr.stop] = out_hi
        if splits is not None:
            apply_splits(splits, instr, lo, hi)
        if refine is not None and instr.refine.numel():
            refine(index, instr, lo, hi)
        if prior is not None and instr.refine.numel():
            intersect_prior(tape, index, instr, lo, hi, prior)
    return lo, hi


@dataclass(frozen=True)
class RefinedKey:
    """Tape-cache key of ``refined_nodes``, per device."""

    device: str


def refined_nodes(tape: Tape) -> tuple[Tensor, list[tuple[int, int]]]:
    """The refined nodes of the tape (every instruction's ``refine`` set, in tape order) and each
    instruction's slice of them: the layout of a ``prior``."""

    def build():
        nodes, slices, at = [], [], 0
        for instr in tape.instructions:
            count = instr.refine.numel()
            slices.append((at, at + count))
            nodes.append(instr.start + instr.refine.to(tape.device))
            at += count
        all_nodes = torch.cat(nodes) if nodes else torch.zeros(0, dtype=torch.long, device=tape.device)
        return all_nodes, slices

    return tape.cache.get(RefinedKey(str(tape.device)), build)


def intersect_prior(tape: Tape, index: int, instr: Instruction, lo: Tensor, hi: Tensor,
                    prior: tuple[Tensor, Tensor]) -> None:
    """Intersect an instruction's refined outputs with their prior intervals. Both enclose the true range
    on the box; where the two cross (an empty domain, or rounding on a point box), the pass's own interval
    is kept: the intersection may only ever remove what both exclude."""
    begin, end = refined_nodes(tape)[1][index]
    if end == begin:
        return
    nodes = instr.start + instr.refine.to(lo.device)
    own_lo, own_hi = lo[:, nodes], hi[:, nodes]
    new_lo = torch.maximum(own_lo, prior[0][:, begin:end])
    new_hi = torch.minimum(own_hi, prior[1][:, begin:end])
    crossing = ~(new_lo <= new_hi)
    lo[:, nodes] = torch.where(crossing, own_lo, new_lo)
    hi[:, nodes] = torch.where(crossing, own_hi, new_hi)
