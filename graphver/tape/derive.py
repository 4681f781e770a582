"""What a tape's producers derive from its instructions, computed in this one place.

Both producers (the sympy compiler and the importers, through ``graphver.tape.builder.TapeBuilder``) and
the tape validator read these rules:

- ``Supports``: the input support of every node whose IBP interval is exact, built one instruction at a
  time. Exact: inputs and constants; any node whose arguments are all exact with pairwise disjoint
  supports (no input occurs twice, so IBP has no dependency problem, and every op's interval rule is
  tight). CROWN cannot tighten such a node, so it is never refined;
- ``refine_sets``: ``Instruction.refine``, the outputs of an instruction that are an argument of a
  nonlinear op and not exact;
- ``accumulation_terms``: ``Tape.accumulation_terms``, the bound on the number of terms of any sum a
  backward pass forms (the ``n`` of the rounding margin ``gamma(n)``, docs/developer.md).

Everything is vectorised over an instruction's (output, argument) pairs, so the cost grows with the
tape's size, not with the number of its scalar nodes times its depth.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def argument_pairs(instr) -> tuple[np.ndarray, np.ndarray]:
    """The (local output, global argument node) pairs of an instruction, one per use of an argument: the
    terms of a linear instruction, every argument slot of a nonlinear one."""
    if instr.kind == "linear":
        return instr.rows.cpu().numpy(), instr.cols.cpu().numpy()
    outputs = np.tile(np.arange(instr.size, dtype=np.int64), len(instr.args))
    if not instr.args:
        return outputs, np.zeros(0, dtype=np.int64)
    return outputs, np.concatenate([a.cpu().numpy() for a in instr.args])


class Growing:
    """A one-dimensional numpy array that grows at its end in amortised constant time."""

    def __init__(self, values: np.ndarray):
        self.data = np.array(values)
        self.size = len(values)

    def extend(self, values: np.ndarray) -> None:
        end = self.size + len(values)
        if end > len(self.data):
            grown = np.empty(max(end, 2 * len(self.data), 16), dtype=self.data.dtype)
            grown[: self.size] = self.data[: self.size]
            self.data = grown
        self.data[self.size : end] = values
        self.size = end

    @property
    def values(self) -> np.ndarray:
        return self.data[: self.size]


class Supports:
    """Input supports of the nodes whose IBP interval is exact, node by node in tape order.

    ``exact`` [n_nodes] says which nodes are exact; an exact node's support is the sorted set of inputs it
    depends on (``support(node)``). Inputs are exact with support ``{i}``; a constant (a linear output
    without terms) is exact with the empty support."""

    def __init__(self, n_inputs: int):
        self.n_inputs = n_inputs
        self._exact = Growing(np.ones(n_inputs, dtype=bool))
        self._length = Growing(np.ones(n_inputs, dtype=np.int64))
        self._offset = Growing(np.arange(n_inputs, dtype=np.int64))
        self._members = Growing(np.arange(n_inputs, dtype=np.int64))

    @property
    def exact(self) -> np.ndarray:
        return self._exact.values

    def support(self, node: int) -> np.ndarray:
        start = self._offset.values[node]
        return self._members.values[start : start + self._length.values[node]]

    def add(self, size: int, outputs: np.ndarray, args: np.ndarray) -> None:
        """Append the ``size`` outputs of one instruction, given its (local output, argument node) pairs."""
        exact, length = self._exact.values, self._length.values
        blocked = np.zeros(size, dtype=bool)
        blocked[outputs[~exact[args]]] = True
        count = np.bincount(outputs, weights=length[args], minlength=size)  # sum of the argument supports
        candidate = ~blocked & (count <= self.n_inputs)  # disjoint supports cannot hold more inputs than exist
        keep = candidate[outputs]
        rows, sources = outputs[keep], args[keep]
        lengths = length[sources]
        total = int(lengths.sum())
        within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        members = self._members.values[np.repeat(self._offset.values[sources], lengths) + within]
        stride = max(self.n_inputs, 1)
        keys = np.unique(np.repeat(rows, lengths) * stride + members)  # sorted by row, then input
        key_rows = keys // stride
        union = np.bincount(key_rows, minlength=size)
        is_exact = candidate & (union == count)  # no input counted twice: the supports are disjoint
        new_length = np.where(is_exact, union, 0).astype(np.int64)
        self._offset.extend(self._members.size + np.cumsum(new_length) - new_length)
        self._members.extend(keys[is_exact[key_rows]] % stride)
        self._length.extend(new_length)
        self._exact.extend(is_exact)


def in_range(nodes: np.ndarray, n_nodes: int) -> np.ndarray:
    """The node indices within [0, n_nodes) (one out of range is the validator's to report, not a crash here)."""
    return nodes[(nodes >= 0) & (nodes < n_nodes)]


def refine_sets(instructions, exact: np.ndarray, n_nodes: int, live: np.ndarray | None = None) -> list[Tensor]:
    """``Instruction.refine`` of each instruction: local indices of its outputs that are an argument of a
    nonlinear op and whose IBP interval is not exact (``Supports.exact``). With ``live`` [n_nodes] (the
    nodes the tape's outputs depend on), only the arguments of live nonlinear nodes: an instruction kept
    for one of its outputs does not refine the arguments of the others.

    A node that is a one-term affine map ``w z + b`` of another node z (a linear row with one term) is not
    refined itself: its CROWN bound is w times z's plus b, so IBP from z's refined interval is as tight as
    CROWN on it. z is refined instead (unless exact), and the rule repeats down chains of such maps. An
    imported piecewise-linear activation (one affine piece per ReLU of a wide layer) is then refined on its
    few arguments, not on its many pieces."""
    needs = np.zeros(n_nodes, dtype=bool)
    args = []
    for instr in instructions:
        if instr.kind == "linear":
            continue
        used = slice(None) if live is None else live[instr.start : instr.stop]
        args.extend(a.cpu().numpy()[used] for a in instr.args)
    if args:
        needs[in_range(np.concatenate(args), n_nodes)] = True
    needs[: len(exact)] &= ~exact
    for instr in reversed(instructions):
        if instr.kind != "linear" or not needs[instr.start : instr.stop].any():
            continue
        rows, cols = instr.rows.cpu().numpy(), instr.cols.cpu().numpy()
        ok = (cols >= 0) & (cols < n_nodes)
        single = np.bincount(rows, minlength=instr.size) == 1
        moved = single[rows] & needs[instr.start + rows] & ok
        if moved.any():
            needs[instr.start + rows[moved]] = False
            target = cols[moved]
            inside = target < len(exact)
            target = np.concatenate([target[~inside], target[inside][~exact[target[inside]]]])
            needs[target] = True
    return [torch.as_tensor(np.nonzero(needs[i.start : i.stop])[0], dtype=torch.long) for i in instructions]


def accumulation_terms(n_inputs: int, n_nodes: int, instructions, outputs) -> int:
    """A bound on the number of terms of any sum a backward pass forms (``Tape.accumulation_terms``).

    ``max uses + 1 + max linear fan-in + largest instruction + n_inputs + n_instructions + 4``: a node's
    coefficient gathers one term per use (each argument slot and each linear term that reads it, and each
    time it is an output) plus its start value; the rest bounds the sums over an instruction's terms and
    outputs, over the instructions and over the inputs. Fan-ins are counted from the terms themselves,
    never taken from ``Instruction.fan_in``."""
    outputs = np.asarray(outputs.cpu().numpy() if isinstance(outputs, Tensor) else outputs, dtype=np.int64)
    used = [outputs.reshape(-1)]
    fan_in = width = 0
    for instr in instructions:
        rows, args = argument_pairs(instr)
        used.append(args)
        width = max(width, instr.size)
        if instr.kind == "linear" and rows.size:
            fan_in = max(fan_in, int(np.bincount(rows).max()))
    uses = np.bincount(in_range(np.concatenate(used), n_nodes), minlength=max(n_nodes, 1))
    return int(uses.max()) + 1 + fan_in + width + n_inputs + len(instructions) + 4
