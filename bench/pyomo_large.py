"""A large Pyomo model through graphver's import: seconds to read it and to a first certified bound.

The model (seeded, built here): n variables in [-1, 1], an objective of ``terms`` terms (products
x_i * x_j of random pairs with random weights, squares, and a few sin / exp terms), a ball constraint
sum x_i^2 <= n / 4 and a ring of linear constraints x_i + x_(i+1) <= 1.5. Printed per size: terms,
variables, constraints, tape nodes, seconds to import (``from_pyomo`` reading the Pyomo expression trees),
seconds to the first certified lower bound (the first point of the run's history, from the start of
``bound``), the bound then, and the run's final status at the limit.

    python bench/pyomo_large.py                 # 20,000 terms (the acceptance size), limit 30 s
    python bench/pyomo_large.py --terms 2000 20000 50000 --limit 60
"""

from __future__ import annotations

import argparse
import random
import time


def build(terms: int, n: int, seed: int = 0):
    import pyomo.environ as pyo

    rng = random.Random(seed)
    m = pyo.ConcreteModel()
    m.I = pyo.RangeSet(0, n - 1)
    m.x = pyo.Var(m.I, bounds=(-1, 1))
    parts = []
    for t in range(terms):
        i, j = rng.randrange(n), rng.randrange(n)
        w = rng.uniform(-1, 1)
        kind = t % 50
        if kind == 0:
            parts.append(w * pyo.sin(m.x[i]))
        elif kind == 1:
            parts.append(w * pyo.exp(0.5 * m.x[i]))
        elif i == j:
            parts.append(w * m.x[i] ** 2)
        else:
            parts.append(w * m.x[i] * m.x[j])
    m.obj = pyo.Objective(expr=pyo.quicksum(parts))
    m.ball = pyo.Constraint(expr=pyo.quicksum(m.x[i] ** 2 for i in m.I) <= n / 4)
    m.ring = pyo.Constraint(m.I, rule=lambda m, i: m.x[i] + m.x[(i + 1) % n] <= 1.5)
    return m


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--terms", type=int, nargs="*", default=[20_000])
    parser.add_argument("--variables", type=int, default=200)
    parser.add_argument("--limit", type=float, default=30.0, help="seconds for bound")
    args = parser.parse_args()
    import torch

    import graphver as gv

    torch.set_num_threads(2)
    print(f"{'terms':>7}{'vars':>6}{'cons':>6}{'nodes':>8}{'build s':>9}{'import s':>9}{'first bound s':>15}"
          f"{'first bound':>14}{'status':>10}{'lower':>14}{'upper':>14}")
    for terms in args.terms:
        start = time.perf_counter()
        m = build(terms, args.variables)
        built = time.perf_counter() - start
        start = time.perf_counter()
        model = gv.from_pyomo(m)
        imported = model.objective_import()
        read = time.perf_counter() - start
        result = model.bound(timeout=args.limit)
        history = result.stats.history
        first_s, first = (history[0][0], history[0][1]) if history else (float("nan"), float("nan"))
        print(f"{terms:>7}{args.variables:>6}{len(imported.constraints):>6}{imported.tape.n_nodes:>8}{built:>9.2f}"
              f"{read:>9.2f}{first_s:>15.2f}{first:>14.6g}{result.status:>10}{result.lower:>14.6g}{result.upper:>14.6g}",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
