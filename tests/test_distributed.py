"""Branch-and-bound on Ray workers (graphver.bab.workers): the same certified conclusions as one process,
and nothing lost when a worker dies. One local Ray instance (2 CPUs) serves the whole module. The fault test runs by default; the comparisons
with one process are marked slow (``python -m pytest -m slow tests/test_distributed.py``)."""

from __future__ import annotations

import math

import pytest
import torch

import graphver as gv
from graphver.api import problem_of
from graphver.bab import BoundGoal, Engine
from graphver.bab import workers as workers_module
from graphver.options import BabOptions
from models.optimization import OPT_PROBLEMS

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.mark.slow  # about 10 s per problem; bench/distributed.py runs the whole zoo
@pytest.mark.parametrize("name", ["six_hump_camel", "himmelblau", "styblinski_tang_2d", "branin"])
def test_two_workers_certify_what_one_process_certifies(name):
    problem = OPT_PROBLEMS[name]()
    results = [problem.model.bound(problem.expr, sense=problem.sense, timeout=60, rel_tol=1e-6, workers=w,
                                   batch_size=32) for w in (1, 2)]
    single, distributed = results
    assert single.status == distributed.status == "solved"
    # workers start only when the root leaves something to split (branin: solved at the root)
    assert distributed.stats.workers == (2 if distributed.stats.rounds else 0)
    assert distributed.stats.workers_lost == 0
    for result in results:
        assert result.lower <= problem.known_value + 1e-9 <= result.upper + 2e-9
    assert abs(distributed.lower - single.lower) <= 1e-6 * max(1.0, abs(problem.known_value))


@pytest.mark.slow
def test_verify_on_workers_proves_and_falsifies():
    m = gv.Model("disk")
    x, y = m.var("x", -1, 1), m.var("y", -1, 1)
    expr = x * y + gv.sin(3 * x) * y**2
    holds = m.verify(expr <= 2.2, timeout=60, workers=2, batch_size=16, samples=0)
    fails = m.verify(expr <= 0.9, timeout=60, workers=2, batch_size=16)
    assert holds.status == "verified" and fails.status == "falsified"


def test_a_worker_killed_mid_run_loses_no_domain(monkeypatch):
    """ray.kill on one worker in the third round: its share goes back to the store, a new worker takes its
    place, the run finishes with a bound below the known optimum, and the leaves of the tree (pruned, set
    aside, open) tile the box: their volumes add up to the box's (input splits halve a box exactly)."""
    problem = OPT_PROBLEMS["six_hump_camel"]()
    model = problem.model
    bab = problem_of(model, [problem.expr])
    options = BabOptions(timeout=60, rel_tol=1e-7, workers=2, batch_size=16, branching="input", progress=False)
    engine = Engine(bab, BoundGoal(options.rel_tol, options.abs_tol), options)
    engine.leaves = []
    original = workers_module.WorkerPool.split
    calls = {"n": 0}

    def split_killing_one(pool, parents, deadline, device):
        calls["n"] += 1
        if calls["n"] == 3:
            ray.kill(pool.actors[0])  # the worker dies while the round is being handed out
        return original(pool, parents, deadline, device)

    monkeypatch.setattr(workers_module.WorkerPool, "split", split_killing_one)
    outcome = engine.run()
    assert calls["n"] >= 3 and outcome.stats.workers_lost >= 1
    assert outcome.lower <= problem.known_value + 1e-12
    assert outcome.status == "solved"
    lower, upper = bab.lower, bab.upper
    volume = float(torch.prod(upper - lower))
    leaves = sum(float(torch.prod(high - low, dim=1).sum()) for low, high in engine.leaves if len(low))
    assert math.isclose(leaves, volume, rel_tol=1e-9), (leaves, volume)
    # and every sampled point of the box lies in some leaf
    points = lower + (upper - lower) * torch.rand(2000, len(lower), dtype=torch.float64)
    low = torch.cat([low for low, _ in engine.leaves])
    high = torch.cat([high for _, high in engine.leaves])
    inside = ((points[:, None] >= low[None]) & (points[:, None] <= high[None])).all(dim=2).any(dim=1)
    assert bool(inside.all())


def test_workers_without_ray_say_how_to_install(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("no ray")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(gv.SolverUnavailableError, match="distributed"):
        workers_module.import_ray()


def test_workers_option_is_checked():
    with pytest.raises(gv.OptionError, match="workers"):
        BabOptions(workers=0)
