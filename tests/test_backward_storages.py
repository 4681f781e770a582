"""The backward pass on its two coefficient storages (graphver/bounds/backward.py): sparse plan entries and
dense [B, rows, nodes] tensors give the same bounds, linear bounds and per-step coefficients up to
rounding (1e-12 relative), with CROWN's lines and with any relaxation parameters; alpha and node branching
work on the dense storage; the option and the deadlines."""

from __future__ import annotations

import math
import time

import pytest
import sympy
import torch
from hypothesis import HealthCheck, given, settings
from torch import Tensor
from test_fuzz import N_VARS, boxes, expressions

import graphver as gv
from graphver.bab.bounding import bound_batch
from graphver.bab.branching import BBPSScore, BranchContext, InputWidthScore
from graphver.bounds import node_bounds
from graphver.bounds.alpha import alpha_bounds, flatten_alphas, initial_alphas, unflatten_alphas
from graphver.bounds.backward import LinearBounds, backward_pass, storage_chunks
from graphver.bounds.dense import prefers_dense
from graphver.bounds.ibp import NodeSplits, forward_bounds
from graphver.bounds.plan import plan_for
from graphver.clock import DeadlineReached
from graphver.options import BoundOptions
from graphver.tape import compile_expressions
from graphver.tape.evaluate import evaluate

DT = torch.float64
RTOL = 1e-12


def assert_close(a: Tensor, b: Tensor, what: str) -> None:
    """Equal up to RTOL relative to the magnitude of each row (the last dimension of coefficient vectors,
    the element itself for bounds); equal infinities match."""
    assert a.shape == b.shape, what
    same = a == b
    scale = torch.maximum(a.abs(), b.abs())
    if a.dim() == 3:
        scale = scale.amax(dim=-1, keepdim=True)
    difference = torch.where(same, torch.zeros_like(a), (a - b).abs())
    bad = ~(difference <= RTOL * scale + 1e-290)
    assert not bool(bad.any()), f"{what}: {a[bad][:4].tolist()} vs {b[bad][:4].tolist()}"


def compare_storages(tape, lower, upper, alphas_dense=None, max_elements=None):
    """Both storages' final passes on the same node intervals, compared entry by entry."""
    with torch.no_grad():
        lo, hi = node_bounds(tape, lower, upper, "crown", BoundOptions(backward="sparse"))
    targets = tape.outputs
    upto = max(tape.instruction_of(int(t)) for t in targets)
    alphas_sparse = None
    if alphas_dense is not None:
        alphas_sparse = to_sparse_layout(tape, targets, upto, alphas_dense)
    with torch.no_grad():
        sparse = backward_pass(tape, lo, hi, targets, upto, "sparse", alphas_sparse, keep=True)
        dense = backward_pass(tape, lo, hi, targets, upto, "dense", alphas_dense, keep=True,
                              max_elements=max_elements or 2**24)
    assert sparse.storage == "sparse" and dense.storage == "dense"
    assert_close(sparse.lower, dense.lower, "lower")
    assert_close(sparse.input_coef, dense.input_coef, "input_coef")
    assert_close(sparse.offset, dense.offset, "offset")
    batch, rows = sparse.lower.shape
    instructions = set(sparse.step_instructions()) | set(dense.step_instructions())
    assert set(sparse.step_instructions()) <= {i for i, instr in enumerate(tape.instructions) if instr.kind != "linear"}
    for index in instructions:
        for r in range(rows):
            row = torch.full((batch,), r, dtype=torch.long)
            a, b = sparse.step_coef(index, row), dense.step_coef(index, row)
            assert a.shape == (batch, tape.instructions[index].size)
            assert_close(a[:, None], b[:, None], f"step coefficients of instruction {index}, row {r}")
    return sparse, dense, lo, hi


def to_sparse_layout(tape, targets, upto, alphas_dense):
    """Dense parameters [2, B, rows, size] as the sparse plan's [2, B, entries]: entry (row, node) takes the
    dense parameter of that row and node."""
    plan = plan_for(tape, targets, upto)
    out = {}
    for step in plan.steps:
        if step.instruction in alphas_dense:
            out[step.instruction] = alphas_dense[step.instruction][:, :, step.query, step.local]
    return out


