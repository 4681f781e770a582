"""Search for counterexamples and good feasible points: sampling, projected gradient, IPOPT local solves."""

from graphver.search.ipopt import LocalSolution, TapeNLP, ValueSearch, ipopt_available, local_solve
from graphver.search.local import corners, projected_gradient, random_points

__all__ = ["LocalSolution", "TapeNLP", "ValueSearch", "corners", "ipopt_available", "local_solve",
           "projected_gradient", "random_points"]
