"""Sparsity of first and second derivatives on a tape, and the colourings that compress them.

IPOPT needs the constraint Jacobian and the Hessian of the Lagrangian at every iteration. Computing them
one row (or one variable) at a time costs one autograd pass each: hundreds on a power network, and a
dense Hessian pattern makes IPOPT's factorisation dense too. Both are sparse and structured, so they are
computed compressed (Curtis-Powell-Reid for the Jacobian, direct recovery for the Hessian):

- ``hessian_pattern``: the entries (i, j) that the Hessian of any weighted sum of the given outputs can
  make non-zero. ``d2 phi(u) = phi''(u) du du^T + phi'(u) d2 u`` and second derivatives of linear nodes
  are sums of their arguments', so every entry comes from the own second-order term of some nonlinear
  node that the outputs depend on: ``D(u) x D(u)`` for a unary op of ``u`` (``D``: the inputs a node
  depends on), ``D(a) x D(b)`` and its mirror for ``a * b``, ``(D(a) | D(b))^2`` for another binary op.
  The pattern is a superset of the non-zeros, exact in structure, independent of the point.
- ``greedy_colouring``: colours the vertices of a conflict graph so that no two conflicting vertices
  share a colour (smallest free colour, vertices by decreasing degree).
- Jacobian: rows that share no input are summed into one group; one reverse pass per group gives each
  row's gradient on its own inputs. Hessian: columns whose pattern rows are disjoint (distance-2
  colouring of the pattern graph) form one seed vector; one Hessian-vector product per seed gives each
  entry directly, ``H[i, j] = (H s_colour(j))[i]``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from graphver.tape.reach import ancestors, reach
from graphver.tape.tape import Tape


def dependency_matrix(rows: list[np.ndarray], n: int) -> sp.csr_matrix:
    """Boolean [len(rows), n]: row k depends on the inputs ``rows[k]``."""
    if not rows:
        return sp.csr_matrix((0, n), dtype=bool)
    cols = np.concatenate(rows).astype(np.int64)
    owners = np.repeat(np.arange(len(rows)), [len(r) for r in rows])
    return sp.csr_matrix((np.ones(len(cols), dtype=bool), (owners, cols)), shape=(len(rows), n))


def hessian_pattern(tape: Tape, outputs: list[int]) -> sp.csr_matrix:
    """Boolean symmetric [n, n]: the possible non-zeros of the Hessian of ``sum_k w_k out[outputs[k]]`` for
    any weights (see the module docstring)."""
    n = tape.n_inputs
    empty = sp.csr_matrix((n, n), dtype=bool)
    if not outputs:
        return empty
    targets = np.asarray([int(tape.outputs[o]) for o in outputs], dtype=np.int64)
    upto = max(tape.instruction_of(int(t)) for t in targets)
    if upto < 0:
        return empty
    needed = ancestors(tape, targets, upto)  # the nodes the outputs depend on
    squares, products = [], []  # argument nodes: own terms D(u) D(u)^T; pairs (a, b): D(a) D(b)^T + mirror
    for instr in tape.instructions[: upto + 1]:
        if instr.kind == "linear":
            continue
        used = needed[instr.start : instr.stop]
        if not used.any():
            continue
        args = [a.cpu().numpy().astype(np.int64)[used] for a in instr.args]
        if len(args) == 1:
            squares.append((args[0], None))
        elif instr.op == "mul":
            products.append((args[0], args[1]))
        else:  # f(a, b): all second derivatives, (D(a) | D(b))^2
            squares.append((args[0], args[1]))
    if not squares and not products:
        return empty
    nodes = np.unique(np.concatenate([a for pair in squares + products for a in pair if a is not None]))
    deps = reach(tape, nodes, upto).tocsc()[:n].astype(np.int64)  # [n, nodes]: the inputs of each node
    column = lambda a: np.searchsorted(nodes, a)  # noqa: E731
    pattern = sp.csr_matrix((n, n), dtype=np.int64)
    for a, b in squares:
        union = deps[:, column(a)] if b is None else deps[:, column(a)] + deps[:, column(b)]
        pattern = pattern + union @ union.T
    for a, b in products:
        pattern = pattern + deps[:, column(a)] @ deps[:, column(b)].T
    pattern = sp.csr_matrix((pattern + pattern.T) > 0)
    pattern.eliminate_zeros()
    return pattern


def greedy_colouring(conflicts: sp.csr_matrix) -> np.ndarray:
    """Colours [V] (0, 1, ...) of the vertices of the symmetric boolean ``conflicts`` [V, V] such that no
    two vertices joined by an off-diagonal entry share a colour."""
    conflicts = sp.csr_matrix(conflicts)
    size = conflicts.shape[0]
    colours = np.full(size, -1, dtype=np.int64)
    degree = np.diff(conflicts.indptr)
    indptr, indices = conflicts.indptr, conflicts.indices
    for v in np.argsort(-degree, kind="stable"):
        taken = colours[indices[indptr[v] : indptr[v + 1]]]
        taken = np.unique(taken[taken >= 0])  # sorted: the first position where taken[k] != k is free
        gaps = np.nonzero(taken != np.arange(len(taken)))[0]
        colours[v] = int(gaps[0]) if len(gaps) else len(taken)
    return colours
