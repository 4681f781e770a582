"""Dense coefficient storage of the backward pass, for tapes made of dense layers (imported networks).

The sparse storage (bounds/sparse.py) keeps one coefficient per (row, node) pair a row can reach and moves
coefficients through a linear instruction term by term: ideal for the sparse graphs of equations,
quadratic in memory for a dense 512 x 512 layer followed by a thousand output rows (every row reaches
every neuron, and every move is one index triple). Here the coefficients of all rows form one dense tensor
``lam`` [B, rows, columns]; a linear instruction moves them with one matrix product (its weights as a
[outputs, window] matrix, dense or sparse), a nonlinear one elementwise.

The columns are the ancestors of the pass's targets (``DenseLayout``), not every node before them: the
power-flow equations after a network reach a few of its outputs each, so a chunk of rows that bounds 12,000
of their nodes spans a few thousand columns, not the 14,000 nodes before them. Instructions are visited in
reverse order, each on the outputs the targets reach (``DenseStep``), so every column has received all its
consumers' coefficients before its own instruction replaces it by its arguments. Rows are processed in
chunks of targets whose columns keep ``B x rows x columns`` under a memory cap (``dense_chunks``). The pass
itself is ``graphver.bounds.backward``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from graphver.rounding import magnitude, may_underflow, term_slack
from graphver.tape.reach import ancestors
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


@dataclass(frozen=True)
class LayoutKey:
    """Tape cache key of the columns and steps of a dense pass from ``targets`` at instruction ``upto``."""

    upto: int
    targets: tuple[int, ...]
    device: str
    dtype: torch.dtype  # moved copies of a tape share its cache; the weights are stored in the tape's dtype


@dataclass(frozen=True)
class ChunksKey:
    """Tape cache key of the target chunks of a dense pass with room for ``capacity`` (row x column)
    coefficients per box (rounded down to a power of two, so that batches of similar size share it)."""

    upto: int
    targets: tuple[int, ...]
    capacity: int


def prefers_dense(tape: Tape) -> bool:
    """Whether the tape has dense layers (a linear instruction with at least DENSE_FAN_IN terms per output):
    the rule of ``BoundOptions(backward="auto")``."""
    return tape.cache.get(PrefersDenseKey(),
                          lambda: any(i.kind == "linear" and i.fan_in >= DENSE_FAN_IN for i in tape.instructions))


@dataclass(frozen=True)
class Weights:
    """A linear instruction's weights restricted to the outputs a pass keeps, as [outputs, window] matrices
    over the columns ``first:last`` of the pass (dense when at least a tenth full, sparse otherwise):
    the weights, |weights|, weight errors and non-zero pattern, and the smallest non-zero |weight|."""

    first: int
    last: int
    weights: Tensor
    magnitudes: Tensor
    errors: Tensor
    pattern: Tensor
    smallest: float


def as_weights(rows: Tensor, cols: Tensor, weights: Tensor, errors: Tensor, n_rows: int, device, dtype) -> Weights:
    """``Weights`` of the terms (row, column, weight, error), the columns shifted to start at their minimum."""
    first = int(cols.min()) if cols.numel() else 0
    last = int(cols.max()) + 1 if cols.numel() else 0
    shape = (n_rows, last - first)
    indices = torch.stack([rows.to(device), cols.to(device) - first])
    dense = cols.numel() >= 0.1 * max(1, shape[0] * shape[1])

    def matrix(values):
        values = values.to(device=device, dtype=dtype)
        if dense:
            out = torch.zeros(shape, dtype=dtype, device=device)
            return out.index_put_((indices[0], indices[1]), values, accumulate=True)
        return torch.sparse_coo_tensor(indices, values, shape, check_invariants=False).coalesce()

    magnitudes = weights.abs()
    nonzero = magnitudes[magnitudes > 0]
    smallest = float(nonzero.min()) if nonzero.numel() else math.inf
    return Weights(first, last, matrix(weights), matrix(magnitudes), matrix(errors),
                   matrix((magnitudes > 0).to(weights.dtype)), smallest)


def weight_matrices(tape: Tape, index: int, device, dtype) -> Weights:
    """A linear instruction's whole weights over the window of node ids it reads (cached)."""
    instr = tape.instructions[index]
    return tape.cache.get(WeightsKey(index, str(device), dtype),
                          lambda: as_weights(instr.rows, instr.cols, instr.weights, instr.weight_error, instr.size,
                                             device, dtype))


