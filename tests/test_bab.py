"""Branch-and-bound: verify and bound with known answers, soundness against sampling, robustness."""

from __future__ import annotations

import json
import math

import pytest
import torch

import graphver as gv


def one(lb, ub, name="x"):
    m = gv.Model("bab")
    return m, m.var(name, lb, ub)


def sampled_min(m, expr, count=200_000, seed=0):
    gen = torch.Generator().manual_seed(seed)
    low, high = m.box()
    pts = low + (high - low) * torch.rand(count, low.shape[1], generator=gen, dtype=torch.float64)
    return float(m.evaluate(expr, pts).min())


def test_verify_true_property_needs_branching():
    m, x = one(0, 5)
    prop = x * gv.exp(-x) <= 0.36788  # max is 1/e = 0.3678794...
    single = m.interval(x * gv.exp(-x), method="alpha")
    assert single.upper > 0.36788  # one bound pass cannot prove it
    result = m.verify(prop, timeout=30)
    assert result.status == "verified"
    assert 0 <= result.margin_lower <= 0.36788 - 1 / math.e + 1e-12
    assert result.stats.domains_explored > 1 and result.counterexample is None


def test_verify_false_property_with_narrow_violation():
    m, x = one(0, 5)
    result = m.verify(x * gv.exp(-x) <= 0.36787, timeout=30)  # violated only near x = 1, width ~ 0.006
    assert result.status == "falsified"
    point = result.counterexample["x"]
    assert point * math.exp(-point) > 0.36787
    assert result.counterexample_margins[0] < 0
    assert result.margin_lower <= result.counterexample_margins[0]


def test_sin_cos_identity_on_a_box():
    m, x = one(-3, 3)
    result = m.verify(gv.sin(x) ** 2 + gv.cos(x) ** 2 <= 1 + 1e-6, timeout=60)
    assert result.status == "verified" and result.margin_lower >= 0


@pytest.mark.slow
def test_sin_cos_identity_on_a_wide_box():
    m, x = one(-6, 6)
    result = m.verify(gv.sin(x) ** 2 + gv.cos(x) ** 2 <= 1 + 1e-9, timeout=60)
    assert result.status == "verified" and result.margin_lower >= 0


def test_all_and_any_semantics():
    m, x = one(-1, 1)
    both = m.verify([x <= 1 + 1e-9, x >= -1 - 1e-9], timeout=10)
    assert both.status == "verified"
    # zero slack: the rounding margins (~1e-15) keep the proof from closing; never a wrong "verified"
    tight = m.verify(x <= 1, timeout=10)
    assert tight.status == "unknown" and tight.margin_lower <= 0
    # pointwise disjunction: each half of the box satisfies one relation, neither holds everywhere
    either = m.verify(gv.Any([x <= 0.1, x >= -0.1]), timeout=10)
    assert either.status == "verified"
    neither = m.verify(gv.Any([x <= -0.1, x >= 0.1]), timeout=10)
    assert neither.status == "falsified" and abs(neither.counterexample["x"]) < 0.1
    strict = m.verify(x < 1, timeout=10)  # fails at x = 1 exactly
    assert strict.status == "falsified" and strict.counterexample["x"] == 1.0


