"""Search for counterexamples and good feasible points: sampling and projected gradient (IPOPT: planned)."""

from graphver.search.local import corners, projected_gradient, random_points

__all__ = ["corners", "projected_gradient", "random_points"]
