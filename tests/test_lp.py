"""LP bounds of constrained domains (graphver.bounds.lp), the quad_over_lin op and LP branching: the bounds
stay below sampled feasible values whatever the LP solver answers, infeasibility is certified, and the
cuts tighten."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import graphver as gv
from graphver.bounds import lp as lp_module
from graphver.bounds.lp import dyadic_weights, lp_lower
from graphver.ops import REGISTRY
from graphver.tape.reach import nonlinear_support
from models.constrained import CONSTRAINED, FAST

DT = torch.float64


def test_dyadic_weights_sum_to_exactly_one():
    rng = np.random.default_rng(3)
    for _ in range(200):
        w = dyadic_weights(rng.random(rng.integers(1, 9)) * 10.0 ** rng.uniform(-8, 8))
        assert (w >= 0).all() and math.fsum(w) == 1.0 and w.sum() == 1.0
    assert dyadic_weights(np.zeros(3)).sum() == 1.0  # all-zero duals: uniform weights
    assert dyadic_weights(np.array([np.nan, 1.0])).sum() == 1.0


def test_quad_over_lin_tangent_planes_are_tight_and_sound():
    op = REGISTRY["quad_over_lin"]
    gen = torch.Generator().manual_seed(5)
    n = 400
    lx = torch.rand(n, generator=gen, dtype=DT) * 4 - 3
    ux = lx + torch.rand(n, generator=gen, dtype=DT) * 3
    ly = torch.rand(n, generator=gen, dtype=DT) * 2 + 1e-3
    uy = ly + torch.rand(n, generator=gen, dtype=DT) * 2
    x0 = lx + (ux - lx) * torch.rand(n, generator=gen, dtype=DT)
    y0 = ly + (uy - ly) * torch.rand(n, generator=gen, dtype=DT)
    low, high = op.tight_alpha(lx, ux, ly, uy, x0, y0)
    planes = op.relax(lx, ux, ly, uy, None, low, high)
    at = planes.lower_x * x0 + planes.lower_y * y0 + planes.lower_bias
    exact = x0 * x0 / y0
    assert torch.allclose(at, exact, rtol=1e-9, atol=1e-12)  # the tangent plane touches at (x0, y0)
    s = torch.rand(n, 200, generator=gen, dtype=DT)
    t = torch.rand(n, 200, generator=gen, dtype=DT)
    x = lx[:, None] + (ux - lx)[:, None] * s
    y = ly[:, None] + (uy - ly)[:, None] * t
    f = x * x / y
    lower = planes.lower_x[:, None] * x + planes.lower_y[:, None] * y + planes.lower_bias[:, None]
    upper = planes.upper_x[:, None] * x + planes.upper_y[:, None] * y + planes.upper_bias[:, None]
    assert bool((lower <= f).all()) and bool((f <= upper).all())
    # outside its domain (y <= 0 possible) the op gives no finite relaxation
    bad = op.relax(lx, ux, -uy, uy)
    assert bool(torch.isinf(bad.lower_bias).all()) and bool(torch.isinf(bad.upper_bias).all())


def test_mul_and_unary_tight_alpha_pick_the_tightest_lines():
    mul = REGISTRY["mul"]
    lx, ux, ly, uy = (torch.tensor([v], dtype=DT) for v in (-1.0, 2.0, 0.5, 3.0))
    for x, y in ((-0.9, 0.6), (1.9, 2.9), (1.9, 0.6), (-0.9, 2.9)):
        xs, ys = torch.tensor([x], dtype=DT), torch.tensor([y], dtype=DT)
        chosen = mul.relax(lx, ux, ly, uy, None, *mul.tight_alpha(lx, ux, ly, uy, xs, ys))
        for r in (0.0, 1.0):
            other = mul.relax(lx, ux, ly, uy, None, torch.tensor([r], dtype=DT), torch.tensor([r], dtype=DT))
            assert chosen.lower_x * xs + chosen.lower_y * ys + chosen.lower_bias >= other.lower_x * xs + other.lower_y * ys + other.lower_bias - 1e-12
            assert chosen.upper_x * xs + chosen.upper_y * ys + chosen.upper_bias <= other.upper_x * xs + other.upper_y * ys + other.upper_bias + 1e-12
    square = REGISTRY["pow_int"]
    l, u, x = (torch.tensor([v], dtype=DT) for v in (-1.0, 3.0, 0.7))
    lines = square.relax(l, u, 2.0, *square.tight_alpha(l, u, x, 2.0))
    assert float(lines.lower_slope * x + lines.lower_bias) == pytest.approx(0.49, abs=1e-12)  # tangent at x


def random_relaxation(rng, batch, v, k, n):
    lower = torch.as_tensor(rng.uniform(-2, 0, (batch, n)))
    upper = lower + torch.as_tensor(rng.uniform(0.1, 3, (batch, n)))
    return (torch.as_tensor(rng.normal(size=(batch, v, n))), torch.as_tensor(rng.normal(size=(batch, v))),
            torch.as_tensor(rng.normal(size=(batch, k, n))), torch.as_tensor(rng.normal(size=(batch, k)) - 1.0), lower, upper)


def sampled_minimum(obj_coef, obj_offset, con_coef, con_offset, lower, upper, rng, samples=20000):
    """min over sampled feasible points of max_v (a_v . x + o_v), per domain (inf where none feasible)."""
    out = []
    for b in range(lower.shape[0]):
        x = lower[b] + (upper[b] - lower[b]) * torch.as_tensor(rng.random((samples, lower.shape[1])))
        feasible = ((x @ con_coef[b].T + con_offset[b]) <= 0).all(dim=1)
        value = (x @ obj_coef[b].T + obj_offset[b]).amax(dim=1)
        out.append(float(value[feasible].min()) if bool(feasible.any()) else math.inf)
    return torch.tensor(out, dtype=DT)


def test_lp_bound_is_below_every_feasible_sample():
    rng = np.random.default_rng(11)
    data = random_relaxation(rng, 24, 3, 4, 3)
    bound, points, mu = lp_lower(*data)
    best = sampled_minimum(*data, rng)
    assert bool((bound <= best).all())
    has = torch.isfinite(best)
    # on a bounded LP the certified value is the LP optimum, which sampling approaches from above
    assert bool((best[has] - bound[has] < 0.2 * (1 + best[has].abs())).all())
    assert bool((mu >= 0).all())


def test_wrong_lp_duals_cost_tightness_never_soundness(monkeypatch):
    rng = np.random.default_rng(12)
    data = random_relaxation(rng, 16, 2, 5, 3)

    def garbage(obj_coef, obj_offset, con_coef, con_offset, lower, upper, model=None, deadline=None, constraints=None):
        v, k = obj_coef.shape[0], con_coef.shape[0]
        return "optimal", dyadic_weights(rng.random(v)), rng.random(k) * 100, rng.random(lower.shape[0])

    monkeypatch.setattr(lp_module, "solve_lp", garbage)
    bound, _, _ = lp_lower(*data)
    assert bool((bound <= sampled_minimum(*data, rng)).all())


def test_cut_rounds_on_a_growing_lp_equal_fresh_solves():
    """The LP of a domain extended round by round (rows added to one HiGHS model, re-solved from its basis)
    has the optimum of the same LP solved from scratch, and its duals certify the same bound."""
    rng = np.random.default_rng(21)
    obj, obj_off, con, con_off, lower, upper = random_relaxation(rng, 6, 3, 4, 3)
    models = [None] * obj.shape[0]
    for rows in (2, 3, 4):  # each round brings one more objective variant and its constraint rows
        k = con.shape[1] * rows // 4
        args = (obj[:, :rows - 1], obj_off[:, :rows - 1], con[:, :k], con_off[:, :k], lower, upper)
        warm, warm_points, _ = lp_lower(*args, models=models)
        fresh, fresh_points, _ = lp_lower(*args)
        finite = torch.isfinite(fresh)
        assert bool((torch.isfinite(warm) == finite).all())
        assert torch.allclose(warm[finite], fresh[finite], rtol=1e-7, atol=1e-7)
    assert all(m is not None and m.lp.rows > 0 for m in models)
    lp = models[0].lp
    assert lp.rows == len(models[0].objective_rows) + int((models[0].constraint_rows >= 0).sum())


def test_infeasible_relaxation_is_certified_empty():
    # x + y >= 3 and x + y <= 1 over [0, 2]^2: the LP is infeasible and phase one certifies it
    coef = torch.tensor([[[-1.0, -1.0], [1.0, 1.0]]], dtype=DT)
    offset = torch.tensor([[3.0, -1.0]], dtype=DT)
    obj = torch.tensor([[[1.0, 0.0]]], dtype=DT)
    bound, points, _ = lp_lower(obj, torch.zeros(1, 1, dtype=DT), coef, offset, torch.zeros(1, 2, dtype=DT),
                                torch.full((1, 2), 2.0, dtype=DT))
    assert bound.item() == math.inf and bool(torch.isnan(points).all())
    # merely tight (x + y = 3 at the corner): not empty
    offset = torch.tensor([[3.0, -4.0]], dtype=DT)
    bound, _, _ = lp_lower(obj, torch.zeros(1, 1, dtype=DT), coef, offset, torch.zeros(1, 2, dtype=DT),
                           torch.full((1, 2), 2.0, dtype=DT))
    assert bound.item() == pytest.approx(1.0, abs=1e-9)


def test_nonlinear_support_names_the_inputs_that_enter_nonlinearly():
    m = gv.Model("support")
    x, y, z = m.var("x", -1, 1), m.var("y", -1, 1), m.var("z", 0.5, 2)
    tape = m.compile([x + y, x * y + z, gv.quad_over_lin(x, z) - y])
    support = nonlinear_support(tape)
    assert support.tolist() == [[False, False, False], [True, True, False], [True, False, True]]


@pytest.mark.parametrize("name", FAST)
def test_root_lp_bounds_never_pass_the_known_optima(name):
    """The root's LP bound with cuts (no branching, no IPOPT, no OBBT) is on the right side of the known
    optimum; an infeasible problem is never given a finite bound above a feasible value (it has none).
    Branch-and-bound to the optimum with LP bounds on is tests/test_constraints.py's job."""
    problem = CONSTRAINED[name]()
    result = problem.model.bound(problem.expr, sense=problem.sense, max_explored=1, progress=False, ipopt="off",
                                 obbt_rounds=0, timeout=30)
    assert result.stats.lp_solved >= 1
    known = problem.known_value
    if known is None:
        return
    slack = 1e-9 * (1 + abs(known))
    assert result.lower <= known + slack if problem.sense == "min" else result.upper >= known - slack


