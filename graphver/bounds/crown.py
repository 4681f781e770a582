"""CROWN: backward linear bound propagation over the tape.

For queries y_q = c_q^T z (here: selected nodes, each bounded from below and from above, i.e. 2Q rows
``+z_t`` and ``-z_t``), the backward pass keeps a coefficient ``lam`` on every node. At an instruction
z = f(h) with relaxation ``aL*h + bL <= f(h) <= aU*h + bU``, the coefficient on z moves to h as
``lam+ * aL + lam- * aU`` and the bias gains ``lam+ * bL + lam- * bU``; linear instructions pass
coefficients through their weights. At the inputs, ``sum(lam+ * l + lam- * u) + bias`` is a lower bound.

Rounding (see docs/developer.md): every product and sum of the pass rounds. We bound the effect on the
final value by ``gamma_n * slack`` where ``slack`` sums ``|term| * max(|l|, |u|)`` of every coefficient
term formed (and ``|term|`` of every bias term), and n bounds the length of any accumulated sum
(``Tape.accumulation_terms``). The result is a rigorous lower bound in floating point.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from graphver.bounds.ibp import argument_bounds
from graphver.ops.base import tiny_of
from graphver.ops.linear import gamma
from graphver.tape.tape import Tape


def weighted(coef: Tensor, value: Tensor) -> Tensor:
    """coef * value, with 0 * inf taken as 0 (a zero coefficient does not use the value)."""
    return torch.where(coef == 0, torch.zeros_like(coef), coef * value)


def magnitude_sum(term: Tensor, magnitude: Tensor) -> Tensor:
    """sum over the last axis of |term| * magnitude, with 0 * inf taken as 0."""
    return torch.nan_to_num(term.abs() * magnitude, nan=0.0).sum(-1)


def backward_lower(
    tape: Tape,
    lo: Tensor,
    hi: Tensor,
    targets: Tensor,
    upto: int,
    alphas: dict[int, Tensor] | None = None,
) -> Tensor:
    """Lower bounds of ``+z_t`` and ``-z_t`` for the global nodes ``targets`` ([Q]); returns [B, 2Q].

    ``upto``: index of the last instruction the pass starts from (every target lies at or before it; -1
    when all targets are inputs). ``alphas``: optional relaxation parameters per instruction index, each
    of shape [2, B, 2Q, size] (lower and upper line); absent instructions use the CROWN default.
    """
    batch, q = lo.shape[0], targets.numel()
    width = tape.instructions[upto].stop if upto >= 0 else tape.n_inputs
    lam = torch.zeros(batch, 2 * q, width, dtype=lo.dtype, device=lo.device)
    rows = torch.arange(q, device=lo.device)
    lam[:, rows, targets] = 1.0
    lam[:, rows + q, targets] = -1.0
    bias = torch.zeros(batch, 2 * q, dtype=lo.dtype, device=lo.device)
    slack = torch.zeros_like(bias)
    exact_slack = torch.zeros_like(bias)  # errors that are not roundings of this pass (constants)
    magnitude = torch.maximum(lo[:, :width].abs(), hi[:, :width].abs())

    for index in range(upto, -1, -1):
        instr = tape.instructions[index]
        coef = lam[:, :, instr.start : instr.stop].clone()
        if instr.kind == "linear":
            coef_rows = coef[:, :, instr.rows]
            src = coef_rows * instr.weights
            lam.index_add_(2, instr.cols, src)
            bias_terms = weighted(coef, instr.bias)
            slack = slack + magnitude_sum(src, magnitude[:, None, instr.cols])
            # The stored constants differ from the exact ones by at most weight_error / bias_error.
            constants = magnitude_sum(coef_rows * instr.weight_error, magnitude[:, None, instr.cols])
            constants = constants + magnitude_sum(coef, instr.bias_error)
            exact_slack = exact_slack + constants
        else:
            op = instr.op_object
            pos, neg = coef.clamp(min=0), coef.clamp(max=0)
            alpha = alphas.get(index) if alphas else None
            bounds = [(l.unsqueeze(1), u.unsqueeze(1)) for l, u in argument_bounds(instr, lo, hi)]
            flat = [t for pair in bounds for t in pair]
            if instr.kind == "unary":
                lines = op.relax(*flat, instr.param, *(alpha if alpha is not None else (None, None)))
                slopes = [(lines.lower_slope, lines.upper_slope)]
                lower_bias, upper_bias = lines.lower_bias, lines.upper_bias
            else:
                planes = op.relax(*flat, instr.param, *(alpha if alpha is not None else (None, None)))
                slopes = [(planes.lower_x, planes.upper_x), (planes.lower_y, planes.upper_y)]
                lower_bias, upper_bias = planes.lower_bias, planes.upper_bias
            for arg, (slope_lower, slope_upper) in zip(instr.args, slopes):
                src = pos * slope_lower + neg * slope_upper
                lam.index_add_(2, arg, src)
                slack = slack + magnitude_sum(src, magnitude[:, None, arg])
            bias_terms = weighted(pos, lower_bias) + weighted(neg, upper_bias)
        bias = bias + bias_terms.sum(-1)
        slack = slack + torch.nan_to_num(bias_terms.abs(), nan=0.0).sum(-1)

    coef = lam[:, :, : tape.n_inputs]
    lower_in, upper_in = lo[:, None, : tape.n_inputs], hi[:, None, : tape.n_inputs]
    value = (weighted(coef.clamp(min=0), lower_in) + weighted(coef.clamp(max=0), upper_in)).sum(-1) + bias
    slack = slack + magnitude_sum(coef, magnitude[:, None, : tape.n_inputs]) + bias.abs()
    slack = slack + exact_slack
    margin = gamma(tape.accumulation_terms, torch.finfo(lo.dtype).eps) * slack * (1.0 + 1e-6) + exact_slack + tiny_of(lo)
    result = value - margin
    return torch.where(torch.isnan(result), torch.full_like(result, -math.inf), result)


def chunk_size(batch: int, width: int, max_elements: int) -> int:
    """How many targets one backward pass may take within the memory cap (2 rows per target)."""
    return max(1, max_elements // max(1, 2 * batch * width))


def crown_refine_hook(tape: Tape, max_elements: int):
    """A forward_bounds hook that tightens the marked outputs of an instruction with CROWN, in place."""

    def refine(index, instr, lo, hi):
        targets_all = instr.start + instr.refine
        step = chunk_size(lo.shape[0], instr.stop, max_elements)
        for begin in range(0, targets_all.numel(), step):
            targets = targets_all[begin : begin + step]
            result = backward_lower(tape, lo, hi, targets, index)
            q = targets.numel()
            lo[:, targets] = torch.maximum(lo[:, targets], result[:, :q])
            hi[:, targets] = torch.minimum(hi[:, targets], -result[:, q:])

    return refine