def times(dense: Tensor, matrix: Tensor) -> Tensor:
    """dense [M, size] @ matrix [size, window] (dense or sparse) -> dense [M, window]."""
    if matrix.is_sparse:
        return torch.sparse.mm(matrix.t(), dense.t()).t()
    return dense @ matrix


def transposed(matrix: Tensor) -> Tensor:
    return matrix.t().coalesce() if matrix.is_sparse else matrix.t()


@dataclass(frozen=True)
class DenseStep:
    """One instruction of a dense pass, on the outputs ``local`` (sorted indices into its outputs; ``None``:
    all of them) that the targets reach, which are the columns ``begin:end``. Nonlinear: ``arguments[s]`` the
    columns of argument s of each kept output. Linear: ``weights`` over the columns, and ``window`` the node
    ids of the columns ``weights.first:weights.last`` (``None`` when they are the nodes
    ``window_start + (0 .. last - first)``, a slice of the node intervals)."""

    instruction: int
    begin: int
    end: int
    local: Tensor | None
    arguments: tuple[Tensor, ...] = ()
    weights: Weights | None = None
    window: Tensor | None = None
    window_start: int = 0


@dataclass(frozen=True)
class Entry:
    """The first instruction of a pass whose targets are all outputs of one linear instruction: the pass
    starts on its arguments (each row ``sign * z_t`` as ``sign * (w_t . args + b_t)``), so the targets need
    no columns of their own. Terms of the targets' rows: ``target`` (index into the layout's targets),
    ``column`` and ``node`` of the argument, ``weight`` and its ``error``; ``bias`` and ``bias_error`` per
    target."""

    target: Tensor
    column: Tensor
    node: Tensor
    weight: Tensor
    error: Tensor
    bias: Tensor
    bias_error: Tensor


@dataclass(frozen=True)
class DenseLayout:
    """The columns of a dense pass (``nodes``: sorted node ids of the targets' ancestors, and of the targets
    unless the pass ``enters`` through their instruction; the first ``n_input_columns`` are inputs), the
    targets (sorted) and the steps in backward order."""

    nodes: Tensor
    n_input_columns: int
    targets: Tensor
    steps: tuple[DenseStep, ...]
    enters: Entry | None = None


def entry_of(tape: Tape, targets: np.ndarray, upto: int, nodes: np.ndarray, device) -> Entry:
    instr = tape.instructions[upto]
    local = targets - instr.start
    rank = np.full(instr.size, -1, dtype=np.int64)
    rank[local] = np.arange(len(local))
    rows_np, cols_np = instr.rows.cpu().numpy(), instr.cols.cpu().numpy()
    terms = np.flatnonzero(rank[rows_np] >= 0)
    pick = torch.as_tensor(terms, dtype=torch.long)
    move = lambda values: torch.as_tensor(values).to(device)  # noqa: E731
    return Entry(move(rank[rows_np[terms]]), move(np.searchsorted(nodes, cols_np[terms])), move(cols_np[terms]),
                 move(instr.weights[pick]), move(instr.weight_error[pick]), move(instr.bias[torch.as_tensor(local)]),
                 move(instr.bias_error[torch.as_tensor(local)]))


def entered(tape: Tape, targets: np.ndarray, upto: int) -> bool:
    """Whether a pass from ``targets`` enters through instruction ``upto`` (``Entry``)."""
    last = tape.instructions[upto] if upto >= 0 else None
    return last is not None and last.kind == "linear" and bool(np.all((targets >= last.start) & (targets < last.stop)))


def columns_of(tape: Tape, targets: np.ndarray, upto: int) -> np.ndarray:
    """The sorted node ids of a dense pass's columns: the targets' ancestors, and the targets themselves
    unless the pass enters through their instruction (no target is an ancestor of another then: they are
    outputs of one instruction)."""
    mask = ancestors(tape, targets, upto)
    if entered(tape, targets, upto):
        last = tape.instructions[upto]
        mask[last.start : last.stop] = False
    return np.flatnonzero(mask).astype(np.int64)


