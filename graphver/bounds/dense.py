"""Dense coefficient storage of the backward pass, for tapes made of dense layers (imported networks).

The sparse storage (bounds/sparse.py) keeps one coefficient per (row, node) pair a row can reach and moves
coefficients through a linear instruction term by term: ideal for the sparse graphs of equations,
quadratic in memory for a dense 512 x 512 layer followed by a thousand output rows (every row reaches
every neuron, and every move is one index triple). Here the coefficients of all rows on all nodes form
one dense tensor ``lam`` [B, rows, nodes]; a linear instruction moves them with one matrix product (its
weights as a [size, window] matrix, dense or sparse), a nonlinear one elementwise. Instructions are
visited in reverse order, so every node has received all of its consumers' coefficients before its own
instruction replaces it by its arguments. Rows are processed in chunks that keep ``B x rows x nodes``
under a memory cap (``chunk_rows``). The pass itself is ``graphver.bounds.backward``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from graphver.tape.tape import Tape

DENSE_FAN_IN = 32  # a tape with a linear instruction this dense (or denser) is bounded with dense coefficients


@dataclass(frozen=True)
class PrefersDenseKey:
    """Tape cache key of ``prefers_dense``."""


@dataclass(frozen=True)
class WeightsKey:
    """Tape cache key of one linear instruction's weight matrices on a device, in a dtype."""

    instruction: int
    device: str
    dtype: torch.dtype


def prefers_dense(tape: Tape) -> bool:
    """Whether the tape has dense layers (a linear instruction with at least DENSE_FAN_IN terms per output):
    the rule of ``BoundOptions(backward="auto")``."""
    return tape.cache.get(PrefersDenseKey(),
                          lambda: any(i.kind == "linear" and i.fan_in >= DENSE_FAN_IN for i in tape.instructions))


def weight_matrices(tape: Tape, index: int, device, dtype) -> tuple[int, int, Tensor, Tensor, Tensor, Tensor, float]:
    """A linear instruction's weights, |weights|, weight errors and non-zero pattern as [size, window]
    matrices over the window [first, last] of the nodes it reads (dense when at least a tenth full, sparse
    otherwise), and the smallest non-zero |weight| (inf when none)."""

    def build():
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
        return (first, last, matrix(instr.weights), matrix(magnitudes), matrix(instr.weight_error),
                matrix((magnitudes > 0).to(instr.weights.dtype)), smallest)

    return tape.cache.get(WeightsKey(index, str(device), dtype), build)


def times(dense: Tensor, matrix: Tensor) -> Tensor:
    """dense [M, size] @ matrix [size, window] (dense or sparse) -> dense [M, window]."""
    if matrix.is_sparse:
        return torch.sparse.mm(matrix.t(), dense.t()).t()
    return dense @ matrix


def transposed(matrix: Tensor) -> Tensor:
    return matrix.t().coalesce() if matrix.is_sparse else matrix.t()


def width_of(tape: Tape, upto: int) -> int:
    """Nodes a pass starting at instruction ``upto`` can reach: every node up to its outputs."""
    return tape.instructions[upto].stop if upto >= 0 else tape.n_inputs