def test_soc_cuts_tighten_the_lp_bound():
    """min -x - y subject to x^2/z + y^2/z <= 1, z in [1, 1]: the optimum is -sqrt(2); the root's LP with
    the default lines only (no cuts) is much weaker than with five rounds of tangent cuts."""
    m = gv.Model("disc")
    x, y, z = m.var("x", -2, 2), m.var("y", -2, 2), m.var("z", 1, 1)
    m.constrain(gv.quad_over_lin(x, z) + gv.quad_over_lin(y, z) <= 1)
    plain = m.bound(-x - y, max_explored=1, progress=False, ipopt="off", obbt_rounds=0, root_cut_rounds=0,
                    lagrangian_iterations=0)
    cut = m.bound(-x - y, max_explored=1, progress=False, ipopt="off", obbt_rounds=0, root_cut_rounds=5,
                  lagrangian_iterations=0)
    assert plain.lower <= cut.lower <= -math.sqrt(2) + 1e-9
    assert cut.lower > plain.lower + 0.5 and cut.lower > -1.6  # -2.25 without cuts, -1.569 with five rounds


def test_shared_constraint_bound_is_the_batched_one():
    """OBBT's evaluation over shared constraint rows (combined_lower_shared) gives the bound and slack of
    combined_lower on the expanded batch, and never exceeds the row at points of the box."""
    import torch

    from graphver.bounds.lagrangian import combined_lower, combined_lower_shared

    generator = torch.Generator().manual_seed(3)
    for scale in (1e-3, 1.0, 1e6):
        b, k, n = 6, 11, 4
        obj = scale * torch.randn(b, 1, n, dtype=torch.float64, generator=generator)
        obj_offset = scale * torch.randn(b, 1, dtype=torch.float64, generator=generator)
        con = torch.randn(k, n, dtype=torch.float64, generator=generator)
        con_offset = torch.randn(k, dtype=torch.float64, generator=generator)
        mu = torch.rand(b, 1, k, dtype=torch.float64, generator=generator) * scale
        low = -torch.rand(n, dtype=torch.float64, generator=generator)
        high = torch.rand(n, dtype=torch.float64, generator=generator)
        full = combined_lower(mu, torch.cat([obj, con.expand(b, -1, -1)], 1),
                              torch.cat([obj_offset, con_offset.expand(b, -1)], 1), low.expand(b, -1),
                              high.expand(b, -1), 1)
        shared = combined_lower_shared(mu, obj, obj_offset, con, con_offset, low, high)
        assert torch.allclose(full, shared, rtol=1e-12, atol=1e-12 * scale)
        points = low + (high - low) * torch.rand(500, n, dtype=torch.float64, generator=generator)
        value = (obj[:, 0] @ points.T + obj_offset) + (mu[:, 0] @ (con @ points.T + con_offset[:, None]))
        assert bool((shared <= value.min(dim=1).values[:, None]).all())


