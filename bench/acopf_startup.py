"""ACOPF start-up: where the seconds before the first certified bound go, per case.

    python bench/acopf_startup.py                          # the bundled cases and the 60- and 89-bus PGLib cases
    python bench/acopf_startup.py --cases ../shared/data/pglib/pglib_opf_case73_ieee_rts.m --timeout 120

For each case, in one fresh process per case (imports included, as a user's run pays them): the seconds
to build the lifted and the rectangular model, IPOPT's local solve on the rectangular model (seconds,
iterations, whether the Hessian was exact), then ``acopf.bound`` with ``--timeout``: the engine-time of
its first certified bound and of its best bound, and the gap at the end. Compare runs only on the same
machine, quiet.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PGLIB = ROOT.parent / "shared" / "data" / "pglib"
DEFAULT_CASES = ["case5_pjm", "case14_ieee", "case30_ieee", str(PGLIB / "pglib_opf_case60_c.m"),
                 str(PGLIB / "pglib_opf_case89_pegase.m")]

CHILD = r"""
import json, sys, time
start = time.perf_counter()
import numpy as np
import acopf
from acopf.bound import as_network, bound, flat_start
from acopf.formulations import build
case, timeout = sys.argv[1], float(sys.argv[2])
net = as_network(case)
t = time.perf_counter(); lifted = build(net, "lifted"); build_lifted = time.perf_counter() - t
t = time.perf_counter(); rect = build(net, "rectangular"); build_rect = time.perf_counter() - t
t = time.perf_counter()
local = rect.model.minimize(rect.objective, start=flat_start(rect, net), max_iter=500, tol=1e-8, max_wall_time=60)
ipopt = time.perf_counter() - t
from graphver.bab import engine as engine_module
seen = {}
run = engine_module.Engine.run
def recorded(self, *args, **kwargs):  # the engine's own history counts from its start: note when that was
    seen["start"] = time.perf_counter()
    outcome = run(self, *args, **kwargs)
    seen["history"] = list(outcome.stats.history)
    return outcome
engine_module.Engine.run = recorded
t = time.perf_counter()
report = bound(net, timeout=timeout, progress=False)
total = time.perf_counter() - t
offset = seen["start"] - t
history = [(s + offset, lo) for s, lo, _ in seen["history"] if lo == lo and lo > -float("inf")]
print(json.dumps(dict(case=net.name, build_lifted=build_lifted, build_rect=build_rect, ipopt=ipopt,
                      ipopt_iterations=local.iterations, ipopt_value=local.value, bound_seconds=total,
                      first_bound_at=history[0][0] if history else None, first_bound=history[0][1] if history else None,
                      best_bound_at=history[-1][0] if history else None, lower=report.lower, upper=report.upper,
                      gap=report.gap)))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=DEFAULT_CASES)
    parser.add_argument("--timeout", type=float, default=120.0, help="acopf.bound's limit per case (s)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    rows = []
    print(f"{'case':<26}{'build lifted':>13}{'build rect':>11}{'IPOPT s':>9}{'iter':>6}"
          f"{'bound run s':>12}{'1st bound at':>13}{'best at':>9}{'gap %':>9}")
    for case in args.cases:
        if case.endswith(".m") and not Path(case).is_file():
            print(f"{case}: not found, skipped")
            continue
        run = subprocess.run([sys.executable, "-c", CHILD, case, str(args.timeout)], capture_output=True, text=True,
                             cwd=ROOT, check=False)
        lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
        if run.returncode != 0 or not lines:
            print(f"{case}: failed\n{run.stderr[-600:]}")
            continue
        row = json.loads(lines[-1])
        rows.append(row)
        cell = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
        print(f"{row['case']:<26}{row['build_lifted']:>13.2f}{row['build_rect']:>11.2f}{row['ipopt']:>9.2f}"
              f"{row['ipopt_iterations']:>6}{row['bound_seconds']:>12.1f}{cell(row['first_bound_at'], '>13.1f')}"
              f"{cell(row['best_bound_at'], '>9.1f')}{100 * row['gap']:>9.4f}", flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    print("1st bound at / best at: seconds since acopf.bound began (its own build and IPOPT included) at which the "
          "first finite certified lower bound and the final one were reached")
    return 0


if __name__ == "__main__":
    sys.exit(main())
