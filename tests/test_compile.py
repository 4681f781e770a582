"""Compiler: sympy -> IR passes -> tape. Vectorisation, CSE, constant folding, evaluation."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import sympy
import torch

import graphver as gv
from graphver.ir import PASSES, lower_sympy, validate
from graphver.ir.passes import cse


def test_instruction_count_does_not_grow_with_node_count():
    counts = []
    for n_terms in (10, 100, 1000):
        rng = random.Random(0)
        m = gv.Model("scale")
        x = m.vars("x", 50, -1, 1)
        terms = []
        for _ in range(n_terms):
            i, j = rng.sample(range(50), 2)
            terms.append(rng.uniform(-1, 1) * x[i] * x[j] * gv.cos(x[i] - x[j]))
        tape = m.compile(sympy.Add(*terms))
        counts.append(tape.n_instructions)
        assert tape.n_nonlinear_nodes() >= min(n_terms, 3 * 50)  # scalar nodes really are many
    assert counts[0] == counts[1] == counts[2], counts


def test_same_op_same_depth_is_one_instruction():
    m = gv.Model("v")
    x = m.vars("x", 5, -1, 1)
    tape = m.compile([gv.sin(xi) for xi in x] + [gv.exp(xi) for xi in x])
    kinds = sorted(i.op for i in tape.instructions)
    assert kinds == ["exp", "sin"]
    assert all(i.size == 5 for i in tape.instructions)


def test_cse_shares_subexpressions():
    m = gv.Model("cse")
    x, y = m.var("x", 0, 1), m.var("y", 0, 1)
    shared = gv.sin(x * y)
    tape = m.compile([shared + 1, shared**2, gv.exp(shared)])
    ops = [i.op for i in tape.instructions if i.kind != "linear"]
    assert ops.count("sin") == 1 and ops.count("mul") == 1
    sin_instr = next(i for i in tape.instructions if i.op == "sin")
    assert sin_instr.size == 1


def test_cse_pass_merges_identical_nodes():
    x, y = sympy.symbols("x y", real=True)
    ir = lower_sympy([x, y], [x + y])
    # Add a duplicate of the sum by hand; the pass must merge it.
    first = ir.outputs[0]
    data = ir.attrs(first)
    duplicate = ir.add("linear", "dup", terms=data["terms"], bias=data["bias"])
    ir.outputs.append(duplicate)
    validate(ir)
    ir = cse(ir)
    validate(ir, after="cse")
    assert ir.outputs[0] == ir.outputs[1]


def test_constants_fold_into_coefficients():
    m = gv.Model("fold")
    x = m.var("x", -1, 1)
    tape = m.compile(x * sympy.sin(1) + sympy.cos(2) * 3 + sympy.Rational(1, 3) * x)
    assert tape.n_instructions == 1 and tape.instructions[0].kind == "linear"
    assert float(tape.instructions[0].weights[0]) == pytest.approx(math.sin(1) + 1 / 3, rel=1e-15)
    assert float(tape.instructions[0].bias[0]) == pytest.approx(3 * math.cos(2), rel=1e-15)


def test_passes_are_named_and_validated(capsys):
    names = [name for name, _ in PASSES]
    assert names[:2] == ["fold_constants", "cse"]
    m = gv.Model("debug")
    x = m.var("x", 0, 1)
    m.compile(gv.exp(x) + 1, debug=True)
    out = capsys.readouterr().out
    for name in ["lower_sympy"] + names:
        assert f"[graphver] {name}:" in out
    assert "tape:" in out


def test_evaluate_matches_sympy_lambdify():
    m = gv.Model("eval")
    x, y, z = m.var("x", 0.1, 2), m.var("y", -1, 1), m.var("z", -2, 2)
    exprs = [
        x * gv.sin(y) + gv.exp(-z**2) / (x + 1),
        gv.log(x) * gv.tanh(z) - gv.sqrt(x) * gv.atan(y) + gv.Abs(z) ** 3,
        gv.Max(y, z) - gv.Min(x, z) + gv.sigmoid(y * z) + gv.relu(z - y),
        x ** sympy.Rational(1, 3) + x**-2 + gv.tan(y) + 2**z + x**y,
    ]
    rng = np.random.default_rng(0)
    pts = np.stack([rng.uniform(0.1, 2, 500), rng.uniform(-1, 1, 500), rng.uniform(-2, 2, 500)], 1)
    got = m.evaluate(exprs, pts).numpy()
    modules = [{"sigmoid": lambda v: 1 / (1 + np.exp(-v)), "relu": lambda v: np.maximum(v, 0)}, "numpy"]
    for j, e in enumerate(exprs):
        f = sympy.lambdify([x, y, z], e, modules=modules)
        expected = f(pts[:, 0], pts[:, 1], pts[:, 2])
        np.testing.assert_allclose(got[:, j], expected, rtol=1e-12, atol=1e-12)


def test_evaluate_accepts_dicts_and_gradients():
    m = gv.Model("grad")
    x, y = m.var("x", -1, 1), m.var("y", -1, 1)
    values = m.evaluate(x * y + gv.sin(x), {"x": [0.0, 0.5], "y": 2.0})
    assert values.tolist() == pytest.approx([0.0, 1.0 + math.sin(0.5)], rel=1e-15)
    tape = m.compile(x * y + gv.sin(x))
    point = torch.tensor([[0.3, -0.2]], dtype=torch.float64, requires_grad=True)
    from graphver.tape import evaluate

    evaluate(tape, point).sum().backward()
    assert point.grad.tolist()[0] == pytest.approx([-0.2 + math.cos(0.3), 0.3], rel=1e-14)


def test_tape_moves_to_another_dtype():
    m = gv.Model("dtype")
    x = m.var("x", 0, 1)
    tape = m.compile(gv.exp(x) * x).to(dtype=torch.float32)
    assert tape.dtype == torch.float32 and tape.instructions[0].args[0].dtype == torch.long
    iv = m.interval(gv.exp(x) * x, dtype=torch.float32)
    assert iv.lower <= 0.0 and iv.upper >= math.e


def test_outputs_can_be_inputs_and_constants():
    m = gv.Model("trivial")
    x = m.var("x", -2, 3)
    lo, hi = m.interval([x, sympy.Integer(4) + 0 * x], method="crown")
    assert (lo.lower, lo.upper) == (-2.0, 3.0)
    assert hi.lower <= 4 <= hi.upper and hi.upper - hi.lower < 1e-12


def test_max_with_a_constant_guards_a_domain():
    """Max(0, h) lowers to 0 + relu(h - 0), so IBP keeps it >= 0 and sqrt(Max(0, h)) is defined everywhere;
    Min(c, h) stays <= c. (Lowered the other way, h + relu(-h), its interval reached below 0.)"""
    m = gv.Model("guard")
    x, y = m.var("x", -1, 1), m.var("y", -1, 1)
    guarded = gv.sqrt(gv.Max(0, 1 - x**2 - y**2))
    iv = m.interval(guarded, method="ibp")
    assert iv.lower <= 0 and iv.upper >= 1
    assert m.interval(gv.Max(x**2 - 2, 0), method="ibp").lower >= -1e-290  # 0 up to the margin tiny
    assert m.interval(gv.Max(x, -3), method="ibp").lower >= -1 - 1e-12
    assert m.interval(gv.Min(2, -x**2 + 3), method="ibp").upper <= 2 + 1e-12
    assert m.interval(gv.Min(x**2 + 3, sympy.Rational(5, 2)), method="ibp").upper <= 2.5 + 1e-12
