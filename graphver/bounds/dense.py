"""CROWN with dense coefficient matrices, for tapes made of dense layers (imported networks).

The plan-based pass (``crown.run_plan``) keeps one coefficient per (row, node) pair a row can reach and
moves coefficients through a linear instruction term by term: ideal for the sparse graphs of
equations, quadratic in memory for a dense 512 x 512 layer followed by a thousand output rows (every
row reaches every neuron, and every move is one index triple). Here the coefficients of all rows on all
nodes form one dense tensor ``lam`` [B, rows, nodes]; a linear instruction moves them with one sparse
matrix product (its weights as a sparse [size, nodes] matrix), a nonlinear one elementwise. Instructions
are visited in reverse order, so every node has received all of its consumers' coefficients before its
own instruction replaces it by its arguments.

The result and its rounding slack are those of ``run_plan`` (see its docstring): every product and sum
of the pass rounds, covered by ``gamma(tape.accumulation_terms) * slack`` where slack sums
``|term| * max(|l|, |u|)`` of every coefficient term formed and ``|term|`` of every bias term; the stored
constants' own errors are added in full. Rows are processed in chunks that keep ``rows x nodes`` under
a memory cap.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from graphver.bounds.ibp import argument_bounds
from graphver.rounding import coefficient_floor, concretised_lower, may_underflow, term_slack
from graphver.tape.tape import Tape

DENSE_FAN_IN = 32  # a tape with a linear instruction this dense (or denser) is bounded with dense coefficients


def prefers_dense(tape: Tape) -> bool:
    """Whether the tape has dense layers (a linear instruction with at least DENSE_FAN_IN terms per output)."""
    key = ("prefers_dense",)
    if key not in tape.cache:
        tape.cache[key] = any(i.kind == "linear" and i.fan_in >= DENSE_FAN_IN for i in tape.instructions)
    return tape.cache[key]


def weight_matrices(tape: Tape, index: int, device, dtype) -> tuple[int, int, Tensor, Tensor, Tensor, Tensor, float]:
    """A linear instruction's weights, |weights|, weight errors and non-zero pattern as [size, window]
    matrices over the window [first, last] of the nodes it reads (dense when at least a tenth full, sparse
    otherwise), and the smallest non-zero |weight| (inf when none)."""
    key = ("dense_weights", index, str(device), dtype)
    if key not in tape.cache:
        instr = tape.instructions[index]
        cols = instr.cols.to(device)
        first = int(cols.min()) if cols.numel() else 0
        last = int(cols.max()) + 1 if cols.numel() else 0
        shape = (instr.size, last - first)
        indices = torch.stack([instr.rows.to(device), cols - first])
        dense = cols.numel() >= 0.1 * max(1, shape[0] * shape[1])

        def matrix(values):
            values = values.to(device=device, dtype=dtype)
            if dense:
                out = torch.zeros(shape, dtype=dtype, device=device)
                return out.index_put_((indices[0], indices[1]), values, accumulate=True)
            return torch.sparse_coo_tensor(indices, values, shape, check_invariants=False).coalesce()

        magnitudes = instr.weights.abs()
        nonzero = magnitudes[magnitudes > 0]
        smallest = float(nonzero.min()) if nonzero.numel() else math.inf
        tape.cache[key] = (first, last, matrix(instr.weights), matrix(magnitudes), matrix(instr.weight_error),
                           matrix((magnitudes > 0).to(instr.weights.dtype)), smallest)
    return tape.cache[key]


def times(dense: Tensor, matrix: Tensor) -> Tensor:
    """dense [M, size] @ matrix [size, window] (dense or sparse) -> dense [M, window]."""
    if matrix.is_sparse:
        return torch.sparse.mm(matrix.t(), dense.t()).t()
    return dense @ matrix


def zero_safe(coef: Tensor, value: Tensor) -> Tensor:
    return torch.where(coef == 0, torch.zeros_like(coef), coef * value)


def dense_lower(tape: Tape, lo: Tensor, hi: Tensor, targets: Tensor, upto: int, record: dict | None = None,
                max_elements: int = 2**24) -> Tensor:
    """Lower bounds of ``+z_t`` and ``-z_t`` for the global nodes ``targets`` ([Q]); returns [B, 2Q].

    ``record`` receives ``input_coef`` [B, 2Q, n_inputs] and ``offset`` [B, 2Q] as ``run_plan`` does (no
    per-step coefficients: node branching is not available on this path)."""
    batch = lo.shape[0]
    q = targets.numel()
    width = tape.instructions[upto].stop if upto >= 0 else tape.n_inputs
    rows_total = 2 * q
    chunk = max(1, min(rows_total, max_elements // max(1, batch * width)))
    results, coefs, offsets = [], [], []
    signs = torch.cat([torch.ones(q, dtype=lo.dtype, device=lo.device), -torch.ones(q, dtype=lo.dtype, device=lo.device)])
    nodes = torch.cat([targets, targets]).to(lo.device)
    for begin in range(0, rows_total, chunk):
        part = slice(begin, min(rows_total, begin + chunk))
        result, coef, offset = dense_pass(tape, lo, hi, nodes[part], signs[part], upto, width)
        results.append(result)
        if record is not None:
            coefs.append(coef)
            offsets.append(offset)
    if record is not None:
        record["input_coef"] = torch.cat(coefs, 1)
        record["offset"] = torch.cat(offsets, 1)
    return torch.cat(results, 1)


def dense_pass(tape: Tape, lo: Tensor, hi: Tensor, nodes: Tensor, signs: Tensor, upto: int, width: int):
    batch, rows = lo.shape[0], nodes.numel()
    lam = torch.zeros(batch, rows, width, dtype=lo.dtype, device=lo.device)
    lam[:, torch.arange(rows, device=lo.device), nodes] = signs
    bias = torch.zeros(batch, rows, dtype=lo.dtype, device=lo.device)
    slack = torch.zeros_like(bias)
    constant_error = torch.zeros_like(bias)
    size = torch.maximum(lo.abs(), hi.abs())[:, :width]
    floor = coefficient_floor(tape.accumulation_terms, lo)
    normal = 2.0 * float(torch.finfo(lo.dtype).tiny)
    for index in range(upto, -1, -1):
        instr = tape.instructions[index]
        coef = lam[:, :, instr.start : instr.stop].clone()
        if not bool(coef.any()):
            continue
        lam[:, :, instr.start : instr.stop] = 0
        if instr.kind == "linear":
            first, last, weights, magnitudes, errors, pattern, smallest = weight_matrices(tape, index, lo.device, lo.dtype)
            flat = coef.reshape(batch * rows, instr.size)
            if last > first:
                lam[:, :, first:last] += times(flat, weights).view(batch, rows, last - first)
            # per output r of the instruction: sum_k |w_rk| max(|l_k|, |u_k|), and the same for the errors
            window = size[:, first:last]
            row_size = torch.nan_to_num(times(window, magnitudes.t() if not magnitudes.is_sparse else magnitudes.t().coalesce()), nan=0.0) \
                if last > first else torch.zeros(batch, instr.size, dtype=lo.dtype, device=lo.device)
            row_error = torch.nan_to_num(times(window, errors.t() if not errors.is_sparse else errors.t().coalesce()), nan=0.0) \
                if last > first else torch.zeros_like(row_size)
            absolute = coef.abs()
            slack = slack + torch.nan_to_num(absolute * row_size[:, None, :], nan=0.0).sum(-1)
            # a product coef * w below the smallest normal number may have underflowed; it later multiplies
            # a node of size at most size_k: floor * sum_k [w_rk != 0] size_k covers it
            underflowed = (absolute > 0) & (absolute * smallest < normal)
            if last > first and bool(underflowed.any()):
                row_reach = torch.nan_to_num(times(window, pattern.t() if not pattern.is_sparse else pattern.t().coalesce()), nan=0.0)
                slack = slack + torch.nan_to_num(underflowed * (floor * row_reach[:, None, :]), nan=0.0).sum(-1)
            bias_values = instr.bias.to(device=lo.device, dtype=lo.dtype)
            constant_error = (constant_error + torch.nan_to_num(absolute * row_error[:, None, :], nan=0.0).sum(-1)
                              + (absolute * instr.bias_error.to(device=lo.device, dtype=lo.dtype)).sum(-1))
            bias_terms = zero_safe(coef, bias_values)
        else:
            op = instr.op_object
            flat_bounds = [t for pair in argument_bounds(instr, lo, hi) for t in pair]
            relaxation = op.relax(*flat_bounds, instr.param)
            if instr.kind == "unary":
                slopes = [(relaxation.lower_slope, relaxation.upper_slope)]
            else:
                slopes = [(relaxation.lower_x, relaxation.upper_x), (relaxation.lower_y, relaxation.upper_y)]
            pos, neg = coef.clamp(min=0), coef.clamp(max=0)
            for arg, (slope_lower, slope_upper) in zip(instr.args, slopes):
                arg = arg.to(lo.device)
                moved = pos * slope_lower[:, None, :] + neg * slope_upper[:, None, :]
                lam.index_add_(2, arg, moved)
                underflowed = may_underflow(moved, coef, torch.where(coef > 0, slope_lower[:, None, :], slope_upper[:, None, :]))
                slack = slack + term_slack(moved, size[:, None, arg], underflowed, floor).sum(-1)
            bias_terms = zero_safe(pos, relaxation.lower_bias[:, None, :]) + zero_safe(neg, relaxation.upper_bias[:, None, :])
        bias = bias + bias_terms.sum(-1)
        slack = slack + torch.nan_to_num(bias_terms.abs(), nan=0.0).sum(-1)
    n = tape.n_inputs
    coef = lam[:, :, :n]
    values = zero_safe(coef.clamp(min=0), lo[:, None, :n]) + zero_safe(coef.clamp(max=0), hi[:, None, :n])
    value = values.sum(-1) + bias
    slack = slack + torch.nan_to_num(coef.abs() * size[:, None, :n], nan=0.0).sum(-1) + bias.abs() + constant_error
    result = concretised_lower(value, slack, constant_error, tape.accumulation_terms)
    offset = concretised_lower(bias, slack, constant_error, tape.accumulation_terms)
    return result, coef, offset
