"""The tape validator: run on every tape when it is built (``TapeBuilder.tape``: compiled and imported
tapes alike), so a producer's bug is caught where the tape is made, not as a wrong bound later.

``validate_tape`` checks what every back end assumes without checking:

- layout: the instructions tile ``[n_inputs, n_nodes)`` in order, one label per node, one name per input;
- topological order and index ranges: every argument and every column refers to an earlier node, every
  row to an output of its instruction, every output of the tape to a node;
- shapes and dtypes: one index tensor of the instruction's size per argument of a registered op of the
  right arity (and a parameter exactly when the op takes one); rows, cols, weights and weight errors of
  one length, bias and bias errors of the instruction's size;
- constants: no NaN; every weight and bias finite unless its recorded error is infinite; recorded errors
  non-negative; ``fan_in`` at least the terms of every output (the linear interval's rounding margin);
- refine sets: increasing (so distinct) local indices within the instruction;
- ``accumulation_terms`` at least the longest sum a backward pass forms (``derive.accumulation_terms``).

A violation raises ``InternalError`` naming the instruction (index, description and its first node's
label). Every check is vectorised over an instruction, so validation costs a few passes over the tape's
index tensors.
"""

from __future__ import annotations

import numpy as np
import torch

from graphver.errors import InternalError
from graphver.ops.base import BinaryOp, UnaryOp
from graphver.ops.registry import REGISTRY
from graphver.tape.derive import accumulation_terms
from graphver.tape.tape import Instruction, Tape

KINDS = ("linear", "unary", "binary")


def validate_tape(tape: Tape) -> None:
    """Raise ``InternalError`` if ``tape`` breaks an invariant of the tape format (see the module doc)."""
    def fail(message: str) -> None:
        raise InternalError(f"invalid tape: {message}")

    if tape.n_inputs < 0 or len(tape.input_names) != tape.n_inputs:
        fail(f"{len(tape.input_names)} input names for {tape.n_inputs} inputs")
    if len(tape.labels) != tape.n_nodes:
        fail(f"{len(tape.labels)} labels for {tape.n_nodes} nodes")
    position = tape.n_inputs
    for index, instr in enumerate(tape.instructions):
        if instr.start != position or instr.stop <= instr.start:
            where = instruction_name(tape.labels, index, instr, describe=False)
            fail(f"{where} writes [{instr.start}:{instr.stop}), expected a non-empty range from node {position}")
        check_instruction(index, instr, tape.labels)
        position = instr.stop
    if position != tape.n_nodes:
        fail(f"the instructions end at node {position}, the tape has {tape.n_nodes} nodes")
    outputs = indices(tape.outputs)
    if outputs is None or (outputs.size and (outputs.min() < 0 or outputs.max() >= tape.n_nodes)):
        fail(f"the outputs are not a vector of node indices in [0, {tape.n_nodes})")
    required = accumulation_terms(tape.n_inputs, tape.n_nodes, tape.instructions, outputs)
    if tape.accumulation_terms < required:
        fail(f"accumulation_terms is {tape.accumulation_terms}, but a backward pass forms sums of up to "
             f"{required} terms (the rounding margins would be too small)")