def test_many_objectives_on_one_model_match_separate_solves_and_keep_to_the_deadline():
    import time

    import numpy as np

    from graphver.bounds.highs import solve_le, solve_le_costs

    rng = np.random.default_rng(5)
    a = rng.normal(size=(30, 6))
    b = np.abs(rng.normal(size=30)) + 1.0
    low, high = -np.ones(6), np.ones(6)
    costs = rng.normal(size=(12, 6))
    together = solve_le_costs(costs, a, b, low, high)
    for cost, answer in zip(costs, together):
        alone = solve_le(cost, a, b, low, high)
        assert answer.status == alone.status == "optimal"
        assert abs(cost @ answer.x - cost @ alone.x) <= 1e-9 * (1 + abs(cost @ alone.x))
    late = solve_le_costs(costs, a, b, low, high, deadline=time.perf_counter() - 1.0)
    assert [answer.status for answer in late] == ["failed"] * len(costs)  # no LP starts past the deadline


def test_cut_rounds_stop_at_the_target_or_after_stalled_rounds():
    """LpStage.going_on: a domain whose rows reached their target stops after any LP; after a cut round, one
    stops once CUT_PATIENCE rounds in a row gained less than CUT_STALL of the distance to the target (or of
    1 + |bound| without one); a domain whose LP failed (bound -inf) goes on."""
    import torch

    from graphver.bab.bounder import CUT_PATIENCE, CUT_STALL, LpStage

    inf = math.inf
    before = torch.tensor([[-2.25], [-2.25], [-2.25], [-inf], [-2.25]], dtype=torch.float64)
    now = torch.tensor([[-2.25], [-1.0], [-1.3], [-inf], [-2.25 + 0.5 * CUT_STALL]], dtype=torch.float64)
    target = torch.tensor([-1.4], dtype=torch.float64)
    # after the first LP (no cut yet): only the target counts
    assert LpStage.going_on(before, now, target, None).tolist() == [True, False, False, True, True]
    quiet = torch.zeros(5, dtype=torch.long)
    going = LpStage.going_on(before, now, target, quiet)
    assert going.tolist() == [True, False, False, True, True] and quiet.tolist() == [1, 1, 1, 0, 1]
    for _ in range(CUT_PATIENCE - 1):
        going = LpStage.going_on(before, now, target, quiet)
    assert going.tolist() == [False, False, False, True, False]
    # a gain resets the count: the disc's second cut round (-2.25 -> -1.57) after a first that gained nothing
    quiet = torch.tensor([1])
    gain = LpStage.going_on(torch.tensor([[-2.25]]), torch.tensor([[-1.57]]), torch.tensor([-1.4]), quiet)
    assert gain.tolist() == [True] and quiet.tolist() == [0]
    # no finite target (no incumbent yet): the scale is 1 + |bound|
    quiet = torch.zeros(2, dtype=torch.long)
    far = torch.tensor([inf], dtype=torch.float64)
    rows = LpStage.going_on(torch.tensor([[-100.0], [-100.0]]), torch.tensor([[-99.5], [-98.0]]), far, quiet)
    assert quiet.tolist() == [1, 0] and rows.tolist() == [True, True]


