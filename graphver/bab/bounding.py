"""Bounding a batch of domains: input boxes plus node splits, in one batched pass.

A domain is the set of points of its input box whose split nodes lie in their split intervals. The
pass recomputes every node's interval (IBP intersected with CROWN, and with the splits), so a split
tightens the split node's consumers *and all their descendants*: nothing is frozen at the parent's
values. Boxes whose pass leaves an op's domain are marked, and every output that depends on a node whose
argument left its domain (``domain_taint``) gets the bound -inf (to be split further); the other outputs
keep their bounds, so that a constraint row can still prove such a box infeasible. Boxes whose split
constraints contradict the computed intervals are empty (their bound is +inf).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import Tensor

from graphver.bounds.alpha import alpha_bounds
from graphver.bounds.backward import LinearBounds, backward_pass, refine_hook
from graphver.bounds.ibp import DomainMarks, NodeSplits, argument_bounds, forward_bounds
from graphver.options import BoundOptions
from graphver.tape.tape import Tape


@dataclass
class BatchBounds:
    rows_lower: Tensor  # [B, rows] certified lower bounds of each margin/objective row
    lo: Tensor  # [B, n_nodes] node intervals of the pass
    hi: Tensor
    linear: LinearBounds | None  # the final backward pass: linear bounds of every row, per-step coefficients
    infeasible: Tensor  # [B] empty domains
    domain_error: Tensor  # [B] domains whose pass left an op's domain
    domain_message: str | None
    alphas: Tensor | None = None  # [B, A] optimised relaxation parameters (method "alpha")
    tainted: Tensor | None = None  # [B, outputs] outputs whose bound rests on an interval that left an op's domain


def bound_batch(
    tape: Tape,
    lower: Tensor,
    upper: Tensor,
    splits: NodeSplits,
    method: str,
    options: BoundOptions,
    start_alphas: Tensor | None = None,
    deadline: float | None = None,
    prior: tuple[Tensor, Tensor] | None = None,
) -> BatchBounds:
    """Certified lower bounds of every output row over each domain of the batch.

    With method "alpha", ``start_alphas`` ([B, A], e.g. the parents') warm-start the optimisation and the
    result carries the optimised parameters for the children to inherit; with ``options.alpha_intermediate``
    the refined intermediate nodes get alpha's bounds too (per instruction, up to ``ALPHA_REFINE_ROWS``
    rows; CROWN's for larger ones), unless a ``prior`` is given (a child inherits its parent's instead). ``prior`` ([B, R] intervals of the refined nodes, e.g. the parents':
    ``graphver.bounds.ibp.refined_nodes``) is intersected with them. Past ``deadline`` the passes raise
    ``DeadlineReached`` (alpha's iterations stop instead, with the best bound so far)."""
    batch = lower.shape[0]
    marks = DomainMarks(batch, lower.device)
    refine = None
    if method != "ibp" and options.crown_intermediate:
        refine = refine_hook(tape, options.max_chunk_elements, options.backward, deadline)
        if method == "alpha" and options.alpha_intermediate and options.alpha_iterations and prior is None:
            refine = alpha_refine_hook(tape, options, refine, deadline)
    linear = None
    alphas = None
    with torch.no_grad():
        lo, hi = forward_bounds(tape, lower, upper, refine, splits, marks, deadline, prior)
        rows_lower = lo[:, tape.outputs].clone()
        if method != "ibp":
            targets = tape.outputs
            upto = max(tape.instruction_of(int(t)) for t in targets)
            q = targets.numel()
            if method == "crown" or upto < 0:
                linear = backward_pass(tape, lo, hi, targets, upto, options.backward, keep=True,
                                       max_elements=options.max_chunk_elements, deadline=deadline)
            else:
                with torch.enable_grad():
                    linear = alpha_bounds(tape, lo, hi, targets, upto, options.alpha_iterations, options.alpha_lr,
                                          options.backward, start_alphas, keep=True,
                                          max_elements=options.max_chunk_elements, deadline=deadline)
                alphas = linear.alphas
            rows_lower = torch.maximum(rows_lower, linear.lower[:, :q])
    infeasible = splits.infeasible & ~marks.bad
    tainted = torch.zeros_like(rows_lower, dtype=torch.bool)
    if bool(marks.bad.any()):
        tainted = domain_taint(tape, lo, hi)[0][:, tape.outputs] & marks.bad[:, None]
        # defence: a marked box whose violation the check does not find again keeps no bound at all
        tainted |= (marks.bad & ~tainted.any(dim=1))[:, None]
    rows_lower = torch.where(tainted, torch.full_like(rows_lower, -torch.inf), rows_lower)
    # a NaN bound (overflow in a pass over substituted intervals, say) means nothing: -inf
    rows_lower = torch.where(torch.isnan(rows_lower), torch.full_like(rows_lower, -torch.inf), rows_lower)
    rows_lower = torch.where(infeasible[:, None], torch.full_like(rows_lower, torch.inf), rows_lower)
    return BatchBounds(rows_lower, lo, hi, linear, infeasible, marks.bad, marks.first_message, alphas, tainted)


ALPHA_REFINE_ROWS = 512  # refine sets up to this size get alpha's bounds with alpha_intermediate (larger: CROWN's)


def alpha_refine_hook(tape: Tape, options: BoundOptions, crown_refine, deadline: float | None):
    """A refine hook that bounds each instruction's refined outputs by alpha (``alpha_bounds``: CROWN's pass,
    then Adam on the relaxation parameters of that pass), intersected with IBP; refine sets above
    ``ALPHA_REFINE_ROWS`` rows fall back to ``crown_refine``. Tighter intermediate intervals tighten every
    relaxation after them; with ``prior`` they are inherited by a domain's children."""

    def refine(index, instr, lo, hi):
        targets = instr.start + instr.refine.to(lo.device)
        if targets.numel() > ALPHA_REFINE_ROWS:
            crown_refine(index, instr, lo, hi)
            return
        with torch.enable_grad():
            result = alpha_bounds(tape, lo, hi, targets, index, options.alpha_iterations, options.alpha_lr,
                                  options.backward, max_elements=options.max_chunk_elements, deadline=deadline).lower
        result = result.detach()
        q = targets.numel()
        lo[:, targets] = torch.maximum(lo[:, targets], result[:, :q])
        hi[:, targets] = torch.minimum(hi[:, targets], -result[:, q:])

    return refine


def domain_taint(tape: Tape, lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor]:
    """Which node intervals of a pass (``lo``, ``hi`` [B, n_nodes], computed with ``DomainMarks``) are
    meaningless, and where an op is certainly undefined.

    ``tainted`` [B, n_nodes]: the node is the output of an op whose argument interval left its domain (the pass
    substituted the op's ``safe_point``) or depends on one; the intervals, linear bounds and relaxations of
    every other node are sound, since each is computed from its ancestors only. The check repeats
    ``check_domain`` on the final intervals, which are the ones it saw (refinement only tightens an
    instruction's own outputs, before its consumers run). ``witnessed`` [B, n_nodes]: the op's argument
    intervals are finite, come from untainted nodes, and every corner of them leaves the domain as the op
    checks it (``domain_violation``): on a point box, the op is undefined at that point."""
    batch = lo.shape[0]
    tainted = torch.zeros(batch, tape.n_nodes, dtype=torch.bool, device=lo.device)
    witnessed = torch.zeros_like(tainted)
    for instr in tape.instructions:
        if instr.kind == "linear":
            hits = torch.zeros(batch, instr.size, dtype=lo.dtype, device=lo.device)
            hits.index_add_(1, instr.rows, tainted[:, instr.cols].to(lo.dtype))
            tainted[:, instr.start : instr.stop] = hits > 0
            continue
        op = instr.op_object
        bounds = argument_bounds(instr, lo, hi)
        from_args = torch.zeros(batch, instr.size, dtype=torch.bool, device=lo.device)
        for a in instr.args:
            from_args |= tainted[:, a]
        bad = op.domain_violation(*[t for pair in bounds for t in pair], instr.param)
        tainted[:, instr.start : instr.stop] = bad | from_args
        if not bool(bad.any()):
            continue
        sure = ~from_args
        for ends in itertools.product(*[(l, u) for l, u in bounds]):
            sure &= op.domain_violation(*[e for end in ends for e in (end, end)], instr.param)
        for l, u in bounds:
            sure &= torch.isfinite(l) & torch.isfinite(u)
        witnessed[:, instr.start : instr.stop] = bad & sure
    return tainted, witnessed
