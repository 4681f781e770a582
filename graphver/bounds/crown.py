"""CROWN: backward linear bound propagation over the tape.

For queries y_q = c_q^T z (here: selected nodes, each bounded from below and from above, i.e. 2Q rows
``+z_t`` and ``-z_t``), the backward pass keeps a coefficient on every (row, node) pair the rows can
reach (a sparse ``BackwardPlan``). At an instruction z = f(h) with relaxation
``aL*h + bL <= f(h) <= aU*h + bU``, the coefficient on z moves to h as ``lam+ * aL + lam- * aU`` and the
bias gains ``lam+ * bL + lam- * bU``; linear instructions pass coefficients through their weights. At the
inputs, ``sum(lam+ * l + lam- * u) + bias`` is a lower bound of the row.

Rounding (see docs/developer.md): every product and sum of the pass rounds. We bound the effect on the
final value by ``gamma_n * slack`` where ``slack`` sums ``|term| * max(|l|, |u|)`` of every coefficient
term formed (and ``|term|`` of every bias term), and n bounds the length of any accumulated sum
(``Tape.accumulation_terms``). The stored linear constants differ from the model's exact ones by at most
their recorded errors, which adds ``sum(|coefficient| * error * magnitude)`` exactly (not scaled by gamma).
The result is a rigorous lower bound in floating point.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from graphver.bounds.ibp import argument_bounds
from graphver.bounds.plan import BackwardPlan, PlanStep, plan_for
from graphver.rounding import coefficient_floor, concretised_lower, may_underflow, term_slack
from graphver.tape.tape import Tape


def weighted(coef: Tensor, value: Tensor) -> Tensor:
    """coef * value, with 0 * inf taken as 0 (a zero coefficient does not use the value)."""
    return torch.where(coef == 0, torch.zeros_like(coef), coef * value)


def magnitude(term: Tensor, size: Tensor) -> Tensor:
    """|term| * size, with 0 * inf taken as 0."""
    return torch.nan_to_num(term.abs() * size, nan=0.0)


def per_row(values: Tensor, rows: Tensor, n_rows: int) -> Tensor:
    """Sum [B, m] values into [B, n_rows] by their row index."""
    out = torch.zeros(values.shape[0], n_rows, dtype=values.dtype, device=values.device)
    return out.index_add(1, rows, values)


def step_lines(tape: Tape, step: PlanStep, lo: Tensor, hi: Tensor, alpha: Tensor | None):
    """Relaxation coefficients at each entry of a nonlinear step: [(lower slope, upper slope)] per argument,
    lower bias, upper bias, all [B, entries]. Without ``alpha`` the lines are computed once per node."""
    instr = tape.instructions[step.instruction]
    op = instr.op_object
    bounds = argument_bounds(instr, lo, hi)
    if alpha is None:
        flat = [t for pair in bounds for t in pair]
        relaxation = op.relax(*flat, instr.param)
        pick = lambda t: t.index_select(1, step.local)  # noqa: E731
    else:
        flat = [t.index_select(1, step.local) for pair in bounds for t in pair]
        relaxation = op.relax(*flat, instr.param, alpha[0], alpha[1])
        pick = lambda t: t  # noqa: E731
    if instr.kind == "unary":
        slopes = [(pick(relaxation.lower_slope), pick(relaxation.upper_slope))]
    else:
        slopes = [(pick(relaxation.lower_x), pick(relaxation.upper_x)), (pick(relaxation.lower_y), pick(relaxation.upper_y))]
    return slopes, pick(relaxation.lower_bias), pick(relaxation.upper_bias)


def run_plan(
    tape: Tape, plan: BackwardPlan, lo: Tensor, hi: Tensor, alphas: dict[int, Tensor] | None, record: dict | None = None
) -> Tensor:
    """Execute a backward plan; returns the certified lower bound of every row, [B, rows].

    ``record`` (optional dict) receives what branching heuristics read: ``step_coef[number]`` (the final
    coefficient on each entry of nonlinear step ``number``, [B, entries]), ``input_coef`` ([B, rows,
    n_inputs], the coefficients at the inputs) and ``offset`` ([B, rows]): each row is at least
    ``input_coef . x + offset`` at every point x of the box."""
    batch = lo.shape[0]
    lam = torch.zeros(batch, plan.entries, dtype=lo.dtype, device=lo.device)
    lam[:, plan.start_entries] = plan.start_values.to(lo.dtype)
    bias = torch.zeros(batch, plan.rows, dtype=lo.dtype, device=lo.device)
    slack = torch.zeros_like(bias)
    constant_error = torch.zeros_like(bias)  # errors that are not roundings of this pass (constants)
    size = torch.maximum(lo.abs(), hi.abs())
    floor = coefficient_floor(tape.accumulation_terms, lo)

    for number, step in enumerate(plan.steps):
        instr = tape.instructions[step.instruction]
        coef = lam[:, step.begin : step.end].clone()
        if instr.kind == "linear":
            source = coef[:, step.term_source]
            weights = instr.weights[step.term_weight]
            moved = source * weights
            lam.index_add_(1, step.term_target, moved)
            term_size = size[:, step.term_node]
            underflowed = may_underflow(moved, source, weights)
            slack = slack + per_row(term_slack(moved, term_size, underflowed, floor), step.term_query, plan.rows)
            bias_terms = weighted(coef, instr.bias[step.local])
            errors = magnitude(source * instr.weight_error[step.term_weight], term_size)
            errors = per_row(errors, step.term_query, plan.rows)
            constant_error = constant_error + errors + per_row(magnitude(coef, instr.bias_error[step.local]), step.query, plan.rows)
        else:
            alpha = alphas.get(number) if alphas else None
            if record is not None:
                record.setdefault("step_coef", {})[number] = coef
            slopes, lower_bias, upper_bias = step_lines(tape, step, lo, hi, alpha)
            pos, neg = coef.clamp(min=0), coef.clamp(max=0)
            for arg, entries, (slope_lower, slope_upper) in zip(instr.args, step.arg_entries, slopes):
                moved = pos * slope_lower + neg * slope_upper
                lam.index_add_(1, entries, moved)
                underflowed = may_underflow(moved, coef, torch.where(coef > 0, slope_lower, slope_upper))
                slack = slack + per_row(term_slack(moved, size[:, arg[step.local]], underflowed, floor), step.query, plan.rows)
            bias_terms = weighted(pos, lower_bias) + weighted(neg, upper_bias)
        bias = bias + per_row(bias_terms, step.query, plan.rows)
        slack = slack + per_row(torch.nan_to_num(bias_terms.abs(), nan=0.0), step.query, plan.rows)

    coef = lam[:, : plan.input_end]
    if record is not None:
        dense = torch.zeros(lo.shape[0], plan.rows, tape.n_inputs, dtype=lo.dtype, device=lo.device)
        dense[:, plan.input_query, plan.input_node] = coef
        record["input_coef"] = dense
    lower_in, upper_in = lo[:, plan.input_node], hi[:, plan.input_node]
    values = weighted(coef.clamp(min=0), lower_in) + weighted(coef.clamp(max=0), upper_in)
    value = per_row(values, plan.input_query, plan.rows) + bias
    slack = slack + per_row(magnitude(coef, size[:, plan.input_node]), plan.input_query, plan.rows) + bias.abs()
    slack = slack + constant_error
    if record is not None:
        # the linear lower bound of each row: row(x) >= input_coef . x + offset for every x of the box
        # (the rounding slack covers the pass and the concretisation over the box)
        record["offset"] = concretised_lower(bias, slack, constant_error, tape.accumulation_terms)
    return concretised_lower(value, slack, constant_error, tape.accumulation_terms)


def backward_lower(
    tape: Tape,
    lo: Tensor,
    hi: Tensor,
    targets: Tensor,
    upto: int,
    alphas: dict[int, Tensor] | None = None,
) -> Tensor:
    """Lower bounds of ``+z_t`` and ``-z_t`` for the global nodes ``targets`` ([Q]); returns [B, 2Q].

    ``upto``: index of the last instruction the pass starts from (every target lies at or before it; -1
    when all targets are inputs). ``alphas``: optional relaxation parameters per plan step, each of
    shape [2, B, entries of the step] (lower and upper line); absent steps use the CROWN default.
    """
    return run_plan(tape, plan_for(tape, targets, upto), lo, hi, alphas)


def crown_refine_hook(tape: Tape, max_elements: int):
    """A forward_bounds hook that tightens the marked outputs of an instruction with CROWN, in place.

    Targets are split into chunks whose plans keep batch x entries under ``max_elements``; tapes of dense
    layers use the dense pass (``graphver.bounds.dense``)."""
    from graphver.bounds.dense import dense_lower, prefers_dense

    def refine(index, instr, lo, hi):
        targets_all = instr.start + instr.refine.to(lo.device)
        if prefers_dense(tape):
            result = dense_lower(tape, lo, hi, targets_all, index, max_elements=max_elements)
            q = targets_all.numel()
            lo[:, targets_all] = torch.maximum(lo[:, targets_all], result[:, :q])
            hi[:, targets_all] = torch.minimum(hi[:, targets_all], -result[:, q:])
            return
        plan = plan_for(tape, targets_all, index)
        chunks = max(1, math.ceil(lo.shape[0] * plan.entries / max_elements))
        step = max(1, math.ceil(targets_all.numel() / chunks))
        for begin in range(0, targets_all.numel(), step):
            targets = targets_all[begin : begin + step]
            result = backward_lower(tape, lo, hi, targets, index)
            q = targets.numel()
            lo[:, targets] = torch.maximum(lo[:, targets], result[:, :q])
            hi[:, targets] = torch.minimum(hi[:, targets], -result[:, q:])

    return refine