def build_layout(tape: Tape, targets: np.ndarray, upto: int, device) -> DenseLayout:
    nodes = columns_of(tape, targets, upto)
    enters = entered(tape, targets, upto)
    column = lambda ids: torch.as_tensor(np.searchsorted(nodes, ids), dtype=torch.long, device=device)  # noqa: E731
    steps = []
    for index in range(upto - 1 if enters else upto, -1, -1):
        instr = tape.instructions[index]
        begin, end = (int(p) for p in np.searchsorted(nodes, [instr.start, instr.stop]))
        if begin == end:
            continue
        kept = nodes[begin:end] - instr.start
        whole = end - begin == instr.size
        local = None if whole else torch.as_tensor(kept, dtype=torch.long, device=device)
        if instr.kind != "linear":
            arguments = tuple(column(a.cpu().numpy()[kept]) for a in instr.args)
            steps.append(DenseStep(index, begin, end, local, arguments=arguments))
            continue
        steps.append(linear_step(tape, index, begin, end, kept, local, nodes, device))
    return DenseLayout(torch.as_tensor(nodes, device=device), int(np.searchsorted(nodes, tape.n_inputs)),
                       torch.as_tensor(targets, device=device), tuple(steps),
                       entry_of(tape, targets, upto, nodes, device) if enters else None)


def linear_step(tape: Tape, index: int, begin: int, end: int, kept: np.ndarray, local: Tensor | None,
                nodes: np.ndarray, device) -> DenseStep:
    """The step of a linear instruction: its cached whole weights when the pass keeps all its outputs and
    every node of its window, else its weights restricted to the kept outputs over their columns."""
    instr = tape.instructions[index]
    dtype = instr.weights.dtype
    whole = weight_matrices(tape, index, device, dtype)
    start, stop = whole.first, whole.last  # node ids
    first, last = (int(p) for p in np.searchsorted(nodes, [start, stop]))
    if local is None and last - first == stop - start:
        return DenseStep(index, begin, end, None, weights=Weights(first, last, whole.weights, whole.magnitudes,
                         whole.errors, whole.pattern, whole.smallest), window_start=start)
    rows_np, cols_np = instr.rows.cpu().numpy(), instr.cols.cpu().numpy()
    rank = np.full(instr.size, -1, dtype=np.int64)
    rank[kept] = np.arange(len(kept))
    terms = rank[rows_np] >= 0
    columns = np.searchsorted(nodes, cols_np[terms])
    pick = torch.as_tensor(np.flatnonzero(terms), dtype=torch.long)
    weights = as_weights(torch.as_tensor(rank[rows_np][terms]), torch.as_tensor(columns), instr.weights[pick],
                         instr.weight_error[pick], len(kept), device, dtype)
    window = torch.as_tensor(nodes[weights.first : weights.last], dtype=torch.long, device=device)
    return DenseStep(index, begin, end, local, weights=weights, window=window)


def layout_for(tape: Tape, targets: Tensor, upto: int) -> DenseLayout:
    """The (cached) layout of a dense pass from ``targets`` starting at instruction ``upto``."""
    key = LayoutKey(upto, tuple(int(t) for t in targets.tolist()), str(tape.device), tape.dtype)
    return tape.cache.get(key, lambda: build_layout(tape, np.asarray(key.targets, dtype=np.int64), upto, tape.device))


