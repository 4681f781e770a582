"""The bundled example: certified bounds on every problem of the zoo, next to the exact ranges.

    python -m models                 # table: exact range and the IBP / CROWN / alpha certified intervals
    python -m models --json out.json # the same as JSON
    python -m models rosenbrock      # selected problems only
"""

from __future__ import annotations

import argparse
import sys
import time

from graphver.report.results import json_text
from models import PROBLEMS

METHODS = ("ibp", "crown", "alpha")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"problems to run (default: all of {', '.join(PROBLEMS)})")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in PROBLEMS]
    if unknown:
        parser.error(f"unknown problem(s) {unknown}; choose from {', '.join(PROBLEMS)}")
    results = []
    print(f"{'problem':<16} {'exact range':<26} " + " ".join(f"{m + ' (certified)':<30}" for m in METHODS) + " sound")
    for name in args.names or PROBLEMS:
        problem = PROBLEMS[name]()
        row = {"problem": name, "description": problem.description,
               "exact": [problem.exact_lower, problem.exact_upper]}
        cells, sound = [], True
        for method in METHODS:
            start = time.perf_counter()
            iv = problem.model.interval(problem.expr, method=method)
            row[method] = {"lower": iv.lower, "upper": iv.upper, "seconds": time.perf_counter() - start}
            sound &= iv.lower <= problem.exact_lower and iv.upper >= problem.exact_upper
            cells.append(f"[{iv.lower:.6g}, {iv.upper:.6g}]")
        row["sound"] = sound
        results.append(row)
        exact = f"[{problem.exact_lower:.6g}, {problem.exact_upper:.6g}]"
        print(f"{name:<16} {exact:<26} " + " ".join(f"{c:<30}" for c in cells) + (" ok" if sound else " VIOLATED"))
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(json_text(results) + "\n")
        print(f"wrote {args.json}")
    return 0 if all(r["sound"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
