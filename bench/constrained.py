"""Constrained benchmark: graphver versus SCIP on models/constrained.py, and what each root technique adds.

    python bench/constrained.py                  # both tables, 120 s per run
    python bench/constrained.py --only hs71 haverly_pooling --timeout 60
    python bench/constrained.py --json out.json

Table 1, root bounds: the certified lower bound after the root alone (``max_explored=1``), with FBBT,
OBBT and the Lagrangian bound switched on one at a time and all together (the default). ``plain`` is
the objective's own bound over the box (CROWN/alpha) with infeasible-domain detection only.

Table 2, full runs with the same tolerance (gap <= max(1e-6, 1e-4 |value|), feasibility 1e-6) and time
limit: graphver's status, seconds and domains; SCIP's (pyscipopt, one thread) status, seconds and nodes;
the time ratio graphver / SCIP. Every graphver bound is checked against the known optimum (a proven
bound beyond it would be a soundness bug, flagged "!").
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bab_compare import build_scip, quiet_c_stdout  # noqa: E402
from models.constrained import CONSTRAINED  # noqa: E402

VARIANTS = {
    "plain": {"fbbt_rounds": 0, "obbt_rounds": 0, "lagrangian_iterations": 0},
    "+fbbt": {"obbt_rounds": 0, "lagrangian_iterations": 0},
    "+obbt": {"fbbt_rounds": 0, "lagrangian_iterations": 0},
    "+lagrangian": {"fbbt_rounds": 0, "obbt_rounds": 0},
    "all": {},
}


def root_bound(problem, options: dict) -> float:
    result = problem.model.bound(problem.expr, sense=problem.sense, timeout=60, max_explored=1, progress=False,
                                 **options)
    return result.lower if problem.sense == "min" else result.upper


def run_graphver(problem, timeout: float) -> dict:
    start = time.perf_counter()
    result = problem.model.bound(problem.expr, sense=problem.sense, timeout=timeout, progress=False)
    seconds = time.perf_counter() - start
    known = problem.known_value
    if known is None:
        sound = result.status != "solved"
    else:
        proven = result.lower if problem.sense == "min" else result.upper
        sound = proven <= known + 1e-9 * (1 + abs(known)) if problem.sense == "min" else proven >= known - 1e-9 * (1 + abs(known))
    return {"status": result.status, "seconds": seconds, "domains": result.stats.domains_explored,
            "lower": result.lower, "upper": result.upper, "sound": bool(sound), "max_violation": result.max_violation}


def run_scip(problem, timeout: float) -> dict:
    scip, missing = build_scip(problem.model, problem.expr, problem.sense, timeout)
    if scip is None:
        return {"status": missing}
    scip.setParam("limits/gap", 1e-4)
    scip.setParam("limits/absgap", 1e-6)
    scip.setParam("numerics/feastol", 1e-6)
    start = time.perf_counter()
    with quiet_c_stdout():
        scip.optimize()
    seconds = time.perf_counter() - start
    return {"status": scip.getStatus(), "seconds": seconds, "dual": scip.getDualbound(), "nodes": scip.getNNodes()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--only", nargs="*", help="problem names")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    names = args.only or list(CONSTRAINED)
    rows = []
    print("Root bounds (certified lower bound after the root; known optimum last)")
    print(f"{'problem':<32}" + "".join(f"{v:>14}" for v in VARIANTS) + f"{'known':>14}")
    for name in names:
        problem = CONSTRAINED[name]()
        row = {"problem": name, "known": problem.known_value, "root": {}}
        for variant, options in VARIANTS.items():
            row["root"][variant] = root_bound(CONSTRAINED[name](), options)
        known = "infeasible" if problem.known_value is None else f"{problem.known_value:.7g}"
        print(f"{name:<32}" + "".join(f"{row['root'][v]:>14.7g}" for v in VARIANTS) + f"{known:>14}", flush=True)
        rows.append(row)
    print()
    print("Full runs: graphver versus SCIP, same tolerance and time limit")
    print(f"{'problem':<32}{'graphver':>12}{'s':>8}{'domains':>9}{'SCIP':>12}{'s':>8}{'nodes':>8}{'ratio':>8}")
    ratios = []
    for row in rows:
        problem = CONSTRAINED[row["problem"]]()
        g = run_graphver(problem, args.timeout)
        s = run_scip(CONSTRAINED[row["problem"]](), args.timeout)
        row["graphver"], row["scip"] = g, s
        status = g["status"] + ("" if g["sound"] else "!")
        if "seconds" in s:
            ratio = g["seconds"] / max(s["seconds"], 1e-3)
            ratios.append(ratio)
            print(f"{row['problem']:<32}{status:>12}{g['seconds']:>8.2f}{g['domains']:>9}{s['status']:>12}"
                  f"{s['seconds']:>8.2f}{s['nodes']:>8}{ratio:>8.2f}", flush=True)
        else:
            print(f"{row['problem']:<32}{status:>12}{g['seconds']:>8.2f}{g['domains']:>9}{s['status']:>12}", flush=True)
    if ratios:
        geomean = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
        print(f"geometric mean of graphver / SCIP time: {geomean:.2f} over {len(ratios)} problems "
              f"(SCIP times floored at 1 ms)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=str))
    unsound = [r["problem"] for r in rows if not r["graphver"]["sound"]]
    if unsound:
        print(f"UNSOUND bounds on: {unsound}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