def test_domains_stop_their_cut_rounds_once_pruned(monkeypatch):
    """Branch-and-bound with LP bounds: domains that reach the incumbent's cut-off stop their cut rounds, so
    the run solves fewer LPs than with every cut round on every domain, and proves the same optimum."""
    import torch

    from graphver.bab.bounder import LpStage

    m = gv.Model("ex14_1_1")  # MINLPLib's ex14_1_1: min t with |f1|, |f2| <= t + c; optimum 0
    x1, x2, t = m.var("x1", -5, 5), m.var("x2", -5, 5), m.var("t", -10, 10)
    f1 = 2 * x2**2 + 4 * x1 * x2 - 42 * x1 + 4 * x1**3
    f2 = 2 * x1**2 + 4 * x1 * x2 - 26 * x2 + 4 * x2**3
    for relation in (f1 - t <= 14, -f1 - t <= -14, f2 - t <= 22, -f2 - t <= -22):
        m.constrain(relation)
    quick = m.bound(t, progress=False, timeout=60)
    monkeypatch.setattr(LpStage, "going_on", staticmethod(lambda before, now, target, quiet, patience=2: torch.ones(
        now.shape[0], dtype=torch.bool)))
    full = m.bound(t, progress=False, timeout=60)
    assert quick.status == full.status == "solved" and quick.stats.rounds > 1
    assert quick.lower <= 0 and full.lower <= 0  # (upper: a point within feasibility_tol, may lie below 0)
    assert quick.stats.lp_solved < 0.8 * full.stats.lp_solved


