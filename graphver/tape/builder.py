"""The one way tapes are built: the sympy compiler (``tape.compile.freeze``) and the importers that never
see sympy (ONNX, the VNN-COMP margin rows) emit their instructions through ``TapeBuilder``.

A symbolic tensor is a numpy array of global node indices with the tensor's shape, so reshaping,
slicing, gathering, concatenating, transposing and broadcasting are numpy operations on index arrays
and emit nothing. Only arithmetic emits instructions, one per call (tensor level: a dense 512 x 512
layer is one linear instruction with its weights as a sparse matrix, never 512 scalar nodes of sympy;
the compiler emits one call per group of scalar nodes of the same op at the same depth):

- ``linear``: sums of constant-weighted terms plus a bias (Add, Sub, Neg, scaling, MatMul/Gemm with a
  constant operand, ReduceSum; the compiler's linear nodes and constants); zero weights whose value is
  exact are dropped, so an output multiplied by a constant 0 is exactly its bias;
- ``elementwise``: an op of the registry applied elementwise (relu, sigmoid, sin, mul, ...).

Constants are exact: every weight is a float64 number with a recorded bound on its distance from the
exact constant (0 for float32/float64 weights, which convert exactly; the rounding error of a weight the
importer computes, such as 1/c; the compiler's rounding of exact sympy numbers). ``tape`` freezes what
was emitted: the refine sets and the accumulation bound come from ``graphver.tape.derive``, and every
tape is checked by ``graphver.tape.validate`` before it is returned.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from graphver.errors import ModelError
from graphver.ops.piecewise import PiecewiseTable
from graphver.rounding import computed_error
from graphver.tape.derive import Growing, Supports, accumulation_terms, argument_pairs, refine_sets
from graphver.tape.tape import Instruction, Tape
from graphver.tape.validate import check_instruction, validate_tape


MAX_PIECEWISE_TABLES = 64  # distinct piecewise-linear functions one linear call may become (else: kept linear)


class TapeBuilder:
    """Allocates global node indices and emits instructions in topological order.

    Every node has a label for messages (the inputs: their names). A builder may be frozen more than once
    (``tape``) and extended in between: the VNN-COMP runner appends margin rows to an imported network."""

    def __init__(self, input_names: list[str]):
        self.n_inputs = len(input_names)
        self.input_names = tuple(input_names)
        self.labels: list = list(input_names)
        self.instructions: list[Instruction] = []
        self.size = self.n_inputs
        self._levels = Growing(np.zeros(self.n_inputs, dtype=np.int64))
        self.supports = Supports(self.n_inputs)

    def inputs(self, shape) -> np.ndarray:
        return np.arange(self.n_inputs, dtype=np.int64).reshape(shape)

    def level_of(self, nodes: np.ndarray) -> np.ndarray:
        return self._levels.values[nodes]

    def allocate(self, count: int, label) -> np.ndarray:
        """``count`` new nodes; ``label`` is one text for all (node i is ``label[i]``) or one label each."""
        nodes = np.arange(self.size, self.size + count, dtype=np.int64)
        self.size += count
        if isinstance(label, str):
            self.labels.extend(f"{label}[{i}]" for i in range(count))
        else:
            if len(label) != count:
                raise ValueError(f"{len(label)} labels for {count} nodes")
            self.labels.extend(label)
        return nodes

    def linear(self, terms: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]], bias: np.ndarray, label,
               shape, bias_error: np.ndarray | None = None) -> np.ndarray:
        """out = sum over terms of weight * x[node] + bias, elementwise over ``shape``.

        terms: (rows [T] local output indices, cols [T] global nodes, weights [T] float64, weight errors [T]
        or None); bias [size], with its errors ``bias_error`` [size] (None: exact). A weight or bias that is
        not finite is rejected unless its error is infinite (an exact constant beyond the float range, which
        the compiler keeps: every bound through it is infinite, never wrong). Returns the output node
        indices with ``shape``."""
        count = int(np.prod(shape, dtype=np.int64))
        if count == 0:
            return np.zeros(shape, dtype=np.int64)
        empty = np.zeros(0, dtype=np.int64)
        rows = np.concatenate([np.asarray(t[0], dtype=np.int64) for t in terms]) if terms else empty
        cols = np.concatenate([np.asarray(t[1], dtype=np.int64) for t in terms]) if terms else empty
        weights = np.concatenate([np.asarray(t[2], dtype=np.float64) for t in terms]) if terms else np.zeros(0)
        errors = np.concatenate([np.zeros(len(t[2])) if t[3] is None else np.asarray(t[3], dtype=np.float64)
                                 for t in terms]) if terms else np.zeros(0)
        bias = np.array(bias, dtype=np.float64).reshape(count)
        bias_error = np.zeros(count) if bias_error is None else np.array(bias_error, dtype=np.float64).reshape(count)
        keep = (weights != 0) | (errors != 0)  # a weight that rounded to 0 keeps its error
        rows, cols, weights, errors = rows[keep], cols[keep], weights[keep], errors[keep]
        if not (covered(weights, errors) and covered(bias, bias_error)):
            raise ModelError(f"{label_of(label)}: a weight or bias is not finite")
        fused = self._piecewise(rows, cols, weights, errors, bias, bias_error, count, label)
        if fused is not None:
            return fused.reshape(shape)
        nodes = self.allocate(count, label)
        fan_in = int(np.bincount(rows, minlength=count).max()) if rows.size and rows.min() >= 0 else 0
        self._emit(Instruction(
            kind="linear", start=int(nodes[0]), stop=self.size, level=0,
            rows=torch.as_tensor(rows, dtype=torch.long), cols=torch.as_tensor(cols, dtype=torch.long),
            weights=torch.as_tensor(weights, dtype=torch.float64), bias=torch.as_tensor(bias),
            weight_error=torch.as_tensor(errors, dtype=torch.float64), bias_error=torch.as_tensor(bias_error),
            fan_in=fan_in))
        return nodes.reshape(shape)

    def _piecewise(self, rows, cols, weights, errors, bias, bias_error, count: int, label) -> np.ndarray | None:
        """The rows of a linear call as piecewise-linear ops of one node each, when every row is
        ``bias + sum_k c_k relu(w_k x + b_k)`` over the outputs of one ReLU instruction whose arguments are
        one-term rows ``w_k x + b_k`` of one linear instruction, the same x for all pieces of the row
        (graphver.ops.piecewise); None otherwise. Exact constants only (no weight or bias errors). The ReLU
        and its argument rows stay on the tape (other consumers may read them); a tape keeps only what its
        outputs need."""
        if rows.size < 2 * count or errors.any() or bias_error.any() or not self.instructions or cols.min() < self.n_inputs:
            return None
        starts = np.array([i.start for i in self.instructions])
        owner = np.searchsorted(starts, cols, side="right") - 1
        relu = self.instructions[int(owner[0])]
        if (owner != owner[0]).any() or relu.kind != "unary" or relu.op != "relu":
            return None
        pieces_of = relu.args[0].cpu().numpy()[cols - relu.start]  # the pre-activation node of each term
        first = np.searchsorted(starts, pieces_of, side="right") - 1
        source = self.instructions[int(first[0])]
        if (first != first[0]).any() or source.kind != "linear" or source.weight_error.any() or source.bias_error.any():
            return None
        local = pieces_of - source.start
        s_rows, s_cols, s_weights = (t.cpu().numpy() for t in (source.rows, source.cols, source.weights))
        terms = np.bincount(s_rows, minlength=source.size)
        if (terms[local] != 1).any():
            return None
        position = np.full(source.size, -1, dtype=np.int64)
        position[s_rows] = np.arange(s_rows.size)
        x = s_cols[position[local]]
        slope, shift = s_weights[position[local]], source.bias.cpu().numpy()[local]
        order = np.lexsort((x, rows))
        rows, x, slope, shift, weights = rows[order], x[order], slope[order], shift[order], weights[order]
        begins = np.searchsorted(rows, np.arange(count))
        ends = np.searchsorted(rows, np.arange(count), side="right")
        if ((ends - begins) < 2).any() or (x[begins] != x[ends - 1]).any():
            return None  # a row with fewer than two pieces, or pieces of several nodes
        groups: dict = {}
        for r in range(count):
            part = slice(begins[r], ends[r])
            table = PiecewiseTable(tuple(slope[part].tolist()), tuple(shift[part].tolist()),
                                   tuple(weights[part].tolist()), float(bias[r]))
            groups.setdefault(table, []).append(r)
        if len(groups) > MAX_PIECEWISE_TABLES:
            return None
        out = np.zeros(count, dtype=np.int64)
        names = [f"{label}[{i}]" for i in range(count)] if isinstance(label, str) else list(label)
        for table, members in groups.items():
            members = np.array(members)
            out[members] = self.elementwise("unary", "piecewise_linear", [x[begins[members]]],
                                            [names[m] for m in members], param=table)
        return out

    def constant(self, value: np.ndarray, label) -> np.ndarray:
        """Nodes holding constant values (a linear instruction without terms)."""
        value = np.asarray(value, dtype=np.float64)
        return self.linear([], value.reshape(-1), label, value.shape)

    def elementwise(self, kind: str, op: str, args: list[np.ndarray], label, param: float | None = None) -> np.ndarray:
        """An op of the registry applied elementwise to equally shaped index arrays."""
        shape = args[0].shape
        flat = [np.array(a, dtype=np.int64).reshape(-1) for a in args]  # a copy: index arrays may be views
        count = flat[0].size
        if count == 0:
            return np.zeros(shape, dtype=np.int64)
        nodes = self.allocate(count, label)
        self._emit(Instruction(
            kind=kind, start=int(nodes[0]), stop=self.size, level=0, op=op, param=param,
            args=tuple(torch.as_tensor(a, dtype=torch.long) for a in flat)))
        return nodes.reshape(shape)

    def _emit(self, instr: Instruction) -> None:
        """Check an instruction (a producer's bug is named where it is made), give it its level (1 + the
        deepest argument's) and append it."""
        check_instruction(len(self.instructions), instr, self.labels)
        outputs, args = argument_pairs(instr)
        instr = replace(instr, level=1 + (int(self.level_of(args).max()) if args.size else 0))
        self._levels.extend(np.full(instr.size, instr.level, dtype=np.int64))
        self.supports.add(instr.size, outputs, args)
        self.instructions.append(instr)

    def tape(self, outputs: np.ndarray) -> Tape:
        """Freeze what was emitted into a validated tape with outputs ``outputs`` (global node indices)."""
        outputs = np.array(outputs, dtype=np.int64).reshape(-1)
        kept, index, live = self._needed(outputs)
        size = self.n_inputs + sum(i.size for i in kept)
        exact = self.supports.exact
        kept_nodes = np.nonzero(index >= 0)[0]
        exact = exact[kept_nodes[kept_nodes < len(exact)]]
        refine = refine_sets(kept, exact, size, live[kept_nodes])
        instructions = tuple(replace(instr, refine=local) for instr, local in zip(kept, refine))
        labels = tuple(self.labels[int(n)] for n in kept_nodes)
        outputs = index[outputs]
        tape = Tape(n_inputs=self.n_inputs, n_nodes=size, instructions=instructions,
                    outputs=torch.as_tensor(outputs, dtype=torch.long), labels=labels,
                    input_names=self.input_names,
                    accumulation_terms=accumulation_terms(self.n_inputs, size, instructions, outputs))
        validate_tape(tape)
        return tape


    def _needed(self, outputs: np.ndarray) -> tuple[list[Instruction], np.ndarray, np.ndarray]:
        """The instructions the outputs depend on, renumbered contiguously, the new index of every node
        (-1: dropped) and which nodes the outputs depend on (``live``, old indices). Whole instructions are
        kept or dropped; inputs are always kept."""
        live = np.zeros(self.size, dtype=bool)  # nodes an output depends on
        kept_whole = np.zeros(self.size, dtype=bool)  # nodes a kept instruction reads (any of its outputs)
        live[: self.n_inputs] = True
        live[outputs[(outputs >= 0) & (outputs < self.size)]] = True
        kept_whole |= live
        needed = []
        for instr in reversed(self.instructions):
            used = bool(kept_whole[instr.start : instr.stop].any())
            needed.append(used)
            if used:
                outputs_of, args = argument_pairs(instr)
                inside = (args >= 0) & (args < self.size)
                kept_whole[args[inside]] = True
                reads = live[instr.start + outputs_of] & inside if outputs_of.size else inside
                live[args[reads]] = True
        needed.reverse()
        if all(needed):
            return list(self.instructions), np.arange(self.size, dtype=np.int64), live
        index = np.full(self.size, -1, dtype=np.int64)
        index[: self.n_inputs] = np.arange(self.n_inputs)
        kept, next_start = [], self.n_inputs
        for instr, used in zip(self.instructions, needed):
            if not used:
                continue
            index[instr.start : instr.stop] = np.arange(next_start, next_start + instr.size)
            moved = dict(start=next_start, stop=next_start + instr.size)
            if instr.kind == "linear":
                moved["cols"] = torch.as_tensor(index[instr.cols.cpu().numpy()], dtype=torch.long)
            else:
                moved["args"] = tuple(torch.as_tensor(index[a.cpu().numpy()], dtype=torch.long) for a in instr.args)
            kept.append(replace(instr, **moved))
            next_start += instr.size
        return kept, index, live


def covered(values: np.ndarray, errors: np.ndarray) -> bool:
    """Whether every value is finite, or not a NaN and carrying an infinite error bound."""
    return bool(np.all(np.isfinite(values) | (~np.isnan(values) & (errors == np.inf))))


def label_of(label) -> str:
    """A label argument as text for messages (the first of a list of labels)."""
    if isinstance(label, str):
        return label
    return str(label[0]) if len(label) else "constant"


def computed_weight(value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A weight computed in float64 (not given exactly, e.g. 1/c) and a bound on its rounding error."""
    value = np.asarray(value, dtype=np.float64)
    return value, computed_error(value)