@pytest.mark.parametrize("name, build, known", [
    ("six-hump camel",
     lambda m: (lambda x, y: (4 - 2.1 * x**2 + x**4 / 3) * x**2 + x * y + (-4 + 4 * y**2) * y**2)(
         m.var("x", -3, 3), m.var("y", -2, 2)), -1.0316284534898774),
    ("branin",
     lambda m: (lambda x, y: (y - 5.1 / (4 * math.pi**2) * x**2 + 5 / math.pi * x - 6) ** 2
                + 10 * (1 - 1 / (8 * math.pi)) * gv.cos(x) + 10)(m.var("x", -5, 10), m.var("y", 0, 15)),
     0.39788735772973816),
    ("rosenbrock",
     lambda m: (lambda x, y: (1 - x) ** 2 + 100 * (y - x**2) ** 2)(m.var("x", -1.5, 1.5), m.var("y", -1.5, 1.5)),
     0.0),
])
def test_bound_brackets_known_minimum(name, build, known):
    m = gv.Model(name)
    expr = build(m)
    result = m.bound(expr, sense="min", rel_tol=1e-4, abs_tol=1e-6, timeout=50)
    assert result.lower <= known <= result.upper + 1e-12, result
    assert result.status == "solved", str(result)
    assert result.gap <= max(1e-6, 1e-4 * abs(result.upper)) + 1e-15
    assert result.lower <= sampled_min(m, expr)
    point = torch.tensor([[result.witness[n] for n in m.names]], dtype=torch.float64)
    assert float(m.evaluate(expr, point)[0]) == pytest.approx(result.upper, rel=1e-12, abs=1e-12)
    low, high = m.box()
    assert bool((point >= low).all() and (point <= high).all())


def test_bound_max_mirrors_min():
    m, x = one(0, 5)
    result = m.bound(x * gv.exp(-x), sense="max", timeout=20)
    assert result.status == "solved"
    assert result.lower <= 1 / math.e <= result.upper
    assert result.witness["x"] == pytest.approx(1.0, abs=0.05)


def test_timeout_and_domain_cap_return_valid_partial_results():
    m, x = one(-6, 6)
    prop = gv.sin(x) ** 2 + gv.cos(x) ** 2 <= 1 + 1e-12
    capped = m.verify(prop, timeout=30, max_explored=2000, batch_size=256)
    assert capped.status == "unknown" and "cap" in capped.stats.stop_reason
    assert capped.margin_lower <= 1e-12  # still a proven (valid) lower bound of the margin
    timed = m.verify(prop, timeout=0.5)
    assert timed.status == "unknown" and "timeout" in timed.stats.stop_reason
    assert timed.stats.time_total < 5


def test_deterministic_for_a_fixed_seed():
    def run():
        m = gv.Model("det")
        x, y = m.var("x", -2, 2), m.var("y", -2, 2)
        r = m.bound(gv.sin(3 * x) * gv.cos(2 * y) + 0.1 * (x**2 + y**2), timeout=30, seed=7)
        return r.lower, r.upper, r.stats.domains_explored

    assert run() == run()


def test_domain_errors_inside_bab_are_split_not_dropped():
    """IBP alone says x**2 - x + 1 may be negative on [-1, 2] (true minimum 3/4): log's argument leaves its
    domain at the root. BaB splits such domains instead of failing or dropping them."""
    m, x = one(-1, 2)
    expr = gv.log(x**2 - x + 1)
    with pytest.raises(gv.DomainError):
        m.interval(expr, method="ibp")
    result = m.bound(expr, timeout=30, method="ibp", root_method="ibp")
    assert result.status == "solved"
    assert result.lower <= math.log(0.75) <= result.upper
    assert result.stats.domain_errors > 0 and result.stats.messages


@pytest.mark.parametrize("branching", ["input", "node", "auto"])
@pytest.mark.parametrize("heuristic", ["bbps", "babsr"])
def test_branching_strategies_all_sound(branching, heuristic):
    m = gv.Model("strategies")
    x, y = m.var("x", -2, 2), m.var("y", -1, 1)
    expr = gv.tanh(x * y) * gv.sin(x) + 0.2 * x**2 - gv.relu(y - x)
    timeout = 4 if branching == "node" else 20  # node-only may stall (an ablation): check soundness only
    result = m.bound(expr, timeout=timeout, branching=branching, node_heuristic=heuristic, rel_tol=1e-3)
    assert result.lower <= sampled_min(m, expr, 100_000)
    if branching != "node":  # node-only branching is an ablation: without input splits it may stall
        assert result.status == "solved"


