"""Lagrangian bounds over constrained domains: min f over {x in box : c_k(x) <= 0} >= min over the box of
f + sum_k mu_k c_k, for any mu >= 0.

Every output row comes out of the CROWN pass with a linear lower bound valid on the whole box,
``row(x) >= a_row . x + o_row`` (``LinearBounds.input_coef``, ``LinearBounds.offset``). Since ``mu >= 0``,

    f(x) + sum_k mu_k c_k(x) >= (a_f + sum_k mu_k a_k) . x + o_f + sum_k mu_k o_k,

and the right-hand side's minimum over the box is a sum of per-variable minima (at ``l_i`` or ``u_i``
by the sign of the coefficient). On the feasible part of the box every ``c_k(x) <= 0``, so this is a
lower bound of ``f`` there, for every ``mu >= 0``: the multipliers are optimised by projected Adam
(supergradient ascent on a concave piecewise-linear function), starting from given values (a parent
domain's), and the best bound seen is kept. The floating-point evaluation of the combination is covered
by a gamma_n slack on the magnitudes involved. With ``mu = 0`` the bound is the row's own CROWN bound.
An equality gives two rows (``h`` and ``-h``), so its multiplier may take either sign.
"""

from __future__ import annotations

import math
import time

import torch
from torch import Tensor

from graphver import clock
from graphver.bounds.adam import Adam
from graphver.rounding import SLACK_FACTOR, eps_of, gamma, tiny_of, underflow_of

FIT_MARGIN = 1.5  # an iteration starts only while 1.5x the last one's seconds fit: their times vary with load
ITERATION_EVALUATIONS = 3  # an iteration costs about three evaluations of the bound (forward, backward, check)


def combined_lower(mu: Tensor, coef: Tensor, offset: Tensor, lower: Tensor, upper: Tensor, rows: int) -> Tensor:
    """Lower bound of row r + sum_k mu[:, r, k] c_k over each box, with its rounding slack: [B, rows].

    coef and offset must be finite where they take part (callers zero the unusable rows and their
    multipliers). The slack is gamma_n of the magnitudes, plus an underflow of each product mu_k * a_kn
    (it multiplies x_n, at most size_n), plus ``tiny`` for the products that are not multiplied again."""
    k = coef.shape[1] - rows
    a = coef[:, :rows] + torch.einsum("brk,bkn->brn", mu, coef[:, rows:])  # [B, rows, n]
    o = offset[:, :rows] + torch.einsum("brk,bk->br", mu, offset[:, rows:])
    low, high = lower[:, None, :], upper[:, None, :]
    value = torch.minimum(a * low, a * high).sum(dim=2) + o
    size = torch.maximum(lower.abs(), upper.abs())[:, None, :]
    magnitude = (coef[:, :rows].abs() * size).sum(dim=2) + offset[:, :rows].abs()
    magnitude = magnitude + torch.einsum("brk,bk->br", mu, (coef[:, rows:].abs() * size[:, 0][:, None, :]).sum(dim=2)
                                         + offset[:, rows:].abs())
    slack = gamma(coef.shape[2] + k + 3, eps_of(coef)) * magnitude * SLACK_FACTOR
    used = (mu != 0).sum(dim=2).to(coef.dtype)  # products mu_k * a_kn formed per row and variable
    slack = slack + underflow_of(coef) * used * size.sum(dim=2) * SLACK_FACTOR + tiny_of(coef)
    return value - slack


def combined_lower_shared(mu: Tensor, obj_coef: Tensor, obj_offset: Tensor, con_coef: Tensor, con_offset: Tensor,
                          lower: Tensor, upper: Tensor) -> Tensor:
    """``combined_lower`` for B problems over one box that share their constraint rows (OBBT's 2n bounds
    of the variables): mu [B, rows, k], obj_coef [B, rows, n], obj_offset [B, rows], con_coef [k, n],
    con_offset [k], lower/upper [n]. The same bound and the same rounding slack, term for term, without
    the [B, k, n] tensor of the shared rows (gigabytes on a 60-bus ACOPF). Unusable constraint rows
    (non-finite) must carry zero multipliers; they are zeroed here."""
    k, n = con_coef.shape
    usable = torch.isfinite(con_offset) & torch.isfinite(con_coef).all(dim=1)
    con_coef = torch.where(usable[:, None], con_coef, torch.zeros_like(con_coef))
    con_offset = torch.where(usable, con_offset, torch.zeros_like(con_offset))
    mu = mu * usable.to(mu.dtype)
    a = obj_coef + mu @ con_coef  # [B, rows, n]
    o = obj_offset + mu @ con_offset
    value = torch.minimum(a * lower, a * upper).sum(dim=2) + o
    size = torch.maximum(lower.abs(), upper.abs())
    magnitude = (obj_coef.abs() * size).sum(dim=2) + obj_offset.abs()
    magnitude = magnitude + mu @ ((con_coef.abs() * size).sum(dim=1) + con_offset.abs())
    slack = gamma(n + k + 3, eps_of(con_coef)) * magnitude * SLACK_FACTOR
    used = (mu != 0).sum(dim=2).to(con_coef.dtype)
    slack = slack + underflow_of(con_coef) * used * size.sum() * SLACK_FACTOR + tiny_of(con_coef)
    return value - slack


