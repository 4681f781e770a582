"""Bounding a batch of domains: input boxes plus node splits, in one batched pass.

A domain is the set of points of its input box whose split nodes lie in their split intervals. The
pass recomputes every node's interval (IBP intersected with CROWN, and with the splits), so a split
tightens the split node's consumers *and all their descendants*: nothing is frozen at the parent's
values. Boxes whose pass leaves an op's domain are marked (their bound is -inf, to be split further);
boxes whose split constraints contradict the computed intervals are empty (their bound is +inf).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from graphver.bounds.alpha import alpha_lower
from graphver.bounds.crown import crown_refine_hook, run_plan
from graphver.bounds.dense import dense_lower, prefers_dense
from graphver.bounds.ibp import DomainMarks, NodeSplits, forward_bounds
from graphver.bounds.plan import plan_for
from graphver.options import BoundOptions
from graphver.tape.tape import Tape


@dataclass
class BatchBounds:
    rows_lower: Tensor  # [B, rows] certified lower bounds of each margin/objective row
    lo: Tensor  # [B, n_nodes] node intervals of the pass
    hi: Tensor
    record: dict  # step coefficients and input coefficients of the final backward pass
    infeasible: Tensor  # [B] empty domains
    domain_error: Tensor  # [B] domains whose pass left an op's domain
    domain_message: str | None
    alphas: Tensor | None = None  # [B, A] optimised relaxation parameters (method "alpha")


def bound_batch(
    tape: Tape,
    lower: Tensor,
    upper: Tensor,
    splits: NodeSplits,
    method: str,
    options: BoundOptions,
    start_alphas: Tensor | None = None,
) -> BatchBounds:
    """Certified lower bounds of every output row over each domain of the batch.

    With method "alpha", ``start_alphas`` ([B, A], e.g. the parents') warm-start the optimisation and the
    result carries the optimised parameters for the children to inherit."""
    batch = lower.shape[0]
    marks = DomainMarks(batch, lower.device)
    refine = crown_refine_hook(tape, options.max_chunk_elements) if method != "ibp" and options.crown_intermediate else None
    record: dict = {}
    alphas = None
    with torch.no_grad():
        lo, hi = forward_bounds(tape, lower, upper, refine, splits, marks)
        rows_lower = lo[:, tape.outputs].clone()
        if method != "ibp":
            targets = tape.outputs
            upto = max(tape.instruction_of(int(t)) for t in targets)
            q = targets.numel()
            if prefers_dense(tape):  # dense layers: dense coefficients, CROWN's lines (no alpha on this path)
                result = dense_lower(tape, lo, hi, targets, upto, record, options.max_chunk_elements)
            elif method == "crown" or upto < 0:
                result = run_plan(tape, plan_for(tape, targets, upto), lo, hi, None, record)
            else:
                final: dict = {}
                with torch.enable_grad():
                    result = alpha_lower(tape, lo, hi, targets, upto, options.alpha_iterations, options.alpha_lr,
                                         start_alphas, final)
                alphas = final.get("alphas")
                run_plan(tape, plan_for(tape, targets, upto), lo, hi, None, record)
            rows_lower = torch.maximum(rows_lower, result[:, :q])
    infeasible = splits.infeasible & ~marks.bad
    rows_lower = torch.where(marks.bad[:, None], torch.full_like(rows_lower, -torch.inf), rows_lower)
    rows_lower = torch.where(infeasible[:, None], torch.full_like(rows_lower, torch.inf), rows_lower)
    return BatchBounds(rows_lower, lo, hi, record, infeasible, marks.bad, marks.first_message, alphas)
