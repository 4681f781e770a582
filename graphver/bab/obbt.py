"""Optimisation-based bound tightening (OBBT) at the root of a constrained problem.

For every variable, the smallest and largest value it can take on the relaxed feasible set
``{x in box : c_k(x) <= 0 for all k, f(x) <= cutoff}`` is bounded from below by the Lagrangian bound
(``graphver.bounds.lagrangian``) of ``+x_i`` and ``-x_i``: all 2n problems in one batched call, using the
linear lower bounds of the constraint rows (and of the objective, for the cut-off) that one CROWN pass
over the box records; each problem's multipliers are its LP optimum (HiGHS), certified by the Lagrangian's
evaluation, with Adam steps only where the LP failed, in chunks of bounded memory. Each round shrinks the box, and the next round's CROWN pass is tighter on it.

The objective cut-off ``f <= cutoff`` (the incumbent's value) removes points that cannot beat the
incumbent. The incumbent is feasible only within a tolerance, so the cut-off may remove the exact
optimum when it lies a hair above the incumbent: the caller keeps ``cutoff`` as a lower-bound candidate
(the removed part has f > cutoff), exactly as for domains pruned by the incumbent.
"""

from __future__ import annotations

import math
import time

import torch
from torch import Tensor

from graphver.bab.bounding import bound_batch
from graphver.bounds.ibp import NodeSplits
from graphver.bounds.lagrangian import combined_lower_shared, lagrangian_lower, lp_duals
from graphver.clock import DeadlineReached
from graphver.options import BoundOptions
from graphver.tape.tape import Tape

ROUND_FIT_MARGIN = 1.2  # a round starts only while 1.2x the last round's seconds fit before the deadline
OBBT_CHUNK_NUMBERS = 2**25  # coefficients per batched Lagrangian call (256 MB in float64)


def obbt(tape: Tape, lower: Tensor, upper: Tensor, constraint_rows: list[int], objective_row: int | None,
         cutoff: float | None, options: BoundOptions, rounds: int, iterations: int,
         deadline: float = math.inf) -> tuple[Tensor, Tensor, list, bool]:
    """Tighten the box ``lower, upper`` ([1, n]). Returns the new box, the width fraction kept by each round
    (sum of widths after / before) and whether the relaxed feasible set is empty. No round starts after
    ``deadline`` (a ``time.perf_counter()`` value) or when the last round's seconds do not fit before it; a
    round whose LPs the deadline cuts short is dropped (the Lagrangian set-up over the 2n problems alone
    takes seconds on a 30-bus case)."""
    n = tape.n_inputs
    q = tape.n_outputs
    kept = []
    empty_splits = torch.zeros(1, 0, dtype=lower.dtype, device=lower.device)
    nodes = torch.zeros(0, dtype=torch.long, device=lower.device)
    seconds = 0.0  # of the last round: a round starts only while it fits, with a margin, before the deadline
    for _ in range(rounds):
        began = time.perf_counter()
        if began + ROUND_FIT_MARGIN * seconds > deadline:
            break
        try:
            result = bound_batch(tape, lower, upper, NodeSplits(nodes, empty_splits, empty_splits.clone()), "crown",
                                 options, deadline=deadline)
        except DeadlineReached:  # the rounds done so far stand
            break
        if bool(result.domain_error.any()) or result.linear is None or result.linear.offset is None:
            break
        coef, offset = result.linear.input_coef[:, :q], result.linear.offset[:, :q]
        rows = list(constraint_rows)
        c_coef, c_offset = coef[:, rows], offset[:, rows]
        if objective_row is not None and cutoff is not None:
            c_coef = torch.cat([c_coef, coef[:, [objective_row]]], 1)
            c_offset = torch.cat([c_offset, offset[:, [objective_row]] - cutoff], 1)
        eye = torch.eye(n, dtype=lower.dtype, device=lower.device)
        target = torch.cat([eye, -eye])[:, None, :]  # [2n, 1, n]: +x_i and -x_i
        zero = torch.zeros(1, dtype=lower.dtype, device=lower.device)

        def problem(t: Tensor) -> tuple[Tensor, Tensor]:
            """coef [T, 1 + m, n] and offset [T, 1 + m] of the bound problems ``t`` (built per chunk: all
            2n of them at once are 2n x m x n numbers, gigabytes on a 60-bus case)."""
            return (torch.cat([target[t], c_coef.expand(len(t), -1, -1)], 1),
                    torch.cat([zero.expand(len(t), 1), c_offset.expand(len(t), -1)], 1))

        m = c_coef.shape[1]
        # the 2n LPs share their constraints: one HiGHS model, one objective after the other (warm-started)
        start, solved = lp_duals(torch.cat([target[:, 0], c_coef[0]]), torch.cat([zero.expand(2 * n), c_offset[0]]),
                                 lower[0], upper[0], 2 * n, deadline)
        if time.perf_counter() > deadline:  # the LPs were cut short: the round is dropped, the last box stands
            break
        start = start[:, None, :]  # [2n, 1, m]
        scale = start.abs() + start.abs().mean() + 1e-3
        # the LP's multipliers are optimal for the same linear bounds: their certified bound is the
        # Lagrangian's best (one shared evaluation); Adam only runs for the problems whose LP failed
        with torch.no_grad():
            bound = combined_lower_shared(start, target, torch.zeros(2 * n, 1, dtype=lower.dtype, device=lower.device),
                                          c_coef[0], c_offset[0], lower[0], upper[0])
        bound = torch.where(torch.isnan(bound), torch.full_like(bound, -math.inf), bound)
        chunk = max(1, int(OBBT_CHUNK_NUMBERS // max(1, (m + 1) * n)))
        for part in torch.nonzero(~solved).flatten().split(chunk):  # Adam where the LP failed, in chunks
            part_coef, part_offset = problem(part)
            found, _ = lagrangian_lower(part_coef, part_offset, lower.expand(len(part), -1),
                                        upper.expand(len(part), -1), 1, iterations, start=start[part],
                                        scale=scale[part], deadline=deadline)
            bound[part] = torch.maximum(bound[part], found)
        new_lower = torch.maximum(lower, bound[:n, 0][None])
        new_upper = torch.minimum(upper, -bound[n:, 0][None])
        before = float((upper - lower).sum())
        if bool((new_lower > new_upper).any()):
            return lower, upper, kept + [0.0], True
        lower, upper = new_lower, new_upper
        after = float((upper - lower).sum())
        kept.append(after / before if before > 0 else 1.0)
        seconds = time.perf_counter() - began
        if kept[-1] > 0.999:
            break
    return lower, upper, kept, False