def chunk_rows(tape: Tape, upto: int, batch: int, rows: int, max_elements: int) -> int:
    """Rows per chunk of a dense pass, keeping ``batch x rows x width`` under ``max_elements``."""
    return max(1, min(rows, max_elements // max(1, batch * width_of(tape, upto))))


@dataclass(frozen=True)
class DenseStep:
    instruction: int


class DenseStorage:
    """Coefficients ``[B, rows, width]`` of rows ``sign * z_node`` (the storage interface of the backward
    pass: see ``graphver.bounds.backward.CoefficientStorage``)."""

    kind = "dense"

    def __init__(self, tape: Tape, nodes: Tensor, signs: Tensor, upto: int):
        self.tape, self.nodes, self.signs, self.upto = tape, nodes, signs, upto
        self.rows = nodes.numel()
        self.width = width_of(tape, upto)

    def steps(self):
        return [DenseStep(index) for index in range(self.upto, -1, -1)]

    def start(self, lo: Tensor) -> Tensor:
        lam = torch.zeros(lo.shape[0], self.rows, self.width, dtype=lo.dtype, device=lo.device)
        lam[:, torch.arange(self.rows, device=lo.device), self.nodes.to(lo.device)] = self.signs.to(lo)
        return lam

    def outputs(self, lam: Tensor, step: DenseStep) -> Tensor | None:
        """The coefficients on the instruction's outputs, cleared in ``lam``; None when all are zero."""
        instr = self.tape.instructions[step.instruction]
        coef = lam[:, :, instr.start : instr.stop].clone()
        if not bool(coef.any()):
            return None
        lam[:, :, instr.start : instr.stop] = 0
        return coef

    def at_outputs(self, step: DenseStep, values: Tensor) -> Tensor:
        return values.unsqueeze(-2)

    def per_entry(self, step: DenseStep, values: Tensor) -> Tensor:
        batch, size = values.shape
        return values.unsqueeze(1).expand(batch, self.rows, size).reshape(batch, self.rows * size)

    def from_entries(self, step: DenseStep, flat: Tensor) -> Tensor:
        return flat.reshape(flat.shape[0], self.rows, -1)

    def parameter_shape(self, step: DenseStep, batch: int) -> tuple[int, ...]:
        return (batch, self.rows, self.tape.instructions[step.instruction].size)

    def row_sum(self, step: DenseStep, values: Tensor) -> Tensor:
        return values.sum(-1)

    def to_argument(self, lam: Tensor, step: DenseStep, slot: int, moved: Tensor) -> None:
        lam.index_add_(2, self.tape.instructions[step.instruction].args[slot].to(lam.device), moved)

    def argument_values(self, step: DenseStep, slot: int, values: Tensor) -> Tensor:
        return values[:, None, self.tape.instructions[step.instruction].args[slot].to(values.device)]

    def through_weights(self, lam: Tensor, step: DenseStep, coef: Tensor, size: Tensor, floor: float):
        """Move the coefficients on a linear instruction's outputs through its weight matrix; returns the
        rounding slack of the formed terms and the error of the stored weights, per row. Per output r of
        the instruction the slack is ``|coef_r| * sum_k |w_rk| max(|l_k|, |u_k|)`` (the same terms as the
        sparse storage sums one by one), and the same for the weight errors."""
        instr = self.tape.instructions[step.instruction]
        batch, rows = coef.shape[0], coef.shape[1]
        first, last, weights, magnitudes, errors, pattern, smallest = weight_matrices(self.tape, step.instruction,
                                                                                     lam.device, lam.dtype)
        if last == first:
            zero = torch.zeros(batch, rows, dtype=lam.dtype, device=lam.device)
            return zero, zero.clone()
        flat = coef.reshape(batch * rows, instr.size)
        lam[:, :, first:last] += times(flat, weights).view(batch, rows, last - first)
        window = size[:, first:last]
        row_size = torch.nan_to_num(times(window, transposed(magnitudes)), nan=0.0)
        row_error = torch.nan_to_num(times(window, transposed(errors)), nan=0.0)
        absolute = coef.abs()
        slack = torch.nan_to_num(absolute * row_size[:, None, :], nan=0.0).sum(-1)
        # a product coef * w below the smallest normal number may have underflowed; it later multiplies
        # a node of size at most size_k: floor * sum_k [w_rk != 0] size_k covers it
        normal = 2.0 * float(torch.finfo(lam.dtype).tiny)
        underflowed = (absolute > 0) & (absolute * smallest < normal)
        if bool(underflowed.any()):
            row_reach = torch.nan_to_num(times(window, transposed(pattern)), nan=0.0)
            slack = slack + torch.nan_to_num(underflowed * (floor * row_reach[:, None, :]), nan=0.0).sum(-1)
        error = torch.nan_to_num(absolute * row_error[:, None, :], nan=0.0).sum(-1)
        return slack, error

    def inputs(self, lam: Tensor, lo: Tensor, hi: Tensor, size: Tensor):
        n = self.tape.n_inputs
        return lam[:, :, :n], lo[:, None, :n], hi[:, None, :n], size[:, None, :n]

    def input_row_sum(self, values: Tensor) -> Tensor:
        return values.sum(-1)

    def input_matrix(self, coef: Tensor) -> Tensor:
        return coef

    def kept_steps(self, kept: dict[int, Tensor]) -> "DenseSteps":
        return DenseSteps(kept)


class DenseSteps:
    """Per-step coefficients of a dense pass: ``coefs[instruction]`` [B, rows, size]."""

    def __init__(self, coefs: dict[int, Tensor]):
        self.coefs = coefs

    def instructions(self) -> tuple[int, ...]:
        return tuple(self.coefs)

    def at_row(self, instruction: int, row: Tensor) -> Tensor:
        coef = self.coefs[instruction]
        return coef[torch.arange(coef.shape[0], device=coef.device), row.to(coef.device)]

    @staticmethod
    def joined(parts: list["DenseSteps"], rows: list[int], tape: Tape) -> "DenseSteps":
        """The steps of consecutive row chunks (``rows[i]`` rows each) as one; an instruction a chunk skipped
        (all its coefficients zero) gets zeros there. Instructions stay in backward order."""
        order = sorted({k for part in parts for k in part.coefs}, reverse=True)
        joined = {}
        for k in order:
            pieces = []
            for part, count in zip(parts, rows):
                if k in part.coefs:
                    pieces.append(part.coefs[k])
                else:
                    like = next(p.coefs[k] for p in parts if k in p.coefs)
                    pieces.append(torch.zeros(like.shape[0], count, like.shape[2], dtype=like.dtype, device=like.device))
            joined[k] = torch.cat(pieces, 1)
        return DenseSteps(joined)
