"""alpha-CROWN: optimise the relaxation parameters of every nonlinear node jointly, by Adam.

Every entry (query row, node) of a nonlinear step of the backward plan gets a parameter pair (lower and
upper line), so each query row has its own set. Every value is sound (the ops clamp it into [0, 1] and build a valid line from
it), so the best bound seen over the iterations is a certified bound. Intermediate bounds stay those of
CROWN (IBP intersected), computed once.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from graphver.bounds.crown import backward_lower, run_plan
from graphver.bounds.ibp import argument_bounds
from graphver.bounds.plan import BackwardPlan, plan_for
from graphver.tape.tape import Tape


def nonlinear_steps(tape: Tape, plan: BackwardPlan, lo: Tensor, hi: Tensor):
    """(step number, step, instruction, flat argument bounds [l, u, ...] per entry) of every nonlinear
    step of a plan: what a choice of relaxation parameters is made from."""
    for number, step in enumerate(plan.steps):
        instr = tape.instructions[step.instruction]
        if instr.kind == "linear":
            continue
        yield number, step, instr, [t.index_select(1, step.local) for pair in argument_bounds(instr, lo, hi) for t in pair]


def initial_alphas(tape: Tape, plan: BackwardPlan, lo: Tensor, hi: Tensor) -> dict[int, Tensor]:
    """CROWN's default parameters (chord slopes, McCormick weight 1/2), one pair per plan entry."""
    alphas = {}
    for number, _, instr, flat in nonlinear_steps(tape, plan, lo, hi):
        start = instr.op_object.default_alpha(*flat, instr.param)  # [B, entries]
        alphas[number] = torch.stack([start, start]).clone().requires_grad_(True)
    return alphas


def flatten_alphas(alphas: dict[int, Tensor]) -> Tensor:
    """Parameters of all steps as one [B, A] tensor (steps in plan order), e.g. to store per domain."""
    if not alphas:
        return torch.zeros(0, 0)
    parts = [alphas[k].detach().permute(1, 0, 2).reshape(alphas[k].shape[1], -1) for k in sorted(alphas)]
    return torch.cat(parts, dim=1)


def unflatten_alphas(flat: Tensor, template: dict[int, Tensor]) -> dict[int, Tensor]:
    """Inverse of ``flatten_alphas`` given tensors of the right shapes (the defaults for this batch)."""
    out, offset = {}, 0
    for k in sorted(template):
        two, batch, m = template[k].shape
        out[k] = flat[:, offset : offset + two * m].reshape(batch, two, m).permute(1, 0, 2).contiguous()
        offset += two * m
    return out


def alpha_lower(
    tape: Tape,
    lo: Tensor,
    hi: Tensor,
    targets: Tensor,
    upto: int,
    iterations: int,
    lr: float,
    start: Tensor | None = None,
    final: dict | None = None,
) -> Tensor:
    """Best lower bounds of ``+z_t`` and ``-z_t`` over Adam iterations; returns [B, 2Q].

    ``start``: optional flattened parameters [B, A] to begin from (a parent domain's, in branch-and-bound);
    ``final`` (a dict) receives ``"alphas"``, the flattened parameters after the last step."""
    with torch.no_grad():
        best = backward_lower(tape, lo, hi, targets, upto)
    if iterations == 0 or upto < 0:
        return best
    plan = plan_for(tape, targets, upto)
    alphas = initial_alphas(tape, plan, lo, hi)
    if not alphas:
        return best
    if start is not None and start.numel():
        alphas = {k: v.detach().clone().requires_grad_(True) for k, v in unflatten_alphas(start, alphas).items()}
        with torch.no_grad():
            best = torch.maximum(best, run_plan(tape, plan, lo, hi, alphas))
    optimizer = torch.optim.Adam(list(alphas.values()), lr=lr)
    try:
        for _ in range(iterations):
            result = run_plan(tape, plan, lo, hi, alphas)
            best = torch.maximum(best, result.detach())
            finite = torch.isfinite(result)
            if not bool(finite.any()):
                break
            loss = -result[finite].sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                for value in alphas.values():
                    value.clamp_(0.0, 1.0)
        with torch.no_grad():
            best = torch.maximum(best, run_plan(tape, plan, lo, hi, alphas))
    except KeyboardInterrupt:
        warnings.warn("alpha optimisation interrupted: returning the best bound proven so far", stacklevel=2)
    if final is not None:
        final["alphas"] = flatten_alphas(alphas)
    return best
