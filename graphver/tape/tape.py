"""The frozen tape: a topologically ordered list of vectorised instructions.

Every scalar node has a global index. Inputs occupy ``[0, n_inputs)``; instruction i writes the
contiguous range ``[start, stop)``. Scalar nodes of the same op (and parameter) at the same depth form
one instruction, so the number of instructions grows with the graph's depth, not its size. Every back
end (evaluation, IBP, CROWN, alpha) reads this one list; none reads sympy or networkx.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Hashable, TypeVar

import torch
from torch import Tensor

from graphver.ops.registry import REGISTRY
from graphver.rounding import convert_constants

T = TypeVar("T")


class TapeCache:
    """Data derived from a tape (backward plans, weight matrices, branching candidates), built on first use.

    Keys are small frozen dataclasses defined next to the code that builds the entry (``PlanKey`` in
    bounds/plan.py, ``WeightsKey`` in bounds/dense.py, ...): a key's type says what the entry holds, and
    keys of different users never collide. A key names the device and dtype when the entry depends on them,
    since moved copies of a tape (``Tape.to``) share its cache.
    """

    def __init__(self) -> None:
        self.entries: dict[Hashable, object] = {}

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        """The entry of ``key``, built by ``build()`` and stored the first time it is asked for."""
        if key not in self.entries:
            self.entries[key] = build()
        return self.entries[key]  # type: ignore[return-value]

    def __contains__(self, key: Hashable) -> bool:
        return key in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def clear(self) -> None:
        self.entries.clear()


@dataclass(frozen=True)
class Instruction:
    """One vectorised instruction.

    kind: "linear" (``rows``, ``cols``, ``weights``, ``bias``: out[rows] += weights * x[cols], plus bias;
          ``weight_error``/``bias_error`` bound |exact constant - stored float| for each of them),
          "unary" or "binary" (``op`` with ``param``; ``args`` holds one or two index tensors into the
          global node vector).
    refine: local indices of outputs whose bounds CROWN refines (inputs of nonlinear ops whose IBP
            interval is not already exact).
    fan_in: the most terms of one output of a linear instruction (for rounding margins).
    """

    kind: str
    start: int
    stop: int
    level: int
    op: str | None = None
    param: float | None = None
    args: tuple[Tensor, ...] = ()
    rows: Tensor | None = None
    cols: Tensor | None = None
    weights: Tensor | None = None
    bias: Tensor | None = None
    weight_error: Tensor | None = None
    bias_error: Tensor | None = None
    fan_in: int = 0
    refine: Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))

    @property
    def size(self) -> int:
        return self.stop - self.start

    @property
    def op_object(self):
        return REGISTRY[self.op]

    def describe(self) -> str:
        if self.kind == "linear":
            return f"linear  [{self.start}:{self.stop}) nnz={self.cols.numel()}"
        name = self.op_object.describe(self.param)
        return f"{name:<8}[{self.start}:{self.stop})"

    def to(self, device, dtype) -> "Instruction":
        def move(t):
            return None if t is None else t.to(device=device)

        changes = dict(args=tuple(move(a) for a in self.args), rows=move(self.rows), cols=move(self.cols),
                      refine=move(self.refine))
        if self.kind == "linear":
            changes["weights"], changes["weight_error"] = convert_constants(self.weights, self.weight_error, dtype)
            changes["bias"], changes["bias_error"] = convert_constants(self.bias, self.bias_error, dtype)
            changes = {k: move(v) for k, v in changes.items() if k not in ("args",)} | {"args": changes["args"]}
        return replace(self, **changes)


@dataclass(frozen=True)
class Tape:
    """A compiled graph. ``outputs`` indexes the global node vector; ``labels`` names every node."""

    n_inputs: int
    n_nodes: int
    instructions: tuple[Instruction, ...]
    outputs: Tensor
    labels: tuple  # sympy expressions or strings; str() them for messages
    input_names: tuple[str, ...]
    accumulation_terms: int  # bound on the terms of any sum formed by a backward pass (rounding margins)
    device: torch.device = torch.device("cpu")
    dtype: torch.dtype = torch.float64
    cache: TapeCache = field(default_factory=TapeCache, compare=False, repr=False)  # derived data, shared by copies

    @property
    def n_instructions(self) -> int:
        return len(self.instructions)

    @property
    def n_outputs(self) -> int:
        return int(self.outputs.numel())

    def n_nonlinear_nodes(self) -> int:
        return sum(i.size for i in self.instructions if i.kind != "linear")

    def to(self, device=None, dtype=None) -> "Tape":
        device = torch.device(device) if device is not None else self.device
        dtype = dtype or self.dtype
        if device == self.device and dtype == self.dtype:
            return self
        return replace(
            self,
            instructions=tuple(i.to(device, dtype) for i in self.instructions),
            outputs=self.outputs.to(device),
            device=device,
            dtype=dtype,
        )

    def instruction_of(self, node: int) -> int:
        """Index of the instruction producing global node ``node`` (-1 for inputs)."""
        for i, instr in enumerate(self.instructions):
            if instr.start <= node < instr.stop:
                return i
        return -1

    def summary(self) -> str:
        lines = [
            f"tape: {self.n_inputs} inputs, {self.n_nodes} nodes, {self.n_instructions} instructions, "
            f"{self.n_outputs} outputs"
        ]
        for i, instr in enumerate(self.instructions):
            lines.append(f"  {i:3d} L{instr.level:<3d} {instr.describe()}")
        return "\n".join(lines)
