"""Branch-and-bound benchmark on the models/ optimisation zoo: ablations, and SCIP on the same machine.

    python bench/bab_compare.py                     # both tables, 60 s per run
    python bench/bab_compare.py --timeout 20 --only branin six_hump_camel
    python bench/bab_compare.py --no-scip           # ablations only
    python bench/bab_compare.py --json out.json

Ablations (graphver configurations, same tolerance rel 1e-4 / abs 1e-6):
  auto      default: input vs node split decided per domain by strong branching, BBPS, optimised points
  input     input splits only
  node      node splits only (inputs where no node split helps)
  babsr     auto with the BaBSR-like intercept score instead of BBPS
  midpoint  auto with midpoint branching points instead of the lookup tables

SCIP (pyscipopt, one thread, the same relative/absolute gap limits and time limit) solves the same
problems through a translation of the sympy expression into SCIP's expression language (problems using
functions SCIP lacks, e.g. tanh or relu, are marked n/a). The ratio column is graphver time / SCIP time.
Every graphver bound is also checked against the known optimum (a violation would be a soundness bug).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import sympy

import graphver as gv

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.optimization import OPT_PROBLEMS  # noqa: E402

CONFIGS = {
    "auto": {},
    "input": {"branching": "input"},
    "node": {"branching": "node"},
    "babsr": {"node_heuristic": "babsr"},
    "midpoint": {"branch_points": "midpoint"},
}


def run_graphver(problem, timeout: float, options: dict) -> dict:
    start = time.perf_counter()
    result = problem.model.bound(problem.expr, sense=problem.sense, timeout=timeout, progress=False, **options)
    seconds = time.perf_counter() - start
    proven = result.lower if problem.sense == "min" else result.upper
    sound = proven <= problem.known_value if problem.sense == "min" else proven >= problem.known_value
    return {"status": result.status, "domains": result.stats.domains_explored, "seconds": seconds,
            "lower": result.lower, "upper": result.upper, "sound": bool(sound)}


def to_scip(expr, variables, scip):
    """Translate a sympy expression to a pyscipopt expression (raises NotImplementedError if impossible)."""
    import pyscipopt as ps

    def walk(e):
        if e.is_Symbol:
            return variables[e]
        if e.is_number:
            return float(e)
        if isinstance(e, sympy.Add):
            out = 0
            for a in e.args:
                out = out + walk(a)
            return out
        if isinstance(e, sympy.Mul):
            out = 1
            for a in e.args:
                out = out * walk(a)
            return out
        if isinstance(e, sympy.Pow):
            base, exponent = e.args
            if not exponent.is_number:
                return ps.exp(walk(exponent) * ps.log(walk(base)))
            p = float(exponent)
            if p == int(p) and p < 0:
                return 1 / (walk(base) ** int(-p))
            return walk(base) ** (int(p) if p == int(p) else p)
        functions = {sympy.exp: ps.exp, sympy.log: ps.log, sympy.sin: ps.sin, sympy.cos: ps.cos}
        for fn, scip_fn in functions.items():
            if isinstance(e, fn):
                return scip_fn(walk(e.args[0]))
        if isinstance(e, sympy.Abs):
            return abs(walk(e.args[0]))
        if isinstance(e, gv.quad_over_lin):
            return walk(e.args[0]) ** 2 / walk(e.args[1])
        raise NotImplementedError(type(e).__name__)

    return walk(expr)


@contextlib.contextmanager
def quiet_c_stdout():
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
        try:
            yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)


def build_scip(model, expr, sense: str = "min", timeout: float = 60.0):
    """A one-thread SCIP model of ``expr`` over the graphver model's box and constraints, minimised or
    maximised through an epigraph variable. Returns (scip, None), or (None, a status) when pyscipopt is
    missing or the expression uses a function SCIP lacks."""
    try:
        import pyscipopt as ps
    except ImportError:
        return None, "n/a (pyscipopt not installed)"
    scip = ps.Model()
    scip.hideOutput()
    variables = {s: scip.addVar(name=s.name, lb=lo, ub=hi) for s, lo, hi in zip(model.variables, model.lower, model.upper)}
    try:
        body = to_scip(expr, variables, scip)
        for constraint in model.constraints:
            row = to_scip(constraint.expr, variables, scip)
            scip.addCons(row == 0 if constraint.kind == "eq" else row <= 0)
    except NotImplementedError as missing:
        return None, f"n/a ({missing})"
    t = scip.addVar(name="objective", lb=None, ub=None)
    scip.addCons(t >= body if sense == "min" else t <= body)
    scip.setObjective(t, "minimize" if sense == "min" else "maximize")
    scip.setParam("limits/time", timeout)
    scip.setParam("parallel/maxnthreads", 1)
    return scip, None


def run_scip(problem, timeout: float, rel_tol: float, abs_tol: float) -> dict:
    scip, missing = build_scip(problem.model, problem.expr, problem.sense, timeout)
    if scip is None:
        return {"status": missing}
    scip.setParam("limits/gap", rel_tol)
    scip.setParam("limits/absgap", abs_tol)
    start = time.perf_counter()
    with quiet_c_stdout():  # SoPlex prints tolerance notes straight to the C stdout
        scip.optimize()
    seconds = time.perf_counter() - start
    return {"status": scip.getStatus(), "seconds": seconds, "dual": scip.getDualbound(), "primal": scip.getPrimalbound(),
            "nodes": scip.getNNodes()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--only", nargs="*", help="problem names")
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--no-scip", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    names = args.only or list(OPT_PROBLEMS)
    rows = []
    head = f"{'problem':<20}" + "".join(f"{c + ' dom/s':>22}" for c in args.configs)
    print("graphver ablations: domains explored / seconds (status: S solved, U unknown; ! unsound)")
    print(head)
    for name in names:
        row = {"problem": name}
        cells = []
        for config in args.configs:
            r = run_graphver(OPT_PROBLEMS[name](), args.timeout, CONFIGS[config])
            row[config] = r
            flag = ("S" if r["status"] == "solved" else "U") + ("" if r["sound"] else "!")
            cells.append(f"{r['domains']:>9} / {r['seconds']:6.2f} {flag}")
        print(f"{name:<20}" + "".join(f"{c:>22}" for c in cells), flush=True)
        rows.append(row)
    if not args.no_scip:
        print()
        print("graphver (auto) versus SCIP, same tolerance and time limit")
        print(f"{'problem':<20}{'graphver s':>11}{'status':>8}{'SCIP s':>9}{'SCIP status':>14}{'ratio':>8}{'SCIP nodes':>11}")
        for row in rows:
            name = row["problem"]
            problem = OPT_PROBLEMS[name]()
            g = row.get("auto") or run_graphver(problem, args.timeout, {})
            s = run_scip(problem, args.timeout, 1e-4, 1e-6)
            row["scip"] = s
            if "seconds" in s:
                ratio = g["seconds"] / max(s["seconds"], 1e-9)
                print(f"{name:<20}{g['seconds']:>11.2f}{g['status']:>8}{s['seconds']:>9.2f}{s['status']:>14}"
                      f"{ratio:>8.2f}{s['nodes']:>11}", flush=True)
            else:
                print(f"{name:<20}{g['seconds']:>11.2f}{g['status']:>8}{'':>9}{s['status']:>14}", flush=True)
    unsound = [r["problem"] for r in rows for c in args.configs if not r[c]["sound"]]
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=str))
    if unsound:
        print(f"UNSOUND bounds on: {unsound}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
