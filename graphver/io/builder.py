"""Building a tape directly from tensors, for importers that never see sympy (ONNX).

A symbolic tensor is a numpy array of global node indices with the tensor's shape, so reshaping,
slicing, gathering, concatenating, transposing and broadcasting are numpy operations on index arrays
and emit nothing. Only arithmetic emits instructions, one per tensor operation (tensor level: a dense
512 x 512 layer is one linear instruction with its weights as a sparse matrix, never 512 scalar nodes
of sympy):

- ``linear``: sums of constant-weighted terms plus a bias (Add, Sub, Neg, scaling, MatMul/Gemm with a
  constant operand, ReduceSum); zero weights are dropped, so an output multiplied by a constant 0 is
  exactly its bias;
- ``unary`` / ``binary``: an op of the registry applied elementwise (relu, sigmoid, sin, mul, ...).

Constants are exact: every weight is a float64 number (float32 weights convert exactly); a weight the
importer computes (1/c for a division) records its rounding error like the sympy compiler does.
"""

from __future__ import annotations

import numpy as np
import torch

from graphver.rounding import computed_error
from graphver.tape.tape import Instruction, Tape


class TapeBuilder:
    """Allocates global node indices and emits instructions in topological order."""

    def __init__(self, input_names: list[str]):
        self.n_inputs = len(input_names)
        self.input_names = tuple(input_names)
        self.labels: list[str] = list(input_names)
        self.levels: list[np.ndarray] = [np.zeros(self.n_inputs, dtype=np.int64)]
        self.instructions: list[Instruction] = []
        self.size = self.n_inputs
        self.nonlinear_args: list[np.ndarray] = []
        self.exact = np.ones(self.n_inputs, dtype=bool)  # nodes whose IBP interval is exact

    def inputs(self, shape) -> np.ndarray:
        return np.arange(self.n_inputs, dtype=np.int64).reshape(shape)

    def level_of(self, nodes: np.ndarray) -> np.ndarray:
        return np.concatenate(self.levels)[nodes]

    def allocate(self, count: int, label: str) -> np.ndarray:
        nodes = np.arange(self.size, self.size + count, dtype=np.int64)
        self.size += count
        self.labels.extend(f"{label}[{i}]" for i in range(count))
        return nodes

    def linear(self, terms: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]], bias: np.ndarray, label: str,
               shape) -> np.ndarray:
        """out = sum over terms of weight * x[node] + bias, elementwise over ``shape``.

        terms: (rows [T] local output indices, cols [T] global nodes, weights [T] float64, weight errors [T]
        or None); bias [size]. Returns the output node indices with ``shape``."""
        count = int(np.prod(shape, dtype=np.int64))
        if count == 0:
            return np.zeros(shape, dtype=np.int64)
        rows = np.concatenate([t[0] for t in terms]) if terms else np.zeros(0, dtype=np.int64)
        cols = np.concatenate([t[1] for t in terms]) if terms else np.zeros(0, dtype=np.int64)
        weights = np.concatenate([np.asarray(t[2], dtype=np.float64) for t in terms]) if terms else np.zeros(0)
        errors = np.concatenate([np.zeros(len(t[2])) if t[3] is None else np.asarray(t[3], dtype=np.float64)
                                 for t in terms]) if terms else np.zeros(0)
        keep = weights != 0
        rows, cols, weights, errors = rows[keep], cols[keep], weights[keep], errors[keep]
        if not (np.isfinite(weights).all() and np.isfinite(bias).all()):
            from graphver.errors import ModelError

            raise ModelError(f"{label}: a weight or bias is not finite")
        nodes = self.allocate(count, label)
        fan_in = int(np.bincount(rows, minlength=count).max()) if rows.size else 0
        level = 1 + (int(self.level_of(cols).max()) if cols.size else 0)
        self.levels.append(np.full(count, level, dtype=np.int64))
        # a row of distinct inputs only has an exact interval (the inputs vary independently)
        exact = np.ones(count, dtype=bool)
        if rows.size:
            not_input = cols >= self.n_inputs
            exact[np.unique(rows[not_input])] = False
            pairs = np.unique(np.stack([rows, cols]), axis=1)
            repeated = np.bincount(pairs[0], minlength=count) != np.bincount(rows, minlength=count)
            exact &= ~repeated
        self.exact = np.concatenate([self.exact, exact])
        self.instructions.append(Instruction(
            kind="linear", start=int(nodes[0]), stop=self.size, level=level,
            rows=torch.as_tensor(rows, dtype=torch.long), cols=torch.as_tensor(cols, dtype=torch.long),
            weights=torch.as_tensor(weights, dtype=torch.float64), bias=torch.as_tensor(np.array(bias, dtype=np.float64)),
            weight_error=torch.as_tensor(errors, dtype=torch.float64),
            bias_error=torch.zeros(count, dtype=torch.float64), fan_in=fan_in))
        return nodes.reshape(shape)

    def constant(self, value: np.ndarray, label: str) -> np.ndarray:
        """Nodes holding constant values (a linear instruction without terms)."""
        value = np.asarray(value, dtype=np.float64)
        return self.linear([], value.reshape(-1), label, value.shape)

    def elementwise(self, kind: str, op: str, args: list[np.ndarray], label: str, param: float | None = None) -> np.ndarray:
        """An op of the registry applied elementwise to equally shaped index arrays."""
        shape = args[0].shape
        flat = [a.reshape(-1) for a in args]
        count = flat[0].size
        if count == 0:
            return np.zeros(shape, dtype=np.int64)
        nodes = self.allocate(count, label)
        level = 1 + int(max(self.level_of(a).max() for a in flat))
        self.levels.append(np.full(count, level, dtype=np.int64))
        self.exact = np.concatenate([self.exact, np.zeros(count, dtype=bool)])
        self.nonlinear_args.extend(flat)
        self.instructions.append(Instruction(
            kind=kind, start=int(nodes[0]), stop=self.size, level=level, op=op, param=param,
            args=tuple(torch.as_tensor(np.array(a), dtype=torch.long) for a in flat)))
        return nodes.reshape(shape)

    def tape(self, outputs: np.ndarray) -> Tape:
        """Freeze: the refine sets (arguments of nonlinear ops whose interval is not exact) and the
        accumulation bound of the rounding margins, as ``tape.compile.freeze`` computes them."""
        needs = np.zeros(self.size, dtype=bool)
        if self.nonlinear_args:
            needs[np.concatenate(self.nonlinear_args)] = True
        needs &= ~self.exact
        instructions = []
        uses = np.zeros(self.size, dtype=np.int64)
        for instr in self.instructions:
            local = np.nonzero(needs[instr.start : instr.stop])[0]
            instructions.append(_with_refine(instr, local))
            if instr.kind == "linear":
                uses += np.bincount(instr.cols.numpy(), minlength=self.size)
            else:
                for a in instr.args:
                    uses += np.bincount(a.numpy(), minlength=self.size)
        outputs = np.asarray(outputs, dtype=np.int64).reshape(-1)
        uses += np.bincount(outputs, minlength=self.size)
        fan_out = int(uses.max()) + 1 if self.size else 1
        fan_in = max((i.fan_in for i in instructions), default=0)
        width = max((i.size for i in instructions), default=0)
        accumulation = fan_out + fan_in + width + self.n_inputs + len(instructions) + 4
        return Tape(n_inputs=self.n_inputs, n_nodes=self.size, instructions=tuple(instructions),
                    outputs=torch.as_tensor(outputs, dtype=torch.long), labels=tuple(self.labels),
                    input_names=self.input_names, accumulation_terms=accumulation)


def _with_refine(instr: Instruction, local: np.ndarray) -> Instruction:
    from dataclasses import replace

    return replace(instr, refine=torch.as_tensor(local, dtype=torch.long))


def computed_weight(value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A weight computed in float64 (not given exactly, e.g. 1/c) and a bound on its rounding error."""
    value = np.asarray(value, dtype=np.float64)
    return value, computed_error(value)