def lp_duals(coef: Tensor, offset: Tensor, lower: Tensor, upper: Tensor, rows: int,
             deadline: float | None = None) -> tuple[Tensor, Tensor]:
    """Optimal multipliers of the linear relaxation of one box, by LPs (HiGHS, ``bounds.highs``): for each row
    r, the duals of ``min a_r . x + o_r  s.t.  a_k . x + o_k <= 0 (k >= rows), lower <= x <= upper``, and
    whether its LP was solved. coef [Q, n], offset [Q], lower/upper [n]; returns ([rows, Q - rows], [rows])
    (a failed row's multipliers are zero). The rows share the constraints: one model, one objective after
    the other, each warm-started; no LP starts past ``deadline``. These are only starting values: the
    bound itself is always evaluated by ``combined_lower``, so an inexact or wrong LP answer can cost
    tightness, never soundness."""
    import numpy as np

    from graphver.bounds.highs import solve_le_costs

    a = coef.detach().cpu().double().numpy()
    o = offset.detach().cpu().double().numpy()
    k = a.shape[0] - rows
    usable = np.isfinite(o[rows:]) & np.isfinite(a[rows:]).all(axis=1)
    low, high = lower.cpu().double().numpy(), upper.cpu().double().numpy()
    result = np.zeros((rows, k))
    solved = np.zeros(rows, dtype=bool)
    finite = [r for r in range(rows) if np.isfinite(a[r]).all() and np.isfinite(o[r])]
    if finite:
        answers = solve_le_costs(a[finite], a[rows:][usable], -o[rows:][usable], low, high, deadline)
        for r, answer in zip(finite, answers):
            if answer.status == "optimal":
                result[r, usable] = np.maximum(-answer.duals, 0.0)
                solved[r] = True
    return (torch.as_tensor(result, dtype=coef.dtype, device=coef.device),
            torch.as_tensor(solved, device=coef.device))


def lagrangian_lower(coef: Tensor, offset: Tensor, lower: Tensor, upper: Tensor, rows: int, iterations: int = 30,
                     lr: float = 0.2, start: Tensor | None = None, scale: Tensor | None = None,
                     deadline: float | None = None) -> tuple[Tensor, Tensor]:
    """Best Lagrangian lower bound of each of the first ``rows`` rows over each box, and its multipliers.

    coef [B, Q, n] and offset [B, Q]: linear lower bounds of the Q outputs, the last Q - rows of which are
    constraint rows ``<= 0``. start: [B, rows, Q - rows] initial multipliers (clamped to >= 0). Adam works
    on mu / scale (``scale`` broadcastable to the multipliers, default 1): with multipliers in the
    thousands (costs per unit of power), steps must be relative to their size. An iteration starts only
    while the last one's seconds fit before ``deadline`` (``graphver.clock``; in OBBT one takes seconds):
    every multiplier >= 0 gives a valid bound, the best is kept."""
    batch, q, _ = coef.shape
    k = q - rows
    # A row whose linear bound is not finite carries no information. A constraint row then takes no part
    # (its multiplier stays 0); an objective row's bound is -inf, whatever the multipliers.
    usable_all = torch.isfinite(offset) & torch.isfinite(coef).all(dim=2)
    usable = usable_all[:, rows:]
    lost = ~usable_all[:, :rows]
    coef = torch.where(usable_all[:, :, None], coef, torch.zeros_like(coef)).detach()
    offset = torch.where(usable_all, offset, torch.zeros_like(offset)).detach()
    mu0 = torch.zeros(batch, rows, k, dtype=coef.dtype, device=coef.device) if start is None else start.clamp(min=0)
    mask = usable[:, None, :].to(coef.dtype)
    best_mu = mu0 * mask
    began = time.perf_counter()
    with torch.no_grad():
        best = combined_lower(best_mu, coef, offset, lower, upper, rows)
    evaluation = time.perf_counter() - began
    if k == 0 or iterations <= 0:
        return torch.where(torch.isnan(best) | lost, torch.full_like(best, -math.inf), best), best_mu
    scale = torch.ones_like(best_mu) if scale is None else torch.broadcast_to(scale.to(best_mu), best_mu.shape)
    nu = (best_mu / scale).clone().requires_grad_(True)
    optimizer = Adam([nu], lr=lr)
    # seconds of the last iteration (the first: ITERATION_EVALUATIONS evaluations); one starts only while it
    # fits, with a margin, before the deadline
    seconds = ITERATION_EVALUATIONS * evaluation
    for _ in range(iterations):
        if clock.passed(deadline) or (deadline is not None and time.perf_counter() + FIT_MARGIN * seconds > deadline):
            break
        began = time.perf_counter()
        optimizer.zero_grad()
        bound = combined_lower(nu * scale * mask, coef, offset, lower, upper, rows)
        (-torch.nan_to_num(bound, nan=0.0, neginf=0.0, posinf=0.0).sum()).backward()
        optimizer.step()
        with torch.no_grad():
            nu.clamp_(min=0)
            mu = nu * scale
            bound = combined_lower(mu * mask, coef, offset, lower, upper, rows)
            better = bound > best
            best = torch.where(better, bound, best)
            best_mu = torch.where(better[:, :, None], mu * mask, best_mu)
        seconds = time.perf_counter() - began
    best = torch.where(torch.isnan(best) | lost, torch.full_like(best, -math.inf), best)
    return best.detach(), best_mu.detach()