def test_bounding_stages_start_nothing_past_the_deadline(monkeypatch):
    """Once the run's deadline passes during the root's bound pass, neither the Lagrangian stage (its root LP)
    nor the LP stage (its variants' passes, its LPs) starts: the run stops at its timeout with the pass's
    bound (a 500-bus ACOPF ran 12 s past a 60 s limit in those stages)."""
    import time

    from graphver.bab import bounder

    m = gv.Model("late")
    x, y = m.var("x", -2, 2), m.var("y", -2, 2)
    m.constrain(x**2 + y**2 <= 1)
    real = bounder.PassStage.run

    def slow(self, d, method, alphas, deadline, prior=None):
        real(self, d, method, alphas, deadline, prior)
        if method == "alpha":  # the root's own bound (the first bound is a plain CROWN pass)
            time.sleep(max(0.0, deadline - time.perf_counter()) + 0.05)

    started = []
    monkeypatch.setattr(bounder.PassStage, "run", slow)
    monkeypatch.setattr(bounder, "relaxation_variants", lambda *a, **k: started.append("variants") or [])
    monkeypatch.setattr(bounder, "lp_duals", lambda *a, **k: started.append("root LP"))
    result = m.bound(-x - y, timeout=2.0, progress=False, ipopt="off")
    assert started == [] and result.stats.lp_solved == 0
    assert result.stats.time_total < 2.0 + 0.5 and result.status == "unknown"
    assert -1e9 < result.lower <= -math.sqrt(2)


def test_highs_stops_at_the_deadline():
    """An LP that starts before the deadline gets HiGHS's time limit (the seconds left, at least
    MIN_LP_SECONDS): a large LP stops there as "failed" (no bound), and with time enough, or without a
    deadline, it is solved (also after earlier solves of the same HiGHS object used up its clock)."""
    import time

    import numpy as np

    from graphver.bounds.highs import GrowingLp, solve_le_costs, solver

    rng = np.random.default_rng(0)
    n, m = 200, 800  # about 0.8 s to solve, far above MIN_LP_SECONDS
    a = rng.standard_normal((m, n))
    b = rng.random(m) + 1.0
    cost = rng.standard_normal(n)
    low, high = -np.ones(n) * 10, np.ones(n) * 10
    start = time.perf_counter()
    late = solve_le_costs(cost[None], a, b, low, high, deadline=time.perf_counter() + 1e-4)[0]
    assert time.perf_counter() - start < 1.0 and late.status == "failed"
    assert solve_le_costs(cost[None], a, b, low, high)[0].status == "optimal"  # the limit does not stay set
    # HiGHS's clock adds up over the solves of its object: a later deadline counts from now, not from then
    began = time.perf_counter()
    assert solve_le_costs(cost[None], a, b, low, high)[0].status == "optimal"
    seconds = time.perf_counter() - began
    while solver().getRunTime() < 3 * seconds:  # the process's HiGHS object has run longer than the next limit
        solve_le_costs(cost[None], a, b, low, high)
    assert solve_le_costs(cost[None], a, b, low, high, deadline=time.perf_counter() + 2 * seconds)[0].status == "optimal"
    lp = GrowingLp(cost, low, high)
    lp.add(a, b)
    assert lp.solve(deadline=time.perf_counter() + 1e-4).status == "failed"
    assert lp.solve(deadline=time.perf_counter() + 60).status == "optimal"
    assert lp.solve().status == "optimal"