def check_instruction(index: int, instr: Instruction, labels) -> None:
    """The checks of one instruction (number ``index``; ``labels`` of the nodes, for the message); raises
    ``InternalError`` naming it. Builders also run it on each instruction they emit."""
    def fail(message: str) -> None:
        raise InternalError(f"invalid tape: {instruction_name(labels, index, instr)}: {message}")

    size = instr.size
    if instr.kind not in KINDS:
        fail(f"unknown kind {instr.kind!r}")
    if instr.kind == "linear":
        rows, cols = indices(instr.rows), indices(instr.cols)
        if rows is None or cols is None or rows.shape != cols.shape:
            fail("rows and cols must be index vectors of one length")
        terms = rows.size
        for name in ("weights", "weight_error"):
            if not is_vector(getattr(instr, name), terms):
                fail(f"{name} must be a floating-point vector of {terms} entries (one per term)")
        for name in ("bias", "bias_error"):
            if not is_vector(getattr(instr, name), size):
                fail(f"{name} must be a floating-point vector of {size} entries (one per output)")
        if terms and (rows.min() < 0 or rows.max() >= size):
            fail(f"a row index leaves [0, {size})")
        if terms and (cols.min() < 0 or cols.max() >= instr.start):
            fail(f"a column refers to node {int(cols.max() if cols.max() >= instr.start else cols.min())}, "
                 f"not a node before {instr.start} (topological order)")
        for value, error, what in ((instr.weights, instr.weight_error, "weight"), (instr.bias, instr.bias_error, "bias")):
            value, error = value.cpu().numpy(), error.cpu().numpy()
            if not (error >= 0).all():  # NaN fails too
                fail(f"a recorded {what} error is negative or NaN")
            if not (np.isfinite(value) | (~np.isnan(value) & (error == np.inf))).all():
                fail(f"a {what} is not finite (and its recorded error is not infinite)")
        most = int(np.bincount(rows, minlength=1).max()) if terms else 0
        if instr.fan_in < most:
            fail(f"fan_in is {instr.fan_in}, but an output has {most} terms")
        if instr.args or instr.op is not None:
            fail("a linear instruction has an op or arguments")
    else:
        op = REGISTRY.get(instr.op)
        expected = UnaryOp if instr.kind == "unary" else BinaryOp
        arity = 1 if instr.kind == "unary" else 2
        if not isinstance(op, expected):
            fail(f"{instr.op!r} is not a registered {instr.kind} op")
        if op.has_param != (instr.param is not None):
            fail(f"op {instr.op} {'needs' if op.has_param else 'takes no'} parameter (got {instr.param!r})")
        if len(instr.args) != arity:
            fail(f"{len(instr.args)} arguments for a {instr.kind} op")
        for slot, arg in enumerate(instr.args):
            arg = indices(arg)
            if arg is None or arg.size != size:
                fail(f"argument {slot} must be an index vector of {size} entries")
            if arg.min() < 0 or arg.max() >= instr.start:
                fail(f"argument {slot} refers to node {int(arg.max() if arg.max() >= instr.start else arg.min())}, "
                     f"not a node before {instr.start} (topological order)")
        if any(t is not None for t in (instr.rows, instr.cols, instr.weights, instr.bias)):
            fail("a nonlinear instruction carries linear terms")
    refine = indices(instr.refine)
    if refine is None or (refine.size and (refine[0] < 0 or refine[-1] >= size or (np.diff(refine) <= 0).any())):
        fail(f"the refine set must hold increasing local indices in [0, {size})")


def indices(values) -> np.ndarray | None:
    """An index tensor as a numpy vector, or None when it is not a one-dimensional integer tensor."""
    if not isinstance(values, torch.Tensor) or values.dim() != 1 or values.dtype != torch.long:
        return None
    return values.cpu().numpy()


def is_vector(values, length: int) -> bool:
    return (isinstance(values, torch.Tensor) and values.is_floating_point() and values.dim() == 1
            and values.numel() == length)


def instruction_name(labels, index: int, instr: Instruction, describe: bool = True) -> str:
    """``instruction 3 (sin [10:14), first node 'sin(x*y)')`` for messages."""
    what = f"{instr.kind} {instr.op or ''}"
    if describe:
        try:
            what = instr.describe()
        except Exception:  # an unregistered op cannot describe itself; the check names it
            what = f"{what} [{instr.start}:{instr.stop})"
    label = str(labels[instr.start]) if 0 <= instr.start < len(labels) else "?"
    label = label if len(label) <= 80 else label[:77] + "..."
    return f"instruction {index} ({' '.join(what.split())}, first node {label!r})"
