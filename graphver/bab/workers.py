"""Distributed branch-and-bound on Ray: workers bound domains, the driver keeps everything that proves.

The driver (``Engine.run``) keeps the domain store, the incumbent search and the certificate; with
``workers > 1`` each round it pops its usual share once per worker and sends every worker one share
(``BoundingWorker.split``: the children of its parents, bounded by the worker's own copy of the engine,
set up with the root's state). What comes back is filed as in a single-process round.

Nothing is lost when a worker is: a share leaves the store only when its children have come back. While
shares are out, the engine's snapshot of the store before the pop still holds their parents (restored
when a round is cut short: Ctrl-C, the deadline); a share whose worker died, raised ``DeadlineReached``
or did not answer before the deadline goes back into the store whole, with its parents' bounds (which
hold on them), and a dead worker is replaced. So at every moment each part of the box is in the store,
pruned with its bound, set aside with its bound, or in a share that has come back: the proven bound is
the minimum over those, as in a single process.

Ray runs the same code on a laptop's cores or a cluster: without ``address`` a local Ray instance with
``workers`` CPUs is started for the run (and stopped after it); with one, the workers join that cluster.
"""

from __future__ import annotations

import dataclasses
import time

import torch

from graphver.bab.domains import Domains
from graphver.errors import SolverUnavailableError

RAY_HINT = 'pip install -e ".[distributed]"  (or: pip install "ray>=2.9")'
ANSWER_GRACE = 5.0  # seconds past the deadline a share may take to come back (it stops at the deadline itself)
MERGED_STATS = ("domains_explored", "input_splits", "node_splits", "domain_errors", "fbbt_infeasible", "fbbt_shrink",
                "lagrangian_improved", "time_lagrangian", "lp_solved", "lp_improved", "time_lp",
                "constraint_infeasible", "time_bound")  # counters a worker's bounding adds to the driver's


def import_ray():
    try:
        import ray
    except ImportError:
        raise SolverUnavailableError(f"workers > 1 runs on Ray, which is not installed: {RAY_HINT}") from None
    return ray


def start_ray(cpus: int, address: str | None):
    """Ray, initialised for this run unless the caller did: a local instance with ``cpus`` CPUs, or the
    cluster at ``address``. Returns (ray, whether this run started it and so shuts it down)."""
    ray = import_ray()
    if ray.is_initialized():
        return ray, False
    settings = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.init(**(dict(num_cpus=cpus) if address is None else dict(address=address)), **settings)
    return ray, True


def counters(stats) -> dict:
    return {name: getattr(stats, name) for name in MERGED_STATS}


class BoundingWorker:
    """A worker's engine: the problem (without its confirmation: the driver confirms), the options with
    one worker, and the root's state (``Engine.root_state``), so that its bounds are the driver's."""

    def __init__(self, problem, goal, options, state: dict, threads: int = 1):
        from graphver.bab.engine import Engine

        torch.set_num_threads(threads)
        self.engine = Engine(problem, goal, dataclasses.replace(options, workers=1, progress=False, address=None))
        self.engine.load_root_state(state)

    def split(self, parents: Domains, seconds: float):
        """The bounded children of ``parents`` within ``seconds``; the candidate points the bounding found;
        the counters it added (``MERGED_STATS``). Raises ``DeadlineReached`` past the time."""
        engine = self.engine
        engine.deadline = engine.splitter.deadline = time.perf_counter() + seconds
        before = counters(engine.stats)
        children = engine.split(parents.to(engine.device))
        found = [(points.cpu(), source) for points, source in engine.splitter.found]
        engine.splitter.found.clear()
        after = counters(engine.stats)
        return children.to("cpu"), found, {name: after[name] - before[name] for name in MERGED_STATS}


class WorkerPool:
    """``options.workers`` Ray actors running ``BoundingWorker``; ``split`` hands each one share of a round."""

    def __init__(self, problem, goal, options, state: dict, stats):
        ray, self.owns_ray = start_ray(options.workers, options.address)
        self.ray = ray
        self.stats = stats
        self.remote = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(BoundingWorker)
        # the worker's copy of the problem: no confirmation (a closure over sympy; the driver confirms)
        self.arguments = (ray.put(dataclasses.replace(problem, confirm=None)), goal, options, state)
        self.actors = [self.start() for _ in range(options.workers)]
        stats.workers = options.workers

    @property
    def size(self) -> int:
        return len(self.actors)

    def start(self):
        return self.remote.remote(*self.arguments)

    def split(self, parents: Domains, deadline: float, device) -> tuple[Domains, Domains, list]:
        """Children of ``parents`` (split into one share per worker), the parents of the shares that did
        not come back (for the store), and the candidate points found."""
        ray = self.ray
        shares = [parents.select(index) for index in torch.arange(len(parents)).chunk(self.size) if len(index)]
        seconds = max(0.0, deadline - time.perf_counter())
        futures = {actor.split.remote(share.to("cpu"), seconds): (k, share) for k, (actor, share)
                   in enumerate(zip(self.actors, shares))}
        ready, pending = ray.wait(list(futures), num_returns=len(futures), timeout=seconds + ANSWER_GRACE)
        children, returned, found = [], [share for f in pending for share in [futures[f][1]]], []
        for future in pending:
            ray.cancel(future, force=True)
            self.replace(futures[future][0])
        for future in ready:
            k, share = futures[future]
            try:
                kids, points, added = ray.get(future)
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError, ray.exceptions.ObjectLostError):
                returned.append(share)  # the worker died: its parents go back, a new worker takes its place
                self.stats.workers_lost += 1
                self.replace(k)
                continue
            except ray.exceptions.RayTaskError as error:
                from graphver.clock import DeadlineReached

                if isinstance(error, DeadlineReached) or isinstance(error.cause, DeadlineReached):
                    returned.append(share)
                    continue
                raise error.as_instanceof_cause() from None  # a model error or a bug: as in one process
            children.append(kids.to(device))
            found += [(p.to(device), source) for p, source in points]
            for name, value in added.items():
                setattr(self.stats, name, getattr(self.stats, name) + value)
        empty = parents.select(torch.zeros(0, dtype=torch.long, device=parents.lower_bound.device))
        return (Domains.cat(children) if children else empty, Domains.cat(returned) if returned else empty, found)

    def replace(self, k: int) -> None:
        try:
            self.ray.kill(self.actors[k])
        except Exception:  # noqa: BLE001  (already gone)
            pass
        self.actors[k] = self.start()

    def close(self) -> None:
        for actor in self.actors:
            try:
                self.ray.kill(actor)
            except Exception:  # noqa: BLE001
                pass
        self.actors = []
        if self.owns_ray:
            self.ray.shutdown()