def test_a_cut_round_starts_only_when_it_fits_before_the_deadline(monkeypatch):
    """LpStage: a round's expected seconds (per coefficient of its rows, ELEMENT_SECONDS until one round is
    measured) must fit before the deadline; when none fits, the domains keep their other bounds and the run
    goes on without LP bounds (no crash, a sound bound)."""
    from graphver.bab import bounder

    m = gv.Model("fits")
    x, y = m.var("x", -2, 2), m.var("y", -2, 2)
    m.constrain(x**2 + y**2 <= 1)
    monkeypatch.setattr(bounder, "ELEMENT_SECONDS", 1e6)  # no round ever fits
    result = m.bound(-x - y, timeout=3.0, progress=False, ipopt="off")
    assert result.stats.lp_solved == 0 and result.stats.time_total < 3.0 + 0.5
    assert -1e9 < result.lower <= -math.sqrt(2)
    monkeypatch.setattr(bounder, "ELEMENT_SECONDS", 1e-7)
    fitted = m.bound(-x - y, timeout=30.0, progress=False, ipopt="off")
    assert fitted.stats.lp_solved > 0 and fitted.lower <= -math.sqrt(2) + 1e-9


def test_root_cut_pool_holds_on_the_root_box_and_floors_the_domains_lps(monkeypatch):
    """The root's cut pool (bounder.RootPool): every kept row is a lower bound of the constraint row it
    was cut from at random points of the root box, there are at most about as many as variables (the LP's
    active rows), and an LP that starts from the pool with the root box's own pass lines alone (no cut round)
    is as high as the root's after all its cut rounds."""
    import torch

    from graphver.bab import bounder
    from graphver.tape.evaluate import evaluate

    m = gv.Model("discs")
    x, y, z = m.var("x", -2, 2), m.var("y", -2, 2), m.var("z", 0.5, 2)
    m.constrain(gv.quad_over_lin(x, z) + gv.quad_over_lin(y, z) <= 1)
    m.constrain(gv.quad_over_lin(x - 1, z) + y**2 <= 1.5)
    seen = []
    real = bounder.LpStage.bound_by_lp

    def spy(self, d, linear, deadline):
        real(self, d, linear, deadline)
        if self.at_root and self.pool is not None and not seen:
            seen.append((self, d, linear, d.rows.clone()))

    monkeypatch.setattr(bounder.LpStage, "bound_by_lp", spy)
    result = m.bound(-x - 2 * y + z, progress=False, ipopt="off", timeout=30)
    assert result.status == "solved" and seen
    stage, d, linear, root_rows = seen[0]
    pool = stage.pool
    n = d.lower.shape[1]
    assert 0 < pool.con_coef.shape[0] <= n + 2 * stage.n_rows
    generator = torch.Generator().manual_seed(0)
    points = d.lower + (d.upper - d.lower) * torch.rand(2000, n, generator=generator, dtype=d.lower.dtype)
    values = evaluate(stage.tape, points)[:, stage.n_rows:]  # the constraint rows, in tape output order
    lines = points @ pool.con_coef.T + pool.con_offset
    assert bool((lines <= values[:, pool.con_row] + 1e-9).all())
    stage.at_root, stage.cut_rounds = False, 0
    d.rows = torch.full_like(d.rows, -math.inf)
    real(stage, d, linear, math.inf)
    assert float(d.rows[0, 0]) >= float(root_rows[0, 0]) - 1e-6 * (1 + abs(float(root_rows[0, 0])))


def test_repeated_linear_rows_are_left_out_of_the_lp_with_the_same_bound(monkeypatch):
    """Constraint rows without a nonlinear relaxation have the same linear bound in every variant (and cut
    rounds repeat earlier lines): each row enters the LP once (LpStage.without_repeats), and the root's LP
    bound is the one with every copy."""
    from graphver.bab import bounder
    from graphver.bounds import highs

    m = gv.Model("mixed")
    x, y, z = m.var("x", -2, 2), m.var("y", -2, 2), m.var("z", 0, 3)
    m.constrain(x + 2 * y - z <= 1)
    m.constrain(x - y + z <= 2.5)
    m.constrain(x * y + z**2 <= 2)
    rows = []
    real_add = highs.GrowingLp.add
    monkeypatch.setattr(highs.GrowingLp, "add", lambda self, a, b: (rows.append(len(b)), real_add(self, a, b))[1])

    def root(**options):
        rows.clear()
        result = m.bound(x - y - z, max_explored=1, progress=False, ipopt="off", obbt_rounds=0, **options)
        return result.lower, sum(rows)

    once, fewer = root()
    monkeypatch.setattr(bounder.LpStage, "without_repeats", lambda self, fingerprints, variant: variant)
    every, more = root()
    assert fewer < more
    assert once == pytest.approx(every, rel=1e-9, abs=1e-9)