def test_node_splits_are_used_and_sound():
    m = gv.Model("nodes")
    x, y = m.var("x", -2, 2), m.var("y", -2, 2)
    expr = gv.sin(x * y + x) * gv.exp(0.3 * (x - y))
    result = m.bound(expr, timeout=4, branching="node", rel_tol=1e-3)
    assert result.stats.node_splits > 0
    assert result.lower <= sampled_min(m, expr, 100_000)


def test_results_serialise_to_json_and_print():
    m, x = one(0, 5)
    v = m.verify(x * gv.exp(-x) <= 0.36788, timeout=10)
    data = json.loads(v.to_json())
    assert data["status"] == "verified" and data["stats"]["domains_explored"] > 0
    assert data["options"]["timeout"] == 10 and "torch" in data["versions"]
    assert "VERIFIED" in str(v)
    b = m.bound(x * gv.exp(-x), timeout=10)
    data = json.loads(b.to_json())
    assert set(data) >= {"lower", "upper", "gap", "status", "witness", "stats", "options", "versions"}
    assert "bound (min" in str(b)


def test_bad_verify_input_is_a_clear_error():
    m, x = one(0, 1)
    with pytest.raises(gv.ModelError, match="equalities are constraints"):
        m.verify(gv.sin(x) - x, timeout=1)
    with pytest.raises(gv.OptionError, match="Did you mean 'batch_size'"):
        m.verify(x <= 2, batch_sise=4)
    with pytest.raises(gv.OptionError, match="sense"):
        m.bound(x, sense="maximum")


def test_alpha_domains_inherit_parameters_and_need_fewer_domains():
    m = gv.Model("alpha")
    x, y = m.var("x", -2, 2), m.var("y", -2, 2)
    expr = gv.sin(x * y + x) * gv.exp(0.3 * (x - y)) + gv.tanh(x - y) * x
    crown = m.bound(expr, timeout=30, method="crown")
    alpha = m.bound(expr, timeout=30, method="alpha", bound_options=gv.BoundOptions(alpha_iterations=5))
    assert crown.status == alpha.status == "solved"
    assert alpha.stats.domains_explored <= crown.stats.domains_explored
    low = min(crown.upper, alpha.upper)
    assert alpha.lower <= low and crown.lower <= low
    assert alpha.lower <= sampled_min(m, expr, 100_000)


def test_interrupt_mid_round_keeps_the_popped_domains(monkeypatch):
    """Ctrl-C while a round's domains are out of the store must not lose their bounds (soundness)."""
    from graphver.bab.engine import Engine

    calls = {"n": 0}
    original = Engine.split

    def split_then_interrupt(self, parents):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, parents)

    monkeypatch.setattr(Engine, "split", split_then_interrupt)
    m = gv.Model("interrupt")
    x, y = m.var("x", -3, 3), m.var("y", -2, 2)
    camel = (4 - 2.1 * x**2 + x**4 / 3) * x**2 + x * y + (-4 + 4 * y**2) * y**2
    result = m.bound(camel, timeout=30, batch_size=4)
    assert result.status == "unknown" and "interrupted" in result.stats.stop_reason
    assert result.lower <= -1.0316284534898774


def test_undefined_points_are_never_candidates():
    m, x = one(-1, 1)
    result = m.bound(gv.log(x + 1), timeout=5, max_depth=30)  # log(0) = -inf at x = -1: not a witness value
    assert result.upper > -1e300 and (result.witness is None or result.witness["x"] > -1)


def test_bound_evaluates_given_start_points_first():
    m = gv.Model("wells")
    x = m.var("x", -2, 2)
    f = (x**2 - 1) ** 2 + 0.3 * x
    result = m.bound(f, timeout=30, start={"x": -1.0})
    assert result.status == "solved"
    assert result.stats.incumbent_from in ("given start", "ipopt", "projected gradient")
    with pytest.raises(gv.ModelError, match="one per variable"):
        m.bound(f, start=[1.0, 2.0])
