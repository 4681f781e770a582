"""Run a tape on a batch of points."""

from __future__ import annotations

import torch
from torch import Tensor

from graphver.ops.linear import linear_apply
from graphver.tape.tape import Tape


def evaluate_all(tape: Tape, points: Tensor) -> Tensor:
    """Values of every node, shape [B, n_nodes], for points of shape [B, n_inputs]."""
    values = torch.empty(points.shape[0], tape.n_nodes, dtype=points.dtype, device=points.device)
    values[:, : tape.n_inputs] = points
    for instr in tape.instructions:
        if instr.kind == "linear":
            out = linear_apply(instr.rows, instr.cols, instr.weights, instr.bias, values)
        else:
            op = instr.op_object
            out = op.f(*(values[:, a] for a in instr.args), instr.param)
        values[:, instr.start : instr.stop] = out
    return values


def evaluate(tape: Tape, points: Tensor) -> Tensor:
    """Output values, shape [B, n_outputs], for points of shape [B, n_inputs] (autograd-friendly)."""
    if not torch.is_grad_enabled() or not points.requires_grad:
        return evaluate_all(tape, points)[:, tape.outputs]
    # Autograd path: keep per-instruction outputs instead of writing into one buffer.
    values = points
    for instr in tape.instructions:
        if instr.kind == "linear":
            out = linear_apply(instr.rows, instr.cols, instr.weights, instr.bias, values)
        else:
            out = instr.op_object.f(*(values[:, a] for a in instr.args), instr.param)
        values = torch.cat([values, out], dim=1)
    return values[:, tape.outputs]