def test_row_blocks_read_as_their_concatenation():
    """RowBlocks (the LP stage's constraint rows, one block per cut round, a shared block of batch 1 first)
    gives each chosen domain's rows from any start, and any chosen rows of every domain, exactly as the
    concatenated tensor would."""
    import torch

    from graphver.bounds.lp import RowBlocks

    g = torch.Generator().manual_seed(3)
    shared = (torch.randn(1, 2, 4, generator=g, dtype=torch.float64), torch.randn(1, 2, generator=g, dtype=torch.float64))
    blocks = [(torch.randn(5, k, 4, generator=g, dtype=torch.float64), torch.randn(5, k, generator=g, dtype=torch.float64))
              for k in (3, 0, 2)]
    index = torch.tensor([4, 1, 2])
    rows = RowBlocks([shared] + blocks, index)
    whole_coef = torch.cat([shared[0].expand(5, -1, -1)] + [c for c, _ in blocks], 1)[index]
    whole_offset = torch.cat([shared[1].expand(5, -1)] + [o for _, o in blocks], 1)[index]
    assert rows.k == 7
    for b in range(3):
        for start in (0, 1, 2, 4, 5, 7):
            coef, offset = rows.domain(b, start)
            assert torch.equal(coef, whole_coef[b, start:]) and torch.equal(offset, whole_offset[b, start:])
    for chosen in ([0, 3, 6], [1], [], [2, 3, 4, 5]):
        picked = torch.tensor(chosen, dtype=torch.long)
        coef, offset = rows.select(picked, 3)
        assert torch.equal(coef, whole_coef[:, picked]) and torch.equal(offset, whole_offset[:, picked])


def test_domains_hand_their_tight_cuts_to_their_children(monkeypatch):
    """A domain's cuts (the constraint rows tight at its last LP, LpStage.domain_cuts) reach its children
    (Domains.cut_*), and every one a child receives is a lower bound of the constraint row it names at random
    points of the child's box; the run still proves the optimum."""
    import torch

    from graphver.bab import bounder
    from graphver.tape.evaluate import evaluate

    m = gv.Model("discs")
    x, y, z = m.var("x", -2, 2), m.var("y", -2, 2), m.var("z", 0.5, 2)
    m.constrain(gv.quad_over_lin(x, z) + gv.quad_over_lin(y, z) <= 1)
    m.constrain(x * y + z**2 <= 2)
    seen = []
    real = bounder.LpStage.bound_by_lp

    def spy(self, d, linear, deadline):
        if d.inherited is not None:
            seen.append((self, d.lower.clone(), d.upper.clone(), *[t.clone() for t in d.inherited]))
        real(self, d, linear, deadline)

    monkeypatch.setattr(bounder.LpStage, "bound_by_lp", spy)
    result = m.bound(x * y - x - 2 * y + z, progress=False, ipopt="off", timeout=60)
    assert result.status == "solved"
    assert seen and any(bool(torch.isfinite(offset).any()) for *_, offset, _ in seen)
    generator = torch.Generator().manual_seed(1)
    for stage, lower, upper, coef, offset, row in seen[:20]:
        assert coef.shape[1] == stage.keep_cuts <= lower.shape[1] + 1
        for b in range(lower.shape[0]):
            usable = torch.isfinite(offset[b])
            points = lower[b] + (upper[b] - lower[b]) * torch.rand(500, lower.shape[1], generator=generator,
                                                                   dtype=lower.dtype)
            values = evaluate(stage.tape, points)[:, stage.n_rows:]
            lines = points @ coef[b, usable].T + offset[b, usable]
            assert bool((lines <= values[:, row[b, usable]] + 1e-9).all())