def dense_chunks(tape: Tape, targets: Tensor, upto: int, batch: int, max_elements: int | None) -> list[Tensor]:
    """Consecutive chunks of ``targets`` (indices into them) such that each chunk's two rows per target times
    its columns (``columns_of``) times ``batch`` stay under ``max_elements`` (a chunk has at least one
    target). Cached per power-of-two capacity."""
    q = targets.numel()
    if max_elements is None:
        return [torch.arange(q)]
    capacity = 1 << max(0, (max_elements // max(1, batch)).bit_length() - 1)
    key = ChunksKey(upto, tuple(int(t) for t in targets.tolist()), capacity)

    def build():
        ids = np.asarray(key.targets, dtype=np.int64)
        fits = lambda begin, count: 2 * count * len(columns_of(tape, ids[begin : begin + count], upto)) <= capacity  # noqa: E731
        if fits(0, q):
            return [torch.arange(q)]
        # a chunk of ``base`` targets fits whatever they are (it spans at most the columns of all targets);
        # each chunk doubles from there while it fits
        base = max(1, capacity // (2 * len(columns_of(tape, ids, upto))))
        chunks, begin = [], 0
        while begin < q:
            count = min(base, q - begin)
            while count < q - begin and fits(begin, min(2 * count, q - begin)):
                count = min(2 * count, q - begin)
            chunks.append(torch.arange(begin, begin + count))
            begin += count
        return chunks

    return tape.cache.get(key, build)


class DenseStorage:
    """Coefficients ``[B, rows, columns]`` of rows ``sign * z_node`` over the columns of a ``DenseLayout``
    (the storage interface of the backward pass: see ``graphver.bounds.backward.CoefficientStorage``).
    Relaxation parameters have the layout [B, rows, outputs] of every output of an instruction, so that
    chunks of rows with different columns share one layout."""

    kind = "dense"

    def __init__(self, tape: Tape, nodes: Tensor, signs: Tensor, upto: int):
        self.tape, self.signs = tape, signs
        self.rows = nodes.numel()
        self.layout = layout_for(tape, torch.unique(nodes), upto)
        self.target = torch.searchsorted(self.layout.targets, nodes.to(self.layout.targets.device))

    def steps(self):
        return self.layout.steps

    def start(self, lo: Tensor, size: Tensor, floor: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        batch, device = lo.shape[0], lo.device
        lam = torch.zeros(batch, self.rows, self.layout.nodes.numel(), dtype=lo.dtype, device=device)
        signs, target = self.signs.to(lo), self.target.to(device)
        zero = torch.zeros(batch, self.rows, dtype=lo.dtype, device=device)
        entry = self.layout.enters
        if entry is None:
            columns = torch.searchsorted(self.layout.nodes.to(device), self.layout.targets.to(device)[target])
            lam[:, torch.arange(self.rows, device=device), columns] = signs
            return lam, zero, zero.clone(), zero.clone()
        # the first step, through the targets' linear instruction, as the generic pass would take it with
        # coefficients +-1 on the targets: terms sign * w, slack |w| * size, errors |error| * size
        n = self.layout.targets.numel()
        rows = torch.zeros(n, self.layout.nodes.numel(), dtype=lo.dtype, device=device)
        rows.index_put_((entry.target, entry.column), entry.weight.to(lo), accumulate=True)
        lam += (signs[:, None] * rows[target])[None]
        term_size = size[:, entry.node]
        weight = entry.weight.to(lo).expand(batch, -1)
        underflowed = may_underflow(weight, torch.ones_like(weight), weight)
        per_target = lambda values: values.new_zeros(batch, n).index_add_(1, entry.target, values)[:, target]  # noqa: E731
        slack = per_target(term_slack(weight, term_size, underflowed, floor))
        error = per_target(magnitude(entry.error.to(lo).expand(batch, -1), term_size))
        bias = signs * entry.bias.to(lo)[target]
        bias_error = entry.bias_error.to(lo)[target].abs()
        return lam, bias.expand(batch, -1).clone(), slack + bias.abs(), error + bias_error

    def outputs(self, lam: Tensor, step: DenseStep) -> Tensor | None:
        """The coefficients on the kept outputs, cleared in ``lam``; None when all are zero."""
        coef = lam[:, :, step.begin : step.end].clone()
        if not bool(coef.any()):
            return None
        lam[:, :, step.begin : step.end] = 0
        return coef

    def kept(self, step: DenseStep, values: Tensor) -> Tensor:
        """Values [..., size] of every output at the kept outputs."""
        return values if step.local is None else values.index_select(-1, step.local.to(values.device))

    def at_outputs(self, step: DenseStep, values: Tensor) -> Tensor:
        return self.kept(step, values).unsqueeze(-2)

    def per_entry(self, step: DenseStep, values: Tensor) -> Tensor:
        batch, size = values.shape
        return values.unsqueeze(1).expand(batch, self.rows, size).reshape(batch, self.rows * size)

    def as_parameters(self, step: DenseStep, flat: Tensor) -> Tensor:
        return flat.reshape(flat.shape[0], self.rows, -1)

    def from_entries(self, step: DenseStep, flat: Tensor) -> Tensor:
        return self.kept(step, self.as_parameters(step, flat))

    def parameter_shape(self, step: DenseStep, batch: int) -> tuple[int, ...]:
        return (batch, self.rows, self.tape.instructions[step.instruction].size)

    def row_sum(self, step: DenseStep, values: Tensor) -> Tensor:
        return values.sum(-1)

    def to_argument(self, lam: Tensor, step: DenseStep, slot: int, moved: Tensor) -> None:
        lam.index_add_(2, step.arguments[slot].to(lam.device), moved)

    def argument_values(self, step: DenseStep, slot: int, values: Tensor) -> Tensor:
        args = self.tape.instructions[step.instruction].args[slot].to(values.device)
        return values[:, None, self.kept(step, args)]

    def through_weights(self, lam: Tensor, step: DenseStep, coef: Tensor, size: Tensor, floor: float):
        """Move the coefficients on a linear instruction's kept outputs through its weight matrix; returns the
        rounding slack of the formed terms and the error of the stored weights, per row. Per output r the
        slack is ``|coef_r| * sum_k |w_rk| max(|l_k|, |u_k|)`` (the same terms as the sparse storage sums one
        by one), and the same for the weight errors."""
        batch, rows, kept = coef.shape
        w = step.weights
        if w.last == w.first:
            zero = torch.zeros(batch, rows, dtype=lam.dtype, device=lam.device)
            return zero, zero.clone()
        lam[:, :, w.first : w.last] += times(coef.reshape(batch * rows, kept), w.weights).view(batch, rows, -1)
        if step.window is None:
            window = size[:, step.window_start : step.window_start + w.last - w.first]
        else:
            window = size[:, step.window.to(size.device)]
        row_size = torch.nan_to_num(times(window, transposed(w.magnitudes)), nan=0.0)
        row_error = torch.nan_to_num(times(window, transposed(w.errors)), nan=0.0)
        absolute = coef.abs()
        slack = torch.nan_to_num(absolute * row_size[:, None, :], nan=0.0).sum(-1)
        # a product coef * w below the smallest normal number may have underflowed; it later multiplies
        # a node of size at most size_k: floor * sum_k [w_rk != 0] size_k covers it
        normal = 2.0 * float(torch.finfo(lam.dtype).tiny)
        underflowed = (absolute > 0) & (absolute * w.smallest < normal)
        if bool(underflowed.any()):
            row_reach = torch.nan_to_num(times(window, transposed(w.pattern)), nan=0.0)
            slack = slack + torch.nan_to_num(underflowed * (floor * row_reach[:, None, :]), nan=0.0).sum(-1)
        error = torch.nan_to_num(absolute * row_error[:, None, :], nan=0.0).sum(-1)
        return slack, error

    def input_nodes(self, device) -> Tensor:
        return self.layout.nodes[: self.layout.n_input_columns].to(device)

    def inputs(self, lam: Tensor, lo: Tensor, hi: Tensor, size: Tensor):
        k, nodes = self.layout.n_input_columns, self.input_nodes(lo.device)
        return lam[:, :, :k], lo[:, None, nodes], hi[:, None, nodes], size[:, None, nodes]

    def input_row_sum(self, values: Tensor) -> Tensor:
        return values.sum(-1)

    def input_matrix(self, coef: Tensor) -> Tensor:
        out = coef.new_zeros(coef.shape[0], self.rows, self.tape.n_inputs)
        out[:, :, self.input_nodes(coef.device)] = coef
        return out

    def kept_steps(self, kept: dict[int, Tensor]) -> "DenseSteps":
        """The kept coefficients on every output of their instructions (0 on outputs the rows do not reach)."""
        steps = {s.instruction: s for s in self.layout.steps}
        full = {}
        for index, coef in kept.items():
            local = steps[index].local
            if local is None:
                full[index] = coef
            else:
                size = self.tape.instructions[index].size
                full[index] = coef.new_zeros(*coef.shape[:2], size).index_copy_(2, local.to(coef.device), coef)
        return DenseSteps(full)


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
    def joined(parts: list["DenseSteps"], rows: list[Tensor], total: int, tape: Tape) -> "DenseSteps":
        """The steps of chunks of the rows of one pass (chunk i on the rows ``rows[i]`` of ``total``) as one;
        an instruction a chunk skipped (all its coefficients zero) stays zero there. Instructions stay in
        backward order."""
        order = sorted({k for part in parts for k in part.coefs}, reverse=True)
        joined = {}
        for k in order:
            like = next(p.coefs[k] for p in parts if k in p.coefs)
            out = like.new_zeros(like.shape[0], total, like.shape[2])
            for part, index in zip(parts, rows):
                if k in part.coefs:
                    out[:, index.to(out.device)] = part.coefs[k]
            joined[k] = out
        return DenseSteps(joined)
