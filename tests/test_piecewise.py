"""Piecewise-linear activations: the tape builder fuses ``sum_k c_k relu(w_k x + b_k)`` of one node into one
``piecewise_linear`` node, tapes keep only what their outputs need, refinement moves through one-term affine
rows, and the fast evaluation paths (dense layers, autograd) agree with the plain one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from graphver.bab.bounding import bound_batch
from graphver.bounds.ibp import NodeSplits
from graphver.ops import REGISTRY
from graphver.ops.piecewise import PiecewiseTable, evaluate as relu_sum
from graphver.options import BoundOptions
from graphver.tape.builder import TapeBuilder
from graphver.tape.evaluate import evaluate, evaluate_all

DT = torch.float64
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml4acopf_2024"

SHIFTS = np.array([3.0, 1.5, 0.5, -0.5, -1.5, -3.0])
WEIGHTS = np.array([0.05, 0.15, 0.3, -0.3, -0.15, -0.05])


def pieces(b: TapeBuilder, x: np.ndarray, shifts=SHIFTS, weights=WEIGHTS, slope=1.0, mix: bool = False):
    """The importers' form of a piecewise-linear activation of each node of ``x``: a one-term row per piece,
    a ReLU layer, then one row per node summing its pieces (``mix``: row 0 also reads a piece of node 1)."""
    k, n = len(shifts), len(x)
    rows = np.arange(n * k)
    expanded = b.linear([(rows, np.repeat(x, k), np.full(n * k, slope), None)], np.tile(shifts, n), "expand", (n * k,))
    relu = b.elementwise("unary", "relu", [expanded], "relu")
    sum_rows, sum_cols = np.repeat(np.arange(n), k), relu
    if mix:
        sum_rows, sum_cols = np.append(sum_rows, 0), np.append(sum_cols, relu[k])
    w = np.tile(weights, n) if not mix else np.append(np.tile(weights, n), 0.5)
    return b.linear([(sum_rows, sum_cols, w, None)], np.full(n, 0.25), "sum", (n,))


def ops_of(tape) -> list[str]:
    return [i.op if i.kind != "linear" else "linear" for i in tape.instructions]


def empty_splits(batch: int) -> NodeSplits:
    return NodeSplits(torch.zeros(0, dtype=torch.long), torch.zeros(batch, 0, dtype=DT), torch.zeros(batch, 0, dtype=DT))


def test_builder_fuses_relu_pieces_and_drops_the_unused_layers():
    b = TapeBuilder(["x", "y"])
    x = b.inputs((2,))
    hidden = b.linear([(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]), np.array([1.0, -0.5, 0.3, 2.0]), None)],
                      np.zeros(2), "hidden", (2,))
    out = pieces(b, hidden)
    tape = b.tape(out)
    assert ops_of(tape) == ["linear", "piecewise_linear"]  # the expand and ReLU layers are gone
    assert tape.n_nodes == 2 + 2 + 2
    table = tape.instructions[1].param
    assert isinstance(table, PiecewiseTable) and table.pieces == len(SHIFTS) and table.offset == 0.25
    points = torch.rand(500, 2, dtype=DT) * 8 - 4
    h = points @ torch.tensor([[1.0, 0.3], [-0.5, 2.0]], dtype=DT)
    expected = 0.25 + (torch.tensor(WEIGHTS) * torch.relu(h[..., None] + torch.tensor(SHIFTS))).sum(-1)
    assert torch.allclose(evaluate(tape, points), expected, atol=1e-12)
    # the interval of a lone activation node is the exact range (one node: no dependency problem)
    lo, hi = torch.tensor([[-1.0, -1.0]], dtype=DT), torch.tensor([[1.0, 1.0]], dtype=DT)
    bounds = bound_batch(tape, lo, hi, empty_splits(1), "crown", BoundOptions())
    grid = torch.cartesian_prod(torch.linspace(-1, 1, 201, dtype=DT), torch.linspace(-1, 1, 201, dtype=DT))
    values = evaluate_all(tape, grid)[:, tape.outputs]
    out_lo, out_hi = bounds.lo[0, tape.outputs], bounds.hi[0, tape.outputs]
    assert bool((values >= out_lo).all() and (values <= out_hi).all())
    node = tape.instructions[1]
    arg_lo, arg_hi = bounds.lo[0, node.args[0]], bounds.hi[0, node.args[0]]
    fine = arg_lo[:, None] + (arg_hi - arg_lo)[:, None] * torch.linspace(0, 1, 20001, dtype=DT)
    exact = REGISTRY["piecewise_linear"].f(fine, table)
    assert torch.allclose(out_lo, exact.amin(1), atol=1e-12) and torch.allclose(out_hi, exact.amax(1), atol=1e-12)


def test_rows_mixing_the_pieces_of_two_nodes_stay_relu():
    b = TapeBuilder(["x", "y"])
    out = pieces(b, b.inputs((2,)), mix=True)
    tape = b.tape(out)
    assert "piecewise_linear" not in ops_of(tape) and "relu" in ops_of(tape)


def test_distinct_tables_become_distinct_instructions():
    b = TapeBuilder(["x", "y"])
    x = b.inputs((2,))
    first = pieces(b, x[:1])
    second = pieces(b, x[1:], weights=WEIGHTS * 2)
    tape = b.tape(np.concatenate([first, second]))
    tables = [i.param for i in tape.instructions if i.kind == "unary"]
    assert len(tables) == 2 and tables[0] != tables[1]


def test_fused_bounds_are_tighter_than_the_relu_sum():
    """The same function, fused and as ReLU pieces (mixing one term keeps the second tape unfused)."""
    lo, hi = torch.tensor([[-2.0, -2.0]], dtype=DT), torch.tensor([[2.0, 2.0]], dtype=DT)
    fused_builder, relu_builder = TapeBuilder(["x", "y"]), TapeBuilder(["x", "y"])
    fused = fused_builder.tape(pieces(fused_builder, fused_builder.inputs((2,))))
    unfused = relu_builder.tape(pieces(relu_builder, relu_builder.inputs((2,)), mix=True))
    width = lambda tape: bound_batch(tape, lo, hi, empty_splits(1), "crown", BoundOptions())  # noqa: E731
    a, b = width(fused), width(unfused)
    node = 1  # row 1 is the same function in both tapes
    fused_width = a.hi[0, fused.outputs[node]] - a.lo[0, fused.outputs[node]]
    unfused_width = b.hi[0, unfused.outputs[node]] - b.lo[0, unfused.outputs[node]]
    assert fused_width < unfused_width


def test_table_evaluation_agrees_with_the_relu_sum():
    op = REGISTRY["piecewise_linear"]
    for table in op.sample_params:
        t = table.tensors(DT, "cpu")
        x = torch.linspace(-20, 20, 40001, dtype=DT)
        assert torch.allclose(op.f(x, table), relu_sum(t.slope, t.shift, t.weight, t.offset, x), atol=1e-13)
        breaks = t.points
        assert torch.allclose(op.f(breaks, table), t.point_values, atol=1e-13)


def test_table_rejects_bad_input():
    with pytest.raises(ValueError, match="as many"):
        PiecewiseTable((1.0,), (0.0, 1.0), (1.0,))
    with pytest.raises(ValueError, match="finite"):
        PiecewiseTable((1.0,), (float("nan"),), (1.0,))


def test_tapes_keep_only_what_their_outputs_need():
    b = TapeBuilder(["x", "y"])
    x, y = b.inputs((2,))
    unused = b.elementwise("unary", "exp", [np.array([x])], "unused")
    used = b.elementwise("unary", "sin", [np.array([y])], "used")
    both = b.linear([(np.array([0, 0]), np.array([used[0], x]), np.array([1.0, 2.0]), None)], np.zeros(1), "sum", (1,))
    tape = b.tape(both)
    assert ops_of(tape) == ["sin", "linear"] and tape.n_nodes == 4
    assert [str(label) for label in tape.labels] == ["x", "y", "used[0]", "sum[0]"]
    point = torch.tensor([[0.3, -1.2]], dtype=DT)
    assert torch.allclose(evaluate(tape, point), torch.sin(point[:, 1:]) + 2 * point[:, :1])
    full = b.tape(np.concatenate([both, unused]))  # the same builder, frozen again with more outputs
    assert "exp" in ops_of(full) and full.n_nodes == 5


def test_refinement_moves_through_one_term_rows():
    """relu(2 h + 1) with h = x - y: h is refined (CROWN on h), the one-term row 2 h + 1 is not."""
    b = TapeBuilder(["x", "y"])
    x, y = b.inputs((2,))
    h = b.linear([(np.array([0, 0]), np.array([x, y]), np.array([1.0, -1.0]), None)], np.zeros(1), "h", (1,))
    scaled = b.linear([(np.array([0]), h, np.array([2.0]), None)], np.ones(1), "scaled", (1,))
    square = b.elementwise("binary", "mul", [h, h], "square")
    out = b.elementwise("unary", "relu", [b.linear([(np.array([0, 0]), np.array([scaled[0], square[0]]),
                                                      np.array([1.0, 1.0]), None)], np.zeros(1), "sum", (1,))], "out")
    tape = b.tape(out)
    refined = {str(tape.labels[i.start + int(j)]) for i in tape.instructions for j in i.refine}
    assert "scaled[0]" not in refined and "sum[0]" in refined


def test_autograd_and_dense_evaluation_agree_with_the_plain_path():
    rng = np.random.default_rng(3)
    b = TapeBuilder([f"x{i}" for i in range(6)])
    x = b.inputs((6,))
    dense = b.linear([(np.repeat(np.arange(8), 6), np.tile(x, 8), rng.normal(size=48), None)], rng.normal(size=8),
                     "dense", (8,))
    act = pieces(b, dense)
    sparse = b.linear([(np.array([0, 0, 1]), np.array([act[0], act[3], act[7]]), np.array([1.0, -2.0, 0.5]), None)],
                      np.zeros(2), "sparse", (2,))
    tape = b.tape(np.concatenate([sparse, b.elementwise("binary", "mul", [act[:2], dense[2:4]], "mul")]))
    points = torch.tensor(rng.normal(size=(64, 6)), dtype=DT)
    plain = evaluate_all(tape, points)[:, tape.outputs]
    graded = points.clone().requires_grad_(True)
    values = evaluate(tape, graded)
    assert torch.allclose(values.detach(), plain, atol=1e-12)
    values.sum().backward()
    step = 1e-6
    for i in range(6):
        moved = points.clone()
        moved[:, i] += step
        finite = (evaluate_all(tape, moved)[:, tape.outputs] - plain).sum(1) / step
        assert torch.allclose(graded.grad[:, i], finite, atol=1e-3)


@pytest.mark.skipif(not (DATA / "onnx").is_dir(), reason="../shared/data/ml4acopf_2024 is not present")
def test_ml4acopf_linear_networks_become_small_tapes():
    from graphver.io.onnx import import_onnx

    network = import_onnx(DATA / "onnx" / "118_ieee_ml4acopf-linear-nonresidual.onnx")
    tape = network.builder.tape(network.output_nodes)
    ops = ops_of(tape)
    assert ops.count("piecewise_linear") == 3  # sigmoid, sin and cos, each one node per argument
    assert tape.n_nodes < 15_000  # 77,138 nodes as ReLU pieces


def test_only_the_arguments_of_needed_nodes_are_refined():
    """relu of t = (x*y + x, x*y - x), one instruction of two nodes, neither exact (x occurs twice); only
    relu(t[0]) is an ancestor of the output, so only t[0] is refined, though the tape keeps both."""
    b = TapeBuilder(["x", "y"])
    x, y = b.inputs((2,))
    q = b.elementwise("binary", "mul", [np.array([x]), np.array([y])], "q")
    t = b.linear([(np.array([0, 0, 1, 1]), np.array([q[0], x, q[0], x]), np.array([1.0, 1.0, 1.0, -1.0]), None)],
                 np.zeros(2), "t", (2,))
    r = b.elementwise("unary", "relu", [t], "r")
    refined = lambda tape: {str(tape.labels[i.start + int(j)]) for i in tape.instructions for j in i.refine}  # noqa: E731
    assert refined(b.tape(r)) == {"t[0]", "t[1]"}
    assert refined(b.tape(r[:1])) == {"t[0]"}


# --- inherited and alpha-optimised intermediate bounds (bab/bounding.py, bounds/ibp.py) ------------------------
def relu_network(seed: int = 0, width: int = 12, depth: int = 3):
    rng = np.random.default_rng(seed)
    b = TapeBuilder(["x0", "x1", "x2"])
    h = b.inputs((3,))
    for layer in range(depth):
        n_in = len(h)
        z = b.linear([(np.repeat(np.arange(width), n_in), np.tile(h, width), rng.normal(size=width * n_in), None)],
                     rng.normal(size=width) * 0.3, f"z{layer}", (width,))
        h = b.elementwise("unary", "relu", [z], f"h{layer}")
    out = b.linear([(np.zeros(width, dtype=np.int64), h, rng.normal(size=width), None)], np.zeros(1), "out", (1,))
    return b.tape(out)


def test_alpha_on_intermediate_bounds_is_sound_and_at_least_as_tight():
    from graphver.bounds.ibp import refined_nodes

    lo, hi = -torch.ones(1, 3, dtype=DT), torch.ones(1, 3, dtype=DT)
    samples = torch.rand(20000, 3, dtype=DT) * 2 - 1
    tighter = 0
    for seed in range(4):
        tape = relu_network(seed)
        plain = bound_batch(tape, lo, hi, empty_splits(1), "alpha", BoundOptions(alpha_intermediate=False))
        inner = bound_batch(tape, lo, hi, empty_splits(1), "alpha", BoundOptions(alpha_intermediate=True))
        values = evaluate_all(tape, samples)
        nodes = refined_nodes(tape)[0]
        assert bool((values[:, nodes] >= inner.lo[0, nodes]).all() and (values[:, nodes] <= inner.hi[0, nodes]).all())
        assert float(inner.rows_lower[0, 0]) <= float(values[:, tape.outputs].min())
        assert float(inner.rows_lower[0, 0]) >= float(plain.rows_lower[0, 0]) - 1e-9
        tighter += float(inner.rows_lower[0, 0]) > float(plain.rows_lower[0, 0]) + 1e-6
    assert tighter >= 1


def test_prior_intervals_tighten_and_never_cross():
    from graphver.bounds.ibp import refined_nodes

    tape = relu_network(1)
    lo, hi = -torch.ones(1, 3, dtype=DT), torch.ones(1, 3, dtype=DT)
    own = bound_batch(tape, lo, hi, empty_splits(1), "crown", BoundOptions())
    nodes = refined_nodes(tape)[0]
    first = tape.instructions[0]  # the first layer's refined nodes: nothing before them changes
    width = own.hi[0, nodes] - own.lo[0, nodes]
    prior = (own.lo[:, nodes] + width / 4, own.hi[:, nodes] - width / 4)
    narrowed = bound_batch(tape, lo, hi, empty_splits(1), "crown", BoundOptions(), prior=prior)
    k = first.refine.numel()
    assert torch.allclose(narrowed.lo[0, nodes[:k]], prior[0][0, :k]) and torch.allclose(narrowed.hi[0, nodes[:k]], prior[1][0, :k])
    crossing = (own.hi[:, nodes] + 1.0, own.hi[:, nodes] + 2.0)  # disjoint from the pass's own intervals
    kept = bound_batch(tape, lo, hi, empty_splits(1), "crown", BoundOptions(), prior=crossing)
    assert torch.equal(kept.lo[0, nodes[:k]], own.lo[0, nodes[:k]])
