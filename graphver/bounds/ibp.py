"""Interval bound propagation (IBP) over the tape, with the domain checks of every op."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from graphver.errors import DomainError
from graphver.ir.lower import label_text
from graphver.ops.linear import linear_interval
from graphver.tape.tape import Instruction, Tape


def check_domain(tape: Tape, instr: Instruction, bounds: list[tuple[Tensor, Tensor]]) -> None:
    """Raise DomainError naming the first node whose input interval leaves its op's domain."""
    op = instr.op_object
    flat = [t for pair in bounds for t in pair]
    bad = op.domain_violation(*flat, instr.param)
    if not bool(bad.any()):
        return
    box, j = (int(v) for v in torch.nonzero(bad)[0])
    label = label_text(tape.labels[instr.start + j])
    intervals = ", ".join(f"[{float(l[box, j]):.17g}, {float(u[box, j]):.17g}]" for l, u in bounds)
    where = f" (box {box} of the batch)" if bad.shape[0] > 1 else ""
    raise DomainError(
        f"node {label!r}: input interval {intervals} leaves the domain of {op.describe(instr.param)} "
        f"({op.domain}){where}. Shrink the variable box or guard the expression so that its argument stays "
        f"inside the domain."
    )


def instruction_interval(tape: Tape, instr: Instruction, lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor]:
    """Sound interval of one instruction's outputs given the intervals of all earlier nodes."""
    if instr.kind == "linear":
        return linear_interval(instr.rows, instr.cols, instr.weights, instr.bias, instr.fan_in, lo, hi,
                               instr.weight_error, instr.bias_error)
    bounds = argument_bounds(instr, lo, hi)
    check_domain(tape, instr, bounds)
    flat = [t for pair in bounds for t in pair]
    return instr.op_object.interval(*flat, instr.param)


def argument_bounds(instr: Instruction, lo: Tensor, hi: Tensor) -> list[tuple[Tensor, Tensor]]:
    """Intervals of a nonlinear instruction's arguments, snapped onto closed domain edges (see UnaryOp)."""
    bounds = [(lo[:, a], hi[:, a]) for a in instr.args]
    if instr.kind == "unary":
        (l, u), = bounds
        bounds = [(instr.op_object.snap_to_domain(l, u, instr.param), u)]
    return bounds


RefineHook = Callable[[int, Instruction, Tensor, Tensor], None]


def forward_bounds(tape: Tape, lower: Tensor, upper: Tensor, refine: RefineHook | None = None) -> tuple[Tensor, Tensor]:
    """Intervals of every node, each [B, n_nodes]. ``refine`` may tighten an instruction's outputs in place
    right after IBP computes them (CROWN uses this), so that later IBP steps start from tighter inputs."""
    batch = lower.shape[0]
    lo = torch.empty(batch, tape.n_nodes, dtype=lower.dtype, device=lower.device)
    hi = torch.empty_like(lo)
    lo[:, : tape.n_inputs] = lower
    hi[:, : tape.n_inputs] = upper
    for index, instr in enumerate(tape.instructions):
        out_lo, out_hi = instruction_interval(tape, instr, lo, hi)
        lo[:, instr.start : instr.stop] = out_lo
        hi[:, instr.start : instr.stop] = out_hi
        if refine is not None and instr.refine.numel():
            refine(index, instr, lo, hi)
    return lo, hi