def random_dense_alphas(tape, lo, hi, targets, upto, generator):
    _, storage = storage_chunks(tape, targets, upto, "dense", lo.shape[0], None)[0]
    template = initial_alphas(tape, storage, lo, hi)
    return {k: torch.rand(v.shape, generator=generator, dtype=DT) for k, v in template.items()}


def test_storages_agree_on_random_tapes():
    """Random graphs over every op and random boxes: the sparse and the dense storage give the same rows,
    linear bounds and per-step coefficients."""
    symbols = [sympy.Symbol(f"x_{i}", real=True) for i in range(N_VARS)]
    compared = []

    @settings(max_examples=60, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(expr=expressions(symbols, 5), box=boxes())
    def check(expr, box):
        lower, upper, _ = box
        if expr.is_number:
            return
        try:
            tape = compile_expressions(symbols, [expr, -expr * 0.5 + symbols[0]])
            compare_storages(tape, lower, upper, max_elements=lower.shape[0] * tape.n_nodes)  # one row per chunk
        except gv.DomainError:
            return
        compared.append(expr)

    check()
    assert len(compared) >= 30


def network(seed: int, n_inputs: int = 34, hidden: int = 12, offset: float = 0.0):
    """A model with two dense layers (fan-in >= 32: the tape prefers dense storage) and physics-like terms."""
    gen = torch.Generator().manual_seed(seed)
    m = gv.Model(f"net{seed}")
    x = m.vars("x", n_inputs, -1, 1)

    def weight():
        return float(torch.randn(1, generator=gen, dtype=DT)) / math.sqrt(n_inputs)

    acts = [gv.tanh, gv.sigmoid, gv.sin, lambda h: gv.Max(h, 0)]
    layer = [acts[j % 4](sum(weight() * xi for xi in x) + 0.1 * j) for j in range(hidden)]
    second = [gv.tanh(sum(weight() * h for h in layer) + sum(weight() * xi for xi in x[:32]) + offset * k)
              for k in range(3)]
    outputs = [second[0] * second[1] + gv.exp(second[2]), second[1] - layer[0] * x[0], second[2] ** 2]
    tape = m.compile(outputs)
    return m, tape


@pytest.mark.parametrize("seed", range(3))
def test_storages_agree_on_dense_layers(seed):
    m, tape = network(seed)
    assert prefers_dense(tape)
    gen = torch.Generator().manual_seed(10 + seed)
    centre = (torch.rand(3, tape.n_inputs, generator=gen, dtype=DT) * 2 - 1) * 0.5
    width = torch.tensor([0.05, 0.3, 1.0], dtype=DT)[:, None]
    lower, upper = centre - width, centre + width
    sparse, dense, lo, hi = compare_storages(tape, lower, upper)
    assert dense.step_instructions()  # per-step coefficients are kept on the dense storage
    # any relaxation parameters, one per (row, node), in both layouts; chunks of two rows
    targets = tape.outputs
    upto = max(tape.instruction_of(int(t)) for t in targets)
    alphas = random_dense_alphas(tape, lo, hi, targets, upto, gen)
    compare_storages(tape, lower, upper, alphas, max_elements=2 * lower.shape[0] * tape.n_nodes)
    # the kept linear bounds hold at sampled points
    points = lower[:, None] + (upper - lower)[:, None] * torch.rand(3, 500, tape.n_inputs, generator=gen, dtype=DT)
    values = evaluate(tape, points.reshape(-1, tape.n_inputs)).reshape(3, 500, -1)
    q = tape.n_outputs
    linear = torch.einsum("bqn,bpn->bpq", dense.input_coef[:, :q], points) + dense.offset[:, None, :q]
    assert bool((values >= linear).all())
    assert bool((values >= dense.lower[:, None, :q]).all()) and bool((-values >= dense.lower[:, None, q:]).all())


@pytest.mark.parametrize("seed", range(3))
def test_intermediate_bounds_agree_on_both_storages(seed):
    """Refining every marked node (each pass from one instruction's outputs: the dense storage enters
    through a linear instruction, on the columns of the targets' ancestors, in chunks of targets) gives
    the sparse storage's intervals, with one chunk and with chunks of a single target."""
    m, tape = network(seed, offset=0.3)
    gen = torch.Generator().manual_seed(20 + seed)
    centre = (torch.rand(2, tape.n_inputs, generator=gen, dtype=DT) * 2 - 1) * 0.5
    lower, upper = centre - 0.4, centre + 0.4
    with torch.no_grad():
        reference = node_bounds(tape, lower, upper, "crown", BoundOptions(backward="sparse"))
        for chunk in (2**24, 2):
            dense = node_bounds(tape, lower, upper, "crown", BoundOptions(backward="dense", max_chunk_elements=chunk))
            for a, b, what in zip(reference, dense, ("lower", "upper")):
                assert_close(a, b, f"node {what} bounds, chunk {chunk}")
    assert any(i.kind == "linear" and i.refine.numel() for i in tape.instructions)


def test_alpha_on_dense_storage_is_at_least_as_tight_as_crown():
    m, tape = network(5)
    gen = torch.Generator().manual_seed(3)
    centre = (torch.rand(2, tape.n_inputs, generator=gen, dtype=DT) * 2 - 1) * 0.5
    lower, upper = centre - 0.4, centre + 0.4
    with torch.no_grad():
        lo, hi = node_bounds(tape, lower, upper, "crown", BoundOptions())
    targets = tape.outputs
    upto = max(tape.instruction_of(int(t)) for t in targets)
    crown = backward_pass(tape, lo, hi, targets, upto, "dense")
    batch, width = lower.shape[0], tape.n_nodes
    chunked = alpha_bounds(tape, lo, hi, targets, upto, 8, 0.2, "dense", keep=True, max_elements=batch * width * 2)
    whole = alpha_bounds(tape, lo, hi, targets, upto, 8, 0.2, "dense", keep=True)
    for result in (chunked, whole):
        assert isinstance(result, LinearBounds) and result.storage == "dense"
        assert bool((result.lower >= crown.lower).all())
        assert bool((result.lower > crown.lower + 1e-9).any())
    # the parameters come back in one layout whatever the chunking, and warm-start a later pass
    assert chunked.alphas.shape == whole.alphas.shape and chunked.alphas.shape[0] == batch
    again = alpha_bounds(tape, lo, hi, targets, upto, 3, 0.1, "dense", start=chunked.alphas)
    assert bool((again.lower >= crown.lower).all())
    template = initial_alphas(tape, storage_chunks(tape, targets, upto, "dense", batch, None)[0][1], lo, hi)
    restored = unflatten_alphas(chunked.alphas, template)
    assert torch.equal(flatten_alphas(restored), chunked.alphas)
    assert unflatten_alphas(chunked.alphas[:, 1:], template) is None  # another pass's parameters: not used
    # sound: below every sampled value
    points = lower[:, None] + (upper - lower)[:, None] * torch.rand(2, 2000, tape.n_inputs, generator=gen, dtype=DT)
    values = evaluate(tape, points.reshape(-1, tape.n_inputs)).reshape(2, 2000, -1)
    q = tape.n_outputs
    assert bool((values >= chunked.lower[:, None, :q]).all()) and bool((-values >= chunked.lower[:, None, q:]).all())


def test_node_branching_scores_on_dense_storage():
    """BBPS reads the per-step coefficients through LinearBounds on either storage: the dense scores exist
    and match the sparse ones."""
    m, tape = network(1)
    lower, upper = m.box()
    lower, upper = lower * 0.5, upper * 0.5
    empty = torch.zeros(1, 0, dtype=DT)
    splits = NodeSplits(torch.zeros(0, dtype=torch.long), empty, empty.clone())
    scores = {}
    for backward in ("sparse", "dense"):
        result = bound_batch(tape, lower, upper, splits, "crown", BoundOptions(backward=backward))
        assert result.linear is not None and result.linear.storage == backward
        row = result.rows_lower.argmin(dim=1)
        ctx = BranchContext(tape, result.linear, result.lo, result.hi, lower, upper, row)
        node_scores, points = BBPSScore().scores(ctx)
        input_scores, _ = InputWidthScore().scores(ctx)
        assert bool(torch.isfinite(node_scores).all()) and bool(torch.isfinite(points).all())
        scores[backward] = (node_scores, input_scores)
    assert bool((scores["dense"][0] > 0).any())
    for k in range(2):
        assert torch.allclose(scores["dense"][k], scores["sparse"][k], rtol=1e-8, atol=1e-12)


def test_alpha_in_branch_and_bound_batches_on_dense_storage():
    """bound_batch with alpha on the dense storage: tighter than CROWN, parameters to inherit."""
    m, tape = network(2)
    lower, upper = m.box()
    lower, upper = lower * 0.3, upper * 0.3
    empty = torch.zeros(1, 0, dtype=DT)
    splits = NodeSplits(torch.zeros(0, dtype=torch.long), empty, empty.clone())
    options = BoundOptions(backward="dense", alpha_iterations=10)
    crown = bound_batch(tape, lower, upper, splits, "crown", options)
    alpha = bound_batch(tape, lower, upper, splits, "alpha", options)
    assert bool((alpha.rows_lower >= crown.rows_lower).all())
    assert alpha.alphas is not None and alpha.alphas.shape[0] == 1
    warm = bound_batch(tape, lower, upper, splits, "alpha", options, start_alphas=alpha.alphas)
    assert bool((warm.rows_lower >= crown.rows_lower).all())


def test_backward_option_is_checked():
    with pytest.raises(gv.OptionError, match="backward must be 'auto', 'sparse' or 'dense', got 'dens'. Did you mean 'dense'"):
        BoundOptions(backward="dens")
    m = gv.Model("opt")
    x = m.var("x", -1, 1)
    with pytest.raises(gv.OptionError, match="backward"):
        m.interval(gv.sin(x), backward="diagonal")
    assert m.interval(gv.sin(x) * x, backward="dense").lower == m.interval(gv.sin(x) * x, backward="sparse").lower


def test_deadlines_stop_the_passes():
    m, tape = network(0)
    lower, upper = m.box()
    past = time.perf_counter() - 1.0
    with pytest.raises(DeadlineReached):
        forward_bounds(tape, lower, upper, deadline=past)
    with torch.no_grad():
        lo, hi = node_bounds(tape, lower, upper, "crown", BoundOptions())
    targets = tape.outputs
    upto = max(tape.instruction_of(int(t)) for t in targets)
    for backward in ("sparse", "dense"):
        with pytest.raises(DeadlineReached):
            backward_pass(tape, lo, hi, targets, upto, backward, deadline=past)
    empty = torch.zeros(1, 0, dtype=DT)
    with pytest.raises(DeadlineReached):
        bound_batch(tape, lower, upper, NodeSplits(torch.zeros(0, dtype=torch.long), empty, empty.clone()), "crown",
                    BoundOptions(), deadline=past)
    assert backward_pass(tape, lo, hi, targets, upto, deadline=math.inf).lower.shape == (1, 2 * tape.n_outputs)


def test_alpha_stops_at_the_deadline_with_its_best_bound(monkeypatch):
    """Once the deadline has passed, alpha stops iterating and returns the best bound so far (here CROWN's)."""
    import graphver.bounds.alpha as alpha_module

    m, tape = network(4)
    lower, upper = m.box()
    with torch.no_grad():
        lo, hi = node_bounds(tape, lower, upper, "crown", BoundOptions())
    targets = tape.outputs
    upto = max(tape.instruction_of(int(t)) for t in targets)
    crown = backward_pass(tape, lo, hi, targets, upto, "dense")
    monkeypatch.setattr(alpha_module, "passed", lambda deadline: True)
    stopped = alpha_bounds(tape, lo, hi, targets, upto, 20, 0.1, "dense", deadline=time.perf_counter() + 60)
    assert torch.equal(stopped.lower, crown.lower)


def test_dense_layouts_are_kept_per_dtype():
    """Moved copies of a tape share its cache: a float32 copy's dense passes use its own (float32) weights,
    whatever ran on the float64 tape before, and give what a fresh float32 copy gives."""
    _, tape = network(1, offset=0.3)
    lower = torch.full((1, tape.n_inputs), -0.3, dtype=DT)
    options = BoundOptions(backward="dense")
    with torch.no_grad():
        node_bounds(tape, lower, -lower, "crown", options)
        shared = node_bounds(tape.to(dtype=torch.float32), lower.float(), -lower.float(), "crown", options)
        _, fresh_tape = network(1, offset=0.3)
        fresh = node_bounds(fresh_tape.to(dtype=torch.float32), lower.float(), -lower.float(), "crown", options)
    assert shared[0].dtype == torch.float32
    assert torch.equal(shared[0], fresh[0]) and torch.equal(shared[1], fresh[1])
