"""ACOPF benchmark on the bundled PGLib cases: IPOPT solve, and certified gaps next to QC/SOC and SCIP.

    python bench/acopf_gaps.py                          # every case and formulation, 60 s per bound
    python bench/acopf_gaps.py --formulations lifted --timeouts 60 600
    python bench/acopf_gaps.py --no-scip --formulations rectangular --only pglib_opf_case5_pjm

Table 1: IPOPT (acopf.solve, flat start) per case: objective, iterations, seconds, the worst constraint
violation by the independent numpy evaluation, and PGLib BASELINE.md's AC objective.

Table 2: the certified gap (upper - lower) / upper after each time limit, per formulation, for graphver
(acopf.bound: IPOPT's point as the upper bound, branch-and-bound for the lower bound; one run with the
largest limit, the gap at a smaller limit read from its history) and for SCIP (pyscipopt, one thread, the
same formulation, one run per limit; SCIP's gap uses its own dual bound and the IPOPT objective), both
stopping at the same target gap (0.1 %), next to PGLib's published QC and SOC relaxation gaps
(BASELINE.md); "1% at" is the second at which graphver's certified gap first fell to 1 %.
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


TARGET_GAP = 1e-3


def scip_gap(net, formulation: str, timeout: float, upper: float) -> dict:
    built = acopf.build_model(net, formulation)
    scip, missing = build_scip(built.model, built.objective, "min", timeout)
    if scip is None:
        return {"status": missing}
    scip.setParam("numerics/feastol", 1e-6)
    scip.setParam("limits/gap", TARGET_GAP)
    start = time.perf_counter()
    with quiet_c_stdout():
        scip.optimize()
    dual = scip.getDualbound()
    return {"status": scip.getStatus(), "seconds": time.perf_counter() - start, "dual": dual,
            "gap": (upper - dual) / abs(upper)}


def gaps_at(report, limits) -> list[float]:
    """The certified gap at each time limit, from the run's history (seconds counted from the run's start:
    the engine's clock plus the IPOPT solve before it)."""
    offset = report.seconds - (report.history[-1][0] if report.history else 0.0)
    out = []
    for limit in limits:
        lower = [low for seconds, low, _ in report.history if seconds + offset <= limit]
        best = max(lower) if lower else -math.inf
        out.append(report.gap if limit >= report.seconds else (report.upper - best) / abs(report.upper))
    return out


def time_to(report, gap: float) -> float:
    """Seconds until the certified gap first reached ``gap`` (inf if it never did)."""
    offset = report.seconds - (report.history[-1][0] if report.history else 0.0)
    for seconds, low, _ in report.history:
        if (report.upper - low) / abs(report.upper) <= gap:
            return seconds + offset
    return math.inf


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeouts", type=float, nargs="+", default=[60.0], help="time limits (s) to report")
    parser.add_argument("--only", nargs="*", help="case names")
    parser.add_argument("--formulations", nargs="*", default=["polar", "rectangular", "lifted"])
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
    limits = sorted(args.timeouts)
    print()
    print(f"Certified gaps (%) after {', '.join(f'{t:g}' for t in limits)} s: graphver and SCIP per formulation; "
          "PGLib QC / SOC")
    head = "".join(f"{'gv ' + f[:4] + ' ' + format(t, 'g'):>15}{'SCIP ' + f[:4] + ' ' + format(t, 'g'):>16}"
                   for f in args.formulations for t in limits)
    print(f"{'case':<24}{head}{'1% at':>8}{'QC':>7}{'SOC':>7}")
    for name in names:
        net = acopf.load(CASES / f"{name}.m")
        cells, first = [], math.inf
        upper = record[name]["solve"]["objective"]
        for formulation in args.formulations:
            report = acopf.bound(net, formulation, timeout=limits[-1], gap=TARGET_GAP, progress=False)
            sound = report.lower <= upper + 1e-6
            gaps = gaps_at(report, limits)
            first = min(first, time_to(report, 1e-2))
            record[name][formulation] = {"graphver": {"lower": report.lower, "gap": report.gap, "domains": report.domains,
                                                      "seconds": report.seconds, "sound": sound, "gap_at": gaps,
                                                      "seconds_to_1pct": time_to(report, 1e-2)}}
            for limit, gap in zip(limits, gaps):
                scip = {"status": "skipped"} if args.no_scip else scip_gap(net, formulation, limit, upper)
                record[name][formulation][f"scip_{limit:g}"] = scip
                scip_text = f"{100 * scip['gap']:.3f}" if "gap" in scip and math.isfinite(scip["gap"]) else scip["status"][:10]
                gap_text = f"{100 * gap:.3f}" if math.isfinite(gap) else "-"  # "-": no bound yet at that time
                cells.append(f"{gap_text:>14}{'' if sound else '!'}{scip_text:>16}")
        first_text = f"{first:.0f}" if math.isfinite(first) else "-"
        print(f"{name:<24}{''.join(cells)}{first_text:>8}{BASELINE[name][1]:>7.2f}{BASELINE[name][2]:>7.2f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(record, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
