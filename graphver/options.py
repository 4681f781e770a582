"""Frozen option dataclasses, with did-you-mean errors for unknown names."""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, TypeVar

from graphver.errors import OptionError

T = TypeVar("T")


def make_options(cls: type[T], given: dict[str, Any] | None = None, **overrides: Any) -> T:
    """Build the frozen dataclass ``cls`` from keyword options, rejecting unknown names with a suggestion."""
    values = dict(given or {})
    values.update(overrides)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in values:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise OptionError(f"unknown option {key!r} for {cls.__name__}.{hint} Known options: {', '.join(names)}.")
    return cls(**values)


@dataclasses.dataclass(frozen=True)
class BoundOptions:
    """Options of the bounding methods (``Model.interval`` and the bounds back end).

    alpha_iterations, alpha_lr: Adam steps and learning rate of the "alpha" method.
    crown_intermediate: refine intermediate bounds with CROWN (intersected with IBP); False keeps IBP only.
    alpha_intermediate: with the "alpha" method, also optimise the intermediate bounds (each refined
        instruction's outputs get their own alpha pass; branch-and-bound runs it at the root, whose
        intervals every domain inherits).
    max_chunk_elements: memory cap of one backward pass: batch x plan entries (sparse storage) or batch x
        rows x nodes (dense storage, alpha included); above it the pass runs on chunks of its rows (a sparse
        pass that keeps its coefficients, the final pass of branch-and-bound, or alpha's runs whole).
    backward: coefficient storage of the backward passes (graphver.bounds.backward): "sparse" (one
        coefficient per reachable (row, node) pair, for graphs of equations), "dense" ([rows, nodes]
        matrices, for dense layers) or "auto" (dense when a linear instruction has fan-in >= 32, e.g. an
        imported network). Both give the same bounds up to rounding.
    """

    alpha_iterations: int = 40
    alpha_lr: float = 0.1
    crown_intermediate: bool = True
    alpha_intermediate: bool = True
    max_chunk_elements: int = 2**24
    backward: str = "auto"

    def __post_init__(self) -> None:
        if self.alpha_iterations < 0:
            raise OptionError(f"alpha_iterations must be >= 0, got {self.alpha_iterations}")
        if not self.alpha_lr > 0:
            raise OptionError(f"alpha_lr must be > 0, got {self.alpha_lr}")
        if self.max_chunk_elements < 1:
            raise OptionError(f"max_chunk_elements must be >= 1, got {self.max_chunk_elements}")
        if self.backward not in ("auto", "sparse", "dense"):
            close = difflib.get_close_matches(str(self.backward), ("auto", "sparse", "dense"), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise OptionError(f"backward must be 'auto', 'sparse' or 'dense', got {self.backward!r}.{hint}")


@dataclasses.dataclass(frozen=True)
class BabOptions:
    """Options of branch-and-bound (``Model.verify`` and ``Model.bound``).

    timeout: wall-clock seconds; the best proven result so far is returned when it runs out.
    batch_size: domains split per round (their children are bounded in one batched call).
    max_domains: open domains kept best-first; above it the engine switches to depth-first selection.
    max_explored: stop with "unknown" after this many bounded domains (None: no cap).
    method / root_method: bound method for domains / for the root ("ibp", "crown", "alpha").
    branching: "auto" (input or node split, decided per domain by bounding both: strong branching),
        "input" (inputs only) or "node" (nonlinear nodes, inputs where no node helps).
    node_heuristic: "bbps" or "babsr" (intercept only); see graphver.bab.branching.
    branch_points: "optimized" (per-op lookup tables, graphver.bab.branch_points) or "midpoint".
    max_depth: domains split this often are not split further (their bound stays in the result).
    seed: seeds every random choice (sampling); runs are deterministic for a fixed seed.
    samples: random points per root box for the first counterexample / incumbent search.
    pgd_steps, pgd_every, pgd_domains: projected-gradient search from the centres of the worst domains.
    ipopt: "auto" (local solves with IPOPT when cyipopt is installed), "on" (required: raise
        ``SolverUnavailableError`` without it) or "off"; ``True``/``False`` mean "on"/"off".
    ipopt_starts: IPOPT starts per search round (root: box centre, best samples, projected-gradient
        results; later rounds: centres of the best open domains, each solved inside its domain).
    ipopt_every: rounds between IPOPT searches during branch-and-bound (0: at the root only); the interval
        doubles after each search that found no better point and resets after one that did.
    ipopt_max_iter, ipopt_time: budget of one IPOPT call (iterations, wall seconds; never past the timeout).
    feasibility_tol: with constraints, a point is feasible (a candidate incumbent or counterexample) when
        every constraint row is <= this (equalities: |h| <= this); certified bounds are for the exact set.
    fbbt_rounds: forward-backward bound-tightening rounds on every domain of a constrained model (0: off).
    obbt_rounds: optimisation-based bound-tightening rounds on the root box of a constrained model (0: off).
    lagrangian_iterations: Adam steps optimising the multipliers of the Lagrangian bound of each domain of
        a constrained model (0: off; the objective's own bound is kept when it is better).
    lp_bounds: also bound every domain of a constrained model by the LP over its linear relaxation (the
        pass's bounds plus their variants with the relaxation parameters at 0 and 1), certified through
        its duals (graphver.bounds.lp); ``bound`` then splits where the LP point violates a constraint most.
    lp_cut_rounds: LP re-solves per domain, each with one more set of linear bounds whose relaxation
        lines are tightest at the previous LP point (outer approximation; 0: the first LP only).
    root_cut_rounds: the same for the root box, whose bound floors every other (the cone and the convex
        costs of an ACOPF need tens of tangent planes); rounds stop early once they stall.
    lp_batch_size: domains split per round when domains get LP bounds (at most ``batch_size``).
    memory_mb: memory budget of a round (MB of resident memory on the CPU, allocated memory on a GPU); rounds
        pop fewer domains when the measured memory per domain would exceed it (graphver.bab.rounds).
    rel_tol, abs_tol: ``bound`` stops when upper - lower <= max(abs_tol, rel_tol * |upper|).
    progress: live progress display (None: only when stdout is a terminal).
    device, dtype: where and in which precision domains are bounded.
    workers: processes that bound domains (1: this process). More than one runs on Ray
        (``pip install -e ".[distributed]"``): each worker bounds a share of every round's domains, the
        driver keeps the domain store, the search and the certificate (graphver.bab.workers).
    address: the Ray cluster to run the workers on (None: a local one, started for the run).
    """

    timeout: float = 60.0
    batch_size: int = 1024
    max_domains: int = 200_000
    max_explored: int | None = None
    method: str = "crown"
    root_method: str = "alpha"
    branching: str = "auto"
    node_heuristic: str = "bbps"
    branch_points: str = "optimized"
    max_depth: int = 400
    seed: int = 0
    samples: int = 256
    pgd_steps: int = 12
    pgd_every: int = 5
    pgd_domains: int = 8
    ipopt: str = "auto"
    ipopt_starts: int = 4
    ipopt_every: int = 20
    ipopt_max_iter: int = 200
    ipopt_time: float = 5.0
    feasibility_tol: float = 1e-6
    fbbt_rounds: int = 2
    lagrangian_iterations: int = 30
    lp_bounds: bool = True
    lp_cut_rounds: int = 5
    root_cut_rounds: int = 40
    lp_batch_size: int = 64
    memory_mb: float = 6144.0
    obbt_rounds: int = 3
    rel_tol: float = 1e-4
    abs_tol: float = 1e-6
    progress: bool | None = None
    device: str | None = None
    dtype: str = "float64"
    workers: int = 1
    address: str | None = None
    bound_options: BoundOptions = dataclasses.field(default_factory=lambda: BoundOptions(alpha_iterations=20))

    def __post_init__(self) -> None:
        if self.lp_batch_size < 1 or self.lp_cut_rounds < 0 or self.root_cut_rounds < 0:
            raise OptionError("lp_batch_size must be >= 1, lp_cut_rounds and root_cut_rounds >= 0")
        if self.timeout <= 0 or self.batch_size < 1 or self.max_domains < 1:
            raise OptionError("timeout, batch_size and max_domains must be positive")
        if self.branching not in ("auto", "input", "node"):
            raise OptionError(f"branching must be 'auto', 'input' or 'node', got {self.branching!r}")
        if self.branch_points not in ("optimized", "midpoint"):
            raise OptionError(f"branch_points must be 'optimized' or 'midpoint', got {self.branch_points!r}")
        if self.node_heuristic not in ("bbps", "babsr"):
            raise OptionError(f"node_heuristic must be 'bbps' or 'babsr', got {self.node_heuristic!r}")
        for name in ("method", "root_method"):
            if getattr(self, name) not in ("ibp", "crown", "alpha"):
                raise OptionError(f"{name} must be 'ibp', 'crown' or 'alpha', got {getattr(self, name)!r}")
        if self.dtype not in ("float64", "float32"):
            raise OptionError(f"dtype must be 'float64' or 'float32', got {self.dtype!r}")
        if isinstance(self.ipopt, bool):
            object.__setattr__(self, "ipopt", "on" if self.ipopt else "off")
        if self.ipopt not in ("auto", "on", "off"):
            raise OptionError(f"ipopt must be 'auto', 'on' or 'off', got {self.ipopt!r}")
        if self.ipopt_starts < 0 or self.ipopt_every < 0 or self.ipopt_max_iter < 1 or not self.ipopt_time > 0:
            raise OptionError("ipopt_starts and ipopt_every must be >= 0, ipopt_max_iter >= 1, ipopt_time > 0")
        if min(self.feasibility_tol, self.fbbt_rounds, self.lagrangian_iterations, self.obbt_rounds) < 0:
            raise OptionError("feasibility_tol, fbbt_rounds, lagrangian_iterations and obbt_rounds must be >= 0")
        if self.rel_tol < 0 or self.abs_tol < 0:
            raise OptionError("rel_tol and abs_tol must be >= 0")
        if not isinstance(self.workers, int) or self.workers < 1:
            raise OptionError(f"workers must be a whole number >= 1, got {self.workers!r}")
