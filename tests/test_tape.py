"""The tape package: the one builder (sympy compiler and importers alike), what it derives (refine sets,
the accumulation bound), the validator's messages, and the reachability helpers."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import sympy
import torch

import graphver as gv
import graphver.tape.builder as builder_module
from graphver.errors import InternalError, ModelError
from graphver.tape.builder import TapeBuilder
from graphver.tape.derive import Supports, accumulation_terms
from graphver.tape.reach import input_dependencies, nonlinear_support, reach
from graphver.tape.validate import validate_tape


def refined_labels(tape) -> set[str]:
    return {str(tape.labels[i.start + int(j)]) for i in tape.instructions for j in i.refine}


def hand_built():
    """exp(sin(x) + y) and exp(x**2 - x) as the importers build them (nodes: x 0, y 1, sin 2, square 3, sums 4-5,
    exp 6-7)."""
    b = TapeBuilder(["x", "y"])
    x, y = b.inputs((2,))
    sin_x = b.elementwise("unary", "sin", [np.array([x])], "sin_x")
    square = b.elementwise("unary", "pow_int", [np.array([x])], "square", param=2.0)
    sums = b.linear([(np.array([0, 0, 1, 1]), np.array([sin_x[0], y, square[0], x]), np.array([1.0, 1.0, 1.0, -1.0]),
                      None)], np.zeros(2), "sums", (2,))
    out = b.elementwise("unary", "exp", [sums], "exp")
    return b, b.tape(out)


def test_compiler_and_importer_derive_the_same_refine_sets():
    m = gv.Model("same")
    x, y = m.var("x", -1, 1), m.var("y", -1, 1)
    compiled = m.compile([gv.exp(gv.sin(x) + y), gv.exp(x**2 - x)])
    _, built = hand_built()
    # sin(x) + y is exact (disjoint supports); x**2 - x is not: both producers refine only it
    assert refined_labels(compiled) == {"x**2 - x"}
    assert refined_labels(built) == {"sums[1]"}


def test_exactness_follows_supports():
    supports = Supports(3)
    # node 3 = x0 + x1 (exact), node 4 = x0 + x0-term twice (not exact), node 5 = constant (exact)
    supports.add(3, np.array([0, 0, 1, 1]), np.array([0, 1, 0, 0]))
    assert supports.exact.tolist() == [True] * 3 + [True, False, True]
    assert supports.support(3).tolist() == [0, 1] and supports.support(5).tolist() == []
    # node 6 = mul(node 3, x2): disjoint, exact; node 7 = mul(node 3, x1): shares x1; node 8 = mul(node 4, x2)
    supports.add(3, np.array([0, 1, 2, 0, 1, 2]), np.array([3, 3, 4, 2, 1, 2]))
    assert supports.exact[6:].tolist() == [True, False, False]
    assert supports.support(6).tolist() == [0, 1, 2]


def test_accumulation_terms_counts_every_use():
    b = TapeBuilder(["x"])
    x = b.inputs((1,))
    square = b.elementwise("binary", "mul", [x, x], "square")  # x is used twice by one node
    tape = b.tape(np.concatenate([square, square]))  # and the product is an output twice
    # uses: x 2, square 2 (outputs); + 1 + fan-in 0 + width 1 + 1 input + 1 instruction + 4
    assert tape.accumulation_terms == 2 + 1 + 0 + 1 + 1 + 1 + 4
    assert accumulation_terms(tape.n_inputs, tape.n_nodes, tape.instructions, tape.outputs) == tape.accumulation_terms


def test_compiled_tape_keeps_the_rounding_errors_of_its_constants():
    m = gv.Model("constants")
    x = m.var("x", -1, 2)
    tape = m.compile(gv.sin(x) * sympy.Rational(1, 10**400) + sympy.Rational(1, 3))
    linear = [i for i in tape.instructions if i.kind == "linear"][0]
    assert linear.weights.tolist() == [0.0] and linear.weight_error.item() > 0  # rounded to 0, kept with its error
    assert linear.bias_error.item() > 0  # 1/3 is not a float
    overflow = m.compile(x * sympy.Integer(10) ** 400)  # beyond the float range: infinite, with an infinite error
    assert [i.weight_error.item() for i in overflow.instructions] == [np.inf]
    assert m.interval(x * sympy.Integer(10) ** 400).lower == -np.inf


def test_builder_rejects_non_finite_weights_of_importers():
    b = TapeBuilder(["x"])
    with pytest.raises(ModelError, match="layer: a weight or bias is not finite"):
        b.linear([(np.array([0]), np.array([0]), np.array([np.inf]), None)], np.zeros(1), "layer", (1,))


def test_every_producer_validates(monkeypatch):
    seen = []
    monkeypatch.setattr(builder_module, "validate_tape", lambda tape: seen.append(tape))
    m = gv.Model("v")
    x = m.var("x", 0, 1)
    compiled = m.compile(gv.exp(x))
    _, built = hand_built()
    assert seen == [compiled, built]


def broken(change, index=2):
    """The hand-built tape with one instruction changed."""
    _, tape = hand_built()
    instructions = list(tape.instructions)
    instructions[index] = replace(instructions[index], **change(instructions[index]))
    return replace(tape, instructions=tuple(instructions))


LINEAR = "instruction 2 (linear [4:6) nnz=4, first node 'sums[0]')"
EXP = "instruction 3 (exp [6:8), first node 'exp[0]')"


@pytest.mark.parametrize("change, index, message", [
    (lambda i: {"cols": torch.tensor([0, 1, 2, 7])}, 2, f"{LINEAR}: a column refers to node 7, not a node before 4"),
    (lambda i: {"rows": torch.tensor([0, 0, 1, 2])}, 2, f"{LINEAR}: a row index leaves [0, 2)"),
    (lambda i: {"weights": i.weights[:3]}, 2, f"{LINEAR}: weights must be a floating-point vector of 4 entries"),
    (lambda i: {"bias": torch.zeros(3, dtype=torch.float64)}, 2, f"{LINEAR}: bias must be a floating-point vector of 2"),
    (lambda i: {"weights": torch.tensor([1.0, np.nan, 1.0, 1.0], dtype=torch.float64)}, 2,
     f"{LINEAR}: a weight is not finite"),
    (lambda i: {"bias": torch.tensor([np.inf, 0.0], dtype=torch.float64)}, 2,
     f"{LINEAR}: a bias is not finite (and its recorded error is not infinite)"),
    (lambda i: {"weight_error": torch.tensor([0.0, -1e-20, 0.0, 0.0], dtype=torch.float64)}, 2,
     f"{LINEAR}: a recorded weight error is negative or NaN"),
    (lambda i: {"fan_in": 1}, 2, f"{LINEAR}: fan_in is 1, but an output has 2 terms"),
    (lambda i: {"refine": torch.tensor([2])}, 2, f"{LINEAR}: the refine set must hold increasing local indices in [0, 2)"),
    (lambda i: {"args": (torch.tensor([4, 7]),)}, 3, f"{EXP}: argument 0 refers to node 7, not a node before 6"),
    (lambda i: {"args": (torch.tensor([4]),)}, 3, f"{EXP}: argument 0 must be an index vector of 2 entries"),
    (lambda i: {"args": (torch.tensor([4, 5]), torch.tensor([4, 5]))}, 3, f"{EXP}: 2 arguments for a unary op"),
    (lambda i: {"param": 2.0}, 3,
     "instruction 3 (exp[2] [6:8), first node 'exp[0]'): op exp takes no parameter (got 2.0)"),
    (lambda i: {"op": "mul"}, 3, "instruction 3 (mul [6:8), first node 'exp[0]'): 'mul' is not a registered unary op"),
])
def test_validator_names_the_broken_instruction(change, index, message):
    with pytest.raises(InternalError, match="^invalid tape: " + _escaped(message)):
        validate_tape(broken(change, index))


def _escaped(text: str) -> str:
    import re

    return re.escape(text)


def test_validator_checks_layout_outputs_and_accumulation():
    _, tape = hand_built()
    validate_tape(tape)
    with pytest.raises(InternalError, match=r"instruction 1 \(unary pow_int, first node 'square\[0\]'\) writes \[3:3\), "
                                            r"expected a non-empty range from node 3"):
        validate_tape(broken(lambda i: {"stop": 3}, 1))
    with pytest.raises(InternalError, match=r"the outputs are not a vector of node indices in \[0, 8\)"):
        validate_tape(replace(tape, outputs=torch.tensor([8])))
    # x has 3 uses: 3 + 1 + fan-in 2 + width 2 + 2 inputs + 4 instructions + 4 = 18
    with pytest.raises(InternalError, match=r"accumulation_terms is 3, but a backward pass forms sums of up to 18 terms"):
        validate_tape(replace(tape, accumulation_terms=3))
    with pytest.raises(InternalError, match="7 labels for 8 nodes"):
        validate_tape(replace(tape, labels=tape.labels[:-1]))


def test_a_producer_bug_is_caught_when_the_tape_is_built():
    b, _ = hand_built()
    with pytest.raises(InternalError, match=r"instruction 4 \(tanh \[8:9\), first node 'later\[0\]'\): argument 0 "
                                            r"refers to node 99, not a node before 8"):
        b.elementwise("unary", "tanh", [np.array([99])], "later")  # named when it is emitted
    b, _ = hand_built()
    b.instructions[-1] = replace(b.instructions[-1], args=(torch.tensor([4, 99]),))
    with pytest.raises(InternalError, match="argument 0 refers to node 99"):
        b.tape(np.array([6]))


def test_reachability_helpers():
    m = gv.Model("reach")
    x = m.vars("x", 4, -1, 1)
    tape = m.compile([gv.sin(x[0] * x[1]) + x[2], 2 * x[3]])
    assert [d.tolist() for d in input_dependencies(tape, [0, 1])] == [[0, 1, 2], [3]]
    upto = tape.n_instructions - 1
    ancestors = reach(tape, tape.outputs.numpy(), upto).toarray()
    assert ancestors[: tape.n_inputs].tolist() == [[True, False], [True, False], [True, False], [False, True]]
    # x2 enters the first output only linearly, x3 the second: splitting them cannot tighten a relaxation
    assert nonlinear_support(tape).tolist() == [[True, True, False, False], [False, False, False, False]]
    assert nonlinear_support(tape) is nonlinear_support(tape)  # cached on the tape
