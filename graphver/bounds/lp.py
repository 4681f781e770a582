"""LP bounds over constrained domains: the linear relaxation of a domain solved by an LP, certified by its
duals.

One CROWN pass gives every output row one linear lower bound over the domain's box. Running the same
backward pass again with every relaxation parameter at 0 and at 1 (``relaxation_variants``) gives more
valid lower bounds of the same rows: the two McCormick planes of a product, the tangents at both ends of
a convex function, and so on. All of them hold at once, so for the objective f and constraint rows c_k

    f(x) >= max_v (a_fv . x + o_fv),   0 >= c_k(x) >= a_kv . x + o_kv  for every v, on the feasible set,

and the LP ``min t  s.t.  a_fv . x + o_fv <= t,  a_kv . x + o_kv <= 0,  x in box`` bounds f from below.
The LP solver's answer is not trusted: its duals, sigma on the objective rows (rounded to dyadic
rationals that sum to exactly 1) and mu >= 0 on the constraint rows, give the Lagrangian bound

    f(x) >= sum_v sigma_v (a_fv . x + o_fv) + sum_kv mu_kv (a_kv . x + o_kv)   on the feasible set,

evaluated over the box in floating point with its rounding slack (``lagrangian.combined_lower``). Wrong
duals cost tightness, never soundness. When the LP finds the relaxation infeasible, a phase-one LP
(``min s  s.t.  a_kv . x + o_kv <= s``) gives duals lambda (summing to 1) whose combination is certified
positive over the box: then no point of the domain satisfies the constraints.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch import Tensor

from graphver.bounds.alpha import constant_alphas, nonlinear_steps, per_coefficient
from graphver.bounds.backward import CoefficientStorage, run_pass
from graphver.bounds.lagrangian import combined_lower
from graphver.bounds.plan import BackwardPlan
from graphver.bounds.sparse import SparseStorage
from graphver.tape.tape import Tape

DYADIC = 2.0**20  # objective weights are multiples of 2**-20: exact in float32 and float64, summing to exactly 1
LARGEST = 1e100  # rows with larger coefficients are left out of the LP (their multiplier stays 0)


def storage_of(tape: Tape, plan: BackwardPlan | CoefficientStorage) -> CoefficientStorage:
    """A storage of the backward pass: the one given, or the sparse storage of a plan."""
    return SparseStorage(tape, plan) if isinstance(plan, BackwardPlan) else plan


def relaxation_variants(tape: Tape, plan: BackwardPlan | CoefficientStorage, lo: Tensor, hi: Tensor,
                        values=(0.0, 1.0), deadline: float | None = None) -> list[tuple]:
    """(input_coef [B, rows, n], offset [B, rows]) of a backward pass (over a plan, or any storage) with every
    relaxation parameter set to each of ``values`` (the positive rows only); the passes raise
    ``DeadlineReached`` past ``deadline``."""
    storage = storage_of(tape, plan)
    out = []
    q = storage.rows // 2
    for value in values:
        linear = run_pass(tape, storage, lo, hi, constant_alphas(tape, storage, lo, value), keep=True,
                          deadline=deadline)
        out.append((linear.input_coef[:, :q], linear.offset[:, :q]))
    return out


def point_alphas(tape: Tape, plan: BackwardPlan | CoefficientStorage, lo: Tensor, hi: Tensor,
                 values: Tensor) -> dict[int, Tensor]:
    """Relaxation parameters whose lines are tightest at given node values ([B, n_nodes], e.g. at an LP
    point), per coefficient (``tight_alpha`` of each op: a tangent at the point for a convex function,
    the McCormick plane nearer the point for a product). Every parameter gives sound lines; this only
    chooses among them."""
    storage = storage_of(tape, plan)
    alphas = {}
    for step, instr, flat in nonlinear_steps(tape, storage, lo, hi):
        at = [values.index_select(1, a) for a in instr.args]
        low, high = instr.op_object.tight_alpha(*flat, *at, instr.param)
        alphas[step.instruction] = torch.stack([per_coefficient(storage, step, low), per_coefficient(storage, step, high)])
    return alphas


def point_variant(tape: Tape, plan: BackwardPlan | CoefficientStorage, lo: Tensor, hi: Tensor,
                  values: Tensor, deadline: float | None = None) -> tuple[Tensor, Tensor]:
    """(input_coef, offset) of the backward pass with the lines tight at ``values`` (``point_alphas``); the
    pass raises ``DeadlineReached`` past ``deadline``."""
    storage = storage_of(tape, plan)
    linear = run_pass(tape, storage, lo, hi, point_alphas(tape, storage, lo, hi, values), keep=True,
                      deadline=deadline)
    q = storage.rows // 2
    return linear.input_coef[:, :q], linear.offset[:, :q]


def usable_rows(coef: np.ndarray, offset: np.ndarray) -> np.ndarray:
    return np.isfinite(offset) & (np.abs(offset) < LARGEST) & np.isfinite(coef).all(axis=1) & (np.abs(coef) < LARGEST).all(axis=1)


def dyadic_weights(weights: np.ndarray) -> np.ndarray:
    """Non-negative multiples of 2**-20 summing to exactly 1, close to ``weights`` / sum(weights)."""
    weights = np.maximum(np.nan_to_num(weights, nan=0.0), 0.0)
    total = weights.sum()
    if not total > 0:
        weights, total = np.ones_like(weights), float(len(weights))
    units = np.floor(weights / total * DYADIC)
    units[int(np.argmax(weights))] += DYADIC - units.sum()
    return units / DYADIC


class DomainLp:
    """One domain's LP across the cut rounds: a ``GrowingLp`` that each round extends by the rows of the
    variants it has not seen (objective variants and constraint rows both come variant by variant), and
    the LP row of every objective variant and every usable constraint row (-1: left out)."""

    def __init__(self, n: int, lower: np.ndarray, upper: np.ndarray):
        from graphver.bounds.highs import GrowingLp

        cost = np.zeros(n + 1)
        cost[-1] = 1.0
        self.lp = GrowingLp(cost, np.append(lower, -np.inf), np.append(upper, np.inf))
        self.objective_rows = np.zeros(0, dtype=np.int64)
        self.constraint_rows = np.zeros(0, dtype=np.int64)

    def extend(self, new_obj, new_obj_offset, new_con, new_con_offset) -> None:
        """Add rows not given before: the new objective variants and constraint rows, in order (all of them:
        adding only the rows that cut off the last LP point saved a fifth of the LP time on an 89-bus ACOPF
        root and lost 0.2 % of its bound)."""
        keep = usable_rows(new_con, new_con_offset)
        first = self.lp.rows
        a_ub = np.block([[new_obj, -np.ones((len(new_obj), 1))], [new_con[keep], np.zeros((int(keep.sum()), 1))]])
        self.lp.add(a_ub, np.concatenate([-new_obj_offset, -new_con_offset[keep]]))
        self.objective_rows = np.concatenate([self.objective_rows, first + np.arange(len(new_obj))])
        rows = np.full(len(new_con), -1, dtype=np.int64)
        rows[keep] = first + len(new_obj) + np.arange(int(keep.sum()))
        self.constraint_rows = np.concatenate([self.constraint_rows, rows])


def solve_lp(obj_coef: np.ndarray, obj_offset: np.ndarray, con_coef: np.ndarray, con_offset: np.ndarray,
             lower: np.ndarray, upper: np.ndarray, model: DomainLp | None = None,
             deadline: float | None = None, constraints=None) -> tuple[str, np.ndarray, np.ndarray, np.ndarray | None]:
    """One domain's LP. Returns (status, objective weights [V], constraint multipliers [K], LP point or None);
    status "optimal", "infeasible" (the multipliers are then phase one's, the weights zero) or "failed".
    ``model``: the domain's LP of the earlier cut rounds; the rows given are then only the new ones (objective
    variants and constraint rows not given before), added to it and re-solved from its basis, V and K count
    all rows so far, and ``constraints()`` returns all the constraint rows (coef, offset) for phase one.
    HiGHS stops at ``deadline`` (then "failed")."""
    from graphver.bounds.highs import solve_le

    n = obj_coef.shape[1]
    low, high = np.append(lower, -np.inf), np.append(upper, np.inf)
    cost = np.zeros(n + 1)
    cost[-1] = 1.0
    if model is None:
        v, k = obj_coef.shape[0], con_coef.shape[0]
        keep = usable_rows(con_coef, con_offset)
        a_ub = np.block([[obj_coef, -np.ones((v, 1))], [con_coef[keep], np.zeros((int(keep.sum()), 1))]])
        b_ub = np.concatenate([-obj_offset, -con_offset[keep]])
        answer = solve_le(cost, a_ub, b_ub, low, high, deadline)
        objective_rows, constraint_rows = np.arange(v), np.full(k, -1, dtype=np.int64)
        constraint_rows[keep] = v + np.arange(int(keep.sum()))
    else:
        model.extend(obj_coef, obj_offset, con_coef, con_offset)
        answer = model.lp.solve(deadline)
        objective_rows, constraint_rows = model.objective_rows, model.constraint_rows
        v, k = len(objective_rows), len(constraint_rows)
    mu = np.zeros(k)
    if answer.status == "optimal":
        duals = np.maximum(-answer.duals, 0.0)
        used = constraint_rows >= 0
        mu[used] = duals[constraint_rows[used]]
        return "optimal", dyadic_weights(duals[objective_rows]), mu, answer.x[:n]
    if answer.status != "infeasible":
        return "failed", np.zeros(v), mu, None
    if model is not None:
        con_coef, con_offset = constraints()
    keep = usable_rows(con_coef, con_offset)
    if not keep.any():
        return "failed", np.zeros(v), mu, None
    # phase one: min s subject to c_kv <= s; its duals sum to 1 and certify infeasibility when s* > 0
    a_ub = np.hstack([con_coef[keep], -np.ones((int(keep.sum()), 1))])
    phase = solve_le(cost, a_ub, -con_offset[keep], low, high, deadline)
    if phase.status != "optimal":
        return "failed", np.zeros(v), mu, None
    mu[keep] = np.maximum(-phase.duals, 0.0)
    return "infeasible", np.zeros(v), mu, None


class RowBlocks:
    """Constraint rows given as consecutive blocks, without concatenating them: each ``(coef [B', K_i, n],
    offset [B', K_i])`` over a batch of which ``index`` picks the domains (None: all; a block with B' = 1 is
    shared by every domain); at least one block. The LP stage's cut rounds add one block per round; copying
    all the blocks into one tensor every round took a tenth of an ACOPF run."""

    def __init__(self, blocks: list[tuple[Tensor, Tensor]], index: Tensor | None = None):
        self.blocks = blocks
        self.index = index
        self.k = sum(c.shape[1] for c, _ in blocks)

    def at(self, tensor: Tensor, b: int) -> Tensor:
        if tensor.shape[0] == 1:
            return tensor[0]
        return tensor[b if self.index is None else int(self.index[b])]

    def domain(self, b: int, start: int = 0) -> tuple[Tensor, Tensor]:
        """Domain ``b``'s rows from ``start`` on: (coef [K - start, n], offset [K - start])."""
        coefs, offsets, at = [], [], 0
        for c, o in self.blocks:
            skip = min(c.shape[1], max(0, start - at))
            coefs.append(self.at(c, b)[skip:])
            offsets.append(self.at(o, b)[skip:])
            at += c.shape[1]
        return torch.cat(coefs), torch.cat(offsets)

    def select(self, rows: Tensor, batch: int) -> tuple[Tensor, Tensor]:
        """The rows ``rows`` (sorted indices into all K) of every domain: ([B, R, n], [B, R])."""
        coefs, offsets, at = [], [], 0
        for c, o in self.blocks:
            local = rows[(rows >= at) & (rows < at + c.shape[1])] - at
            at += c.shape[1]
            if c.shape[0] == 1:
                coefs.append(c[:, local].expand(batch, -1, -1))
                offsets.append(o[:, local].expand(batch, -1))
            elif self.index is None:
                coefs.append(c[:, local])
                offsets.append(o[:, local])
            else:  # the chosen domains' chosen rows only
                coefs.append(c[self.index[:, None], local[None, :]])
                offsets.append(o[self.index[:, None], local[None, :]])
        return torch.cat(coefs, 1), torch.cat(offsets, 1)


def lp_lower(obj_coef: Tensor, obj_offset: Tensor, con_coef, con_offset: Tensor | None, lower: Tensor,
             upper: Tensor, deadline: float = math.inf, models: list | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Certified LP bounds of one objective row over each domain's feasible part.

    obj_coef [B, V, n], obj_offset [B, V]: linear lower bounds of the objective; con_coef [B, K, n],
    con_offset [B, K]: of the constraint rows (<= 0), or con_coef a ``RowBlocks`` of them (con_offset None).
    Returns (bound [B]: +inf where the domain is proven empty, -inf where nothing could be certified; LP
    points [B, n], NaN where none; multipliers [B, K]). Domains left when ``deadline`` (a
    ``time.perf_counter()`` value) has passed get no LP (bound -inf). ``models``: one ``DomainLp`` (or None:
    made here) per domain, kept by the caller across cut rounds so that each round extends and re-solves
    the LP of the last one."""
    constraints = con_coef if isinstance(con_coef, RowBlocks) else RowBlocks([(con_coef, con_offset)])
    batch, v, n = obj_coef.shape
    k = constraints.k
    to_np = lambda t: t.detach().cpu().double().numpy()  # noqa: E731
    lo, hi = to_np(lower), to_np(upper)
    weights = np.zeros((batch, v))
    mu = np.zeros((batch, k))
    points = np.full((batch, n), np.nan)
    infeasible = np.zeros(batch, dtype=bool)
    failed = np.zeros(batch, dtype=bool)
    for b in range(batch):
        if time.perf_counter() > deadline:
            failed[b:] = True
            break
        model = None
        v0 = k0 = 0  # the rows a domain's LP already has: only the new ones are converted and added
        if models is not None:
            if models[b] is None:
                models[b] = DomainLp(n, lo[b], hi[b])
            model = models[b]
            v0, k0 = len(model.objective_rows), len(model.constraint_rows)
        new_coef, new_offset = constraints.domain(b, k0)
        status, weights[b], mu[b], point = solve_lp(
            to_np(obj_coef[b, v0:]), to_np(obj_offset[b, v0:]), to_np(new_coef), to_np(new_offset), lo[b], hi[b],
            model, deadline, constraints=lambda b=b: tuple(map(to_np, constraints.domain(b))))
        infeasible[b] = status == "infeasible"
        failed[b] = status == "failed"
        if point is not None:
            points[b] = point
    options = dict(dtype=obj_coef.dtype, device=obj_coef.device)
    # the certificate needs only the rows some domain's LP put a multiplier on (a zero multiplier adds an exact
    # zero to the combination and to its rounding slack): on an ACOPF domain, a few hundred of thousands
    taken = np.nonzero((weights != 0).any(axis=0))[0]
    used = np.nonzero((mu != 0).any(axis=0))[0]
    obj_taken = torch.as_tensor(taken, device=obj_coef.device)
    con_used = torch.as_tensor(used, device=obj_coef.device)
    multipliers = torch.as_tensor(np.concatenate([weights[:, taken], mu[:, used]], axis=1), **options)[:, None, :]
    # row 0 is zero: the objective enters through its weighted variants, the constraints through mu
    zero_coef = torch.zeros(batch, 1, n, **options)
    zero_offset = torch.zeros(batch, 1, **options)
    used_coef, used_offset = constraints.select(con_used, batch)
    raw_coef = torch.cat([zero_coef, obj_coef.index_select(1, obj_taken), used_coef.to(obj_coef.dtype)], 1)
    offset = torch.cat([zero_offset, obj_offset.index_select(1, obj_taken), used_offset.to(obj_offset.dtype)], 1)
    coef = torch.nan_to_num(raw_coef, nan=0.0, posinf=0.0, neginf=0.0)
    unusable = ~(torch.isfinite(offset) & (offset.abs() < LARGEST))
    unusable |= ~(torch.isfinite(raw_coef).all(dim=2))
    multipliers = torch.where(unusable[:, None, 1:], torch.zeros_like(multipliers), multipliers)
    offset = torch.where(unusable, torch.zeros_like(offset), offset)
    bound = combined_lower(multipliers, coef, offset, lower, upper, 1)[:, 0]
    # a weight on an unusable objective row was zeroed above: the weights no longer sum to 1
    lost = (unusable[:, 1 : 1 + len(taken)] & torch.as_tensor(weights[:, taken] > 0, device=obj_coef.device)).any(dim=1)
    proven_empty = torch.as_tensor(infeasible, device=obj_coef.device) & (bound > 0)
    bound = torch.where(torch.as_tensor(infeasible | failed, device=obj_coef.device) | lost,
                        torch.full_like(bound, -math.inf), bound)
    bound = torch.where(torch.isnan(bound), torch.full_like(bound, -math.inf), bound)
    bound = torch.where(proven_empty, torch.full_like(bound, math.inf), bound)
    return bound, torch.as_tensor(points, **options), torch.as_tensor(mu, **options)
