"""ACOPF benchmark on the bundled PGLib cases: IPOPT solve, and certified gaps next to QC/SOC and SCIP.

    python bench/acopf_gaps.py                          # every case, both formulations, 60 s per bound
    python bench/acopf_gaps.py --timeout 600 --only pglib_opf_case5_pjm
    python bench/acopf_gaps.py --no-scip --formulations rectangular

Table 1: IPOPT (acopf.solve, flat start) per case: objective, iterations, seconds, the worst constraint
violation by the independent numpy evaluation, and PGLib BASELINE.md's AC objective.

Table 2: the certified gap (upper - lower) / upper after the time limit, per formulation, for graphver
(acopf.bound: IPOPT's point as the upper bound, branch-and-bound for the lower bound) and for SCIP
(pyscipopt, one thread, the same formulation and limit; SCIP's gap uses its own dual bound and the IPOPT
objective), next to PGLib's published QC and SOC relaxation gaps (BASELINE.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import acopf  # noqa: E402
from bab_compare import build_scip, quiet_c_stdout  # noqa: E402

CASES = Path(__file__).resolve().parents[1] / "acopf" / "cases"
# PGLib-OPF v23.07 BASELINE.md: AC objective, QC gap %, SOC gap %
BASELINE = {
    "pglib_opf_case3_lmbd": (5.8126e03, 1.22, 1.32),
    "pglib_opf_case5_pjm": (1.7552e04, 14.55, 14.55),
    "pglib_opf_case14_ieee": (2.1781e03, 0.11, 0.11),
    "pglib_opf_case30_as": (8.0313e02, 0.06, 0.06),
    "pglib_opf_case30_ieee": (8.2085e03, 18.81, 18.84),
}


def scip_gap(net, formulation: str, timeout: float, upper: float) -> dict:
    built = acopf.build_model(net, formulation)
    scip, missing = build_scip(built.model, built.objective, "min", timeout)
    if scip is None:
        return {"status": missing}
    scip.setParam("numerics/feastol", 1e-6)
    start = time.perf_counter()
    with quiet_c_stdout():
        scip.optimize()
    dual = scip.getDualbound()
    return {"status": scip.getStatus(), "seconds": time.perf_counter() - start, "dual": dual,
            "gap": (upper - dual) / abs(upper)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per bound run (graphver and SCIP)")
    parser.add_argument("--only", nargs="*", help="case names")
    parser.add_argument("--formulations", nargs="*", default=["polar", "rectangular"])
    parser.add_argument("--no-scip", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    logging.getLogger("acopf").setLevel(logging.ERROR)
    names = args.only or list(BASELINE)
    record = {}
    print("IPOPT local solutions (independent feasibility check)")
    print(f"{'case':<24}{'objective':>14}{'BASELINE':>12}{'iter':>6}{'s':>7}{'max viol':>10}")
    for name in names:
        net = acopf.load(CASES / f"{name}.m")
        start = time.perf_counter()
        solution = acopf.solve(net)
        total = time.perf_counter() - start
        record[name] = {"solve": {"objective": solution.objective, "iterations": solution.iterations,
                                  "seconds_ipopt": solution.seconds, "seconds_total": total,
                                  "max_violation": solution.max_violation}}
        print(f"{name:<24}{solution.objective:>14.4f}{BASELINE[name][0]:>12.5g}{solution.iterations:>6}"
              f"{solution.seconds:>7.2f}{solution.max_violation:>10.1e}", flush=True)
    print()
    print(f"Certified gaps after {args.timeout:g} s (%): graphver and SCIP per formulation; PGLib QC / SOC")
    head = "".join(f"{'graphver ' + f[:4]:>16}{'SCIP ' + f[:4]:>12}" for f in args.formulations)
    print(f"{'case':<24}{head}{'QC':>8}{'SOC':>8}")
    for name in names:
        net = acopf.load(CASES / f"{name}.m")
        cells = []
        for formulation in args.formulations:
            report = acopf.bound(net, formulation, timeout=args.timeout, progress=False)
            upper = record[name]["solve"]["objective"]
            sound = report.lower <= upper + 1e-6
            scip = {"status": "skipped"} if args.no_scip else scip_gap(net, formulation, args.timeout, upper)
            record[name][formulation] = {"graphver": {"lower": report.lower, "gap": report.gap, "domains": report.domains,
                                                      "seconds": report.seconds, "sound": sound}, "scip": scip}
            scip_text = f"{100 * scip['gap']:.3f}" if "gap" in scip and math.isfinite(scip["gap"]) else scip["status"][:10]
            cells.append(f"{100 * report.gap:>15.3f}{'' if sound else '!'}{scip_text:>12}")
        print(f"{name:<24}{''.join(cells)}{BASELINE[name][1]:>8.2f}{BASELINE[name][2]:>8.2f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(record, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
