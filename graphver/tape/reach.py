"""Reachability on a tape: which nodes and inputs a node depends on, computed with scipy sparse matrices.

- ``reach``: the ancestors of each target node (the entries a backward pass from them can make non-zero,
  ``graphver.bounds.plan``); ``ancestors``: their union (the columns of a dense pass);
- ``input_dependencies``: the inputs each output depends on (the sparsity of its gradient, for IPOPT);
- ``nonlinear_support``: the inputs that enter each output through a nonlinear op (splitting the others
  cannot tighten the output's relaxation; LP branching).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from graphver.tape.tape import Tape


def reach(tape: Tape, targets: np.ndarray, upto: int) -> sp.csr_matrix:
    """Boolean [width, Q] matrix: node n is the target q or one of its ancestors (``width``: the nodes up to
    the end of instruction ``upto``; every target lies at or before it, -1 when all are inputs)."""
    width = tape.instructions[upto].stop if upto >= 0 else tape.n_inputs
    q = len(targets)
    reached = sp.csr_matrix((np.ones(q, dtype=bool), (targets, np.arange(q))), shape=(width, q))
    for index in range(upto, -1, -1):
        instr = tape.instructions[index]
        out = reached[instr.start : instr.stop]
        if out.nnz == 0:
            continue
        if instr.kind == "linear":
            src, dst = instr.cols.cpu().numpy(), instr.rows.cpu().numpy()
        else:
            src = np.concatenate([a.cpu().numpy() for a in instr.args])
            dst = np.tile(np.arange(instr.size), len(instr.args))
        move = sp.csr_matrix((np.ones(len(src), dtype=bool), (src, dst)), shape=(width, instr.size))
        reached = reached + move @ out
        reached.data[:] = True
    return reached


def ancestors(tape: Tape, targets: np.ndarray, upto: int) -> np.ndarray:
    """Boolean [width] mask of the targets and their ancestors (``width`` as in ``reach``): one sweep, for
    when the union is all that is needed."""
    width = tape.instructions[upto].stop if upto >= 0 else tape.n_inputs
    mask = np.zeros(width, dtype=bool)
    mask[targets] = True
    for index in range(upto, -1, -1):
        instr = tape.instructions[index]
        out = mask[instr.start : instr.stop]
        if not out.any():
            continue
        if instr.kind == "linear":
            rows, cols = instr.rows.cpu().numpy(), instr.cols.cpu().numpy()
            mask[cols[out[rows]]] = True
        else:
            for argument in instr.args:
                mask[argument.cpu().numpy()[out]] = True
    return mask


def input_dependencies(tape: Tape, outputs: list[int]) -> list[np.ndarray]:
    """For each output index, the inputs it depends on (the sparsity of its gradient)."""
    targets = np.asarray([int(tape.outputs[o]) for o in outputs], dtype=np.int64)
    if len(targets) == 0:
        return []
    upto = max(tape.instruction_of(int(t)) for t in targets)
    reached = reach(tape, targets, upto).tocsc()[: tape.n_inputs].tocsc()
    reached.eliminate_zeros()
    reached.sort_indices()
    starts = reached.indptr
    return [reached.indices[starts[q] : starts[q + 1]].astype(np.int64) for q in range(len(targets))]


@dataclass(frozen=True)
class SupportKey:
    """Tape cache key of ``nonlinear_support``."""


def nonlinear_support(tape: Tape) -> Tensor:
    """Boolean [outputs, inputs]: input i enters output row q through a nonlinear op (it is an ancestor of
    an argument of a nonlinear node that is an ancestor of q). Splitting such an input tightens the row's
    relaxation; splitting an input that enters only linearly does not. Cached on the tape."""

    def build() -> Tensor:
        outputs = tape.outputs.cpu().numpy().astype(np.int64)
        upto = max(tape.instruction_of(int(t)) for t in outputs)
        support = np.zeros((len(outputs), tape.n_inputs), dtype=bool)
        nonlinear = [instr for instr in tape.instructions[: upto + 1] if instr.kind != "linear"]
        if nonlinear:
            rows = reach(tape, outputs, upto).tocsr()  # [width, Q]
            args = np.concatenate([a.cpu().numpy() for instr in nonlinear for a in instr.args]).astype(np.int64)
            owners = np.concatenate([np.arange(instr.start, instr.stop) for instr in nonlinear for _ in instr.args])
            ancestors = reach(tape, args, upto).tocsr()[: tape.n_inputs]  # [inputs, M]
            feeds = rows[owners]  # [M, Q]: entry m's nonlinear node reaches row q
            support = ((ancestors.astype(np.int64) @ feeds.astype(np.int64)) > 0).toarray().T
        return torch.as_tensor(np.asarray(support), dtype=torch.bool)

    return tape.cache.get(SupportKey(), build)
